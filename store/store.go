package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Store is the embedded implementation of [Interface]: API objects held in
// go-memdb tables (one per kind, indexed by namespace/name, uid, labels,
// owner uid and, for pods, spec.nodeName), changed only by transactions that
// pass through one commit path. Each transaction gets the next global
// revision (the resourceVersion), is appended to the durable log (group
// commit) and then applied to memdb in order, like a state machine.
type Store struct {
	cfg Config
	reg *Registry
	log *slog.Logger
	now func() time.Time
	db  *memdb.MemDB
	wal *durableLog // nil in memory mode
	evs *eventLog
	hub *hub

	// svcAlloc holds the Services' clusterIPs and node ports; svcKind
	// is the Service kind (nil if the registry has none).
	svcAlloc *serviceAlloc
	svcKind  *Kind

	// pcKind is the PriorityClass kind (nil if the registry has none);
	// pcDefaults counts the sequenced PriorityClasses marked
	// globalDefault, so that a pod create scans the classes only when
	// one exists. Guarded by seqMu.
	pcKind     *Kind
	pcDefaults int
	// nsKind is the Namespace kind; nsTerminating holds every sequenced
	// namespace, true while it is being deleted, so that a create checks
	// its namespace without a memdb lookup. Guarded by seqMu.
	nsKind        *Kind
	nsTerminating map[string]bool
	pag           *pageSnapshots
	stop          context.CancelFunc
	wg            sync.WaitGroup

	// seqMu orders transactions: it is held while one is prepared and
	// given its revision.
	seqMu   sync.Mutex
	nextRev uint64
	failed  error

	// overlay holds objects of transactions that are sequenced but not
	// yet applied to memdb, so the next transaction sees them.
	ovMu    sync.Mutex
	overlay map[overlayKey]overlayEntry

	qMu    sync.Mutex
	queue  []*proposal
	qReady chan struct{}

	applied  atomic.Uint64
	current  atomic.Pointer[readView]
	sinceSnp atomic.Int64
	snapping atomic.Bool

	gc      *collector
	metrics *metrics

	// encBufs holds reusable buffers for encoding log entries.
	encBufs sync.Pool
	// gcTune is what Config.GCPercent and MemoryLimit changed.
	gcTune *gcTuning

	// uids maps the UID of every stored object to its table and key (the
	// garbage collector's owner lookups); kept by the apply loop.
	uidMu sync.RWMutex
	uids  map[types.UID]uidRef
}

type uidRef struct {
	kind *Kind
	key  string
}

// byUID finds a stored object by UID.
func (s *Store) byUID(uid types.UID) (*Kind, runtime.Object) {
	s.uidMu.RLock()
	ref, ok := s.uids[uid]
	s.uidMu.RUnlock()
	if !ok {
		return nil, nil
	}
	raw, err := s.db.Txn(false).First(ref.kind.Table(), "id", ref.key)
	if err != nil || raw == nil {
		return nil, nil
	}
	return ref.kind, raw.(*record).Obj
}

// overlayKey names one object in the overlay.
type overlayKey struct {
	kind *Kind
	key  string
}

type overlayEntry struct {
	rev uint64
	obj runtime.Object // nil: deleted
}

// record is the row stored in memdb for one object.
type record struct {
	Key       string // namespace/name: the id index, also serving namespace prefixes
	Namespace string
	UID       string
	Labels    map[string]string
	Owners    []string
	Node      string
	Obj       runtime.Object

	id []byte // Key as the id index stores it
}

// defaultServiceCIDR is the Service clusterIP range used when none is configured.
var defaultServiceCIDR = netip.MustParsePrefix("10.96.0.0/12")

