package informer_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tugboatdev/tugboat/store"
	"github.com/tugboatdev/tugboat/store/informer"
)

var configmaps = schema.GroupResource{Resource: "configmaps"}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// gatedStore makes the next Watch wait for a gate and then fail with 410
// Expired, to test the re-list.
type gatedStore struct {
	store.Interface
	mu      sync.Mutex
	gate    chan struct{}
	expire  bool
	watches []watch.Interface
	lists   int
}

func (g *gatedStore) List(ctx context.Context, res schema.GroupResource, ns string, opts metav1.ListOptions) (*store.List, error) {
	g.mu.Lock()
	g.lists++
	g.mu.Unlock()
	return g.Interface.List(ctx, res, ns, opts)
}

func (g *gatedStore) Watch(ctx context.Context, res schema.GroupResource, ns string, opts metav1.ListOptions) (watch.Interface, error) {
	g.mu.Lock()
	gate, expire := g.gate, g.expire
	g.expire, g.gate = false, nil
	g.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if expire {
		return nil, apierrors.NewResourceExpired("too old resource version")
	}
	w, err := g.Interface.Watch(ctx, res, ns, opts)
	if err == nil {
		g.mu.Lock()
		g.watches = append(g.watches, w)
		g.mu.Unlock()
	}
	return w, err
}

type recorded struct {
	mu  sync.Mutex
	evs []string
}

func (r *recorded) add(s string) { r.mu.Lock(); r.evs = append(r.evs, s); r.mu.Unlock() }
func (r *recorded) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.evs {
		if e == s {
			return true
		}
	}
	return false
}

func cm(name string, lbl map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: lbl}}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestListWatchIndexAndRelistOn410(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openStore(t)
	gs := &gatedStore{Interface: s}
	for _, n := range []string{"a", "b"} {
		if _, err := store.Create(ctx, s, cm(n, map[string]string{"app": n})); err != nil {
			t.Fatal(err)
		}
	}
	inf := informer.New(gs, configmaps, nil)
	inf.AddIndex(informer.IndexNamespace, informer.ByNamespace)
	inf.AddIndex("app", func(o runtime.Object) []string { return []string{o.(*corev1.ConfigMap).Labels["app"]} })
	var rec recorded
	inf.AddHandler(informer.Handler{
		OnAdd:    func(o runtime.Object) { rec.add("add " + informer.KeyOf(o)) },
		OnUpdate: func(_, o runtime.Object) { rec.add("update " + informer.KeyOf(o)) },
		OnDelete: func(o runtime.Object) { rec.add("delete " + informer.KeyOf(o)) },
	})
	done := make(chan error)
	go func() { done <- inf.Run(ctx) }()
	<-inf.Synced()
	if !inf.HasSynced() {
		t.Fatal("HasSynced is false after Synced closed")
	}
	if got := len(inf.List("default", nil)); got != 2 {
		t.Fatalf("listed %d, want 2", got)
	}
	if got := inf.ByIndex("app", "b"); len(got) != 1 || informer.KeyOf(got[0]) != "default/b" {
		t.Fatalf("ByIndex(app=b) = %v", got)
	}
	if got := inf.ByIndex(informer.IndexNamespace, "default"); len(got) != 2 {
		t.Fatalf("ByIndex(namespace=default) = %d objects", len(got))
	}
	if _, err := store.Create(ctx, s, cm("c", map[string]string{"app": "c"})); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "add c", func() bool { return rec.has("add default/c") })
	if got := inf.List("", labels.SelectorFromSet(labels.Set{"app": "c"})); len(got) != 1 {
		t.Fatalf("List(app=c) = %d items", len(got))
	}
	if o, ok := inf.Get("default", "c"); !ok || o.(*corev1.ConfigMap).Name != "c" {
		t.Fatalf("Get(default/c) = %v %v", o, ok)
	}
	// Break the watch; the next one fails with 410 after things changed,
	// so the informer lists again and delivers the difference.
	gate := make(chan struct{})
	gs.mu.Lock()
	gs.gate, gs.expire = gate, true
	ws := gs.watches
	gs.mu.Unlock()
	for _, w := range ws {
		w.Stop()
	}
	if err := store.Delete[*corev1.ConfigMap](ctx, s, "default", "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(ctx, s, cm("d", nil)); err != nil {
		t.Fatal(err)
	}
	b, _ := store.Get[*corev1.ConfigMap](ctx, s, "default", "b")
	b.Data = map[string]string{"k": "v"}
	if _, err := store.Update(ctx, s, b); err != nil {
		t.Fatal(err)
	}
	close(gate)
	waitUntil(t, "re-list deliveries", func() bool {
		return rec.has("delete default/a") && rec.has("add default/d") && rec.has("update default/b")
	})
	var keys []string
	for _, o := range inf.List("", nil) {
		keys = append(keys, informer.KeyOf(o))
	}
	sort.Strings(keys)
	if diff := cmp.Diff([]string{"default/b", "default/c", "default/d"}, keys); diff != "" {
		t.Errorf("cache after re-list (-want +got):\n%s", diff)
	}
	if got := inf.ByIndex("app", "a"); len(got) != 0 {
		t.Errorf("index still holds a deleted object")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestPagedList lists a resource larger than one page.
func TestPagedList(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openStore(t)
	const n = 5_100
	for i := 0; i < n; i++ {
		if _, err := store.Create(ctx, s, cm(fmt.Sprintf("c%05d", i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	gs := &gatedStore{Interface: s}
	inf := informer.New(gs, configmaps, nil)
	go inf.Run(ctx)
	<-inf.Synced()
	if got := len(inf.List("default", nil)); got != n { // no namespace index: a scan
		t.Fatalf("cached %d, want %d", got, n)
	}
	gs.mu.Lock()
	lists := gs.lists
	gs.mu.Unlock()
	if lists != 2 {
		t.Errorf("%d list requests, want 2 pages", lists)
	}
}

func TestKeys(t *testing.T) {
	for _, tc := range []struct{ ns, name, key string }{{"default", "web", "default/web"}, {"", "node-1", "node-1"}} {
		if got := informer.Key(tc.ns, tc.name); got != tc.key {
			t.Errorf("Key(%q, %q) = %q", tc.ns, tc.name, got)
		}
		if ns, name := informer.SplitKey(tc.key); ns != tc.ns || name != tc.name {
			t.Errorf("SplitKey(%q) = %q, %q", tc.key, ns, name)
		}
	}
}
