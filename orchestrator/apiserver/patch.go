package apiserver

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	kjson "sigs.k8s.io/json"

	"github.com/tugboatdev/tugboat/store"
)

// patchTracked applies a JSON, merge or strategic merge patch as
// kube-apiserver does: read the live object, apply the patch, record the
// write in metadata.managedFields as an "Update" by manager, and write it
// back with the live resourceVersion as precondition, starting over on a
// conflict unless the patch itself carries a resourceVersion or uid. It
// returns the written object and the field validation warnings.
//
// With a view, k is the view's kind: the patch applies to the object in
// that version, which is converted to the stored form to be written.
func (s *Server) patchTracked(r *http.Request, info requestInfo, k *store.Kind, ns string, p *patchRequest, view *versionView) (runtime.Object, []string, error) {
	ctx := r.Context()
	manager := managerName(r, p.opts.FieldManager)
	final := patchHasPrecondition(p.body)
	uopts := metav1.UpdateOptions{DryRun: p.opts.DryRun, FieldManager: p.opts.FieldManager}
	for try := 0; ; try++ {
		stored, err := s.st.Get(ctx, k.GroupResource(), ns, info.name, metav1.GetOptions{})
		if err != nil {
			return nil, nil, err
		}
		live, err := view.external(stored)
		if err != nil {
			return nil, nil, err
		}
		next, warnings, inPlace, err := patchObjectInPlace(k, live, p, &s.fields)
		if err != nil {
			return nil, nil, err
		}
		nextAcc, err := meta.Accessor(next)
		if err != nil {
			return nil, nil, apierrors.NewInternalError(err)
		}
		liveAcc, _ := meta.Accessor(live)
		if nextAcc.GetName() != info.name {
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", nextAcc.GetName(), info.name))
		}
		if nextAcc.GetNamespace() != liveAcc.GetNamespace() {
			return nil, nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
		if nextAcc.GetResourceVersion() == "" {
			nextAcc.SetResourceVersion(liveAcc.GetResourceVersion())
		}
		if inPlace {
			next = s.trackPatch(k, info.subresource, live, next, p, manager)
		} else {
			next = s.trackUpdate(k, info.subresource, live, next, manager)
		}
		if next, err = view.stored(next, stored); err != nil {
			return nil, nil, err
		}
		var out runtime.Object
		if info.subresource == "status" {
			out, err = s.st.UpdateStatus(ctx, next, uopts)
		} else {
			out, err = s.st.Update(ctx, next, uopts)
		}
		if !apierrors.IsConflict(err) || final || try >= 16 || ctx.Err() != nil {
			return out, warnings, err
		}
		time.Sleep(time.Duration(try+1) * time.Millisecond)
	}
}

// decodePatchMap decodes the body of a merge or strategic merge patch,
// once per request, as kube-apiserver does: case-sensitively, integers
// kept as int64, and (unless validation is Ignore) duplicate fields
// reported as strict decoding errors.
func decodePatchMap(body []byte, validation string) (map[string]any, []string, error) {
	var doc any
	var strictErrs []error
	var err error
	if validation == validationIgnore {
		err = kjson.UnmarshalCaseSensitivePreserveInts(body, &doc)
	} else {
		strictErrs, err = kjson.UnmarshalStrict(body, &doc, kjson.DisallowDuplicateFields)
	}
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("error decoding patch: %v", err))
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, nil, apierrors.NewBadRequest("patch body must be a JSON object")
	}
	var msgs []string
	for _, e := range strictErrs {
		msgs = append(msgs, e.Error())
	}
	return m, msgs, nil
}

// patchObject returns live, an object of kind k, with the patch of p
// applied, and the field validation warnings. Merge and strategic merge
// patches are applied, as kube-apiserver applies them, to the object's
// unstructured map (no JSON encoding and decoding of the whole object),
// and the result is converted back with unknown fields reported as p's
// validation mode says. JSON patches (RFC 6902) work on the object's JSON.
// live is not modified.
//
// fields, when not nil, first tries patchInPlace on a copy of live, which
// converts only the fields the patch names; the whole-object path runs
// when it gives up.
func patchObject(k *store.Kind, live runtime.Object, p *patchRequest, fields *structFields) (runtime.Object, []string, error) {
	next, warnings, _, err := patchObjectInPlace(k, live, p, fields)
	return next, warnings, err
}

