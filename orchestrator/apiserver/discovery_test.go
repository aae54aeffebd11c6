package apiserver

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/openapi3"
)

func TestAggregatedDiscovery(t *testing.T) {
	ts := startServer(t)
	c := ts.httpClient(true)
	for _, tc := range []struct{ path, group string }{{"/api", ""}, {"/apis", "apps"}} {
		req, _ := http.NewRequest("GET", ts.url+tc.path, nil)
		req.Header.Set("Accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var l apidiscoveryv2.APIGroupDiscoveryList
		err = json.NewDecoder(resp.Body).Decode(&l)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, "as=APIGroupDiscoveryList") || !strings.Contains(ct, "v=v2") {
			t.Errorf("%s: content type %q", tc.path, ct)
		}
		if l.Kind != "APIGroupDiscoveryList" || l.APIVersion != "apidiscovery.k8s.io/v2" {
			t.Errorf("%s: kind %q %q", tc.path, l.Kind, l.APIVersion)
		}
		found := false
		for _, g := range l.Items {
			if g.Name != tc.group {
				continue
			}
			found = true
			for _, r := range g.Versions[0].Resources {
				if r.Resource == "deployments" {
					var subs []string
					for _, s := range r.Subresources {
						subs = append(subs, s.Subresource)
					}
					if strings.Join(subs, ",") != "status,scale" || r.Scope != apidiscoveryv2.ScopeNamespace {
						t.Errorf("deployments: %v %v", subs, r.Scope)
					}
				}
			}
		}
		if !found {
			t.Errorf("%s lacks group %q", tc.path, tc.group)
		}
	}
}

func TestOpenAPI(t *testing.T) {
	ts := startServer(t)
	cs := clientset(t, ts.rest, false)
	// v2 in protobuf, as client-go's discovery asks for it.
	doc, err := cs.Discovery().OpenAPISchema()
	if err != nil {
		t.Fatal(err)
	}
	var pod bool
	for _, d := range doc.GetDefinitions().GetAdditionalProperties() {
		if d.GetName() == "io.k8s.api.core.v1.Pod" {
			pod = true
			if !strings.Contains(d.GetValue().GetDescription(), "Pod is a collection of containers") {
				t.Errorf("Pod description %q", d.GetValue().GetDescription())
			}
		}
	}
	if !pod {
		t.Error("openapi v2 lacks io.k8s.api.core.v1.Pod")
	}
	// v3 per group-version, with the GVK extension and fieldValidation on PATCH.
	root := openapi3.NewRoot(cs.Discovery().OpenAPIV3())
	spec, err := root.GVSpec(schema.GroupVersion{Group: "apps", Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	d, ok := spec.Components.Schemas["io.k8s.api.apps.v1.Deployment"]
	if !ok {
		t.Fatal("v3 apps/v1 lacks Deployment")
	}
	if gvk, _ := json.Marshal(d.Extensions["x-kubernetes-group-version-kind"]); string(gvk) != `[{"group":"apps","kind":"Deployment","version":"v1"}]` {
		t.Errorf("Deployment GVK extension %s", gvk)
	}
	p := spec.Paths.Paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
	if p == nil || p.Patch == nil {
		t.Fatal("no PATCH operation for deployments")
	}
	var hasFV bool
	for _, prm := range p.Patch.Parameters {
		hasFV = hasFV || prm.Name == "fieldValidation"
	}
	if !hasFV {
		t.Error("PATCH lacks the fieldValidation parameter")
	}
	_ = context.Background()
}
