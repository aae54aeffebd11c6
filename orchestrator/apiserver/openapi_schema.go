package apiserver

import (
	"reflect"
	"sort"
	"strings"

	"k8s.io/kube-openapi/pkg/validation/spec"
)

// schemaGen builds OpenAPI schemas for Go types by reflection: field names
// from json tags, descriptions from the types' SwaggerDoc() methods,
// strategic merge patch and list-type extensions from struct tags, and
// OpenAPISchemaType()/OpenAPISchemaFormat() for types with custom JSON.
type schemaGen struct {
	refPrefix string // "#/definitions/" (v2) or "#/components/schemas/" (v3)
	v3        bool
	defs      map[string]spec.Schema
}

func newSchemaGen(refPrefix string, v3 bool) *schemaGen {
	return &schemaGen{refPrefix: refPrefix, v3: v3, defs: map[string]spec.Schema{}}
}

// defName returns the definition name of a named type: its package path
// with the domain reversed ("k8s.io/api/core/v1" + "Pod" is
// "io.k8s.api.core.v1.Pod").
func defName(t reflect.Type) string {
	pkg := t.PkgPath()
	host, rest, _ := strings.Cut(pkg, "/")
	hp := strings.Split(host, ".")
	for i, j := 0, len(hp)-1; i < j; i, j = i+1, j-1 {
		hp[i], hp[j] = hp[j], hp[i]
	}
	name := strings.Join(hp, ".")
	if rest != "" {
		name += "." + strings.ReplaceAll(rest, "/", ".")
	}
	return name + "." + t.Name()
}

type openAPITyper interface{ OpenAPISchemaType() []string }
type openAPIFormatter interface{ OpenAPISchemaFormat() string }
type openAPIV3OneOf interface{ OpenAPIV3OneOfTypes() []string }
type swaggerDoccer interface{ SwaggerDoc() map[string]string }

func docOf(t reflect.Type) map[string]string {
	v := reflect.New(t).Elem().Interface()
	if d, ok := v.(swaggerDoccer); ok {
		return d.SwaggerDoc()
	}
	if d, ok := reflect.New(t).Interface().(swaggerDoccer); ok {
		return d.SwaggerDoc()
	}
	return nil
}

// customSchema returns the schema of a type that declares its own OpenAPI
// type (Time, Quantity, IntOrString, Duration...).
func (g *schemaGen) customSchema(t reflect.Type) (spec.Schema, bool) {
	pv := reflect.New(t).Interface()
	vv := reflect.New(t).Elem().Interface()
	var typer openAPITyper
	if x, ok := vv.(openAPITyper); ok {
		typer = x
	} else if x, ok := pv.(openAPITyper); ok {
		typer = x
	}
	if typer == nil {
		return spec.Schema{}, false
	}
	var s spec.Schema
	types := typer.OpenAPISchemaType()
	if g.v3 {
		var oneOf openAPIV3OneOf
		if x, ok := vv.(openAPIV3OneOf); ok {
			oneOf = x
		} else if x, ok := pv.(openAPIV3OneOf); ok {
			oneOf = x
		}
		if oneOf != nil && len(oneOf.OpenAPIV3OneOfTypes()) > 0 {
			for _, ot := range oneOf.OpenAPIV3OneOfTypes() {
				s.OneOf = append(s.OneOf, spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{ot}}})
			}
			types = nil
		}
	}
	s.Type = types
	var f openAPIFormatter
	if x, ok := vv.(openAPIFormatter); ok {
		f = x
	} else if x, ok := pv.(openAPIFormatter); ok {
		f = x
	}
	if f != nil {
		s.Format = f.OpenAPISchemaFormat()
		if s.Format == "int-or-string" {
			s.AddExtension("x-kubernetes-int-or-string", true)
			s.Type = nil
			s.OneOf = nil
		}
	}
	if len(s.Type) == 1 && s.Type[0] == "object" {
		// RawExtension and friends: any object.
		s.AddExtension("x-kubernetes-preserve-unknown-fields", true)
	}
	return s, true
}

