package apiserver

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tugboatdev/tugboat/store"
)

// fieldManager returns the managedfields manager of kind k and
// subresource, built once and cached.
func (s *Server) fieldManager(k *store.Kind, subresource string) (*managedfields.FieldManager, error) {
	key := k.GVK.String() + "/" + subresource
	if fm, ok := s.fieldManagers.Load(key); ok {
		return fm.(*managedfields.FieldManager), nil
	}
	tc, err := s.openapi.typeConverter()
	if err != nil {
		return nil, fmt.Errorf("apiserver: type converter: %w", err)
	}
	sc := s.codecs.scheme
	fm, err := managedfields.NewDefaultFieldManager(tc, sc, sc, sc, k.GVK, k.GVK.GroupVersion(), subresource, nil)
	if err != nil {
		return nil, err
	}
	s.fieldManagers.Store(key, fm)
	return fm, nil
}

// managerName is the field manager of a non-apply write: the fieldManager
// parameter, or the client's user agent up to its first '/', as upstream.
func managerName(r *http.Request, param string) string {
	if param != "" {
		return param
	}
	ua := r.Header.Get("User-Agent")
	if i := strings.IndexByte(ua, '/'); i >= 0 {
		ua = ua[:i]
	}
	if ua == "" {
		ua = "unknown"
	}
	return ua
}

// trackUpdate records in obj's managedFields the fields a create or
// update by manager changed relative to live (nil for a create). Objects
// the type converter cannot handle are written untracked.
//
// The comparison leaves out the objects' managedFields (and so copies
// nothing) unless an entry owns a path under them; see trackPatch.
func (s *Server) trackUpdate(k *store.Kind, subresource string, live, obj runtime.Object, manager string) runtime.Object {
	if live == nil {
		live = k.New()
	}
	fm, err := s.fieldManager(k, subresource)
	if !ownsManagedFields(live) && !ownsManagedFields(obj) {
		fm, err = s.fieldManagerBlind(k, subresource)
	}
	if err != nil {
		return obj
	}
	return s.trackUpdateWith(fm, k, live, obj, manager)
}

// trackUpdateWith is trackUpdate with the field manager fm; live is not nil.
func (s *Server) trackUpdateWith(fm *managedfields.FieldManager, k *store.Kind, live, obj runtime.Object, manager string) runtime.Object {
	live.GetObjectKind().SetGroupVersionKind(k.GVK)
	obj.GetObjectKind().SetGroupVersionKind(k.GVK)
	out := fm.UpdateNoErrors(live, obj, manager)
	out.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	obj.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	return out
}

// handleApply serves server-side apply (application/apply-patch+yaml):
// apimachinery's managedfields merges the applied configuration into the
// live object, records field ownership in metadata.managedFields and
// reports conflicts with other managers (409) unless force is set. A
// missing object is created.
//
// With a view, k is the view's kind: the configuration is applied to the
// object in that version, which is converted to the stored form.
func (s *Server) handleApply(w http.ResponseWriter, r *http.Request, info requestInfo, k *store.Kind, ns string, m mediaType, body []byte, opts metav1.PatchOptions, validation string, view *versionView) {
	applied, fm, warnings, err := s.readApplied(info, k, ns, body, opts, validation)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	force := opts.Force != nil && *opts.Force
	ctx := r.Context()
	for try := 0; ; try++ {
		stored, err := s.st.Get(ctx, k.GroupResource(), ns, info.name, metav1.GetOptions{})
		create := apierrors.IsNotFound(err)
		var live runtime.Object
		switch {
		case create && info.subresource != "":
			s.writeError(w, r, err)
			return
		case create:
			stored = nil
			live = k.New()
			acc, _ := meta.Accessor(live)
			acc.SetName(info.name)
			acc.SetNamespace(ns)
		case err != nil:
			s.writeError(w, r, err)
			return
		default:
			if live, err = view.external(stored); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		live.GetObjectKind().SetGroupVersionKind(k.GVK)
		merged, err := fm.Apply(live, applied.DeepCopy(), opts.FieldManager, force)
		if err != nil {
			s.writeError(w, r, applyError(err))
			return
		}
		obj, ok := merged.(runtime.Object)
		if !ok || reflect.TypeOf(obj) != reflect.TypeOf(k.New()) {
			s.writeError(w, r, apierrors.NewInternalError(fmt.Errorf("apply produced %T", merged)))
			return
		}
		obj.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
		if obj, err = view.stored(obj, stored); err != nil {
			s.writeError(w, r, err)
			return
		}
		var out runtime.Object
		code := http.StatusOK
		switch {
		case create:
			if pod, ok := obj.(*corev1.Pod); ok {
				if err := s.admitPod(r, pod); err != nil {
					s.writeError(w, r, err)
					return
				}
			}
			out, err = s.st.Create(ctx, obj, metav1.CreateOptions{DryRun: opts.DryRun, FieldManager: opts.FieldManager})
			code = http.StatusCreated
		case info.subresource == "status":
			out, err = s.st.UpdateStatus(ctx, obj, metav1.UpdateOptions{DryRun: opts.DryRun, FieldManager: opts.FieldManager})
		default:
			out, err = s.st.Update(ctx, obj, metav1.UpdateOptions{DryRun: opts.DryRun, FieldManager: opts.FieldManager})
		}
		if (apierrors.IsConflict(err) || (create && apierrors.IsAlreadyExists(err))) && try < 8 {
			continue
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		addWarnings(w, warnings)
		s.respondIn(w, r, code, view, k, out, m)
		return
	}
}

// readApplied decodes the body of an apply patch for kind k (the
// applied configuration), checks it against the request and returns it
// with the field manager that merges it and the field validation warnings.
func (s *Server) readApplied(info requestInfo, k *store.Kind, ns string, body []byte, opts metav1.PatchOptions, validation string) (*unstructured.Unstructured, *managedfields.FieldManager, []string, error) {
	if opts.FieldManager == "" {
		return nil, nil, nil, apierrors.NewInvalid(schema.GroupKind{Group: "meta.k8s.io", Kind: "PatchOptions"}, "",
			field.ErrorList{field.Required(field.NewPath("fieldManager"), "is required for apply patch")})
	}
	js, _, err := bodyToJSON("application/apply-patch+yaml", body)
	if err != nil {
		return nil, nil, nil, err
	}
	_, warnings, err := decodeJSONInto(k, js, k.New(), validation)
	if err != nil {
		return nil, nil, nil, err
	}
	applied := &unstructured.Unstructured{}
	if err := applied.UnmarshalJSON(js); err != nil {
		return nil, nil, nil, apierrors.NewBadRequest(fmt.Sprintf("error decoding applied configuration: %v", err))
	}
	if applied.GroupVersionKind() != k.GVK {
		return nil, nil, nil, kindMismatch(applied.GroupVersionKind(), k.GVK)
	}
	if applied.GetName() != info.name {
		return nil, nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", applied.GetName(), info.name))
	}
	if k.Namespaced {
		if applied.GetNamespace() == "" {
			applied.SetNamespace(ns)
		} else if applied.GetNamespace() != ns {
			return nil, nil, nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
	}
	fm, err := s.fieldManager(k, info.subresource)
	if err != nil {
		return nil, nil, nil, err
	}
	return applied, fm, warnings, nil
}

// applyError keeps StatusErrors (conflicts are 409 with causes naming the
// fields and managers) and turns the rest into 500s.
func applyError(err error) error {
	if _, ok := err.(apierrors.APIStatus); ok {
		return err
	}
	return apierrors.NewBadRequest(err.Error())
}
