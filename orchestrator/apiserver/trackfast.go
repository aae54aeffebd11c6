package apiserver

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/strategicpatch"

	"github.com/tugboatdev/tugboat/store"
)

// Recording a patch in metadata.managedFields is, done as kube-apiserver
// does it, the most expensive part of a small patch: apimachinery's
// managedfields deep-copies the live and the patched object, converts
// both to structured-merge-diff typed values (validating every field
// against the schema) and compares them field by field, all for a patch
// that changed one label.
//
// What it records depends only on that comparison (the fields added,
// changed and removed) and on the managed fields the objects carry. When
// patchInPlace applied the patch, the live and the patched object differ
// only in the fields the patch names: patchInPlace copies live and
// changes only those. trackPatch therefore hands managedfields two small
// objects of the same type holding just those fields (the whole field
// where the patch stops descending, exactly where patchInPlace stopped),
// plus the metadata managedfields reads (uid, name, namespace and the
// managed fields themselves), and copies the managed fields it computes
// onto the patched object. The comparison of the two small objects is
// the comparison of the whole ones, so the entries, their field sets and
// their order are the same; TestTrackPatchMatchesTrackUpdate checks this
// against trackUpdate on the patch tests and FuzzTrackPatch on arbitrary
// patches.
//
// The managed fields themselves are the largest part of the comparison
// that is left: managedfields compares the live object's
// metadata.managedFields (every entry's fields set marshalled and parsed
// again) with none on the new object, and the only effect is that paths
// under metadata.managedFields leave every manager's set. No manager
// owns such a path unless someone wrote one into a fieldsV1 by hand, so
// when no entry mentions "f:managedFields" trackPatch uses a field
// manager whose version conversion (a no-op: the objects are already in
// the kind's version) hands the comparison the objects without their
// managed fields (fieldManagerBlind); otherwise the usual one.

// trackPatch records, like trackUpdate, the write of next (live with the
// merge or strategic merge patch of p applied by patchInPlace) by manager
// in next's managedFields, comparing only the fields the patch names. It
// falls back to trackUpdate when the patch is not one it can project
// (a directive at the top level, a key that names no field).
func (s *Server) trackPatch(k *store.Kind, subresource string, live, next runtime.Object, p *patchRequest, manager string) runtime.Object {
	pl, pn, ok := s.fields.projectPatch(live, next, p)
	if !ok {
		return s.trackUpdate(k, subresource, live, next, manager)
	}
	fm, err := s.fieldManager(k, subresource)
	if !ownsManagedFields(live) && !ownsManagedFields(next) {
		fm, err = s.fieldManagerBlind(k, subresource)
	}
	if err != nil {
		return next
	}
	pl.GetObjectKind().SetGroupVersionKind(k.GVK)
	pn.GetObjectKind().SetGroupVersionKind(k.GVK)
	out := fm.UpdateNoErrors(pl, pn, manager)
	outAcc, err := meta.Accessor(out)
	if err != nil {
		return s.trackUpdate(k, subresource, live, next, manager)
	}
	nextAcc, err := meta.Accessor(next)
	if err != nil {
		return s.trackUpdate(k, subresource, live, next, manager)
	}
	nextAcc.SetManagedFields(outAcc.GetManagedFields())
	return next
}

// projectPatch returns two new objects of live's type holding, from live
// and from next, the fields the patch of p names (down to where
// patchInPlace stopped descending) and the metadata managedfields reads.
// Field values are shared with live and next, not copied.
func (c *structFields) projectPatch(live, next runtime.Object, p *patchRequest) (runtime.Object, runtime.Object, bool) {
	if p.patchMap == nil || (p.pt != types.StrategicMergePatchType && p.pt != types.MergePatchType) {
		return nil, nil, false
	}
	lv, nv := reflect.ValueOf(live), reflect.ValueOf(next)
	if lv.Kind() != reflect.Pointer || lv.Elem().Kind() != reflect.Struct || nv.Type() != lv.Type() || lv.IsNil() || nv.IsNil() {
		return nil, nil, false
	}
	var lookup strategicpatch.LookupPatchMeta
	if p.pt == types.StrategicMergePatchType {
		l, err := strategicpatch.NewPatchMetaFromStruct(live)
		if err != nil {
			return nil, nil, false
		}
		lookup = l
	}
	pl, pn := reflect.New(lv.Elem().Type()), reflect.New(lv.Elem().Type())
	if !c.project(lv.Elem(), nv.Elem(), pl.Elem(), pn.Elem(), p.patchMap, lookup) {
		return nil, nil, false
	}
	outL, okL := pl.Interface().(runtime.Object)
	outN, okN := pn.Interface().(runtime.Object)
	if !okL || !okN {
		return nil, nil, false
	}
	for _, pair := range [][2]runtime.Object{{live, outL}, {next, outN}} {
		from, err := meta.Accessor(pair[0])
		if err != nil {
			return nil, nil, false
		}
		to, err := meta.Accessor(pair[1])
		if err != nil {
			return nil, nil, false
		}
		to.SetUID(from.GetUID())
		to.SetName(from.GetName())
		to.SetNamespace(from.GetNamespace())
		to.SetManagedFields(from.GetManagedFields())
	}
	return outL, outN, true
}

