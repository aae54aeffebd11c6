package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// filter is a parsed namespace, label selector and field selector, with the
// hints that let a list use an index instead of scanning a table.
type filter struct {
	kind      *Kind
	namespace string
	label     labels.Selector
	field     fields.Selector
	anyLabel  bool
	anyField  bool

	name string  // metadata.name=...
	node *string // spec.nodeName=... (pods)
	// labelReqs are the requirements key=value and key in (values) the
	// label index can serve; scan uses the one matching fewest objects.
	labelReqs []labelReq
}

// labelReq is one requirement the label index can serve.
type labelReq struct {
	key  string
	vals []string
}

// ParseLabelSelector parses a label selector (equality- and set-based:
// =, ==, !=, in, notin, key, !key; comma means AND) into an apimachinery
// selector, with errors that name the bad requirement.
func ParseLabelSelector(sel string) (labels.Selector, error) {
	s, err := labels.Parse(sel)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid label selector %q: %v", sel, err))
	}
	return s, nil
}

// ParseFieldSelector parses a field selector (=, ==, != joined by commas)
// for kind k and rejects fields the kind does not support, as upstream does.
func ParseFieldSelector(k *Kind, sel string) (fields.Selector, error) {
	s, err := fields.ParseSelector(sel)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid field selector %q: %v", sel, err))
	}
	for _, r := range s.Requirements() {
		if !selectableField(k, r.Field) {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", r.Field))
		}
	}
	return s, nil
}

func selectableField(k *Kind, f string) bool {
	if f == "metadata.name" || f == "metadata.namespace" {
		return true
	}
	for _, key := range k.FieldKeys {
		if key == f {
			return true
		}
	}
	return false
}

func (s *Store) newFilter(k *Kind, namespace, labelSel, fieldSel string) (*filter, error) {
	f := &filter{kind: k, namespace: namespace, anyLabel: true, anyField: true}
	if strings.TrimSpace(labelSel) != "" {
		ls, err := ParseLabelSelector(labelSel)
		if err != nil {
			return nil, err
		}
		f.label, f.anyLabel = ls, ls.Empty()
		reqs, _ := ls.Requirements()
		for _, r := range reqs {
			switch r.Operator() {
			case selection.Equals, selection.DoubleEquals, selection.In:
				f.labelReqs = append(f.labelReqs, labelReq{key: r.Key(), vals: r.Values().UnsortedList()})
			}
		}
	}
	if strings.TrimSpace(fieldSel) != "" {
		fs, err := ParseFieldSelector(k, fieldSel)
		if err != nil {
			return nil, err
		}
		f.field, f.anyField = fs, fs.Empty()
		for _, r := range fs.Requirements() {
			if r.Operator != selection.Equals && r.Operator != selection.DoubleEquals {
				continue
			}
			switch r.Field {
			case "metadata.name":
				f.name = r.Value
			case "metadata.namespace":
				if f.namespace == "" {
					f.namespace = r.Value
				}
			case "spec.nodeName":
				v := r.Value
				f.node = &v
			}
		}
	}
	return f, nil
}

func (f *filter) matches(obj runtime.Object) bool {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return false
	}
	if f.namespace != "" && acc.GetNamespace() != f.namespace {
		return false
	}
	if !f.anyLabel && !f.label.Matches(labels.Set(acc.GetLabels())) {
		return false
	}
	if !f.anyField && !f.field.Matches(fieldSet(f.kind, obj, acc)) {
		return false
	}
	return true
}

func fieldSet(k *Kind, obj runtime.Object, acc metav1.Object) fields.Set {
	set := fields.Set{}
	if k.Fields != nil {
		set = k.Fields(obj)
	}
	set["metadata.name"] = acc.GetName()
	set["metadata.namespace"] = acc.GetNamespace()
	return set
}

// event turns a committed change into what this watcher sees: an object
// that starts matching is ADDED, one that stops matching is DELETED.
func (f *filter) event(e event) (watch.Event, bool) {
	cur := f.matches(e.obj)
	switch e.typ {
	case watch.Added, watch.Deleted:
		return watch.Event{Type: e.typ, Object: e.obj}, cur
	}
	was := e.prev != nil && f.matches(e.prev)
	switch {
	case cur && was:
		return watch.Event{Type: watch.Modified, Object: e.obj}, true
	case cur:
		return watch.Event{Type: watch.Added, Object: e.obj}, true
	case was:
		return watch.Event{Type: watch.Deleted, Object: e.obj}, true
	}
	return watch.Event{}, false
}

