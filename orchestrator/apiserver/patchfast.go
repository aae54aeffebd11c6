package apiserver

import (
	"encoding"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	kjson "sigs.k8s.io/json"
)

// A patch names a few fields; the object has many. Converting the whole
// object to its unstructured map and back (what kube-apiserver does) costs
// more than the merge itself, so patchInPlace walks the patch and the Go
// struct together and converts only the fields the patch names at the
// level where it stops descending:
//
//   - It descends into a field when the patch's value is a JSON object,
//     the field is a struct (or a non-nil pointer to one) without its own
//     JSON encoding, and (strategic merge) the field's patch strategy is
//     not "replace". This is exactly what the merge does at that key: it
//     merges the field's map with the patch's map under the field's
//     schema, and leaves the other keys alone.
//   - A level holding a strategic merge directive ($patch, $retainKeys,
//     $setElementOrder/..., $deleteFromPrimitiveList/...) is merged as a
//     whole: the struct at that level is converted, merged and converted
//     back.
//   - Other keys (maps, lists, scalars, nulls) are merged together at
//     their level, field by field, through their JSON.
//
// Anything it does not expect (a key that names no field, an inline
// field, a value that does not decode strictly into the field's type)
// makes it give up; the caller then applies the patch to the whole object,
// which also gives upstream's error messages and unknown-field paths.

// structFields caches, per struct type, its fields by JSON name.
type structFields struct {
	m sync.Map // reflect.Type -> map[string]fieldInfo
}

// fieldInfo is one struct field as encoding/json sees it.
type fieldInfo struct {
	index     int
	omitEmpty bool
	omitZero  bool
}

var (
	jsonMarshalerType   = reflect.TypeFor[json.Marshaler]()
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	unstructuredType    = reflect.TypeFor[runtime.Unstructured]()
)

// of returns t's fields by JSON name; embedded (inline) fields are left
// out, so keys they hold make patchInPlace give up.
func (c *structFields) of(t reflect.Type) map[string]fieldInfo {
	if v, ok := c.m.Load(t); ok {
		return v.(map[string]fieldInfo)
	}
	fields := make(map[string]fieldInfo, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if tag == "-" || (f.Anonymous && name == "") || (!f.IsExported() && !f.Anonymous) {
			continue // inline (embedded, untagged) fields are left out
		}
		if name == "" {
			name = f.Name
		}
		fi := fieldInfo{index: i}
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "omitempty":
				fi.omitEmpty = true
			case "omitzero":
				fi.omitZero = true
			}
		}
		fields[name] = fi
	}
	c.m.Store(t, fields)
	return fields
}

// ownJSON reports whether values of t encode themselves (metav1.Time,
// resource.Quantity, intstr.IntOrString...): such a struct is a leaf.
func ownJSON(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return t.Implements(jsonMarshalerType) || p.Implements(jsonMarshalerType) ||
		p.Implements(jsonUnmarshalerType) || t.Implements(textMarshalerType) || p.Implements(textMarshalerType) ||
		p.Implements(unstructuredType)
}

// present reports whether encoding/json writes field f.
func present(fi fieldInfo, f reflect.Value) bool {
	if fi.omitZero && f.IsZero() {
		return false
	}
	if !fi.omitEmpty {
		return true
	}
	switch f.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return f.Len() != 0
	case reflect.Bool:
		return f.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return f.Int() != 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return f.Uint() != 0
	case reflect.Float32, reflect.Float64:
		return f.Float() != 0
	case reflect.Interface, reflect.Pointer:
		return !f.IsNil()
	}
	return true
}

// isDirective reports whether a patch key is a strategic merge directive.
func isDirective(key string) bool { return strings.HasPrefix(key, "$") }

