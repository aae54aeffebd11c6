package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/go-memdb"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// op is one object change inside a transaction.
type op struct {
	kind *Kind
	key  string
	obj  runtime.Object // the new object; for a delete, the object as deleted
	prev runtime.Object // the object before, nil on create
	del  bool
}

// proposal is a sequenced transaction on its way to the log and memdb.
type proposal struct {
	rev  uint64
	ops  []op
	data []byte
	done chan error
}

// view is what a transaction being prepared reads: memdb plus the
// sequenced-but-unapplied transactions ahead of it.
type view struct {
	s   *Store
	txn interface {
		First(table, index string, args ...interface{}) (interface{}, error)
	}
}

func (v *view) get(k *Kind, key string) runtime.Object {
	v.s.ovMu.Lock()
	e, ok := v.s.overlay[overlayKey{k, key}]
	v.s.ovMu.Unlock()
	if ok {
		return e.obj
	}
	if v.txn == nil {
		v.txn = v.s.db.Txn(false)
	}
	raw, err := v.txn.First(k.Table(), "id", key)
	if err != nil || raw == nil {
		return nil
	}
	return raw.(*record).Obj
}

// each calls fn for every applied object of k (as overlaid by sequenced
// transactions; objects created by those are not visited), until fn
// returns false.
func (v *view) each(k *Kind, fn func(runtime.Object) bool) {
	if v.txn == nil {
		v.txn = v.s.db.Txn(false)
	}
	txn, ok := v.txn.(*memdb.Txn)
	if !ok {
		return
	}
	it, err := txn.Get(k.Table(), "id")
	if err != nil {
		return
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if obj := v.get(k, raw.(*record).Key); obj != nil && !fn(obj) {
			return
		}
	}
}

// commit sequences one transaction. build reads through the view and returns
// the changes, with rev as their resourceVersion; commit stamps the revision,
// hands the transaction to the log and waits until it is durable and
// applied. With dryRun the changes are computed and checked but not written.
func (s *Store) commit(ctx context.Context, dryRun bool, build func(v *view, rev uint64) ([]op, error)) ([]op, error) {
	s.seqMu.Lock()
	if s.failed != nil {
		s.seqMu.Unlock()
		return nil, ctxErr(s.failed)
	}
	rev := s.nextRev + 1
	v := &view{s: s}
	ops, err := build(v, rev)
	if err == nil {
		err = s.admitClaims(v, ops)
	}
	if err == nil {
		err = s.allocate(ops, dryRun)
	}
	if err != nil || len(ops) == 0 || dryRun {
		s.seqMu.Unlock()
		return ops, err
	}
	rv := strconv.FormatUint(rev, 10)
	for _, o := range ops {
		acc, _ := meta.Accessor(o.obj)
		acc.SetResourceVersion(rv)
	}
	p := &proposal{rev: rev, ops: ops, done: make(chan error, 1)}
	for _, o := range ops {
		if s.wal == nil || o.del {
			warm(o.obj) // encodeOps warms the others
		}
	}
	if s.wal != nil {
		p.data, err = appendOps(s.encodeBuf(), ops)
		if err != nil {
			s.seqMu.Unlock()
			return nil, ctxErr(err)
		}
	}
	s.nextRev = rev
	s.sequenced(ops)
	s.ovMu.Lock()
	for _, o := range ops {
		var obj runtime.Object
		if !o.del {
			obj = o.obj
		}
		s.overlay[overlayKey{o.kind, o.key}] = overlayEntry{rev: rev, obj: obj}
	}
	s.ovMu.Unlock()
	s.qMu.Lock()
	s.queue = append(s.queue, p)
	s.qMu.Unlock()
	s.seqMu.Unlock()
	select {
	case s.qReady <- struct{}{}:
	default:
	}
	// The transaction is sequenced: it will be applied whatever the caller's
	// context says, so wait for the outcome to report it truthfully.
	if err := <-p.done; err != nil {
		return nil, ctxErr(err)
	}
	return ops, nil
}

// maxPooledEncodeBuf bounds the encode buffers kept for reuse: a rare
// large object (a 1 MiB ConfigMap) does not pin its buffer.
const maxPooledEncodeBuf = 64 << 10

// encodeBuf returns an empty buffer for a transaction's log entry.
func (s *Store) encodeBuf() []byte {
	if b, ok := s.encBufs.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return nil
}

// releaseEncodeBuf returns a log entry's buffer once the log no longer
// needs it.
func (s *Store) releaseEncodeBuf(b []byte) {
	if cap(b) == 0 || cap(b) > maxPooledEncodeBuf {
		return
	}
	s.encBufs.Put(&b)
}