// readView is a consistent read of the state: a memdb snapshot and the
// revision of the last transaction it holds.
type readView struct {
	db  *memdb.MemDB
	rev uint64
}

// publish makes the current memdb state, which holds every transaction
// up to rev, what readers that need its revision see. Only the apply loop
// (and recovery, before it starts) calls it.
func (s *Store) publish(rev uint64) {
	s.current.Store(&readView{db: s.db.Snapshot(), rev: rev})
}

// reader returns a read transaction and the revision it was taken at.
func (s *Store) reader() (*memdb.Txn, uint64) {
	v := s.current.Load()
	return v.db.Txn(false), v.rev
}

// scan calls fn for the records of k in namespace that may match f, in
// namespace/name order and after the key after, using the narrowest index:
// the name, spec.nodeName for pods, one label key=value, or the namespace.
func (s *Store) scan(txn *memdb.Txn, k *Kind, namespace string, f *filter, after string, fn func(*record) bool) error {
	if namespace == "" {
		namespace = f.namespace
	}
	visit := func(it memdb.ResultIterator, prefix string) error {
		for raw := it.Next(); raw != nil; raw = it.Next() {
			r := raw.(*record)
			if prefix != "" && !strings.HasPrefix(r.Key, prefix) {
				return nil
			}
			if r.Key <= after || !f.matches(r.Obj) {
				continue
			}
			if !fn(r) {
				return nil
			}
		}
		return nil
	}
	var it memdb.ResultIterator
	var err error
	byName := f.name != "" && (namespace != "" || !k.Namespaced)
	// Unbound pods (spec.nodeName=) have no node index entry: they are
	// found by the other indexes or a scan.
	byNode := f.node != nil && *f.node != "" && k.Table() == "pods"
	var lr labelReq
	if !byName && !byNode && len(f.labelReqs) > 0 {
		lr = narrowest(txn, k, f.labelReqs)
	}
	switch {
	case byName:
		raw, err := txn.First(k.Table(), "id", objKey(namespace, f.name))
		if err != nil || raw == nil {
			return err
		}
		if r := raw.(*record); r.Key > after && f.matches(r.Obj) {
			fn(r)
		}
		return nil
	case byNode:
		it, err = indexed(txn, k, idxNode, *f.node)
	case len(lr.vals) == 1:
		it, err = indexed(txn, k, idxLabel, lr.key, lr.vals[0])
	case len(lr.vals) > 1:
		// key in (a,b,...): the union of the index entries, in key order.
		var recs []*record
		for _, v := range lr.vals {
			it, err := indexed(txn, k, idxLabel, lr.key, v)
			if err != nil {
				return err
			}
			for raw := it.Next(); raw != nil; raw = it.Next() {
				recs = append(recs, raw.(*record))
			}
		}
		sort.Slice(recs, func(i, j int) bool { return recs[i].Key < recs[j].Key })
		for _, r := range recs {
			if r.Key > after && f.matches(r.Obj) && !fn(r) {
				return nil
			}
		}
		return nil
	case namespace != "":
		start := namespace + "/"
		if after > start {
			start = after
		}
		it, err = txn.LowerBound(k.Table(), "id", start)
		if err != nil {
			return err
		}
		return visit(it, namespace+"/")
	default:
		it, err = txn.LowerBound(k.Table(), "id", after)
	}
	if err != nil {
		return err
	}
	return visit(it, "")
}

// narrowest returns the requirement whose index entries are fewest,
// counting each only up to the best count so far, so the choice costs no
// more than reading the winner's entries once per requirement.
func narrowest(txn *memdb.Txn, k *Kind, reqs []labelReq) labelReq {
	if len(reqs) == 1 {
		return reqs[0]
	}
	best, bestN := reqs[0], -1
	for _, r := range reqs {
		n := 0
	count:
		for _, v := range r.vals {
			it, err := txn.Get(k.IndexTable(), "id_prefix", rowPrefix(idxLabel, r.key, v))
			if err != nil {
				return reqs[0]
			}
			for raw := it.Next(); raw != nil; raw = it.Next() {
				n++
				if bestN >= 0 && n >= bestN {
					break count
				}
			}
		}
		if bestN < 0 || n < bestN {
			best, bestN = r, n
		}
	}
	return best
}

// readRequest resolves the kind of a List or Watch and parses its selectors.
func (s *Store) readRequest(res schema.GroupResource, namespace string, opts metav1.ListOptions) (*Kind, *filter, error) {
	k, err := s.kindOf(res)
	if err != nil {
		return nil, nil, err
	}
	if err := s.checkNamespaceArg(k, namespace); err != nil {
		return nil, nil, err
	}
	f, err := s.newFilter(k, namespace, opts.LabelSelector, opts.FieldSelector)
	if err != nil {
		return nil, nil, err
	}
	return k, f, nil
}