// patchObjectInPlace is patchObject that also reports whether
// patchInPlace applied the patch (so next differs from live only in the
// fields the patch names, which trackPatch relies on).
func patchObjectInPlace(k *store.Kind, live runtime.Object, p *patchRequest, fields *structFields) (runtime.Object, []string, bool, error) {
	if p.pt == types.JSONPatchType || p.patchMap == nil {
		next, err := store.ApplyPatch(k, live, p.pt, p.body)
		return next, nil, false, err
	}
	if fields != nil && (p.pt == types.StrategicMergePatchType || p.pt == types.MergePatchType) {
		if next, ok := fields.patch(live, p); ok {
			next, warnings, err := strictResult(k, next, p.strict, p.validation)
			return next, warnings, err == nil, err
		}
	}
	next, warnings, err := patchWhole(k, live, p)
	return next, warnings, false, err
}

// patchWhole applies a merge or strategic merge patch to live's whole
// unstructured map.
func patchWhole(k *store.Kind, live runtime.Object, p *patchRequest) (runtime.Object, []string, error) {
	orig, err := runtime.DefaultUnstructuredConverter.ToUnstructured(live)
	if err != nil {
		return nil, nil, apierrors.NewInternalError(fmt.Errorf("apiserver: %s to unstructured: %w", k.GVK.Kind, err))
	}
	var merged map[string]any
	switch p.pt {
	case types.StrategicMergePatchType:
		lookup, lerr := strategicpatch.NewPatchMetaFromStruct(live)
		if lerr != nil {
			return nil, nil, apierrors.NewInternalError(lerr)
		}
		// The merge consumes the patch's directives: give it a copy, a
		// conflict retry needs the patch again.
		merged, err = strategicpatch.StrategicMergeMapPatchUsingLookupPatchMeta(orig, runtime.DeepCopyJSON(p.patchMap), lookup)
	case types.MergePatchType:
		merged = mergePatch(orig, p.patchMap)
	default:
		return nil, nil, unsupportedMediaType(string(p.pt))
	}
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the patch could not be applied: %v", err))
	}
	next := k.New()
	msgs := p.strict
	err = runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(merged, next, p.validation != validationIgnore)
	if se, ok := runtime.AsStrictDecodingError(err); ok {
		for _, e := range se.Errors() {
			msgs = append(msgs, e.Error())
		}
		err = nil
	}
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the patched object is not a valid %s: %v", k.GVK.Kind, err))
	}
	next.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	return strictResult(k, next, msgs, p.validation)
}

// strictResult returns a patched object with its strict decoding errors
// msgs as the validation mode says: none, warnings, or a 400.
func strictResult(k *store.Kind, next runtime.Object, msgs []string, validation string) (runtime.Object, []string, error) {
	if len(msgs) == 0 || validation == validationIgnore {
		return next, nil, nil
	}
	if validation == validationStrict {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: strict decoding error: %s", k.GVK.Kind, k.GVK.Version, k.GVK.Kind, strings.Join(msgs, ", ")))
	}
	return next, msgs, nil
}

// mergePatch applies a JSON merge patch (RFC 7386) to target in place
// and returns it: null deletes a member, an object merges recursively,
// anything else replaces. Values of patch are shared with the result, not
// copied.
func mergePatch(target, patch map[string]any) map[string]any {
	if target == nil {
		target = make(map[string]any, len(patch))
	}
	for k, v := range patch {
		switch pv := v.(type) {
		case nil:
			delete(target, k)
		case map[string]any:
			tv, _ := target[k].(map[string]any)
			target[k] = mergePatch(tv, pv)
		default:
			target[k] = v
		}
	}
	return target
}

// allowCreateOnUpdate reports whether the upstream REST strategy of gr
// has AllowCreateOnUpdate: a PUT of a missing object creates it.
// (ConfigMaps, Secrets, Pods, Nodes, PersistentVolumes, EndpointSlices,
// Namespaces and most others answer 404 instead.)
func allowCreateOnUpdate(gr schema.GroupResource) bool {
	switch gr.Group {
	case "":
		switch gr.Resource {
		case "services", "endpoints", "events", "limitranges":
			return true
		}
	case "events.k8s.io":
		return gr.Resource == "events"
	case "coordination.k8s.io":
		return gr.Resource == "leases"
	case "rbac.authorization.k8s.io":
		switch gr.Resource {
		case "roles", "rolebindings", "clusterroles", "clusterrolebindings":
			return true
		}
	case "node.k8s.io":
		return gr.Resource == "runtimeclasses"
	case "flowcontrol.apiserver.k8s.io":
		return gr.Resource == "flowschemas" || gr.Resource == "prioritylevelconfigurations"
	}
	return false
}
