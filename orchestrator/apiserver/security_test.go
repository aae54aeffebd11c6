package apiserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func (ts *testServer) httpClient(withCert bool) *http.Client {
	cfg := &tls.Config{RootCAs: ts.srv.PKI().CertPool()}
	if withCert {
		c, err := tls.X509KeyPair(ts.srv.PKI().AdminCertPEM, ts.srv.PKI().AdminKeyPEM)
		if err == nil {
			cfg.Certificates = []tls.Certificate{c}
		}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
}

func do(t *testing.T, c *http.Client, method, url, token, ct string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAuthentication(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte("file-token,bob,1001,\"dev,ops\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(c *Config) { c.TokenFile = tokenFile })
	anon := ts.httpClient(false)
	tests := []struct {
		name, path, token string
		cert              bool
		want              int
	}{
		{"anonymous healthz", "/healthz", "", false, 200},
		{"anonymous readyz", "/readyz", "", false, 200},
		{"anonymous livez", "/livez", "", false, 200},
		{"anonymous version", "/version", "", false, 200},
		{"anonymous api", "/api/v1/namespaces", "", false, 401},
		{"anonymous metrics", "/metrics", "", false, 401},
		{"bad token", "/api/v1/namespaces", "wrong", false, 401},
		{"token", "/api/v1/namespaces", "test-token", false, 200},
		{"token from --token-auth-file", "/api/v1/namespaces", "file-token", false, 200},
		{"client cert", "/api/v1/namespaces", "", true, 200},
		{"metrics", "/metrics", "test-token", false, 200},
		{"unknown path", "/nope", "test-token", false, 404},
		{"unknown resource", "/api/v1/widgets", "test-token", false, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := anon
			if tc.cert {
				c = ts.httpClient(true)
			}
			code, body := do(t, c, "GET", ts.url+tc.path, tc.token, "", nil)
			if code != tc.want {
				t.Errorf("GET %s: %d, want %d: %s", tc.path, code, tc.want, body)
			}
			if code == 401 && !strings.Contains(body, `"reason":"Unauthorized"`) {
				t.Errorf("401 body is not a Status: %s", body)
			}
		})
	}
}

type denyAll struct{}

func (denyAll) Authorize(_ context.Context, a Attributes) (bool, string, error) {
	return a.Verb == "get" && a.Path != "", "", nil
}

func TestAuthorizerForbidden(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.Authorizer = denyAll{} })
	cs, _ := kubernetes.NewForConfig(ts.rest)
	_, err := cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `User "admin" cannot list resource "pods" in API group "" in the namespace "default"`) {
		t.Errorf("want 403 naming user and resource, got %v", err)
	}
}

func TestTokenFile(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]UserInfo
		wantErr  bool
	}{
		{"basic", "tok1,alice,u1,\"dev,ops\"\ntok2,bob,u2\n", map[string]UserInfo{
			"tok1": {Name: "alice", UID: "u1", Groups: []string{"dev", "ops"}}, "tok2": {Name: "bob", UID: "u2"}}, false},
		{"comments and blanks", "# c\n\ntok,u,1\n", map[string]UserInfo{"tok": {Name: "u", UID: "1"}}, false},
		{"too few columns", "tok,u\n", nil, true},
		{"empty token", ",u,1\n", nil, true},
		{"duplicate", "t,a,1\nt,b,2\n", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTokenFile(strings.NewReader(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); !tc.wantErr && diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxInFlight = 1 })
	c := ts.httpClient(true)
	// Body larger than 3 MiB: 413.
	big := bytes.Repeat([]byte("a"), 3<<20+10)
	body := append([]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a":"`), big...)
	body = append(body, []byte(`"}}`)...)
	code, out := do(t, c, "POST", ts.url+"/api/v1/namespaces/default/configmaps", "", "application/json", body)
	if code != http.StatusRequestEntityTooLarge {
		t.Errorf("big body: %d %s", code, out)
	}
	// Unsupported media type: 415.
	code, _ = do(t, c, "POST", ts.url+"/api/v1/namespaces/default/configmaps", "", "text/plain", []byte("x"))
	if code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body: %d", code)
	}
	// Malformed JSON: 400, no crash.
	code, _ = do(t, c, "POST", ts.url+"/api/v1/namespaces/default/configmaps", "", "application/json", []byte("{"))
	if code != http.StatusBadRequest {
		t.Errorf("bad JSON: %d", code)
	}
	// In-flight bound: hold the only slot with a blocked request body.
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		req, _ := http.NewRequest("POST", ts.url+"/api/v1/namespaces/default/configmaps", pr)
		req.Header.Set("Content-Type", "application/json")
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	var got429 bool
	for i := 0; i < 200 && !got429; i++ {
		code, _ := do(t, c, "GET", ts.url+"/api/v1/namespaces", "", "", nil)
		got429 = code == http.StatusTooManyRequests
	}
	pw.Write([]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"held"}}`))
	pw.Close()
	wg.Wait()
	if !got429 {
		t.Error("no 429 while the only in-flight slot was held")
	}
}

func TestFieldValidation(t *testing.T) {
	ts := startServer(t)
	c := ts.httpClient(true)
	body := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fv"},"data":{"a":"1"},"extra":1}`)
	code, out := do(t, c, "POST", ts.url+"/api/v1/namespaces/default/configmaps?fieldValidation=Strict", "", "application/json", body)
	if code != 400 || !strings.Contains(out, `strict decoding error: unknown field \"extra\"`) {
		t.Errorf("Strict: %d %s", code, out)
	}
	req, _ := http.NewRequest("POST", ts.url+"/api/v1/namespaces/default/configmaps?fieldValidation=Warn", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 || !strings.Contains(resp.Header.Get("Warning"), `unknown field \"extra\"`) {
		t.Errorf("Warn: %d warning=%q", resp.StatusCode, resp.Header.Get("Warning"))
	}
	code, out = do(t, c, "PATCH", ts.url+"/api/v1/namespaces/default/configmaps/fv?fieldValidation=Strict", "", "application/merge-patch+json", []byte(`{"bogus":{"x":1}}`))
	if code != 400 || !strings.Contains(out, `unknown field \"bogus\"`) {
		t.Errorf("Strict patch: %d %s", code, out)
	}
	code, _ = do(t, c, "PATCH", ts.url+"/api/v1/namespaces/default/configmaps/fv?fieldValidation=Ignore", "", "application/merge-patch+json", []byte(`{"bogus":{"x":1}}`))
	if code != 200 {
		t.Errorf("Ignore patch: %d", code)
	}
}
