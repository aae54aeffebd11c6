package apiserver

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer/cbor"
	"k8s.io/apimachinery/pkg/runtime/serializer/cbor/direct"
	"k8s.io/apimachinery/pkg/watch"
	clientfeatures "k8s.io/client-go/features"
	clientfeaturestesting "k8s.io/client-go/features/testing"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
)

// TestCBORClientGo drives the server with client-go speaking CBOR
// (ClientsAllowCBOR and ClientsPreferCBOR on): create, get, list, update
// and watch.
func TestCBORClientGo(t *testing.T) {
	clientfeaturestesting.SetFeatureDuringTest(t, clientfeatures.ClientsAllowCBOR, true)
	clientfeaturestesting.SetFeatureDuringTest(t, clientfeatures.ClientsPreferCBOR, true)
	ts := startServer(t)
	cfg := rest.CopyConfig(ts.rest)
	cfg.ContentType, cfg.AcceptContentTypes = "application/cbor", "application/cbor"
	var seen []string
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(r)
			if err == nil {
				seen = append(seen, r.Header.Get("Content-Type")+" -> "+resp.Header.Get("Content-Type"))
			}
			return resp, err
		})
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := cs.CoreV1().Secrets("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	in := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Labels: map[string]string{"a": "b"}}, Data: map[string][]byte{"k": {0, 1, 2, 255}}}
	created, err := cs.CoreV1().Secrets("default").Create(ctx, in, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(in.Data, created.Data); d != "" {
		t.Errorf("created data (-want +got):\n%s", d)
	}
	created.Data["k2"] = []byte("v")
	if _, err := cs.CoreV1().Secrets("default").Update(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	l, err := cs.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{LabelSelector: "a=b"})
	if err != nil || len(l.Items) != 1 || string(l.Items[0].Data["k2"]) != "v" {
		t.Fatalf("list: %v %+v", err, l)
	}
	for _, want := range []watch.EventType{watch.Added, watch.Modified} {
		select {
		case ev := <-w.ResultChan():
			s, ok := ev.Object.(*corev1.Secret)
			if ev.Type != want || !ok || s.Name != "s" || !bytes.Equal(s.Data["k"], in.Data["k"]) {
				t.Fatalf("watch event %v %#v, want %v of the secret", ev.Type, ev.Object, want)
			}
		case <-ctx.Done():
			t.Fatal("no watch event")
		}
	}
	wantSeen := map[string]bool{
		"application/cbor -> application/cbor": true, // create, update
		" -> application/cbor":                 true, // list
		" -> application/cbor-seq":             true, // watch
	}
	for _, s := range seen {
		delete(wantSeen, s)
	}
	if len(wantSeen) != 0 {
		t.Errorf("exchanges %q lack %v", seen, wantSeen)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestCBORRaw round-trips CBOR over plain HTTP, including strict field
// validation of a CBOR body and errors.
func TestCBORRaw(t *testing.T) {
	ts := startServer(t)
	hc, err := rest.HTTPClientFor(ts.rest)
	if err != nil {
		t.Fatal(err)
	}
	ser := cbor.NewSerializer(scheme.Scheme, scheme.Scheme)
	do := func(method, path string, body []byte) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, ts.url+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "application/cbor")
		if body != nil {
			req.Header.Set("Content-Type", "application/cbor")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	var buf bytes.Buffer
	cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Name: "c"}, Data: map[string]string{"x": "y"}}
	if err := ser.Encode(cm, &buf); err != nil {
		t.Fatal(err)
	}
	resp, b := do("POST", "/api/v1/namespaces/default/configmaps", buf.Bytes())
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Content-Type") != "application/cbor" {
		t.Fatalf("create: %s %s %q", resp.Status, resp.Header.Get("Content-Type"), b)
	}
	got := &corev1.ConfigMap{}
	if _, _, err := ser.Decode(b, nil, got); err != nil {
		t.Fatalf("decode response: %v", err)
	}
	if got.Data["x"] != "y" || got.UID == "" || got.Kind != "ConfigMap" {
		t.Errorf("created %+v", got)
	}
	// An unknown field in a CBOR body is named, as in JSON.
	bad, err := direct.Marshal(map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "d"}, "bogus": 1})
	if err != nil {
		t.Fatal(err)
	}
	resp, b = do("POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Strict", bad)
	st := &metav1.Status{}
	if _, _, err := ser.Decode(b, nil, st); err != nil {
		t.Fatalf("decode error status %q: %v", b, err)
	}
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains([]byte(st.Message), []byte(`unknown field "bogus"`)) {
		t.Errorf("strict CBOR: %s %+v", resp.Status, st)
	}
	// Garbage is a 400, not a crash.
	resp, _ = do("POST", "/api/v1/namespaces/default/configmaps", []byte{0xff, 0x00, 0x13})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("garbage CBOR: %s", resp.Status)
	}
	resp, _ = do("GET", "/api/v1/namespaces/default/configmaps/missing", nil)
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/cbor" {
		t.Errorf("404 as CBOR: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
}

// FuzzCBORToJSON feeds arbitrary bytes to the CBOR body transcoder.
func FuzzCBORToJSON(f *testing.F) {
	b, _ := direct.Marshal(map[string]any{"a": []byte{1, 2}, "b": 1.5, "c": []any{"x", true, nil}})
	f.Add(b)
	f.Add([]byte{0xd9, 0xd9, 0xf7, 0xa0})
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = cborToJSON(in)
	})
}
