package store_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tugboatdev/tugboat/store"
)

type seen struct {
	typ  watch.EventType
	name string
	rv   string
}

func next(t *testing.T, w watch.Interface) seen {
	t.Helper()
	select {
	case e, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed")
		}
		acc, err := meta.Accessor(e.Object)
		if err != nil {
			return seen{typ: e.Type}
		}
		return seen{e.Type, acc.GetName(), acc.GetResourceVersion()}
	case <-time.After(5 * time.Second):
		t.Fatal("no watch event within 5s")
	}
	return seen{}
}

func TestWatchOrderAndFilters(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	first, _ := store.Create(ctx, s, pod("default", "a", map[string]string{"app": "web"}))
	all, err := s.Watch(ctx, podsGR, "", metav1.ListOptions{ResourceVersion: first.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Stop()
	web, err := s.Watch(ctx, podsGR, "default", metav1.ListOptions{ResourceVersion: first.ResourceVersion, LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	defer web.Stop()

	store.Create(ctx, s, pod("default", "b", map[string]string{"app": "db"}))
	store.Create(ctx, s, cm("default", "ignored")) // another kind
	b, _ := store.Get[*corev1.Pod](ctx, s, "default", "b")
	b.Labels["app"] = "web" // starts matching
	store.Update(ctx, s, b)
	a, _ := store.Get[*corev1.Pod](ctx, s, "default", "a")
	a.Labels["app"] = "db" // stops matching
	store.Update(ctx, s, a)
	s.Delete(ctx, podsGR, "default", "b", metav1.DeleteOptions{})

	var got []seen
	for i := 0; i < 4; i++ {
		got = append(got, next(t, all))
	}
	wantTypes := []watch.EventType{watch.Added, watch.Modified, watch.Modified, watch.Deleted}
	wantNames := []string{"b", "b", "a", "b"}
	prev := 0
	for i, e := range got {
		if e.typ != wantTypes[i] || e.name != wantNames[i] {
			t.Errorf("all[%d] = %v, want %s %s", i, e, wantTypes[i], wantNames[i])
		}
		rv, _ := strconv.Atoi(e.rv)
		if rv <= prev {
			t.Errorf("events out of revision order: %v", got)
		}
		prev = rv
	}
	var filtered []seen
	for i := 0; i < 3; i++ {
		filtered = append(filtered, next(t, web))
	}
	wantF := []seen{{watch.Added, "b", ""}, {watch.Deleted, "a", ""}, {watch.Deleted, "b", ""}}
	for i := range wantF {
		if filtered[i].typ != wantF[i].typ || filtered[i].name != wantF[i].name {
			t.Errorf("filtered[%d] = %v, want %v", i, filtered[i], wantF[i])
		}
	}
}

func TestWatchInitialEventsAndBookmark(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	for i := 0; i < 3; i++ {
		store.Create(ctx, s, cm("default", fmt.Sprintf("c%d", i)))
	}
	w, err := s.Watch(ctx, cmGR, "default", metav1.ListOptions{SendInitialEvents: ptr(true), AllowWatchBookmarks: true, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for i := 0; i < 3; i++ {
		if e := next(t, w); e.typ != watch.Added || e.name != fmt.Sprintf("c%d", i) {
			t.Fatalf("initial event %d: %v", i, e)
		}
	}
	e := <-w.ResultChan()
	acc, _ := meta.Accessor(e.Object)
	if e.Type != watch.Bookmark || acc.GetAnnotations()[store.InitialEventsEndAnnotation] != "true" || acc.GetResourceVersion() == "" {
		t.Fatalf("want initial-events-end bookmark, got %s %v", e.Type, acc.GetAnnotations())
	}
	store.Create(ctx, s, cm("default", "later"))
	if e := next(t, w); e.typ != watch.Added || e.name != "later" {
		t.Fatalf("after bookmark: %v", e)
	}
}

func TestWatchPeriodicBookmarks(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{Logger: quietLogs, BookmarkInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w, err := s.Watch(ctx, cmGR, "", metav1.ListOptions{ResourceVersion: strconv.FormatUint(s.Revision(), 10), AllowWatchBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if e := next(t, w); e.typ != watch.Bookmark || e.rv != strconv.FormatUint(s.Revision(), 10) {
		t.Fatalf("want bookmark at %d, got %v", s.Revision(), e)
	}
}

func TestWatchExpired(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{Logger: quietLogs, WatchWindow: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first, _ := store.Create(ctx, s, cm("default", "c0"))
	for i := 1; i < 30; i++ {
		store.Create(ctx, s, cm("default", fmt.Sprintf("c%d", i)))
	}
	_, err = s.Watch(ctx, cmGR, "", metav1.ListOptions{ResourceVersion: first.ResourceVersion})
	if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Fatalf("watch from an old revision: %v, want Expired", err)
	}
}

// A watcher that does not read is cut off with an in-stream 410 once it
// falls out of the window; writers never wait for it.
func TestSlowWatcherCutOff(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{Logger: quietLogs, WatchWindow: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w, err := s.Watch(ctx, cmGR, "", metav1.ListOptions{ResourceVersion: strconv.FormatUint(s.Revision(), 10)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 1000; i++ {
			if _, err := store.Create(ctx, s, cm("default", fmt.Sprintf("c%d", i))); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("writers blocked by a slow watcher")
	}
	var last watch.Event
	n := 0
	for e := range w.ResultChan() {
		last = e
		n++
	}
	if last.Type != watch.Error {
		t.Fatalf("slow watcher ended with %s after %d events, want ERROR", last.Type, n)
	}
	if st, ok := last.Object.(*metav1.Status); !ok || st.Code != 410 {
		t.Fatalf("error event %#v, want 410 Status", last.Object)
	}
}

func TestWatchTimeoutAndStop(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	w, err := s.Watch(ctx, cmGR, "", metav1.ListOptions{TimeoutSeconds: ptr(int64(1)), ResourceVersion: strconv.FormatUint(s.Revision(), 10)})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-w.ResultChan():
		if ok {
			t.Fatal("unexpected event")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not end after timeoutSeconds")
	}
	w2, _ := s.Watch(ctx, cmGR, "", metav1.ListOptions{})
	w2.Stop()
	for range w2.ResultChan() {
	}
}

func TestWatchPatchSeesModified(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	c, _ := store.Create(ctx, s, cm("default", "c"))
	w, _ := s.Watch(ctx, cmGR, "default", metav1.ListOptions{ResourceVersion: c.ResourceVersion, FieldSelector: "metadata.name=c"})
	defer w.Stop()
	store.Patch[*corev1.ConfigMap](ctx, s, "default", "c", types.MergePatchType, []byte(`{"data":{"k":"x"}}`))
	if e := next(t, w); e.typ != watch.Modified || e.name != "c" {
		t.Fatalf("got %v", e)
	}
}

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	s := openDir(t, t.TempDir())
	store.Create(ctx, s, cm("default", "m"))
	w, _ := s.Watch(ctx, cmGR, "", metav1.ListOptions{})
	defer w.Stop()
	reg := prometheus.NewRegistry()
	for _, c := range s.Collectors() {
		reg.MustRegister(c)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		m := f.GetMetric()[0]
		switch {
		case m.Counter != nil:
			got[f.GetName()] = m.Counter.GetValue()
		case m.Gauge != nil:
			got[f.GetName()] = m.Gauge.GetValue()
		case m.Histogram != nil:
			got[f.GetName()] = float64(m.Histogram.GetSampleCount())
		}
	}
	if got["tugboat_store_transactions_total"] < 5 || got["tugboat_store_revision"] != float64(s.Revision()) ||
		got["tugboat_store_log_append_seconds"] == 0 {
		t.Errorf("metrics: %v", got)
	}
	waitFor(t, "watcher counted", func() bool {
		f, _ := reg.Gather()
		for _, x := range f {
			if x.GetName() == "tugboat_store_watchers" {
				return x.GetMetric()[0].Gauge.GetValue() >= 1
			}
		}
		return false
	})
}
