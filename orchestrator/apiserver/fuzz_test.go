package apiserver

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tugboatdev/tugboat/store"
)

func FuzzParseTokenFile(f *testing.F) {
	f.Add("tok,user,uid,\"a,b\"\n")
	f.Add("# comment\n\"quoted\",u,1\n")
	f.Add("a,b\n")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseTokenFile(strings.NewReader(in))
		if err != nil {
			return
		}
		for tok, u := range got {
			if tok == "" || u.Name == "" {
				t.Fatalf("accepted empty token or user: %q %+v", tok, u)
			}
		}
	})
}

func FuzzDecodeObject(f *testing.F) {
	reg := store.DefaultRegistry()
	c, err := newCodecs()
	if err != nil {
		f.Fatal(err)
	}
	f.Add("pods", "application/json", []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}`), "Strict")
	f.Add("configmaps", "application/yaml", []byte("apiVersion: v1\nkind: ConfigMap\ndata: {a: b}\nx: 1\n"), "Warn")
	f.Add("pods", "application/vnd.kubernetes.protobuf", []byte("k8s\x00\n\x0c\n\x02v1\x12\x03Pod"), "Ignore")
	f.Add("deployments", "application/json", []byte(`{"spec":{"replicas":"x"}}`), "")
	f.Fuzz(func(t *testing.T, resource, ct string, body []byte, validation string) {
		k := reg.Lookup(resource)
		if k == nil {
			k = reg.Lookup("pods")
		}
		v, err := fieldValidation(validation)
		if err != nil {
			v = validationStrict
		}
		obj, _, err := c.decodeObject(k, ct, body, v)
		if err == nil && obj == nil {
			t.Fatal("nil object without error")
		}
		if m, _, err := decodePatchMap(body, v); err == nil && m == nil {
			t.Fatal("nil patch map without error")
		}
	})
}

func FuzzParseRequest(f *testing.F) {
	f.Add("GET", "/api/v1/namespaces/default/pods/p/status", "watch=1")
	f.Add("DELETE", "/apis/apps/v1/namespaces/x/deployments", "")
	f.Add("GET", "/api/v1/namespaces/x", "")
	f.Add("POST", "//apis///", "a=%zz")
	f.Fuzz(func(t *testing.T, method, path, query string) {
		u := &url.URL{Path: path, RawQuery: query}
		info := parseRequest(&http.Request{Method: method, URL: u})
		if info.resourceRequest && info.resource == "" {
			t.Fatalf("resource request without resource: %q", path)
		}
		_, _ = negotiate(query, tableAccepted)
		_, _ = wantsAggregated(query)
		_, _ = patchType(query)
	})
}
