package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/scheduler/framework"
	"github.com/tugboatdev/tugboat/store"
)

// countingStore is the store as the scheduler sees it, counting the
// successful bindings per pod so that the run can prove every pod was
// bound exactly once. It embeds the store, so the scheduler binds through
// the store's Bind (store.Binder) as it does against the bare store.
type countingStore struct {
	*store.Store
	mu    sync.Mutex
	binds map[string]int // namespace/name -> successful bindings
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
	c.binds[b.Namespace+"/"+b.Name]++
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

// verify lists the nodes and pods and checks the run's correctness: see
// verifyPlacement.
func verify(ctx context.Context, st store.Interface, binds map[string]int, check func([]*v1.Node, []*v1.Pod) error) error {
	nodes, _, err := store.ListOf[*v1.Node](ctx, st, "", metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	pods, _, err := store.ListOf[*v1.Pod](ctx, st, "", metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	return verifyPlacement(nodes, pods, binds, check)
}

// maxReported bounds the violations verifyPlacement lists.
const maxReported = 10

// verifyPlacement checks that every pod is bound, by exactly one
// successful binding (binds, keyed namespace/name), that no node holds
// more cpu, memory or pods than it has allocatable (effective requests as
// the scheduler computes them), and the workload's own constraint (check,
// when not nil).
func verifyPlacement(nodes []*v1.Node, pods []*v1.Pod, binds map[string]int, check func([]*v1.Node, []*v1.Pod) error) error {
	var errs []error
	report := func(err error) {
		if len(errs) < maxReported {
			errs = append(errs, err)
		}
	}
	type use struct{ cpu, mem, n int64 }
	used := map[string]*use{}
	for _, p := range pods {
		key := p.Namespace + "/" + p.Name
		if p.Spec.NodeName == "" {
			report(fmt.Errorf("pod %s is not bound", key))
			continue
		}
		if n := binds[key]; n != 1 {
			report(fmt.Errorf("pod %s was bound %d times, want exactly once", key, n))
		}
		u := used[p.Spec.NodeName]
		if u == nil {
			u = &use{}
			used[p.Spec.NodeName] = u
		}
		r := framework.NewPodInfo(p).Requests
		u.cpu += r.MilliCPU
		u.mem += r.Memory
		u.n++
	}
	known := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		known[n.Name] = true
		u := used[n.Name]
		if u == nil {
			continue
		}
		a := n.Status.Allocatable
		if u.cpu > a.Cpu().MilliValue() || u.mem > a.Memory().Value() || u.n > a.Pods().Value() {
			report(fmt.Errorf("node %s is over-committed: cpu %dm, memory %d, %d pods (allocatable %v, %v, %v)",
				n.Name, u.cpu, u.mem, u.n, a.Cpu(), a.Memory(), a.Pods()))
		}
	}
	for name := range used {
		if !known[name] {
			report(fmt.Errorf("pods are bound to %s, which is not a node", name))
		}
	}
	if check != nil {
		if err := check(nodes, pods); err != nil {
			report(err)
		}
	}
	return errors.Join(errs...)
}
