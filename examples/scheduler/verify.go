package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/scheduler/perf"
	"github.com/tugboatdev/tugboat/store"
)

// countingStore is the store as the scheduler sees it, counting the
// successful bindings per pod so that the run can prove every pod was
// bound exactly once. It embeds the store, so the scheduler binds through
// the store's Bind (store.Binder) as it does against the bare store.
type countingStore struct {
	*store.Store
	mu    sync.Mutex
	binds map[string]int // perf.BindKey -> successful bindings
	total int
}

func newCountingStore(st *store.Store) *countingStore {
	return &countingStore{Store: st, binds: map[string]int{}}
}

// Bind binds through the store and counts the binding when it succeeded.
func (c *countingStore) Bind(ctx context.Context, b *v1.Binding, opts metav1.CreateOptions) error {
	if err := c.Store.Bind(ctx, b, opts); err != nil {
		return err
	}
	c.mu.Lock()
	c.binds[perf.BindKey(b.Namespace, b.Name)]++
	c.total++
	c.mu.Unlock()
	return nil
}

// waitCounted waits until n successful bindings were counted: the watch
// may show a binding before its Bind call has returned to the binder.
func (c *countingStore) waitCounted(ctx context.Context, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c.mu.Lock()
		total := c.total
		c.mu.Unlock()
		if total >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d bindings returned within 30s", total, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// bindCounts returns a copy of the counts.
func (c *countingStore) bindCounts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.binds))
	for k, v := range c.binds {
		out[k] = v
	}
	return out
}