// Open builds a store. With cfg.Dir empty the store is in memory; otherwise
// it recovers the state from the snapshot and log in cfg.Dir and continues the
// revision sequence. The default namespaces exist once Open returns.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Registry == nil {
		cfg.Registry = DefaultRegistry()
	}
	if !cfg.ServiceCIDR.IsValid() {
		cfg.ServiceCIDR = defaultServiceCIDR
	}
	if cfg.NodePortRange == (PortRange{}) {
		cfg.NodePortRange = DefaultNodePortRange()
	}
	if cfg.WatchWindow <= 0 {
		cfg.WatchWindow = 50_000
	}
	if cfg.SnapshotEvery <= 0 {
		cfg.SnapshotEvery = 50_000
	}
	if cfg.BookmarkInterval <= 0 {
		cfg.BookmarkInterval = time.Minute
	}
	if cfg.EventTTL <= 0 {
		cfg.EventTTL = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	db, err := memdb.NewMemDB(schemaFor(cfg.Registry))
	if err != nil {
		return nil, fmt.Errorf("store: memdb schema: %w", err)
	}
	// The store works on a snapshot of the new database: memdb tracks
	// mutations (for its WatchSet channels, which the store does not use:
	// watchers read the event log) only on the primary database, and that
	// tracking costs a map insert per radix node written and a channel close
	// per node at commit. A snapshot is an independent, writable MemDB.
	db = db.Snapshot()
	s := &Store{
		cfg:     cfg,
		reg:     cfg.Registry,
		log:     cfg.Logger.With("component", "store"),
		now:     cfg.Now,
		db:      db,
		overlay: map[overlayKey]overlayEntry{},
		uids:    map[types.UID]uidRef{},
		qReady:  make(chan struct{}, 1),
		pag:     newPageSnapshots(),
	}
	s.gcTune = tuneGC(&s.cfg)
	s.publish(0)
	if cfg.Dir != "" {
		wal, rev, err := openDurableLog(cfg.Dir, s)
		if err != nil {
			s.gcTune.restore()
			return nil, err
		}
		s.wal = wal
		s.nextRev = rev
		s.applied.Store(rev)
	}
	s.svcKind = s.reg.ForResource(schema.GroupResource{Resource: "services"})
	s.svcAlloc = newServiceAlloc(&s.cfg)
	s.loadAllocations()
	s.pcKind = s.reg.ForResource(schema.GroupResource{Group: "scheduling.k8s.io", Resource: "priorityclasses"})
	s.nsKind = s.reg.ForResource(schema.GroupResource{Resource: "namespaces"})
	s.loadSequencedState()
	s.evs = newEventLog(cfg.WatchWindow, s.nextRev)
	s.hub = newHub(s.evs)
	s.metrics = newMetrics(s)
	runCtx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.wg.Add(1)
	go s.flushLoop(runCtx)
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.hub.run(runCtx, s.evs) }()
	if err := s.bootstrap(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.gc = newCollector(s)
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.gc.run(runCtx) }()
	return s, nil
}

// loadAllocations rebuilds the Service allocations from the recovered
// state. Two Services holding the same address (possible only in data
// written before allocation moved into the store) keep it, with a warning.
func (s *Store) loadAllocations() {
	if s.svcKind == nil {
		return
	}
	it, err := s.db.Txn(false).Get(s.svcKind.Table(), "id")
	if err != nil {
		return
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		r := raw.(*record)
		svc := r.Obj.(*corev1.Service)
		s.svcAlloc.record(r.Key, svc)
		for _, ip := range svc.Spec.ClusterIPs {
			if addr, err := netip.ParseAddr(ip); err == nil && s.svcAlloc.ips[addr] != r.Key {
				s.log.Warn("two Services hold one clusterIP", "ip", ip, "service", r.Key, "holder", s.svcAlloc.ips[addr])
			}
		}
	}
}

// Close stops the store's goroutines and closes the durable log. Writes
// acknowledged before Close are durable.
func (s *Store) Close() error {
	s.stop()
	s.wg.Wait()
	s.evs.close()
	s.gcTune.restore()
	if s.wal != nil {
		return s.wal.close()
	}
	return nil
}

// Registry returns the kinds the store serves.
func (s *Store) Registry() *Registry { return s.reg }

