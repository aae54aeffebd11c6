package apiserver

import (
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/tugboatdev/tugboat/store"
)

const (
	mimeOpenAPIV2Proto  = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
	mimeOpenAPIV2Proto2 = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
)

// openAPI holds the OpenAPI documents generated from the registry's Go
// types. They are built lazily on first request and cached.
type openAPI struct {
	reg *store.Registry
	// extra are kinds served besides the registry's (other versions of
	// stored resources, such as autoscaling/v1 HorizontalPodAutoscaler).
	extra []*store.Kind

	once    sync.Once
	v2JSON  []byte
	v2Proto []byte
	v2Err   error

	v3once sync.Once
	v3     map[string][]byte // "api/v1", "apis/apps/v1" -> document
	v3hash map[string]string

	tcOnce sync.Once
	tc     managedfields.TypeConverter
	tcErr  error
}

func newOpenAPI(reg *store.Registry) *openAPI { return &openAPI{reg: reg} }

func gvPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "api/" + gv.Version
	}
	return "apis/" + gv.Group + "/" + gv.Version
}

// commonTypes are the meta types every document references.
var commonTypes = []reflect.Type{
	reflect.TypeOf(metav1.Status{}), reflect.TypeOf(metav1.DeleteOptions{}), reflect.TypeOf(metav1.WatchEvent{}),
	reflect.TypeOf(metav1.APIResourceList{}), reflect.TypeOf(metav1.Patch{}),
}

func gvkExt(gvk schema.GroupVersionKind) map[string]any {
	return map[string]any{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind}
}

// definitions builds the schemas of the kinds in kinds (and what they
// reference), marking each kind with x-kubernetes-group-version-kind.
func definitions(kinds []*store.Kind, refPrefix string, v3 bool) map[string]spec.Schema {
	g := newSchemaGen(refPrefix, v3)
	for _, t := range commonTypes {
		g.ref(t)
	}
	for _, k := range kinds {
		for _, obj := range []any{k.New(), k.NewList()} {
			t := reflect.TypeOf(obj).Elem()
			g.ref(t)
			name := defName(t)
			d := g.defs[name]
			kind := k.GVK
			if obj != nil && t.Name() != reflect.TypeOf(k.New()).Elem().Name() {
				kind.Kind += "List"
			}
			d.AddExtension("x-kubernetes-group-version-kind", []any{gvkExt(kind)})
			g.defs[name] = d
		}
	}
	statusName := defName(reflect.TypeOf(metav1.Status{}))
	st := g.defs[statusName]
	st.AddExtension("x-kubernetes-group-version-kind", []any{gvkExt(schema.GroupVersionKind{Version: "v1", Kind: "Status"})})
	g.defs[statusName] = st
	return g.defs
}

type param struct {
	Name, In, Type, Description string
	Required                    bool
}

var (
	pName      = param{"name", "path", "string", "name of the resource", true}
	pNamespace = param{"namespace", "path", "string", "object name and auth scope, such as for teams and projects", true}
	pDryRun    = param{"dryRun", "query", "string", "When present, indicates that modifications should not be persisted. Valid value: All", false}
	pManager   = param{"fieldManager", "query", "string", "fieldManager is a name associated with the actor or entity that is making these changes.", false}
	pValid     = param{"fieldValidation", "query", "string", "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn (default) and Strict.", false}
	pForce     = param{"force", "query", "boolean", "Force is going to \"force\" Apply requests.", false}
	pLabelSel  = param{"labelSelector", "query", "string", "A selector to restrict the list of returned objects by their labels.", false}
	pFieldSel  = param{"fieldSelector", "query", "string", "A selector to restrict the list of returned objects by their fields.", false}
	pLimit     = param{"limit", "query", "integer", "limit is a maximum number of responses to return for a list call.", false}
	pContinue  = param{"continue", "query", "string", "The continue option should be set when retrieving more results from the server.", false}
	pRV        = param{"resourceVersion", "query", "string", "resourceVersion sets a constraint on what resource versions a request may be served from.", false}
	pWatch     = param{"watch", "query", "boolean", "Watch for changes to the described resources.", false}
	pTimeout   = param{"timeoutSeconds", "query", "integer", "Timeout for the list/watch call.", false}
	pGrace     = param{"gracePeriodSeconds", "query", "integer", "The duration in seconds before the object should be deleted.", false}
	pProp      = param{"propagationPolicy", "query", "string", "Whether and how garbage collection will be performed: Orphan, Background or Foreground.", false}
)

