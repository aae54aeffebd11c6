package store

import (
	"context"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// collector is the store's garbage collector. It follows the event log and
//   - deletes dependents whose owners are all gone (Background propagation),
//     and drops references to owners that are gone from the others;
//   - releases the dependents of an owner deleted with the orphan finalizer
//     (propagationPolicy Orphan) and then removes the finalizer;
//   - deletes the dependents of an owner deleted in the foreground and
//     removes its finalizer once no blocking dependent is left;
//   - empties a terminating namespace and then removes its "kubernetes"
//     finalizer, which lets the namespace go.
//
// It is level-triggered: a full pass runs at start, after it falls out of
// the event window and every resync period, so nothing is lost across a
// restart.
type collector struct {
	s      *Store
	resync time.Duration
}

const gcParallelism = 32

func newCollector(s *Store) *collector { return &collector{s: s, resync: time.Minute} }

func (c *collector) run(ctx context.Context) {
	seq, _ := c.s.evs.position(c.s.Revision())
	c.fullPass(ctx)
	buf := make([]event, 0, 512)
	tick := time.NewTicker(c.resync)
	defer tick.Stop()
	for {
		evs, next, _, notify, st := c.s.evs.read(seq, buf[:0])
		switch st {
		case readClosed:
			return
		case readExpired:
			seq, _ = c.s.evs.position(c.s.Revision())
			c.fullPass(ctx)
			continue
		}
		seq = next
		if len(evs) > 0 {
			c.handle(ctx, evs)
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			c.fullPass(ctx)
		case <-notify:
		}
	}
}

// fullPass treats every object as just changed, and deletes Events older
// than the event TTL.
func (c *collector) fullPass(ctx context.Context) {
	txn := c.s.db.Txn(false)
	var evs []event
	var expired []dependent
	cutoff := c.s.now().Add(-c.s.cfg.EventTTL)
	for _, k := range c.s.reg.Kinds() {
		it, err := txn.Get(k.Table(), "id")
		if err != nil {
			continue
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			r := raw.(*record)
			if ev, ok := r.Obj.(*corev1.Event); ok && eventTime(ev).Before(cutoff) {
				expired = append(expired, dependent{kind: k, obj: r.Obj})
				continue
			}
			acc, _ := meta.Accessor(r.Obj)
			if acc.GetDeletionTimestamp() != nil || len(acc.GetOwnerReferences()) > 0 {
				evs = append(evs, event{typ: watch.Added, kind: k, obj: r.Obj})
			}
		}
	}
	c.handle(ctx, evs)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(gcParallelism)
	for _, d := range expired {
		g.Go(func() error { c.deleteObj(gctx, d.kind, d.obj, metav1.DeletePropagationBackground); return nil })
	}
	_ = g.Wait()
}

// eventTime is when an Event was last written.
func eventTime(e *corev1.Event) time.Time {
	t := e.CreationTimestamp.Time
	for _, u := range []time.Time{e.LastTimestamp.Time, e.EventTime.Time} {
		if u.After(t) {
			t = u
		}
	}
	if e.Series != nil && e.Series.LastObservedTime.After(t) {
		t = e.Series.LastObservedTime.Time
	}
	return t
}

func (c *collector) handle(ctx context.Context, evs []event) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(gcParallelism)
	namespaces := map[string]bool{}
	foreground := map[types.UID]bool{}
	for _, e := range evs {
		if ctx.Err() != nil {
			return
		}
		acc, err := meta.Accessor(e.obj)
		if err != nil {
			continue
		}
		uid := acc.GetUID()
		if e.typ == watch.Deleted {
			for _, dep := range c.dependents(uid) {
				g.Go(func() error { c.checkOwners(gctx, dep.obj); return nil })
			}
			for _, ref := range acc.GetOwnerReferences() {
				foreground[ref.UID] = true
			}
			if ns := acc.GetNamespace(); ns != "" {
				namespaces[ns] = true
			}
			continue
		}
		if acc.GetDeletionTimestamp() != nil {
			if _, ok := e.obj.(*corev1.Namespace); ok {
				namespaces[acc.GetName()] = true
			}
			if slices.Contains(acc.GetFinalizers(), FinalizerOrphan) {
				obj := e.obj
				g.Go(func() error { c.orphan(gctx, obj); return nil })
			}
			if slices.Contains(acc.GetFinalizers(), FinalizerForeground) {
				foreground[uid] = true
			}
		} else if len(acc.GetOwnerReferences()) > 0 && (e.typ == watch.Added || ownersChanged(e)) {
			obj := e.obj
			g.Go(func() error { c.checkOwners(gctx, obj); return nil })
		}
	}
	_ = g.Wait()
	for uid := range foreground {
		if kind, obj := c.byUID(uid); obj != nil {
			c.foreground(ctx, kind, obj)
		}
	}
	for ns := range namespaces {
		c.namespace(ctx, ns)
	}
}

