package apiserver

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// inProcess sends requests straight to the server's handler (no TLS, no
// sockets), to measure the CPU and allocations of a request's path.
type inProcess struct {
	h http.Handler
}

func (p inProcess) do(b *testing.B, method, path, contentType string, body []byte, want int) {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer test-token")
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", mediaProtobuf)
	req.Header.Set("User-Agent", "bench/1.0")
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body.String())
	}
}

// BenchmarkPatchPath measures one strategic merge patch of a pod's labels
// through the handler, in process: the CPU time and allocations of the
// patch path (decode, read, patch, managed fields, write, encode).
func BenchmarkPatchPath(b *testing.B) {
	ts := startServer(b)
	p := inProcess{h: ts.srv.Handler()}
	if _, err := ts.st.Create(context.Background(), testPod("default", "p", map[string]string{"app": "x"}), metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	p.do(b, "PATCH", "/api/v1/namespaces/default/pods/p", "application/strategic-merge-patch+json", []byte(`{"metadata":{"labels":{"n":"warm"}}}`), http.StatusOK)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.do(b, "PATCH", "/api/v1/namespaces/default/pods/p", "application/strategic-merge-patch+json", fmt.Appendf(nil, `{"metadata":{"labels":{"n":"%d"}}}`, i), http.StatusOK)
	}
}

// BenchmarkPatchPathManaged is BenchmarkPatchPath on a pod created
// through the API (as in BenchmarkWritesAt1000PerSecond), so that it has
// metadata.managedFields and every patch records its write there; a pod
// written to the store directly has none, and managedfields then skips
// the bookkeeping.
func BenchmarkPatchPathManaged(b *testing.B) {
	ts := startServer(b)
	p := inProcess{h: ts.srv.Handler()}
	pod, err := ts.srv.codecs.encode(testPod("default", "p", map[string]string{"app": "x"}), mediaType{typ: mediaJSON})
	if err != nil {
		b.Fatal(err)
	}
	p.do(b, "POST", "/api/v1/namespaces/default/pods", mediaJSON, pod, http.StatusCreated)
	p.do(b, "PATCH", "/api/v1/namespaces/default/pods/p", "application/strategic-merge-patch+json", []byte(`{"metadata":{"labels":{"n":"warm"}}}`), http.StatusOK)
	got, err := ts.st.Get(context.Background(), podsGR, "default", "p", metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if len(got.(*corev1.Pod).ManagedFields) == 0 {
		b.Fatal("the pod has no managed fields")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.do(b, "PATCH", "/api/v1/namespaces/default/pods/p", "application/strategic-merge-patch+json", fmt.Appendf(nil, `{"metadata":{"labels":{"n":"%d"}}}`, i), http.StatusOK)
	}
}

// BenchmarkCreatePath measures one pod create through the handler, in
// process, with a protobuf body as client-go sends.
func BenchmarkCreatePath(b *testing.B) {
	ts := startServer(b)
	p := inProcess{h: ts.srv.Handler()}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		pod := testPod("default", fmt.Sprintf("c%d", i), nil)
		var buf bytes.Buffer
		obj, err := ts.srv.codecs.withKind(pod)
		if err != nil {
			b.Fatal(err)
		}
		if err := ts.srv.codecs.proto.Encode(obj.(runtime.Object), &buf); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		p.do(b, "POST", "/api/v1/namespaces/default/pods", mediaProtobuf, buf.Bytes(), http.StatusCreated)
	}
}