// ref returns a schema referring to t's definition, building it first.
func (g *schemaGen) ref(t reflect.Type) spec.Schema {
	name := defName(t)
	if _, ok := g.defs[name]; !ok {
		g.defs[name] = spec.Schema{} // placeholder against recursion
		g.defs[name] = g.build(t)
	}
	return spec.Schema{SchemaProps: spec.SchemaProps{Ref: spec.MustCreateRef(g.refPrefix + name)}}
}

// schemaFor returns the schema of a field of type t.
func (g *schemaGen) schemaFor(t reflect.Type) spec.Schema {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Name() != "" && t.PkgPath() != "" {
		if _, ok := g.customSchema(t); ok {
			return g.ref(t)
		}
		if t.Kind() == reflect.Struct {
			return g.ref(t)
		}
	}
	switch t.Kind() {
	case reflect.String:
		return *spec.StringProperty()
	case reflect.Bool:
		return *spec.BoolProperty()
	case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Uint, reflect.Uint32:
		return *spec.Int64Property()
	case reflect.Int32, reflect.Int16, reflect.Int8, reflect.Uint16, reflect.Uint8:
		return *spec.Int32Property()
	case reflect.Float32, reflect.Float64:
		return *spec.Float64Property()
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			s := *spec.StringProperty()
			s.Format = "byte"
			return s
		}
		item := g.schemaFor(t.Elem())
		return *spec.ArrayProperty(&item)
	case reflect.Map:
		item := g.schemaFor(t.Elem())
		s := spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"object"}, AdditionalProperties: &spec.SchemaOrBool{Allows: true, Schema: &item}}}
		return s
	case reflect.Interface:
		s := spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"object"}}}
		s.AddExtension("x-kubernetes-preserve-unknown-fields", true)
		return s
	case reflect.Struct:
		return g.build(t)
	}
	return spec.Schema{}
}

// build returns the definition of a named type.
func (g *schemaGen) build(t reflect.Type) spec.Schema {
	if s, ok := g.customSchema(t); ok {
		if d := docOf(t); d != nil {
			s.Description = d[""]
		}
		return s
	}
	if t.Kind() != reflect.Struct {
		return g.schemaFor(t)
	}
	s := spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"object"}, Properties: map[string]spec.Schema{}}}
	doc := docOf(t)
	s.Description = doc[""]
	g.fields(t, &s, doc)
	sort.Strings(s.Required)
	return s
}

func (g *schemaGen) fields(t reflect.Type, s *spec.Schema, doc map[string]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if f.Anonymous && (name == "" || strings.Contains(opts, "inline")) {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				g.fields(ft, s, docOf(ft))
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		fs := g.schemaFor(f.Type)
		desc := doc[name]
		if fs.Ref.String() != "" && desc != "" {
			if g.v3 {
				fs = spec.Schema{SchemaProps: spec.SchemaProps{AllOf: []spec.Schema{fs}, Description: desc}}
			} else {
				fs.Description = desc
			}
		} else if desc != "" {
			fs.Description = desc
		}
		if ps := f.Tag.Get("patchStrategy"); ps != "" {
			fs.AddExtension("x-kubernetes-patch-strategy", ps)
		}
		ft := f.Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() != reflect.Uint8 {
			et := ft.Elem()
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if mk := f.Tag.Get("patchMergeKey"); mk != "" {
				fs.AddExtension("x-kubernetes-patch-merge-key", mk)
				if et.Kind() == reflect.Struct {
					fs.AddExtension("x-kubernetes-list-type", "map")
					fs.AddExtension("x-kubernetes-list-map-keys", []any{mk})
				}
			} else if strings.Contains(f.Tag.Get("patchStrategy"), "merge") && et.Kind() != reflect.Struct {
				fs.AddExtension("x-kubernetes-list-type", "set")
			} else {
				fs.AddExtension("x-kubernetes-list-type", "atomic")
			}
		}
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") && f.Type.Kind() != reflect.Pointer && f.Type.Kind() != reflect.Bool {
			s.Required = append(s.Required, name)
		}
		s.Properties[name] = fs
	}
}