func ownersChanged(e event) bool {
	if e.prev == nil {
		return true
	}
	a, _ := meta.Accessor(e.obj)
	b, _ := meta.Accessor(e.prev)
	ra, rb := a.GetOwnerReferences(), b.GetOwnerReferences()
	if len(ra) != len(rb) {
		return true
	}
	for i := range ra {
		if ra[i].UID != rb[i].UID {
			return true
		}
	}
	return false
}

type dependent struct {
	kind *Kind
	obj  runtime.Object
}

// dependents finds the objects that name uid as an owner, through the owner
// index of every table.
func (c *collector) dependents(uid types.UID) []dependent {
	txn := c.s.db.Txn(false)
	var out []dependent
	for _, k := range c.s.reg.Kinds() {
		it, err := indexed(txn, k, idxOwner, string(uid))
		if err != nil {
			continue
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			out = append(out, dependent{kind: k, obj: raw.(*record).Obj})
		}
	}
	return out
}

// byUID finds a live object by UID.
func (c *collector) byUID(uid types.UID) (*Kind, runtime.Object) { return c.s.byUID(uid) }

// ownerExists reports whether the owner a reference names is still there.
// An owner of a kind the store does not serve cannot be checked and counts
// as present.
func (c *collector) ownerExists(ref metav1.OwnerReference) bool {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return true
	}
	if c.s.reg.ForGVK(gv.WithKind(ref.Kind)) == nil {
		return true
	}
	_, obj := c.s.byUID(ref.UID)
	return obj != nil
}

func (c *collector) deleteObj(ctx context.Context, k *Kind, obj runtime.Object, policy metav1.DeletionPropagation) {
	acc, _ := meta.Accessor(obj)
	uid := acc.GetUID()
	_, err := c.s.Delete(ctx, k.GroupResource(), acc.GetNamespace(), acc.GetName(), metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
		c.s.log.Warn("garbage collector: delete failed", "kind", k.GVK.Kind, "object", objectName(obj), "err", err)
	}
}

// mutate re-reads an object by key, applies fn and updates it, retrying on
// conflicts. fn returns false when nothing needs to change.
func (c *collector) mutate(ctx context.Context, k *Kind, obj runtime.Object, fn func(acc metav1.Object) bool) {
	acc, _ := meta.Accessor(obj)
	ns, name, uid := acc.GetNamespace(), acc.GetName(), acc.GetUID()
	for try := 0; try < 10 && ctx.Err() == nil; try++ {
		cur, err := c.s.Get(ctx, k.GroupResource(), ns, name, metav1.GetOptions{})
		if err != nil {
			return
		}
		cacc, _ := meta.Accessor(cur)
		if cacc.GetUID() != uid || !fn(cacc) {
			return
		}
		_, err = c.s.Update(ctx, cur, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) {
			if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
				c.s.log.Warn("garbage collector: update failed", "kind", k.GVK.Kind, "object", objectName(obj), "err", err)
			}
			return
		}
	}
}

// checkOwners deletes obj when every owner it names is gone and otherwise
// drops the references to owners that are gone.
func (c *collector) checkOwners(ctx context.Context, obj runtime.Object) {
	acc, _ := meta.Accessor(obj)
	refs := acc.GetOwnerReferences()
	if len(refs) == 0 {
		return
	}
	k := c.s.reg.ForObject(obj)
	var gone []types.UID
	for _, ref := range refs {
		if !c.ownerExists(ref) {
			gone = append(gone, ref.UID)
		}
	}
	switch {
	case len(gone) == 0:
	case len(gone) == len(refs):
		if acc.GetDeletionTimestamp() == nil {
			c.deleteObj(ctx, k, obj, metav1.DeletePropagationBackground)
		}
	default:
		c.mutate(ctx, k, obj, func(a metav1.Object) bool { return dropOwners(a, gone) })
	}
}