// allocate gives the Services a transaction writes their clusterIPs and
// node ports (see serviceAlloc) and, unless dryRun, records what every
// Service written or deleted holds. It runs under seqMu.
func (s *Store) allocate(ops []op, dryRun bool) error {
	for _, o := range ops {
		if o.kind != s.svcKind || o.del {
			continue
		}
		prev, _ := o.prev.(*corev1.Service)
		svc := o.obj.(*corev1.Service)
		if errs := s.svcAlloc.assign(o.key, svc, prev); len(errs) > 0 {
			return invalid(o.kind, svc.Name, errs)
		}
	}
	if dryRun {
		return nil
	}
	for _, o := range ops {
		if o.kind != s.svcKind {
			continue
		}
		if o.del {
			s.svcAlloc.record(o.key, nil)
		} else {
			s.svcAlloc.record(o.key, o.obj.(*corev1.Service))
		}
	}
	return nil
}

// warm fills the caches some upstream types fill lazily on first use
// (resource.Quantity's canonical string) by encoding obj once, before the
// object is shared with readers: later encodings and copies only read it.
func warm(obj runtime.Object) {
	// The generated Size methods compute every quantity's canonical
	// string (and cache it) without building the encoding.
	if sm, ok := obj.(sizedMarshaler); ok {
		_ = sm.Size()
		return
	}
	if m, ok := obj.(marshaler); ok {
		_, _ = m.Marshal()
	}
}

// flushLoop is the commit path: it takes every queued transaction and
// appends them to the durable log in one write (group commit), then hands
// the batch to applyLoop. Appending the next batch overlaps with applying
// the previous one; both keep revision order.
func (s *Store) flushLoop(ctx context.Context) {
	defer s.wg.Done()
	durable := make(chan appended, 16)
	s.wg.Add(1)
	go s.applyLoop(durable)
	defer close(durable)
	for {
		select {
		case <-ctx.Done():
			// Refuse new transactions first (they are sequenced under
			// seqMu), then fail what is queued: nothing waits forever for
			// a log that is no longer written.
			s.seqMu.Lock()
			if s.failed == nil {
				s.failed = fmt.Errorf("store closed: %w", ctx.Err())
			}
			s.seqMu.Unlock()
			s.drain(ctx.Err())
			return
		case <-s.qReady:
		}
		for {
			s.qMu.Lock()
			batch := s.queue
			s.queue = nil
			s.qMu.Unlock()
			if len(batch) == 0 {
				break
			}
			var err error
			start := time.Now()
			if s.wal != nil {
				err = s.wal.append(batch)
				// The log copied the entries: their buffers are free.
				for _, p := range batch {
					s.releaseEncodeBuf(p.data)
					p.data = nil
				}
			}
			if err != nil {
				s.fail(err, batch)
				continue
			}
			durable <- appended{batch: batch, took: time.Since(start)}
		}
	}
}

// appended is a batch that is in the durable log.
type appended struct {
	batch []*proposal
	took  time.Duration
}

// applyLoop applies durable batches to memdb in order, acknowledges them
// and starts snapshots.
func (s *Store) applyLoop(durable <-chan appended) {
	defer s.wg.Done()
	for a := range durable {
		s.metrics.committed(len(a.batch), a.took, s.wal != nil)
		// Batches that queued up while the last one was applied go into
		// memdb in one transaction: its fixed cost (index transactions,
		// commit, notification) is then paid once for all of them.
		batch := a.batch
		for more := true; more; {
			select {
			case b, ok := <-durable:
				if !ok {
					more = false
					break
				}
				s.metrics.committed(len(b.batch), b.took, s.wal != nil)
				batch = append(batch, b.batch...)
			default:
				more = false
			}
		}
		s.apply(batch)
		for _, p := range batch {
			p.done <- nil
		}
		a.batch = batch
		if s.wal != nil && s.sinceSnp.Add(int64(len(a.batch))) >= int64(s.cfg.SnapshotEvery) && s.snapping.CompareAndSwap(false, true) {
			s.sinceSnp.Store(0)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer s.snapping.Store(false)
				if err := s.wal.snapshot(s); err != nil {
					s.log.Error("snapshot failed", "err", err)
				}
			}()
		}
	}
}

// drain fails everything still queued when the store closes.
func (s *Store) drain(err error) {
	s.qMu.Lock()
	batch := s.queue
	s.queue = nil
	s.qMu.Unlock()
	for _, p := range batch {
		p.done <- fmt.Errorf("store closed: %w", err)
	}
}

// fail puts the store into the failed state after a log write error: the
// unapplied transactions are lost, so no later one may be built on them.
func (s *Store) fail(err error, batch []*proposal) {
	s.log.Error("durable log write failed; refusing further writes", "err", err)
	s.seqMu.Lock()
	s.failed = fmt.Errorf("%w: %w", errFailedPrefix, err)
	s.seqMu.Unlock()
	for _, p := range batch {
		p.done <- s.failed
	}
}

