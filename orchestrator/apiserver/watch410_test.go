package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/tugboatdev/tugboat/store"
)

// expiredServer is a server whose store keeps only 5 events, holding 20
// ConfigMaps in namespace x; it returns the resourceVersion of the first,
// long expired.
func expiredServer(t *testing.T) (*testServer, *kubernetes.Clientset, string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{WatchWindow: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ts := startServer(t, func(c *Config) { c.Store = st })
	cs := clientset(t, ts.rest, true)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var first string
	for i := range 20 {
		cm, err := cs.CoreV1().ConfigMaps("x").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("c%d", i)}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = cm.ResourceVersion
		}
	}
	return ts, cs, first
}

// TestWatchExpiredHTTP checks the wire format of a watch from a
// resourceVersion older than the event window: 200, then one ERROR event
// whose object is a 410 Expired Status, then the end of the stream — as
// kube-apiserver's watch cache answers.
func TestWatchExpiredHTTP(t *testing.T) {
	ts, _, first := expiredServer(t)
	hc, err := rest.HTTPClientFor(ts.rest)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Get(ts.url + "/api/v1/namespaces/x/configmaps?watch=true&resourceVersion=" + first)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s, want 200", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 1 {
		t.Fatalf("got %d events, want one ERROR: %q", len(lines), lines)
	}
	var ev struct {
		Type   string        `json:"type"`
		Object metav1.Status `json:"object"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil {
		t.Fatal(err)
	}
	ev.Object.Message = ""
	want := metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired}
	if ev.Type != "ERROR" {
		t.Errorf("event type %q, want ERROR", ev.Type)
	}
	if d := cmp.Diff(want, ev.Object); d != "" {
		t.Errorf("status (-want +got):\n%s", d)
	}
}

// TestWatchExpiredClientGo checks client-go sees the in-stream 410 (JSON
// and protobuf), relists and resumes.
func TestWatchExpiredClientGo(t *testing.T) {
	ts, _, first := expiredServer(t)
	ctx := context.Background()
	for _, proto := range []bool{false, true} {
		t.Run(fmt.Sprintf("protobuf=%v", proto), func(t *testing.T) {
			cs := clientset(t, ts.rest, proto)
			w, err := cs.CoreV1().ConfigMaps("x").Watch(ctx, metav1.ListOptions{ResourceVersion: first})
			if err != nil {
				t.Fatalf("watch: %v (want the 410 in the stream)", err)
			}
			ev, ok := <-w.ResultChan()
			w.Stop()
			if !ok || ev.Type != watch.Error {
				t.Fatalf("first event %v %v, want ERROR", ev.Type, ev.Object)
			}
			if st, ok := ev.Object.(*metav1.Status); !ok || st.Code != 410 || st.Reason != metav1.StatusReasonExpired {
				t.Fatalf("error event object %#v, want a 410 Expired Status", ev.Object)
			}
			// Resume as clients do: relist, then watch from the list.
			l, err := cs.CoreV1().ConfigMaps("x").List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			w, err = cs.CoreV1().ConfigMaps("x").Watch(ctx, metav1.ListOptions{ResourceVersion: l.ResourceVersion})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			name := fmt.Sprintf("after-%v", proto)
			if _, err := cs.CoreV1().ConfigMaps("x").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			select {
			case ev := <-w.ResultChan():
				if ev.Type != watch.Added || ev.Object.(*corev1.ConfigMap).Name != name {
					t.Errorf("resumed watch got %v %v", ev.Type, ev.Object)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("resumed watch got nothing")
			}
		})
	}
}

// TestReflectorRelistsOnExpired runs a client-go Reflector whose first
// list hands it an expired resourceVersion: the in-stream 410 makes it
// list again, and its store ends up complete.
func TestReflectorRelistsOnExpired(t *testing.T) {
	ts, cs, first := expiredServer(t)
	_ = ts
	var lists atomic.Int32
	lw := &cache.ListWatch{
		ListFunc: func(opts metav1.ListOptions) (runtime.Object, error) {
			l, err := cs.CoreV1().ConfigMaps("x").List(context.Background(), opts)
			if err == nil && lists.Add(1) == 1 {
				l.ResourceVersion = first // as if the list had been served long ago
			}
			return l, err
		},
		WatchFunc: func(opts metav1.ListOptions) (watch.Interface, error) {
			return cs.CoreV1().ConfigMaps("x").Watch(context.Background(), opts)
		},
		// Plain list+watch, so the first watch starts from the list's
		// (expired) resourceVersion.
		DisableChunking: true,
	}
	s := cache.NewStore(cache.MetaNamespaceKeyFunc)
	r := cache.NewReflectorWithOptions(listWatchOnly{lw}, &corev1.ConfigMap{}, s, cache.ReflectorOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.RunWithContext(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(30 * time.Second)
	for lists.Load() < 2 || len(s.List()) != 20 {
		if time.Now().After(deadline) {
			t.Fatalf("reflector listed %d times and holds %d objects; want a relist and 20", lists.Load(), len(s.List()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// listWatchOnly makes a reflector list then watch rather than open a
// watch-list stream.
type listWatchOnly struct{ *cache.ListWatch }

// IsWatchListSemanticsUnSupported tells client-go not to use watch-list.
func (listWatchOnly) IsWatchListSemanticsUnSupported() bool { return true }