// Revision returns the revision of the last applied transaction.
func (s *Store) Revision() uint64 { return s.applied.Load() }

// bootstrap creates the namespaces that exist from the start.
// bootstrap creates the namespaces and priority classes that exist from
// the start, as the API server does.
func (s *Store) bootstrap(ctx context.Context) error {
	objs := []runtime.Object{}
	for _, ns := range []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease} {
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	if s.reg.ForResource(schema.GroupResource{Group: "scheduling.k8s.io", Resource: "priorityclasses"}) != nil {
		for name, v := range map[string]int32{"system-cluster-critical": SystemClusterCritical, "system-node-critical": SystemNodeCritical} {
			objs = append(objs, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: v,
				Description: "Used for system critical pods that must not be moved from their current node."})
		}
	}
	for _, o := range objs {
		_, err := s.Create(ctx, o, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("store: create %s: %w", objectName(o), err)
		}
	}
	return nil
}

// The built-in priority classes' values, as upstream.
const (
	SystemClusterCritical int32 = 2_000_000_000
	SystemNodeCritical    int32 = 2_000_001_000
)

func schemaFor(reg *Registry) *memdb.DBSchema {
	sc := &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{}}
	for _, k := range reg.Kinds() {
		sc.Tables[k.Table()] = &memdb.TableSchema{Name: k.Table(), Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &recordKeyIndex{}},
		}}
		sc.Tables[k.IndexTable()] = &memdb.TableSchema{Name: k.IndexTable(), Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &rowIndex{}},
		}}
	}
	return sc
}

func objKey(namespace, name string) string { return namespace + "/" + name }

func newRecord(obj runtime.Object) *record {
	acc, _ := meta.Accessor(obj)
	return newRecordKey(obj, acc, objKey(acc.GetNamespace(), acc.GetName()))
}

// newRecordKey is newRecord for an object whose key the caller has.
func newRecordKey(obj runtime.Object, acc metav1.Object, key string) *record {
	r := &record{
		Key:       key,
		id:        terminated(key, 0),
		Namespace: acc.GetNamespace(),
		UID:       string(acc.GetUID()),
		Labels:    acc.GetLabels(),
		Obj:       obj,
	}
	for _, o := range acc.GetOwnerReferences() {
		r.Owners = append(r.Owners, string(o.UID))
	}
	if p, ok := obj.(*corev1.Pod); ok {
		r.Node = p.Spec.NodeName
	}
	return r
}

func (s *Store) kindOf(res schema.GroupResource) (*Kind, error) {
	k := s.reg.ForResource(res)
	if k == nil {
		return nil, unknownResource(res)
	}
	return k, nil
}

func (s *Store) checkNamespaceArg(k *Kind, namespace string) error {
	if !k.Namespaced && namespace != "" {
		return apierrors.NewBadRequest(fmt.Sprintf("%s is cluster-scoped: namespace %q must be empty", k.Resource, namespace))
	}
	return nil
}

// Get returns a copy of one object.
func (s *Store) Get(ctx context.Context, res schema.GroupResource, namespace, name string, _ metav1.GetOptions) (runtime.Object, error) {
	k, err := s.kindOf(res)
	if err != nil {
		return nil, err
	}
	if err := s.checkNamespaceArg(k, namespace); err != nil {
		return nil, err
	}
	raw, err := s.db.Txn(false).First(k.Table(), "id", objKey(namespace, name))
	if err != nil {
		return nil, fmt.Errorf("store: get %s: %w", res, err)
	}
	if raw == nil {
		return nil, apierrors.NewNotFound(res, name)
	}
	return raw.(*record).Obj.DeepCopyObject(), nil
}

// errFailed marks a store whose durable log failed; it refuses all writes.
var errFailedPrefix = errors.New("store: durable log failed; the store refuses writes")

// ctxErr converts a context error to the Status error kubectl expects.
func ctxErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return apierrors.NewTimeoutError("the request timed out", 0)
	}
	return apierrors.NewInternalError(err)
}