// continueToken is the opaque Continue value of a paged list.
type continueToken struct {
	Rev   uint64 `json:"rv"`
	After string `json:"after"`
}

// List returns copies of the matching objects. See [Interface.List].
func (s *Store) List(ctx context.Context, res schema.GroupResource, namespace string, opts metav1.ListOptions) (*List, error) {
	k, f, err := s.readRequest(res, namespace, opts)
	if err != nil {
		return nil, err
	}
	var txn *memdb.Txn
	var rev uint64
	after := ""
	if opts.Continue != "" {
		tok, err := decodeContinue(opts.Continue)
		if err != nil {
			return nil, err
		}
		txn = s.pag.get(tok.Rev)
		if txn == nil {
			return nil, apierrors.NewResourceExpired("the provided continue parameter is too old to display a consistent list result; start a new list without continue")
		}
		rev, after = tok.Rev, tok.After
	} else {
		txn, rev = s.reader()
		if opts.ResourceVersion != "" && opts.ResourceVersion != "0" {
			want, err := strconv.ParseUint(opts.ResourceVersion, 10, 64)
			if err != nil {
				return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid resourceVersion %q: %v", opts.ResourceVersion, err))
			}
			if want > rev {
				return nil, tooLargeResourceVersion(want, rev)
			}
		}
	}
	out := &List{ResourceVersion: strconv.FormatUint(rev, 10)}
	more, last := false, ""
	err = s.scan(txn, k, namespace, f, after, func(r *record) bool {
		if opts.Limit > 0 && int64(len(out.Items)) == opts.Limit {
			more = true
			return false
		}
		out.Items = append(out.Items, r.Obj.DeepCopyObject())
		last = r.Key
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("store: list %s: %w", res, err)
	}
	if more {
		s.pag.put(rev, txn)
		b, _ := json.Marshal(continueToken{Rev: rev, After: last})
		out.Continue = base64.RawURLEncoding.EncodeToString(b)
	}
	return out, nil
}

func decodeContinue(s string) (continueToken, error) {
	var tok continueToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &tok)
	}
	if err != nil {
		return tok, apierrors.NewBadRequest(fmt.Sprintf("invalid continue token: %v", err))
	}
	return tok, nil
}

// pageSnapshots keeps the memdb snapshots that paged lists continue from, so
// every page of one list reads the same revision.
type pageSnapshots struct {
	mu    sync.Mutex
	snaps map[uint64]pageSnap
}

type pageSnap struct {
	txn  *memdb.Txn
	used time.Time
}

const (
	maxPageSnapshots = 32
	pageSnapshotTTL  = 5 * time.Minute
)

func newPageSnapshots() *pageSnapshots { return &pageSnapshots{snaps: map[uint64]pageSnap{}} }

func (p *pageSnapshots) put(rev uint64, txn *memdb.Txn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.snaps[rev] = pageSnap{txn: txn, used: now}
	for r, sn := range p.snaps {
		if now.Sub(sn.used) > pageSnapshotTTL {
			delete(p.snaps, r)
		}
	}
	for len(p.snaps) > maxPageSnapshots {
		var oldest uint64
		var t time.Time
		for r, sn := range p.snaps {
			if t.IsZero() || sn.used.Before(t) {
				oldest, t = r, sn.used
			}
		}
		delete(p.snaps, oldest)
	}
}

func (p *pageSnapshots) get(rev uint64) *memdb.Txn {
	p.mu.Lock()
	defer p.mu.Unlock()
	sn, ok := p.snaps[rev]
	if !ok || time.Since(sn.used) > pageSnapshotTTL {
		return nil
	}
	sn.used = time.Now()
	p.snaps[rev] = sn
	return sn.txn
}

// Owned returns copies of the objects of a resource in namespace ("" for
// all) whose ownerReferences name ownerUID, read from the owner index.
func (s *Store) Owned(ctx context.Context, res schema.GroupResource, namespace string, ownerUID types.UID) ([]runtime.Object, error) {
	k, err := s.kindOf(res)
	if err != nil {
		return nil, err
	}
	it, err := indexed(s.db.Txn(false), k, idxOwner, string(ownerUID))
	if err != nil {
		return nil, fmt.Errorf("store: owned %s: %w", res, err)
	}
	var out []runtime.Object
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if r := raw.(*record); namespace == "" || r.Namespace == namespace {
			out = append(out, r.Obj.DeepCopyObject())
		}
	}
	return out, nil
}
