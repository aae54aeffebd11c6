package controller_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store"
)

// A tiny controller: it keeps a "<name>-copy" ConfigMap next to every
// ConfigMap labelled copy=yes. The informer feeds the queue; the reconciler
// reads the cache and writes through the store, level-triggered.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := store.Open(ctx, store.Config{Logger: log})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	f := controller.NewFactory(s, log)
	cms := controller.ListerFor[*corev1.ConfigMap](f)
	var once sync.Once
	copied := make(chan string)
	r := controller.ReconcilerFunc(func(ctx context.Context, key string) (controller.Result, error) {
		ns, name := controller.SplitKey(key)
		cm, ok := cms.Get(ns, name)
		if !ok || cm.Labels["copy"] != "yes" {
			return controller.Result{}, nil
		}
		cp := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-copy"}, Data: cm.Data}
		if _, err := store.Create(ctx, s, cp); err != nil {
			return controller.Result{}, nil // exists already: nothing to do
		}
		once.Do(func() { copied <- cp.Name })
		return controller.Result{}, nil
	})
	c := controller.New("copier", r, 2, nil, log)
	cms.Inf.AddHandler(controller.Handler{
		OnAdd:    c.EnqueueObject,
		OnUpdate: func(_, o runtime.Object) { c.EnqueueObject(o) },
	})
	g, gctx := errgroup.WithContext(ctx)
	f.Start(gctx, g)
	g.Go(func() error { return c.Run(gctx) })
	if err := f.WaitForSync(ctx); err != nil {
		panic(err)
	}

	_, _ = store.Create(ctx, s, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "settings", Labels: map[string]string{"copy": "yes"}},
		Data:       map[string]string{"mode": "fast"},
	})
	fmt.Println("created", <-copied)
	got, _ := store.Get[*corev1.ConfigMap](ctx, s, "default", "settings-copy")
	fmt.Println("data:", got.Data["mode"])
	cancel()
	_ = g.Wait()
	// Output:
	// created settings-copy
	// data: fast
}

// A Queue hands each key out once however often it was added.
func ExampleQueue() {
	q := controller.NewQueue(controller.QueueOptions{})
	defer q.ShutDown()
	for _, k := range []string{"default/a", "default/b", "default/a"} {
		q.Add(k)
	}
	for q.Len() > 0 {
		k, _ := q.Get()
		fmt.Println(k)
		q.Done(k)
	}
	// Output:
	// default/a
	// default/b
}
