package apiserver

import (
	"fmt"
	"net/http"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tugboatdev/tugboat/store"
)

// autoscaling/v1 HorizontalPodAutoscaler is served, as kube-apiserver
// does, as a second version of the one stored resource (kept in its
// autoscaling/v2 form): requests convert on the way in and out
// (hpav1_convert.go).

var (
	hpaGR      = schema.GroupResource{Group: "autoscaling", Resource: "horizontalpodautoscalers"}
	hpaV1GVK   = schema.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "HorizontalPodAutoscaler"}
	hpaV1Group = schema.GroupVersion{Group: "autoscaling", Version: "v1"}
)

// isHPAv1 reports whether a request is for autoscaling/v1
// horizontalpodautoscalers.
func isHPAv1(info requestInfo) bool {
	return info.group == hpaV1Group.Group && info.version == hpaV1Group.Version && info.resource == hpaGR.Resource
}

// hpaV1Kind is the stored HorizontalPodAutoscaler kind seen through
// autoscaling/v1: the same resource with v1 Go types, for decoding and
// patching request bodies. Nil when the registry has no v2 HPA.
func hpaV1Kind(reg *store.Registry) (v2, v1 *store.Kind) {
	v2 = reg.ForResource(hpaGR)
	if v2 == nil || v2.GVK.Version != "v2" {
		return nil, nil
	}
	k := *v2
	k.GVK = hpaV1GVK
	k.New = func() runtime.Object { return &autoscalingv1.HorizontalPodAutoscaler{} }
	k.NewList = func() runtime.Object { return &autoscalingv1.HorizontalPodAutoscalerList{} }
	return v2, &k
}

// hpaV1Resources are the discovery entries of autoscaling/v1.
func hpaV1Resources(k *store.Kind) []metav1.APIResource {
	return []metav1.APIResource{
		{Name: k.Resource, SingularName: k.Singular, Namespaced: true, Kind: hpaV1GVK.Kind, Verbs: allVerbs, ShortNames: k.ShortNames, Categories: k.Categories},
		{Name: k.Resource + "/status", Namespaced: true, Kind: hpaV1GVK.Kind, Verbs: statusVerbs},
	}
}