// pathItems describes the REST paths of the kinds for one document.
func pathItems(kinds []*store.Kind, refPrefix string, v3 bool) map[string]any {
	paths := map[string]any{}
	paramJSON := func(p param) map[string]any {
		m := map[string]any{"name": p.Name, "in": p.In, "description": p.Description}
		if p.Required {
			m["required"] = true
		}
		if v3 {
			m["schema"] = map[string]any{"type": p.Type}
		} else {
			m["type"] = p.Type
		}
		return m
	}
	ref := func(t reflect.Type) map[string]any { return map[string]any{"$ref": refPrefix + defName(t)} }
	body := func(t reflect.Type, types ...string) (string, any) {
		if v3 {
			content := map[string]any{}
			for _, ct := range types {
				content[ct] = map[string]any{"schema": ref(t)}
			}
			return "requestBody", map[string]any{"content": content, "required": true}
		}
		return "parameters-body", map[string]any{"name": "body", "in": "body", "required": true, "schema": ref(t)}
	}
	resp := func(t reflect.Type) map[string]any {
		if v3 {
			return map[string]any{"200": map[string]any{"description": "OK", "content": map[string]any{
				"application/json": map[string]any{"schema": ref(t)}, "application/yaml": map[string]any{"schema": ref(t)},
				"application/vnd.kubernetes.protobuf": map[string]any{"schema": ref(t)}}}, "401": map[string]any{"description": "Unauthorized"}}
		}
		return map[string]any{"200": map[string]any{"description": "OK", "schema": ref(t)}, "401": map[string]any{"description": "Unauthorized"}}
	}
	op := func(k *store.Kind, action, verbName string, t reflect.Type, params []param, bodyT reflect.Type, bodyTypes ...string) map[string]any {
		o := map[string]any{
			"operationId":                     verbName + k.GVK.Kind,
			"description":                     fmt.Sprintf("%s %s", action, k.GVK.Kind),
			"tags":                            []string{strings.ReplaceAll(gvPath(k.GVK.GroupVersion()), "/", "_")},
			"x-kubernetes-action":             action,
			"x-kubernetes-group-version-kind": gvkExt(k.GVK),
			"responses":                       resp(t),
		}
		ps := []any{}
		for _, p := range params {
			ps = append(ps, paramJSON(p))
		}
		if bodyT != nil {
			key, b := body(bodyT, bodyTypes...)
			if key == "requestBody" {
				o[key] = b
			} else {
				ps = append(ps, b)
			}
		}
		o["parameters"] = ps
		if !v3 {
			o["consumes"] = []string{"*/*"}
			o["produces"] = []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf"}
			o["schemes"] = []string{"https"}
		}
		return o
	}
	for _, k := range kinds {
		base := "/" + gvPath(k.GVK.GroupVersion())
		var scope []param
		coll := base + "/" + k.Resource
		if k.Namespaced {
			coll = base + "/namespaces/{namespace}/" + k.Resource
			scope = []param{pNamespace}
		}
		t := reflect.TypeOf(k.New()).Elem()
		lt := reflect.TypeOf(k.NewList()).Elem()
		st := reflect.TypeOf(metav1.Status{})
		nsSuffix := ""
		if k.Namespaced {
			nsSuffix = "Namespaced"
		}
		with := func(ps ...param) []param { return append(append([]param(nil), scope...), ps...) }
		paths[coll] = map[string]any{
			"get":    op(k, "list", "list"+nsSuffix, lt, with(pLabelSel, pFieldSel, pLimit, pContinue, pRV, pWatch, pTimeout), nil),
			"post":   op(k, "post", "create"+nsSuffix, t, with(pDryRun, pManager, pValid), t, "*/*"),
			"delete": op(k, "deletecollection", "deleteCollection"+nsSuffix, st, with(pLabelSel, pFieldSel, pGrace, pProp, pDryRun), reflect.TypeOf(metav1.DeleteOptions{}), "*/*"),
		}
		item := coll + "/{name}"
		patchTypes := []string{"application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json", "application/apply-patch+yaml"}
		paths[item] = map[string]any{
			"get":    op(k, "get", "read"+nsSuffix, t, with(pName), nil),
			"put":    op(k, "put", "replace"+nsSuffix, t, with(pName, pDryRun, pManager, pValid), t, "*/*"),
			"patch":  op(k, "patch", "patch"+nsSuffix, t, with(pName, pDryRun, pManager, pValid, pForce), reflect.TypeOf(metav1.Patch{}), patchTypes...),
			"delete": op(k, "delete", "delete"+nsSuffix, st, with(pName, pGrace, pProp, pDryRun), reflect.TypeOf(metav1.DeleteOptions{}), "*/*"),
		}
		if k.HasStatus() {
			paths[item+"/status"] = map[string]any{
				"get":   op(k, "get", "read"+nsSuffix+"Status", t, with(pName), nil),
				"put":   op(k, "put", "replace"+nsSuffix+"Status", t, with(pName, pDryRun, pManager, pValid), t, "*/*"),
				"patch": op(k, "patch", "patch"+nsSuffix+"Status", t, with(pName, pDryRun, pManager, pValid, pForce), reflect.TypeOf(metav1.Patch{}), patchTypes...),
			}
		}
	}
	return paths
}

