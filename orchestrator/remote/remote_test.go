package remote_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tugboatdev/tugboat/orchestrator/apiserver"
	"github.com/tugboatdev/tugboat/orchestrator/remote"
	"github.com/tugboatdev/tugboat/store"
)

// serve starts an API server over st on loopback and returns a remote client.
func serve(t *testing.T, st store.Interface) *remote.Client {
	t.Helper()
	return serveConfig(t, apiserver.Config{Store: st})
}

// serveConfig is serve with a server configured by cfg (DataDir is set).
func serveConfig(t *testing.T, cfg apiserver.Config) *remote.Client {
	t.Helper()
	st := cfg.Store
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	cfg.DataDir = dir
	srv, err := apiserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	kc := filepath.Join(dir, "kubeconfig")
	if err := srv.PKI().WriteKubeconfig(kc, "https://"+ln.Addr().String(), apiserver.KubeconfigOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := remote.New(rc, remote.Options{Registry: st.Registry(), WatchRetry: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(); cancel() })
	return st
}

// TestConformance runs the same checks against the embedded store and
// against the API server through the remote client.
func TestConformance(t *testing.T) {
	impls := map[string]func(t *testing.T) store.Interface{
		"embedded": func(t *testing.T) store.Interface { return openStore(t) },
		"remote":   func(t *testing.T) store.Interface { return serve(t, openStore(t)) },
	}
	for name, mk := range impls {
		t.Run(name, func(t *testing.T) { checkInterface(t, mk(t)) })
	}
}

var (
	pods = schema.GroupResource{Resource: "pods"}
	cms  = schema.GroupResource{Resource: "configmaps"}
)

func pod(name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
}

func next(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event")
	}
	return watch.Event{}
}

func checkInterface(t *testing.T, s store.Interface) {
	ctx := context.Background()
	w, err := store.WatchOf[*corev1.Pod](ctx, s, "default", metav1.ListOptions{ResourceVersion: "0", LabelSelector: "app=a"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	created, err := store.Create(ctx, s, pod("p1", map[string]string{"app": "a"}))
	if err != nil {
		t.Fatal(err)
	}
	if created.GetObjectKind().GroupVersionKind() != (schema.GroupVersionKind{}) {
		t.Errorf("objects must come back without apiVersion/kind: %v", created.GetObjectKind().GroupVersionKind())
	}
	if created.Status.Phase != corev1.PodPending || created.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Errorf("defaults not applied: %+v", created.Status)
	}
	if _, err := store.Create(ctx, s, pod("p1", nil)); !apierrors.IsAlreadyExists(err) {
		t.Errorf("duplicate create: %v", err)
	}
	if _, err := store.Create(ctx, s, pod("p2", map[string]string{"app": "b"})); err != nil {
		t.Fatal(err)
	}
	got, err := store.Get[*corev1.Pod](ctx, s, "default", "p1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(created, got); diff != "" {
		t.Errorf("get differs from create (-create +get):\n%s", diff)
	}
	if _, err := store.Get[*corev1.Pod](ctx, s, "default", "nope"); !apierrors.IsNotFound(err) {
		t.Errorf("missing: %v", err)
	}
	items, _, err := store.ListOf[*corev1.Pod](ctx, s, "default", metav1.ListOptions{LabelSelector: "app in (a,b)"})
	if err != nil || len(items) != 2 {
		t.Fatalf("list: %d %v", len(items), err)
	}
	items, _, err = store.ListOf[*corev1.Pod](ctx, s, "", metav1.ListOptions{FieldSelector: "metadata.name=p2"})
	if err != nil || len(items) != 1 || items[0].Name != "p2" {
		t.Fatalf("field selector: %v %v", items, err)
	}
	page, err := s.List(ctx, pods, "default", metav1.ListOptions{Limit: 1})
	if err != nil || len(page.Items) != 1 || page.Continue == "" {
		t.Fatalf("page 1: %+v %v", page, err)
	}
	page, err = s.List(ctx, pods, "default", metav1.ListOptions{Limit: 1, Continue: page.Continue})
	if err != nil || len(page.Items) != 1 || page.Continue != "" {
		t.Fatalf("page 2: %+v %v", page, err)
	}
	got.Labels["x"] = "1"
	upd, err := store.Update(ctx, s, got)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Update(ctx, s, got); !apierrors.IsConflict(err) {
		t.Errorf("stale update: %v", err)
	}
	upd.Status.Phase = corev1.PodRunning
	if _, err := store.UpdateStatus(ctx, s, upd); err != nil {
		t.Fatal(err)
	}
	patched, err := store.Patch[*corev1.Pod](ctx, s, "default", "p1", types.MergePatchType, []byte(`{"metadata":{"annotations":{"k":"v"}}}`))
	if err != nil || patched.Annotations["k"] != "v" || patched.Status.Phase != corev1.PodRunning {
		t.Fatalf("patch: %+v %v", patched, err)
	}
	for _, want := range []watch.EventType{watch.Added, watch.Modified, watch.Modified, watch.Modified} {
		ev := next(t, w)
		if ev.Type != want || ev.Object.(*corev1.Pod).Name != "p1" {
			t.Fatalf("event %v %v, want %v p1", ev.Type, ev.Object.(*corev1.Pod).Name, want)
		}
	}
	if err := store.Delete[*corev1.Pod](ctx, s, "default", "p1", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, w); ev.Type != watch.Deleted {
		t.Errorf("want DELETED, got %v", ev.Type)
	}
	for i := 0; i < 3; i++ {
		if _, err := store.Create(ctx, s, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("c%d", i), Namespace: "default", Labels: map[string]string{"g": "1"}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteCollection(ctx, cms, "default", metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "g=1"}); err != nil {
		t.Fatal(err)
	}
	l, err := s.List(ctx, cms, "default", metav1.ListOptions{LabelSelector: "g=1"})
	if err != nil || len(l.Items) != 0 {
		t.Errorf("after deletecollection: %d %v", len(l.Items), err)
	}
	if _, err := s.List(ctx, schema.GroupResource{Resource: "widgets"}, "", metav1.ListOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("unknown resource: %v", err)
	}
}

// TestWatchReconnect checks that a remote watch survives the server ending
// the stream (timeoutSeconds) and resumes without losing events.
func TestWatchReconnect(t *testing.T) {
	st := openStore(t)
	c := serve(t, st)
	ctx := context.Background()
	timeout := int64(1)
	w, err := c.Watch(ctx, cms, "default", metav1.ListOptions{ResourceVersion: "0", TimeoutSeconds: &timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for i := 0; i < 3; i++ {
		if _, err := store.Create(ctx, st, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("r%d", i), Namespace: "default"}}); err != nil {
			t.Fatal(err)
		}
		if ev := next(t, w); ev.Type != watch.Added {
			t.Fatalf("event %v", ev.Type)
		}
		time.Sleep(1500 * time.Millisecond) // the server ends the 1s watch in between
	}
}
