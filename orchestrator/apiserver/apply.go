package apiserver

import (
	"fmt"
	"net/http"
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
func (s *Server) trackUpdate(k *store.Kind, subresource string, live, obj runtime.Object, manager string) runtime.Object {
	fm, err := s.fieldManager(k, subresource)
	if err != nil {
		return obj
	}
	if live == nil {
		live = k.New()
	}
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
func (s *Server) handleApply(w http.ResponseWriter, r *http.Request, info requestInfo, k *store.Kind, ns string, m mediaType, body []byte, opts metav1.PatchOptions, validation string) {
	if opts.FieldManager == "" {
		s.writeError(w, r, apierrors.NewInvalid(schema.GroupKind{Group: "meta.k8s.io", Kind: "PatchOptions"}, "",
			field.ErrorList{field.Required(field.NewPath("fieldManager"), "is required for apply patch")}))
		return
	}
	js, _, err := bodyToJSON("application/apply-patch+yaml", body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	_, warnings, err := decodeJSONInto(k, js, k.New(), validation)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	applied := &unstructured.Unstructured{}
	if err := applied.UnmarshalJSON(js); err != nil {
		s.writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("error decoding applied configuration: %v", err)))
		return
	}
	if applied.GroupVersionKind() != k.GVK {
		s.writeError(w, r, kindMismatch(applied.GroupVersionKind(), k.GVK))
		return
	}
	if applied.GetName() != info.name {
		s.writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", applied.GetName(), info.name)))
		return
	}
	if k.Namespaced {
		if applied.GetNamespace() == "" {
			applied.SetNamespace(ns)
		} else if applied.GetNamespace() != ns {
			s.writeError(w, r, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request"))
			return
		}
	}
	fm, err := s.fieldManager(k, info.subresource)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	force := opts.Force != nil && *opts.Force
	ctx := r.Context()
	for try := 0; ; try++ {
		live, err := s.st.Get(ctx, k.GroupResource(), ns, info.name, metav1.GetOptions{})
		create := apierrors.IsNotFound(err)
		if create {
			if info.subresource != "" {
				s.writeError(w, r, err)
				return
			}
			live = k.New()
			acc, _ := meta.Accessor(live)
			acc.SetName(info.name)
			acc.SetNamespace(ns)
		} else if err != nil {
			s.writeError(w, r, err)
			return
		}
		live.GetObjectKind().SetGroupVersionKind(k.GVK)
		merged, err := fm.Apply(live, applied.DeepCopy(), opts.FieldManager, force)
		if err != nil {
			s.writeError(w, r, applyError(err))
			return
		}
		obj, ok := merged.(runtime.Object)
		if !ok || s.reg.ForObject(obj) == nil {
			s.writeError(w, r, apierrors.NewInternalError(fmt.Errorf("apply produced %T", merged)))
			return
		}
		obj.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
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
		s.respond(w, r, code, k, out, m)
		return
	}
}

// applyError keeps StatusErrors (conflicts are 409 with causes naming the
// fields and managers) and turns the rest into 500s.
func applyError(err error) error {
	if _, ok := err.(apierrors.APIStatus); ok {
		return err
	}
	return apierrors.NewBadRequest(err.Error())
}