func dropOwners(a metav1.Object, uids []types.UID) bool {
	var keep []metav1.OwnerReference
	for _, r := range a.GetOwnerReferences() {
		drop := false
		for _, u := range uids {
			drop = drop || r.UID == u
		}
		if !drop {
			keep = append(keep, r)
		}
	}
	if len(keep) == len(a.GetOwnerReferences()) {
		return false
	}
	a.SetOwnerReferences(keep)
	return true
}

// orphan releases the dependents of an owner deleted with propagation
// Orphan, then removes the orphan finalizer so the owner can go.
func (c *collector) orphan(ctx context.Context, owner runtime.Object) {
	acc, _ := meta.Accessor(owner)
	uid := acc.GetUID()
	for _, dep := range c.dependents(uid) {
		c.mutate(ctx, dep.kind, dep.obj, func(a metav1.Object) bool { return dropOwners(a, []types.UID{uid}) })
	}
	c.mutate(ctx, c.s.reg.ForObject(owner), owner, func(a metav1.Object) bool {
		if !slices.Contains(a.GetFinalizers(), FinalizerOrphan) {
			return false
		}
		a.SetFinalizers(removeString(a.GetFinalizers(), FinalizerOrphan))
		return true
	})
}

// foreground deletes the dependents of an owner deleted in the foreground
// and removes its finalizer once no dependent blocks it any more.
func (c *collector) foreground(ctx context.Context, k *Kind, owner runtime.Object) {
	acc, _ := meta.Accessor(owner)
	if acc.GetDeletionTimestamp() == nil || !slices.Contains(acc.GetFinalizers(), FinalizerForeground) {
		return
	}
	uid := acc.GetUID()
	blocking := 0
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(gcParallelism)
	for _, dep := range c.dependents(uid) {
		dacc, _ := meta.Accessor(dep.obj)
		for _, ref := range dacc.GetOwnerReferences() {
			if ref.UID == uid && ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion {
				blocking++
			}
		}
		if dacc.GetDeletionTimestamp() == nil {
			g.Go(func() error { c.deleteObj(gctx, dep.kind, dep.obj, metav1.DeletePropagationForeground); return nil })
		}
	}
	_ = g.Wait()
	if blocking > 0 {
		return
	}
	c.mutate(ctx, k, owner, func(a metav1.Object) bool {
		if !slices.Contains(a.GetFinalizers(), FinalizerForeground) {
			return false
		}
		a.SetFinalizers(removeString(a.GetFinalizers(), FinalizerForeground))
		return true
	})
}

// namespace empties a terminating namespace and finalizes it when empty.
func (c *collector) namespace(ctx context.Context, name string) {
	nsKind := c.s.reg.ForResource(schema.GroupResource{Resource: "namespaces"})
	raw, err := c.s.db.Txn(false).First(nsKind.Table(), "id", objKey("", name))
	if err != nil || raw == nil {
		return
	}
	ns := raw.(*record).Obj.(*corev1.Namespace)
	if ns.DeletionTimestamp == nil {
		return
	}
	txn := c.s.db.Txn(false)
	remaining := 0
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(gcParallelism)
	for _, k := range c.s.reg.Kinds() {
		if !k.Namespaced {
			continue
		}
		it, err := txn.Get(k.Table(), "id_prefix", name+"/")
		if err != nil {
			continue
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			remaining++
			r := raw.(*record)
			acc, _ := meta.Accessor(r.Obj)
			if acc.GetDeletionTimestamp() == nil {
				g.Go(func() error { c.deleteObj(gctx, k, r.Obj, metav1.DeletePropagationBackground); return nil })
			}
		}
	}
	_ = g.Wait()
	if remaining > 0 {
		return
	}
	c.mutate(ctx, nsKind, ns, func(a metav1.Object) bool {
		n := a.(*corev1.Namespace)
		var keep []corev1.FinalizerName
		for _, f := range n.Spec.Finalizers {
			if f != corev1.FinalizerKubernetes {
				keep = append(keep, f)
			}
		}
		if len(keep) == len(n.Spec.Finalizers) {
			return false
		}
		n.Spec.Finalizers = keep
		return true
	})
}

// RunCollection runs one full garbage-collection pass now: dependents of
// missing owners, pending orphan and foreground deletions, terminating
// namespaces and expired Events. The store also runs it every minute.
func (s *Store) RunCollection(ctx context.Context) { s.gc.fullPass(ctx) }