// project copies into the zero structs dl and dn the fields of the
// structs l (live) and n (patched) that patch names at this level: it
// descends exactly where patchInPlace descends and copies the whole field
// where patchInPlace merged it as a leaf. A level holding a strategic
// merge directive (which patchInPlace merges as a whole struct) or a key
// that names no field reports false.
func (c *structFields) project(l, n, dl, dn reflect.Value, patch map[string]any, lookup strategicpatch.LookupPatchMeta) bool {
	strategic := lookup != nil
	if strategic && slices.ContainsFunc(mapsKeys(patch), isDirective) {
		return false
	}
	fields := c.of(l.Type())
	for key, pv := range patch {
		fi, ok := fields[key]
		if !ok {
			return false
		}
		lf, nf := l.Field(fi.index), n.Field(fi.index)
		dlf, dnf := dl.Field(fi.index), dn.Field(fi.index)
		sub, isMap := pv.(map[string]any)
		target := lf
		if lf.Kind() == reflect.Pointer {
			target = lf.Elem()
		}
		descend := isMap && target.IsValid() && target.Kind() == reflect.Struct && !ownJSON(target.Type()) && present(fi, lf)
		var subLookup strategicpatch.LookupPatchMeta
		if descend && strategic {
			sl, pm, err := lookup.LookupPatchMetadataForStruct(key)
			if err != nil {
				return false
			}
			descend = !slices.Contains(pm.GetPatchStrategies(), "replace")
			subLookup = sl
		}
		if descend && lf.Kind() == reflect.Pointer && nf.IsNil() {
			descend = false
		}
		if descend {
			ls, ns, dls, dns := lf, nf, dlf, dnf
			if lf.Kind() == reflect.Pointer {
				ls, ns = lf.Elem(), nf.Elem()
				pl, pn := reflect.New(ls.Type()), reflect.New(ls.Type())
				dlf.Set(pl)
				dnf.Set(pn)
				dls, dns = pl.Elem(), pn.Elem()
			}
			if c.project(ls, ns, dls, dns, sub, subLookup) {
				continue
			}
		}
		dlf.Set(lf)
		dnf.Set(nf)
	}
	return true
}

// ownsManagedFields reports whether a managedFields entry of obj names a
// path under metadata.managedFields (or cannot be read).
func ownsManagedFields(obj runtime.Object) bool {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return true
	}
	for _, e := range acc.GetManagedFields() {
		if e.FieldsV1 != nil && bytes.Contains(e.FieldsV1.Raw, []byte(`"f:managedFields"`)) {
			return true
		}
	}
	return false
}

// fieldManagerBlind returns the managedfields manager of kind k and
// subresource whose comparison of the live and the new object leaves
// out their metadata.managedFields (see trackPatch); for updates only.
func (s *Server) fieldManagerBlind(k *store.Kind, subresource string) (*managedfields.FieldManager, error) {
	key := k.GVK.String() + "/" + subresource
	if fm, ok := s.blindFieldManagers.Load(key); ok {
		return fm.(*managedfields.FieldManager), nil
	}
	tc, err := s.openapi.typeConverter()
	if err != nil {
		return nil, fmt.Errorf("apiserver: type converter: %w", err)
	}
	sc := s.codecs.scheme
	fm, err := managedfields.NewDefaultFieldManager(tc, withoutManagedFields{sc}, sc, sc, k.GVK, k.GVK.GroupVersion(), subresource, nil)
	if err != nil {
		return nil, err
	}
	s.blindFieldManagers.Store(key, fm)
	return fm, nil
}

// withoutManagedFields is the scheme's conversion, except that a typed
// object already in the target version becomes a shallow copy without
// metadata.managedFields instead of a deep copy. managedfields' Update
// converts the live and the new object this way only to compare them.
type withoutManagedFields struct {
	*runtime.Scheme
}

// ConvertToVersion implements runtime.ObjectConvertor.
func (c withoutManagedFields) ConvertToVersion(in runtime.Object, target runtime.GroupVersioner) (runtime.Object, error) {
	gvk := in.GetObjectKind().GroupVersionKind()
	if _, unstructured := in.(runtime.Unstructured); !unstructured && !gvk.Empty() {
		if want, ok := target.KindForGroupVersionKinds([]schema.GroupVersionKind{gvk}); ok && want == gvk {
			if v := reflect.ValueOf(in); v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.Struct {
				cp := reflect.New(v.Elem().Type())
				cp.Elem().Set(v.Elem())
				if out, ok := cp.Interface().(runtime.Object); ok {
					if acc, err := meta.Accessor(out); err == nil {
						acc.SetManagedFields([]metav1.ManagedFieldsEntry(nil))
						return out, nil
					}
				}
			}
		}
	}
	return c.Scheme.ConvertToVersion(in, target)
}