// apply writes a batch of durable transactions into memdb and the event log.
func (s *Store) apply(batch []*proposal) {
	txn := s.beginApply()
	evs := make([]event, 0, len(batch))
	for _, p := range batch {
		for _, o := range p.ops {
			s.applyLiveOp(txn, o)
			ev := event{rev: p.rev, kind: o.kind, obj: o.obj, prev: o.prev, typ: watch.Modified}
			switch {
			case o.del:
				ev.typ = watch.Deleted
			case o.prev == nil:
				ev.typ = watch.Added
			}
			evs = append(evs, ev)
		}
	}
	last := batch[len(batch)-1].rev
	txn.Commit()
	// Readers see revision last before its events enter the window, so
	// that a client that got an event can list at its revision; a watch
	// started at a revision skips the events up to it that arrive after
	// it started.
	s.publish(last)
	s.applied.Store(last)
	s.evs.append(evs, last)
	s.ovMu.Lock()
	for _, p := range batch {
		for _, o := range p.ops {
			k := overlayKey{o.kind, o.key}
			if e, ok := s.overlay[k]; ok && e.rev == p.rev {
				delete(s.overlay, k)
			}
		}
	}
	s.ovMu.Unlock()
}

// applyTxn is a memdb write transaction of the apply loop or of
// recovery. It finds the object an op replaces in what the transaction
// wrote itself or else in base, a read transaction of the state it
// started from: a lookup in the write transaction itself would make memdb
// clone its radix transactions and forget which nodes it has already
// copied, so every later write in the batch would copy its whole path
// again.
type applyTxn struct {
	*memdb.Txn
	base    *memdb.Txn
	written map[overlayKey]*record // nil: deleted in this transaction
}

// beginApply starts an apply transaction; the apply loop (or recovery,
// before it runs) is the only writer.
func (s *Store) beginApply() *applyTxn {
	w := s.db.Txn(true)
	return &applyTxn{Txn: w, base: s.db.Txn(false), written: map[overlayKey]*record{}}
}

// current returns the record the transaction holds for key, or nil.
func (t *applyTxn) current(k *Kind, key string, id []byte) *record {
	if r, ok := t.written[overlayKey{k, key}]; ok {
		return r
	}
	var lookup any = key
	if id != nil {
		lookup = id
	}
	raw, err := t.base.First(k.Table(), "id", lookup)
	if err != nil {
		panic(fmt.Sprintf("store: memdb lookup %s %s: %v", k.Table(), key, err))
	}
	r, _ := raw.(*record)
	return r
}

// applyLiveOp is applyOp for an op the commit path sequenced: its prev
// is the object it replaces as of its revision, so a create (no prev)
// replaces nothing and needs no lookup.
func (s *Store) applyLiveOp(txn *applyTxn, o op) {
	if o.del || o.prev != nil {
		s.applyOp(txn, o)
		return
	}
	acc, _ := meta.Accessor(o.obj)
	s.applyRecord(txn, o, newRecordKey(o.obj, acc, o.key), nil)
}

// applyOp changes one object's row, its index rows and the UID map;
// memdb errors here mean a broken schema, which is a programming error.
func (s *Store) applyOp(txn *applyTxn, o op) {
	var r *record
	var id []byte
	if !o.del {
		acc, _ := meta.Accessor(o.obj)
		r = newRecordKey(o.obj, acc, o.key)
		id = r.id
	}
	s.applyRecord(txn, o, r, txn.current(o.kind, o.key, id))
}

// applyRecord writes r (nil for a delete) in place of old.
func (s *Store) applyRecord(txn *applyTxn, o op, r, old *record) {
	table := o.kind.Table()
	txn.written[overlayKey{o.kind, o.key}] = r
	if o.del {
		if old == nil {
			return
		}
		if err := txn.Delete(table, old); err != nil {
			panic(fmt.Sprintf("store: memdb delete %s %s: %v", table, o.key, err))
		}
		if err := updateIndexRows(txn, o.kind, old, nil); err != nil {
			panic(fmt.Sprintf("store: memdb delete index rows %s %s: %v", table, o.key, err))
		}
		s.uidMu.Lock()
		delete(s.uids, types.UID(old.UID))
		s.uidMu.Unlock()
		return
	}
	if err := txn.Insert(table, r); err != nil {
		panic(fmt.Sprintf("store: memdb insert %s %s: %v", table, o.key, err))
	}
	if err := updateIndexRows(txn, o.kind, old, r); err != nil {
		panic(fmt.Sprintf("store: memdb index rows %s %s: %v", table, o.key, err))
	}
	if old == nil || old.UID != r.UID {
		s.uidMu.Lock()
		if old != nil {
			delete(s.uids, types.UID(old.UID))
		}
		s.uids[types.UID(r.UID)] = uidRef{kind: o.kind, key: o.key}
		s.uidMu.Unlock()
	}
}