// hpaV1Object converts a stored object to v1 (Status and other kinds pass
// through).
func hpaV1Object(obj runtime.Object) (runtime.Object, error) {
	h, ok := obj.(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok {
		return obj, nil
	}
	return hpaToV1(h)
}

// respondHPAv1 writes a stored HPA in v1 form, or as a Table or metadata
// when asked (those are version independent).
func (s *Server) respondHPAv1(w http.ResponseWriter, r *http.Request, code int, k1 *store.Kind, obj runtime.Object, m mediaType) {
	if m.as == "" {
		v1, err := hpaV1Object(obj)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		obj = v1
	}
	s.respond(w, r, code, k1, obj, m)
}

func (s *Server) serveHPAv1(w http.ResponseWriter, r *http.Request, info requestInfo) {
	k2, k1 := hpaV1Kind(s.reg)
	if k2 == nil {
		s.writeError(w, r, notFoundResource(info))
		return
	}
	ns := info.namespace
	if ns == "" && info.verb != "list" && info.verb != "watch" {
		s.writeError(w, r, notFoundResource(info))
		return
	}
	if info.name == "" && r.Method != http.MethodGet && r.Method != http.MethodPost && r.Method != http.MethodDelete {
		s.writeError(w, r, apierrors.NewMethodNotSupported(hpaGR, info.verb))
		return
	}
	if info.subresource != "" && info.subresource != "status" {
		s.writeError(w, r, notFoundResource(info))
		return
	}
	m, err := negotiate(r.Header.Get("Accept"), tableAccepted)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	switch info.verb {
	case "get":
		var opts metav1.GetOptions
		if err := s.decodeParams(r, &opts); err != nil {
			s.writeError(w, r, err)
			return
		}
		obj, err := s.st.Get(r.Context(), hpaGR, ns, info.name, opts)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.respondHPAv1(w, r, http.StatusOK, k1, obj, m)
	case "list":
		s.listHPAv1(w, r, k1, ns, m)
	case "watch":
		s.watchConverted(w, r, k1, ns, m, hpaV1Object)
	case "create":
		if info.name != "" {
			s.writeError(w, r, apierrors.NewMethodNotSupported(hpaGR, "create with a name"))
			return
		}
		s.createHPAv1(w, r, k1, ns, m)
	case "update":
		s.updateHPAv1(w, r, info, k1, ns, m)
	case "patch":
		s.patchHPAv1(w, r, info, k1, ns, m)
	case "delete":
		opts, err := s.deleteOptions(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		out, err := s.st.Delete(r.Context(), hpaGR, ns, info.name, opts)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if out == nil {
			st := &metav1.Status{Status: metav1.StatusSuccess, Details: &metav1.StatusDetails{Name: info.name, Group: hpaGR.Group, Kind: hpaGR.Resource}}
			s.writeObject(w, http.StatusOK, st, mediaType{typ: m.typ})
			return
		}
		s.respondHPAv1(w, r, http.StatusOK, k1, out, m)
	case "deletecollection":
		s.handleDeleteCollection(w, r, k1, ns, m)
	default:
		s.writeError(w, r, apierrors.NewMethodNotSupported(hpaGR, r.Method))
	}
}

func (s *Server) listHPAv1(w http.ResponseWriter, r *http.Request, k1 *store.Kind, ns string, m mediaType) {
	if m.as != "" {
		s.handleList(w, r, k1, ns, m)
		return
	}
	var opts metav1.ListOptions
	if err := s.decodeParams(r, &opts); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.st.List(r.Context(), hpaGR, ns, opts)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list := &autoscalingv1.HorizontalPodAutoscalerList{ListMeta: metav1.ListMeta{
		ResourceVersion: res.ResourceVersion, Continue: res.Continue, RemainingItemCount: res.RemainingItemCount,
	}}
	list.Items = make([]autoscalingv1.HorizontalPodAutoscaler, 0, len(res.Items))
	for _, it := range res.Items {
		h, ok := it.(*autoscalingv2.HorizontalPodAutoscaler)
		if !ok {
			s.writeError(w, r, apierrors.NewInternalError(fmt.Errorf("stored %T is not a HorizontalPodAutoscaler", it)))
			return
		}
		v1, err := hpaToV1(h)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		list.Items = append(list.Items, *v1)
	}
	s.writeObject(w, http.StatusOK, list, m)
}

// decodeHPAv1 reads a v1 HPA request body with field validation.
func (s *Server) decodeHPAv1(r *http.Request, k1 *store.Kind, validationParam, ns string) (*autoscalingv1.HorizontalPodAutoscaler, []string, error) {
	validation, err := fieldValidation(validationParam)
	if err != nil {
		return nil, nil, err
	}
	body, err := readBody(r, s.cfg.MaxBodyBytes)
	if err != nil {
		return nil, nil, err
	}
	obj, warnings, err := s.codecs.decodeObject(k1, r.Header.Get("Content-Type"), body, validation)
	if err != nil {
		return nil, nil, err
	}
	h := obj.(*autoscalingv1.HorizontalPodAutoscaler)
	if h.Namespace == "" {
		h.Namespace = ns
	} else if h.Namespace != ns {
		return nil, nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	return h, warnings, nil
}

func (s *Server) createHPAv1(w http.ResponseWriter, r *http.Request, k1 *store.Kind, ns string, m mediaType) {
	var opts metav1.CreateOptions
	if err := s.decodeParams(r, &opts); err != nil {
		s.writeError(w, r, err)
		return
	}
	h, warnings, err := s.decodeHPAv1(r, k1, opts.FieldValidation, ns)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h = s.trackV1(k1, "", nil, h, managerName(r, opts.FieldManager))
	obj, err := hpaFromV1(h, nil)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.st.Create(r.Context(), obj, opts)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	addWarnings(w, warnings)
	s.respondHPAv1(w, r, http.StatusCreated, k1, out, m)
}

func (s *Server) updateHPAv1(w http.ResponseWriter, r *http.Request, info requestInfo, k1 *store.Kind, ns string, m mediaType) {
	var opts metav1.UpdateOptions
	if err := s.decodeParams(r, &opts); err != nil {
		s.writeError(w, r, err)
		return
	}
	h, warnings, err := s.decodeHPAv1(r, k1, opts.FieldValidation, ns)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if h.Name != info.name {
		s.writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", h.Name, info.name)))
		return
	}
	live, err := s.st.Get(r.Context(), hpaGR, ns, info.name, metav1.GetOptions{})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	base := live.(*autoscalingv2.HorizontalPodAutoscaler)
	liveV1, err := hpaToV1(base)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if h.ManagedFields == nil {
		h.ManagedFields = base.ManagedFields
	}
	h = s.trackV1(k1, info.subresource, liveV1, h, managerName(r, opts.FieldManager))
	next, err := hpaFromV1(h, base)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var out runtime.Object
	if info.subresource == "status" {
		out, err = s.st.UpdateStatus(r.Context(), next, opts)
	} else {
		out, err = s.st.Update(r.Context(), next, opts)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	addWarnings(w, warnings)
	s.respondHPAv1(w, r, http.StatusOK, k1, out, m)
}

func (s *Server) patchHPAv1(w http.ResponseWriter, r *http.Request, info requestInfo, k1 *store.Kind, ns string, m mediaType) {
	p, err := s.readPatch(r, k1)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if p.pt == types.ApplyYAMLPatchType {
		s.applyHPAv1(w, r, info, k1, ns, m, p.body, p.opts, p.validation)
		return
	}
	opts, pt, body, warnings := p.opts, p.pt, p.body, p.warnings
	ctx := r.Context()
	manager := managerName(r, opts.FieldManager)
	final := patchHasPrecondition(body)
	uopts := metav1.UpdateOptions{DryRun: opts.DryRun, FieldManager: opts.FieldManager}
	for try := 0; ; try++ {
		out, err := s.patchHPAv1Once(r, info, k1, ns, pt, body, manager, uopts)
		if err == nil {
			addWarnings(w, warnings)
			s.respondHPAv1(w, r, http.StatusOK, k1, out, m)
			return
		}
		if !apierrors.IsConflict(err) || final || try >= 16 || ctx.Err() != nil {
			s.writeError(w, r, err)
			return
		}
		time.Sleep(time.Duration(try+1) * time.Millisecond)
	}
}

// patchHPAv1Once applies a patch to the v1 form of the live object and
// writes the result back with the live resourceVersion as precondition.
func (s *Server) patchHPAv1Once(r *http.Request, info requestInfo, k1 *store.Kind, ns string, pt types.PatchType, body []byte, manager string, uopts metav1.UpdateOptions) (runtime.Object, error) {
	ctx := r.Context()
	live, err := s.st.Get(ctx, hpaGR, ns, info.name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	base := live.(*autoscalingv2.HorizontalPodAutoscaler)
	cur, err := hpaToV1(base)
	if err != nil {
		return nil, err
	}
	patched, err := store.ApplyPatch(k1, cur, pt, body)
	if err != nil {
		return nil, err
	}
	h := patched.(*autoscalingv1.HorizontalPodAutoscaler)
	if h.Name != info.name {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", h.Name, info.name))
	}
	if h.Namespace != base.Namespace {
		return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	if h.ResourceVersion == "" {
		h.ResourceVersion = base.ResourceVersion
	}
	h = s.trackV1(k1, info.subresource, cur, h, manager)
	next, err := hpaFromV1(h, base)
	if err != nil {
		return nil, err
	}
	if info.subresource == "status" {
		return s.st.UpdateStatus(ctx, next, uopts)
	}
	return s.st.Update(ctx, next, uopts)
}

// trackV1 records a v1 write by manager in obj's managedFields (with
// apiVersion autoscaling/v1, as kube-apiserver records the version a
// client wrote); live is the v1 form of the stored object, nil on create.
func (s *Server) trackV1(k1 *store.Kind, subresource string, live, obj *autoscalingv1.HorizontalPodAutoscaler, manager string) *autoscalingv1.HorizontalPodAutoscaler {
	var l runtime.Object
	if live != nil {
		l = live
	}
	if out, ok := s.trackUpdate(k1, subresource, l, obj, manager).(*autoscalingv1.HorizontalPodAutoscaler); ok {
		return out
	}
	return obj
}

// addHPAConversions registers the v1 <-> v2 HorizontalPodAutoscaler
// conversions in scheme, which the field manager uses to relate
// managedFields entries recorded in one version to objects in the other.
func addHPAConversions(scheme *runtime.Scheme) error {
	if err := scheme.AddConversionFunc((*autoscalingv1.HorizontalPodAutoscaler)(nil), (*autoscalingv2.HorizontalPodAutoscaler)(nil),
		func(a, b any, _ conversion.Scope) error {
			out, err := hpaFromV1(a.(*autoscalingv1.HorizontalPodAutoscaler), nil)
			if err != nil {
				return err
			}
			*b.(*autoscalingv2.HorizontalPodAutoscaler) = *out
			return nil
		}); err != nil {
		return fmt.Errorf("apiserver: hpa conversion: %w", err)
	}
	if err := scheme.AddConversionFunc((*autoscalingv2.HorizontalPodAutoscaler)(nil), (*autoscalingv1.HorizontalPodAutoscaler)(nil),
		func(a, b any, _ conversion.Scope) error {
			out, err := hpaToV1(a.(*autoscalingv2.HorizontalPodAutoscaler))
			if err != nil {
				return err
			}
			*b.(*autoscalingv1.HorizontalPodAutoscaler) = *out
			return nil
		}); err != nil {
		return fmt.Errorf("apiserver: hpa conversion: %w", err)
	}
	return nil
}

// applyHPAv1 serves server-side apply of an autoscaling/v1 configuration:
// the field manager of the v1 kind merges it into the v1 form of the live
// object, and the result is converted onto the stored v2 object.
func (s *Server) applyHPAv1(w http.ResponseWriter, r *http.Request, info requestInfo, k1 *store.Kind, ns string, m mediaType, body []byte, opts metav1.PatchOptions, validation string) {
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
	_, warnings, err := decodeJSONInto(k1, js, k1.New(), validation)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	applied := &unstructured.Unstructured{}
	if err := applied.UnmarshalJSON(js); err != nil {
		s.writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("error decoding applied configuration: %v", err)))
		return
	}
	if applied.GroupVersionKind() != k1.GVK {
		s.writeError(w, r, kindMismatch(applied.GroupVersionKind(), k1.GVK))
		return
	}
	if applied.GetName() != info.name {
		s.writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", applied.GetName(), info.name)))
		return
	}
	if applied.GetNamespace() == "" {
		applied.SetNamespace(ns)
	} else if applied.GetNamespace() != ns {
		s.writeError(w, r, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request"))
		return
	}
	fm, err := s.fieldManager(k1, info.subresource)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	force := opts.Force != nil && *opts.Force
	ctx := r.Context()
	for try := 0; ; try++ {
		var base *autoscalingv2.HorizontalPodAutoscaler
		live := &autoscalingv1.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: info.name, Namespace: ns}}
		obj, err := s.st.Get(ctx, hpaGR, ns, info.name, metav1.GetOptions{})
		create := apierrors.IsNotFound(err)
		switch {
		case create && info.subresource != "":
			s.writeError(w, r, err)
			return
		case create:
		case err != nil:
			s.writeError(w, r, err)
			return
		default:
			base = obj.(*autoscalingv2.HorizontalPodAutoscaler)
			if live, err = hpaToV1(base); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		live.GetObjectKind().SetGroupVersionKind(k1.GVK)
		merged, err := fm.Apply(live, applied.DeepCopy(), opts.FieldManager, force)
		if err != nil {
			s.writeError(w, r, applyError(err))
			return
		}
		mv1, ok := merged.(*autoscalingv1.HorizontalPodAutoscaler)
		if !ok {
			s.writeError(w, r, apierrors.NewInternalError(fmt.Errorf("apply produced %T", merged)))
			return
		}
		next, err := hpaFromV1(mv1, base)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		var out runtime.Object
		code := http.StatusOK
		switch {
		case create:
			out, err = s.st.Create(ctx, next, metav1.CreateOptions{DryRun: opts.DryRun, FieldManager: opts.FieldManager})
			code = http.StatusCreated
		case info.subresource == "status":
			out, err = s.st.UpdateStatus(ctx, next, metav1.UpdateOptions{DryRun: opts.DryRun, FieldManager: opts.FieldManager})
		default:
			out, err = s.st.Update(ctx, next, metav1.UpdateOptions{DryRun: opts.DryRun, FieldManager: opts.FieldManager})
		}
		if (apierrors.IsConflict(err) || (create && apierrors.IsAlreadyExists(err))) && try < 8 {
			continue
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		addWarnings(w, warnings)
		s.respondHPAv1(w, r, code, k1, out, m)
		return
	}
}