func (o *openAPI) buildV2() {
	kinds := append(o.reg.Kinds(), o.extra...)
	doc := map[string]any{
		"swagger":     "2.0",
		"info":        map[string]any{"title": "Kubernetes", "version": "v1.37.2+tugboat"},
		"paths":       pathItems(kinds, "#/definitions/", false),
		"definitions": definitions(kinds, "#/definitions/", false),
		"securityDefinitions": map[string]any{"BearerToken": map[string]any{
			"type": "apiKey", "name": "authorization", "in": "header", "description": "Bearer Token authentication"}},
		"security": []any{map[string]any{"BearerToken": []string{}}},
	}
	o.v2JSON, o.v2Err = json.Marshal(doc)
	if o.v2Err != nil {
		return
	}
	d, err := openapi_v2.ParseDocument(o.v2JSON)
	if err != nil {
		o.v2Err = fmt.Errorf("apiserver: openapi v2 to protobuf: %w", err)
		return
	}
	o.v2Proto, o.v2Err = proto.Marshal(d)
}

func (o *openAPI) buildV3() {
	byGV := map[schema.GroupVersion][]*store.Kind{}
	for _, k := range append(o.reg.Kinds(), o.extra...) {
		byGV[k.GVK.GroupVersion()] = append(byGV[k.GVK.GroupVersion()], k)
	}
	o.v3 = map[string][]byte{}
	o.v3hash = map[string]string{}
	for gv, kinds := range byGV {
		doc := map[string]any{
			"openapi": "3.0.0",
			"info":    map[string]any{"title": "Kubernetes", "version": "v1.37.2+tugboat"},
			"paths":   pathItems(kinds, "#/components/schemas/", true),
			"components": map[string]any{
				"schemas": definitions(kinds, "#/components/schemas/", true),
				"securitySchemes": map[string]any{"BearerToken": map[string]any{
					"type": "apiKey", "name": "authorization", "in": "header", "description": "Bearer Token authentication"}},
			},
		}
		b, err := json.Marshal(doc)
		if err != nil {
			continue
		}
		sum := sha512.Sum512(b)
		o.v3[gvPath(gv)] = b
		o.v3hash[gvPath(gv)] = strings.ToUpper(hex.EncodeToString(sum[:]))[:128]
	}
}

// typeConverter returns the SSA type converter built from the v2 schemas.
func (o *openAPI) typeConverter() (managedfields.TypeConverter, error) {
	o.tcOnce.Do(func() {
		defs := definitions(append(o.reg.Kinds(), o.extra...), "#/definitions/", false)
		m := make(map[string]*spec.Schema, len(defs))
		for k := range defs {
			d := defs[k]
			m[k] = &d
		}
		o.tc, o.tcErr = managedfields.NewTypeConverter(m, false)
	})
	return o.tc, o.tcErr
}

func acceptsProto(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := strings.Cut(part, ";")
		switch strings.TrimSpace(mt) {
		case mimeOpenAPIV2Proto, mimeOpenAPIV2Proto2:
			return true
		case mediaJSON, "*/*":
			return false
		}
	}
	return false
}

func (o *openAPI) serveV2(s *Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		o.once.Do(o.buildV2)
		if o.v2Err != nil {
			s.writeError(w, r, o.v2Err)
			return
		}
		if acceptsProto(r.Header.Get("Accept")) {
			w.Header().Set("Content-Type", mimeOpenAPIV2Proto2)
			_, _ = w.Write(o.v2Proto)
			return
		}
		w.Header().Set("Content-Type", mediaJSON)
		_, _ = w.Write(o.v2JSON)
	}
}

func (o *openAPI) serveV3Index(s *Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		o.v3once.Do(o.buildV3)
		paths := map[string]any{}
		keys := make([]string, 0, len(o.v3))
		for k := range o.v3 {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			paths[k] = map[string]any{"serverRelativeURL": "/openapi/v3/" + k + "?hash=" + o.v3hash[k]}
		}
		s.writeJSON(w, http.StatusOK, map[string]any{"paths": paths})
	}
}

func (o *openAPI) serveV3(s *Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		o.v3once.Do(o.buildV3)
		p := strings.TrimPrefix(r.URL.Path, "/openapi/v3/")
		b, ok := o.v3[p]
		if !ok {
			s.writeError(w, r, notFoundResource(requestInfo{resource: p}))
			return
		}
		w.Header().Set("Content-Type", mediaJSON)
		w.Header().Set("Etag", `"`+o.v3hash[p]+`"`)
		if r.URL.Query().Get("hash") != "" {
			w.Header().Set("Cache-Control", "public, immutable")
		}
		_, _ = w.Write(b)
	}
}