// patchInPlace applies a merge patch (lookup nil) or a strategic merge
// patch (lookup the schema of v's type) to the struct v, in place. It
// reports false when the patch needs the whole-object path; v is then
// partly patched and must be thrown away. patch is not modified.
func (c *structFields) patchInPlace(v reflect.Value, patch map[string]any, lookup strategicpatch.LookupPatchMeta) bool {
	strategic := lookup != nil
	if strategic && slices.ContainsFunc(mapsKeys(patch), isDirective) {
		return convertStruct(v, patch, lookup)
	}
	fields := c.of(v.Type())
	var leaves []string
	for key, pv := range patch {
		fi, ok := fields[key]
		if !ok {
			return false
		}
		f := v.Field(fi.index)
		sub, isMap := pv.(map[string]any)
		target := f
		if f.Kind() == reflect.Pointer {
			target = f.Elem()
		}
		if !isMap || !target.IsValid() || target.Kind() != reflect.Struct || ownJSON(target.Type()) || !present(fi, f) {
			leaves = append(leaves, key)
			continue
		}
		var subLookup strategicpatch.LookupPatchMeta
		if strategic {
			l, meta, err := lookup.LookupPatchMetadataForStruct(key)
			if err != nil {
				return false
			}
			if slices.Contains(meta.GetPatchStrategies(), "replace") {
				leaves = append(leaves, key)
				continue
			}
			subLookup = l
		}
		if !c.patchInPlace(target, sub, subLookup) {
			return false
		}
	}
	if len(leaves) == 0 {
		return true
	}
	return patchLeaves(v, c.of(v.Type()), leaves, patch, lookup)
}

func mapsKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// patchLeaves merges the patch's values of keys into the fields of struct
// v they name, through the fields' JSON.
func patchLeaves(v reflect.Value, fields map[string]fieldInfo, keys []string, patch map[string]any, lookup strategicpatch.LookupPatchMeta) bool {
	orig := make(map[string]any, len(keys))
	part := make(map[string]any, len(keys))
	for _, key := range keys {
		fi := fields[key]
		f := v.Field(fi.index)
		part[key] = runtime.DeepCopyJSONValue(patch[key])
		if !present(fi, f) {
			continue
		}
		js, err := json.Marshal(f.Interface())
		if err != nil {
			return false
		}
		var u any
		if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &u); err != nil {
			return false
		}
		orig[key] = u
	}
	merged, ok := mergeAny(orig, part, lookup)
	if !ok {
		return false
	}
	for _, key := range keys {
		f := v.Field(fields[key].index)
		mv, ok := merged[key]
		if !ok || mv == nil {
			f.SetZero()
			continue
		}
		js, err := json.Marshal(mv)
		if err != nil {
			return false
		}
		nv := reflect.New(f.Type())
		strict, err := kjson.UnmarshalStrict(js, nv.Interface(), kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
		if err != nil || len(strict) > 0 {
			return false
		}
		f.Set(nv.Elem())
	}
	return true
}

// convertStruct merges patch into the struct v as a whole: v is converted
// to its unstructured map, merged, and converted back.
func convertStruct(v reflect.Value, patch map[string]any, lookup strategicpatch.LookupPatchMeta) bool {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(v.Addr().Interface())
	if err != nil {
		return false
	}
	merged, ok := mergeAny(u, runtime.DeepCopyJSON(patch), lookup)
	if !ok {
		return false
	}
	nv := reflect.New(v.Type())
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(merged, nv.Interface(), true); err != nil {
		return false
	}
	v.Set(nv.Elem())
	return true
}

// mergeAny merges patch (owned by the call) into orig: strategic merge
// under lookup, or a JSON merge patch when lookup is nil.
func mergeAny(orig, patch map[string]any, lookup strategicpatch.LookupPatchMeta) (map[string]any, bool) {
	if lookup == nil {
		return mergePatch(orig, patch), true
	}
	merged, err := strategicpatch.StrategicMergeMapPatchUsingLookupPatchMeta(orig, patch, lookup)
	return merged, err == nil
}

// patch applies p, a merge or strategic merge patch, to a copy of live
// with patchInPlace; false means the whole-object path is needed.
func (c *structFields) patch(live runtime.Object, p *patchRequest) (runtime.Object, bool) {
	next := live.DeepCopyObject()
	v := reflect.ValueOf(next)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, false
	}
	var lookup strategicpatch.LookupPatchMeta
	if p.pt == types.StrategicMergePatchType {
		l, err := strategicpatch.NewPatchMetaFromStruct(live)
		if err != nil {
			return nil, false
		}
		lookup = l
	}
	if !c.patchInPlace(v.Elem(), p.patchMap, lookup) {
		return nil, false
	}
	next.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	return next, true
}
