package bpf

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/tugboatdev/tugboat/netproxy/dataplane"
)

// Config configures [Open].
type Config struct {
	// Cgroup is the cgroup v2 directory whose processes are served, for
	// example /sys/fs/cgroup/unified/tugboat. Required: the load balancer never
	// picks a cgroup by itself, and in particular never the root cgroup.
	Cgroup string
	// ServeHost allows Cgroup to be the root of the cgroup v2 hierarchy,
	// so that the programs serve every process of the machine, as
	// kube-proxy and Cilium do on a node. Only a program that is a real
	// node sets it (examples/cluster); tests never do.
	ServeHost bool
	// PinPath is a directory on a bpffs mount where the maps and the cgroup
	// links are pinned, so that a restarted proxy finds its state and the
	// programs stay attached meanwhile. Empty disables pinning: the programs
	// are detached when the LoadBalancer is closed.
	PinPath string
	// Logger receives progress messages; nil discards them.
	Logger *slog.Logger
}

// LoadBalancer is the eBPF socket load balancer. It implements
// [dataplane.Programmer]; its methods must not be called concurrently (the
// [dataplane.Table] serialises them).
type LoadBalancer struct {
	cfg     Config
	log     *slog.Logger
	objs    lbObjects
	links   []link.Link
	tcLinks []link.Link

	svcs     map[dataplane.Frontend]*svcState
	nextSvc  uint32
	freeSvc  []uint32
	nextBe   uint32
	freeBe   []uint32
	unpinned bool
}

type svcState struct {
	id       uint32
	affinity uint32
	flags    uint32
	backends []beState // ready backends in slot order (slot = index+1)
}

// Flags of the services map (SVC_F_* in csrc/lb.c).
const svcFlagKeepSource = 1

type beState struct {
	ap netip.AddrPort
	id uint32
}

var hooks = []struct {
	name   string
	attach ebpf.AttachType
	prog   func(*lbObjects) *ebpf.Program
}{
	{"connect4", ebpf.AttachCGroupInet4Connect, func(o *lbObjects) *ebpf.Program { return o.TugboatConnect4 }},
	{"sendmsg4", ebpf.AttachCGroupUDP4Sendmsg, func(o *lbObjects) *ebpf.Program { return o.TugboatSendmsg4 }},
	{"recvmsg4", ebpf.AttachCGroupUDP4Recvmsg, func(o *lbObjects) *ebpf.Program { return o.TugboatRecvmsg4 }},
	{"getpeername4", ebpf.AttachCgroupInet4GetPeername, func(o *lbObjects) *ebpf.Program { return o.TugboatGetpeername4 }},
	{"connect6", ebpf.AttachCGroupInet6Connect, func(o *lbObjects) *ebpf.Program { return o.TugboatConnect6 }},
	{"sendmsg6", ebpf.AttachCGroupUDP6Sendmsg, func(o *lbObjects) *ebpf.Program { return o.TugboatSendmsg6 }},
	{"recvmsg6", ebpf.AttachCGroupUDP6Recvmsg, func(o *lbObjects) *ebpf.Program { return o.TugboatRecvmsg6 }},
	{"getpeername6", ebpf.AttachCgroupInet6GetPeername, func(o *lbObjects) *ebpf.Program { return o.TugboatGetpeername6 }},
}

// Open loads the programs, creates or reuses the pinned maps and attaches the
// programs to cfg.Cgroup. If pinned links from an earlier run exist they are
// switched to the new programs atomically, so connections are never left
// without translation; the state in pinned maps is read back so that a
// following [dataplane.Table.Resync] only writes what changed.
func Open(ctx context.Context, cfg Config) (*LoadBalancer, error) {
	if cfg.Cgroup == "" {
		return nil, errors.New("bpf: no cgroup given")
	}
	if !cfg.ServeHost && (filepath.Clean(cfg.Cgroup) == "/sys/fs/cgroup" || filepath.Clean(cfg.Cgroup) == "/sys/fs/cgroup/unified") {
		return nil, fmt.Errorf("bpf: refusing to attach to the root cgroup %s", cfg.Cgroup)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(cfg.Cgroup, &st); err != nil {
		return nil, fmt.Errorf("bpf: cgroup %s: %w", cfg.Cgroup, err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return nil, fmt.Errorf("bpf: %s is not a cgroup v2 directory", cfg.Cgroup)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("bpf: memlock: %w", err)
	}
	spec, err := loadLb()
	if err != nil {
		return nil, fmt.Errorf("bpf: %w", err)
	}
	opts := &ebpf.CollectionOptions{}
	if cfg.PinPath != "" {
		if err := os.MkdirAll(cfg.PinPath, 0o700); err != nil {
			return nil, fmt.Errorf("bpf: pin path: %w", err)
		}
		opts.Maps.PinPath = cfg.PinPath
	} else {
		for _, m := range spec.Maps {
			m.Pinning = ebpf.PinNone
		}
	}
	lb := &LoadBalancer{cfg: cfg, log: log, svcs: map[dataplane.Frontend]*svcState{}, nextSvc: 1, nextBe: 1}
	err = spec.LoadAndAssign(&lb.objs, opts)
	if errors.Is(err, ebpf.ErrMapIncompatible) && cfg.PinPath != "" {
		// Maps pinned by an older version with another layout: start over
		// with fresh maps (the programs stay attached until swapped below).
		log.Warn("pinned eBPF maps have an old layout; recreating them", "pinPath", cfg.PinPath, "err", err)
		for name := range spec.Maps {
			if rmErr := os.Remove(filepath.Join(cfg.PinPath, name)); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
				return nil, fmt.Errorf("bpf: remove stale pin: %w", rmErr)
			}
		}
		err = spec.LoadAndAssign(&lb.objs, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("bpf: load: %w", err)
	}
	if err := lb.recover(); err != nil {
		lb.objs.Close()
		return nil, fmt.Errorf("bpf: read pinned state: %w", err)
	}
	if err := lb.attach(); err != nil {
		lb.closeLinks()
		lb.objs.Close()
		return nil, err
	}
	log.Info("eBPF socket load balancer attached", "cgroup", cfg.Cgroup, "pinPath", cfg.PinPath, "recoveredServices", len(lb.svcs))
	return lb, nil
}

func (lb *LoadBalancer) attach() error {
	for _, h := range hooks {
		prog := h.prog(&lb.objs)
		pin := ""
		if lb.cfg.PinPath != "" {
			pin = filepath.Join(lb.cfg.PinPath, "link_"+h.name)
			if l, err := link.LoadPinnedLink(pin, nil); err == nil {
				if err := l.Update(prog); err != nil {
					l.Close()
					return fmt.Errorf("bpf: update pinned %s link: %w", h.name, err)
				}
				lb.links = append(lb.links, l)
				continue
			} else if !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("bpf: pinned %s link: %w", h.name, err)
			}
		}
		l, err := link.AttachCgroup(link.CgroupOptions{Path: lb.cfg.Cgroup, Attach: h.attach, Program: prog})
		if err != nil {
			return fmt.Errorf("bpf: attach %s to %s: %w", h.name, lb.cfg.Cgroup, err)
		}
		lb.links = append(lb.links, l)
		if pin != "" {
			if err := l.Pin(pin); err != nil {
				return fmt.Errorf("bpf: pin %s link: %w", h.name, err)
			}
		}
	}
	return nil
}

func (lb *LoadBalancer) closeLinks() {
	for _, l := range append(lb.links, lb.tcLinks...) {
		l.Close()
	}
	lb.links, lb.tcLinks = nil, nil
}

// AttachExternal attaches the NodePort programs to the ingress and egress of
// the network interface ifindex (tcx links), so that connections arriving
// from outside the node for a frontend (NodePort on a node address, external
// IP, load-balancer IP) reach a backend. The interface is looked up in the
// network namespace of the calling thread. With a [Config.PinPath] the links
// are pinned (link_tc_<ifindex>_ingress, _egress): they stay attached when
// the load balancer is closed, and a later AttachExternal for the same
// interface re-adopts them and swaps in its programs atomically;
// [LoadBalancer.Uninstall] removes them. Without a PinPath they end with
// [LoadBalancer.Close].
func (lb *LoadBalancer) AttachExternal(ifindex int) error {
	for _, a := range []struct {
		dir    string
		prog   *ebpf.Program
		attach ebpf.AttachType
	}{
		{"ingress", lb.objs.TugboatNodeportIngress, ebpf.AttachTCXIngress},
		{"egress", lb.objs.TugboatNodeportEgress, ebpf.AttachTCXEgress},
	} {
		pin := ""
		if lb.cfg.PinPath != "" {
			pin = filepath.Join(lb.cfg.PinPath, fmt.Sprintf("%s%d_%s", tcLinkPrefix, ifindex, a.dir))
			l, err := adoptTCLink(pin, ifindex, a.prog)
			if err != nil {
				return err
			}
			if l != nil {
				lb.tcLinks = append(lb.tcLinks, l)
				continue
			}
		}
		l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: a.prog, Attach: a.attach})
		if err != nil {
			return fmt.Errorf("bpf: attach NodePort program to interface %d: %w", ifindex, err)
		}
		lb.tcLinks = append(lb.tcLinks, l)
		if pin != "" {
			if err := l.Pin(pin); err != nil {
				return fmt.Errorf("bpf: pin NodePort link of interface %d: %w", ifindex, err)
			}
		}
	}
	lb.log.Info("eBPF NodePort programs attached", "ifindex", ifindex, "pinned", lb.cfg.PinPath != "")
	return nil
}

// tcLinkPrefix starts the names of pinned tc links in the PinPath.
const tcLinkPrefix = "link_tc_"

// adoptTCLink reopens a pinned tc link and switches it to prog. It returns
// nil (and removes the pin) when the pin is missing or names a link that no
// longer is attached to ifindex (the interface went away, or its index was
// reused).
func adoptTCLink(pin string, ifindex int, prog *ebpf.Program) (link.Link, error) {
	l, err := link.LoadPinnedLink(pin, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bpf: pinned tc link %s: %w", pin, err)
	}
	info, err := l.Info()
	if err == nil {
		if tcx := info.TCX(); tcx != nil && int(tcx.Ifindex) == ifindex {
			if err := l.Update(prog); err != nil {
				l.Close()
				return nil, fmt.Errorf("bpf: update pinned tc link %s: %w", pin, err)
			}
			return l, nil
		}
	}
	// Stale: detach whatever is left and attach afresh.
	_ = l.Unpin()
	l.Close()
	return nil, nil
}

// recover rebuilds the in-memory state from (pinned) maps.
func (lb *LoadBalancer) recover() error {
	var (
		k      lbSvcKey
		v      lbSvcVal
		usedBe = map[uint32]bool{}
		usedSv = map[uint32]bool{}
	)
	it := lb.objs.Services.Iterate()
	for it.Next(&k, &v) {
		fe := dataplane.Frontend{Addr: addrFrom(k.Addr), Port: portFrom(k.Port), Proto: dataplane.Protocol(k.Proto)}
		st := &svcState{id: v.Id, affinity: v.AffinitySec, flags: v.Flags}
		for slot := uint32(1); slot <= v.Count; slot++ {
			var bid uint32
			if err := lb.objs.Slots.Lookup(lbSlotKey{Id: v.Id, Slot: slot}, &bid); err != nil {
				continue
			}
			var be lbBackend
			if err := lb.objs.Backends.Lookup(bid, &be); err != nil {
				continue
			}
			st.backends = append(st.backends, beState{ap: netip.AddrPortFrom(addrFrom(be.Addr), portFrom(be.Port)), id: bid})
			usedBe[bid] = true
		}
		lb.svcs[fe] = st
		usedSv[v.Id] = true
		lb.nextSvc = max(lb.nextSvc, v.Id+1)
	}
	if err := it.Err(); err != nil {
		return err
	}
	// Drop backends and slots that no service references.
	var bid uint32
	var be lbBackend
	var stale []uint32
	bit := lb.objs.Backends.Iterate()
	for bit.Next(&bid, &be) {
		if !usedBe[bid] {
			stale = append(stale, bid)
		}
		lb.nextBe = max(lb.nextBe, bid+1)
	}
	for _, id := range stale {
		_ = lb.objs.Backends.Delete(id)
	}
	var sk lbSlotKey
	var staleSlots []lbSlotKey
	sit := lb.objs.Slots.Iterate()
	for sit.Next(&sk, &bid) {
		if !usedBe[bid] || !usedSv[sk.Id] {
			staleSlots = append(staleSlots, sk)
		}
	}
	for _, s := range staleSlots {
		_ = lb.objs.Slots.Delete(s)
	}
	for id := uint32(1); id < lb.nextBe; id++ {
		if !usedBe[id] {
			lb.freeBe = append(lb.freeBe, id)
		}
	}
	for id := uint32(1); id < lb.nextSvc; id++ {
		if !usedSv[id] {
			lb.freeSvc = append(lb.freeSvc, id)
		}
	}
	return nil
}

// Mode returns "ebpf".
func (lb *LoadBalancer) Mode() string { return "ebpf" }

// Programmed lists the frontends in the services map.
func (lb *LoadBalancer) Programmed() []dataplane.Frontend {
	out := make([]dataplane.Frontend, 0, len(lb.svcs))
	for fe := range lb.svcs {
		out = append(out, fe)
	}
	slices.SortFunc(out, dataplane.Frontend.Compare)
	return out
}

// ErrUnsupported is returned for frontends the programs cannot serve
// (protocols other than TCP and UDP).
var ErrUnsupported = errors.New("bpf: frontend not supported by the eBPF data plane")

// plan is the map writes for one frontend: puts in the order backends,
// slots, service, then the deletes of stale slots and backends.
type plan struct {
	fe        dataplane.Frontend
	st        *svcState
	beKeys    []uint32
	beVals    []lbBackend
	slotKeys  []lbSlotKey
	slotVals  []uint32
	svcKey    lbSvcKey
	svcVal    lbSvcVal
	staleSlot []lbSlotKey
	staleBe   []uint32
	fresh     bool // service id newly allocated
	svcSame   bool // the services entry does not change (no write)
}

// prepare computes the writes for svc, allocating ids; nil means nothing
// changes.
func (lb *LoadBalancer) prepare(svc dataplane.Service) (*plan, error) {
	fe := svc.Frontend
	if !fe.Addr.IsValid() || fe.Addr.Is4In6() || (fe.Proto != dataplane.TCP && fe.Proto != dataplane.UDP) {
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, fe)
	}
	ready := make([]netip.AddrPort, 0, len(svc.Backends))
	// Membership: a linear scan for the usual few backends, a map for many.
	var readySet map[netip.AddrPort]bool
	if len(svc.Backends) > 32 {
		readySet = make(map[netip.AddrPort]bool, len(svc.Backends))
	}
	isReady := func(ap netip.AddrPort) bool {
		if readySet != nil {
			return readySet[ap]
		}
		return slices.Contains(ready, ap)
	}
	for _, b := range svc.Backends {
		// A frontend's backends are of its family (an IPv4 socket cannot
		// be connected to an IPv6 address).
		ap := netip.AddrPortFrom(b.Addr.Unmap(), b.Port)
		if b.Ready && ap.Addr().Is4() == fe.Addr.Is4() && !isReady(ap) {
			ready = append(ready, ap)
			if readySet != nil {
				readySet[ap] = true
			}
		}
	}
	aff := uint32(0)
	if svc.AffinityTimeout > 0 {
		aff = uint32(max(1, svc.AffinityTimeout.Seconds()))
	}
	flags := uint32(0)
	if svc.KeepSource {
		flags |= svcFlagKeepSource
	}
	old := lb.svcs[fe]
	if old != nil && old.affinity == aff && old.flags == flags && len(old.backends) == len(ready) &&
		!slices.ContainsFunc(old.backends, func(b beState) bool { return !isReady(b.ap) }) {
		return nil, nil
	}
	p := &plan{fe: fe, st: &svcState{affinity: aff, flags: flags}}
	// Slots are stable: a backend that stays keeps its slot, new backends
	// fill the slots of removed ones, and the last slots move into the
	// remaining holes. So an endpoint change writes a few slots, not all.
	arr := make([]beState, 0, len(ready))
	var holes []int
	var known map[netip.AddrPort]bool // ready backends that stay
	if old != nil {
		p.st.id = old.id
		known = make(map[netip.AddrPort]bool, len(old.backends))
		arr = append(arr, old.backends...)
		for i, b := range arr {
			if isReady(b.ap) {
				known[b.ap] = true
			} else {
				holes = append(holes, i)
				p.staleBe = append(p.staleBe, b.id)
			}
		}
	} else {
		p.st.id = lb.allocSvc()
		p.fresh = true
	}
	for _, ap := range ready {
		if known[ap] {
			continue
		}
		id := lb.allocBe()
		p.beKeys = append(p.beKeys, id)
		p.beVals = append(p.beVals, lbBackend{Addr: addrTo(ap.Addr()), Port: portTo(ap.Port()), SvcId: p.st.id})
		nb := beState{ap: ap, id: id}
		if len(holes) > 0 {
			arr[holes[0]] = nb
			holes = holes[1:]
		} else {
			arr = append(arr, nb)
		}
	}
	for len(holes) > 0 {
		last := len(arr) - 1
		if holes[len(holes)-1] == last {
			holes = holes[:len(holes)-1]
		} else {
			arr[holes[0]] = arr[last]
			holes = holes[1:]
		}
		arr = arr[:last]
	}
	p.st.backends = arr
	p.slotKeys = make([]lbSlotKey, 0, len(p.beKeys)+len(holes)+1)
	for i, b := range arr {
		if old != nil && i < len(old.backends) && old.backends[i].id == b.id {
			continue
		}
		p.slotKeys = append(p.slotKeys, lbSlotKey{Id: p.st.id, Slot: uint32(i + 1)})
		p.slotVals = append(p.slotVals, b.id)
	}
	p.svcKey = svcKey(fe)
	p.svcVal = lbSvcVal{Id: p.st.id, Count: uint32(len(arr)), AffinitySec: aff, Flags: flags}
	p.svcSame = old != nil && old.affinity == aff && old.flags == flags && len(old.backends) == len(arr)
	if old != nil {
		for slot := len(arr) + 1; slot <= len(old.backends); slot++ {
			p.staleSlot = append(p.staleSlot, lbSlotKey{Id: p.st.id, Slot: uint32(slot)})
		}
	}
	return p, nil
}

// abort returns the ids a plan allocated that were never written.
func (lb *LoadBalancer) abort(p *plan) {
	lb.freeBe = append(lb.freeBe, p.beKeys...)
	if p.fresh {
		lb.freeSvc = append(lb.freeSvc, p.st.id)
	}
}

// finish records a written plan and removes what it made stale.
func (lb *LoadBalancer) finish(p *plan) {
	lb.svcs[p.fe] = p.st
	for _, k := range p.staleSlot {
		_ = lb.objs.Slots.Delete(k)
	}
	for _, id := range p.staleBe {
		_ = lb.objs.Backends.Delete(id)
		lb.freeBe = append(lb.freeBe, id)
	}
}

// Upsert installs or replaces one frontend. Backends are written before the
// slots that reference them and the service entry last, and stale slots and
// backends are removed after it, so a concurrent connect() always sees a
// consistent set. Only what changed is written: backends that stay keep
// their ids and slots.
func (lb *LoadBalancer) Upsert(_ context.Context, svc dataplane.Service) error {
	p, err := lb.prepare(svc)
	if err != nil || p == nil {
		return err
	}
	for i, k := range p.beKeys {
		if err := lb.objs.Backends.Put(k, p.beVals[i]); err != nil {
			lb.abort(p)
			return fmt.Errorf("bpf: write backend: %w", err)
		}
	}
	for i, k := range p.slotKeys {
		if err := lb.objs.Slots.Put(k, p.slotVals[i]); err != nil {
			lb.abort(p)
			return fmt.Errorf("bpf: write slot: %w", err)
		}
	}
	if !p.svcSame {
		if err := lb.objs.Services.Put(p.svcKey, p.svcVal); err != nil {
			lb.abort(p)
			return fmt.Errorf("bpf: write service %s: %w", svc.Frontend, err)
		}
	}
	lb.finish(p)
	return nil
}

// batchPut writes keys and values with BPF_MAP_UPDATE_BATCH in chunks.
func batchPut[K, V any](m *ebpf.Map, keys []K, vals []V) error {
	const chunk = 8192
	for i := 0; i < len(keys); i += chunk {
		j := min(i+chunk, len(keys))
		if _, err := m.BatchUpdate(keys[i:j], vals[i:j], nil); err != nil {
			return err
		}
	}
	return nil
}

// UpsertMany installs many frontends with batch map updates: all backends,
// then all slots, then all services. It implements
// [dataplane.BatchProgrammer]. If the batch writes fail, every frontend is
// reported as failed and left as it was (the [dataplane.Table] then retries
// them one by one).
func (lb *LoadBalancer) UpsertMany(_ context.Context, svcs []dataplane.Service) []error {
	errs := make([]error, len(svcs))
	var plans []*plan
	var idx []int
	var beK []uint32
	var beV []lbBackend
	var slK []lbSlotKey
	var slV []uint32
	var svK []lbSvcKey
	var svV []lbSvcVal
	for i, svc := range svcs {
		p, err := lb.prepare(svc)
		if err != nil {
			errs[i] = err
			continue
		}
		if p == nil {
			continue
		}
		plans = append(plans, p)
		idx = append(idx, i)
		beK, beV = append(beK, p.beKeys...), append(beV, p.beVals...)
		slK, slV = append(slK, p.slotKeys...), append(slV, p.slotVals...)
		if !p.svcSame {
			svK, svV = append(svK, p.svcKey), append(svV, p.svcVal)
		}
	}
	err := batchPut(lb.objs.Backends, beK, beV)
	if err == nil {
		err = batchPut(lb.objs.Slots, slK, slV)
	}
	if err == nil {
		err = batchPut(lb.objs.Services, svK, svV)
	}
	if err != nil {
		for n, p := range plans {
			lb.abort(p)
			errs[idx[n]] = fmt.Errorf("bpf: batch update: %w", err)
		}
		return errs
	}
	for _, p := range plans {
		lb.finish(p)
	}
	return errs
}

// Delete removes one frontend.
func (lb *LoadBalancer) Delete(_ context.Context, fe dataplane.Frontend) error {
	st := lb.svcs[fe]
	if st == nil {
		return nil
	}
	if err := lb.objs.Services.Delete(svcKey(fe)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("bpf: delete service %s: %w", fe, err)
	}
	for i, b := range st.backends {
		_ = lb.objs.Slots.Delete(lbSlotKey{Id: st.id, Slot: uint32(i + 1)})
		_ = lb.objs.Backends.Delete(b.id)
		lb.freeBe = append(lb.freeBe, b.id)
	}
	delete(lb.svcs, fe)
	lb.freeSvc = append(lb.freeSvc, st.id)
	return nil
}

func (lb *LoadBalancer) allocSvc() uint32 {
	if n := len(lb.freeSvc); n > 0 {
		id := lb.freeSvc[n-1]
		lb.freeSvc = lb.freeSvc[:n-1]
		return id
	}
	id := lb.nextSvc
	lb.nextSvc++
	return id
}

func (lb *LoadBalancer) allocBe() uint32 {
	if n := len(lb.freeBe); n > 0 {
		id := lb.freeBe[n-1]
		lb.freeBe = lb.freeBe[:n-1]
		return id
	}
	id := lb.nextBe
	lb.nextBe++
	return id
}

// Close releases the load balancer's file descriptors. With a PinPath the
// programs stay attached and the maps keep their content, ready for the next
// [Open]; without one the programs are detached.
func (lb *LoadBalancer) Close() error {
	lb.closeLinks()
	return lb.objs.Close()
}

// Uninstall detaches the programs, removes the pinned links and maps, and
// closes the load balancer.
func (lb *LoadBalancer) Uninstall() error {
	var errs []error
	for _, l := range lb.tcLinks {
		if lb.cfg.PinPath != "" {
			if err := l.Unpin(); err != nil {
				errs = append(errs, err)
			}
		}
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	lb.tcLinks = nil
	if lb.cfg.PinPath != "" {
		// tc links pinned by an earlier run for interfaces this one did
		// not re-adopt.
		stale, _ := filepath.Glob(filepath.Join(lb.cfg.PinPath, tcLinkPrefix+"*"))
		for _, pin := range stale {
			if err := os.Remove(pin); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	for _, l := range lb.links {
		if lb.cfg.PinPath != "" {
			if err := l.Unpin(); err != nil {
				errs = append(errs, err)
			}
		}
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	lb.links = nil
	for _, m := range []*ebpf.Map{lb.objs.Services, lb.objs.Slots, lb.objs.Backends, lb.objs.Affinity, lb.objs.Revnat, lb.objs.CtFwd, lb.objs.CtRev, lb.objs.CtSnat, lb.objs.Ct6Fwd, lb.objs.Ct6Rev, lb.objs.Ct6Snat} {
		if lb.cfg.PinPath != "" && m.IsPinned() {
			if err := m.Unpin(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := lb.objs.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Stats returns the number of entries in the services, backends and affinity
// maps, read from the kernel (for tests and debugging).
func (lb *LoadBalancer) Stats() (services, backends, affinity int, err error) {
	count := func(m *ebpf.Map) (int, error) {
		n := 0
		it := m.Iterate()
		var k, v []byte
		for it.Next(&k, &v) {
			n++
		}
		return n, it.Err()
	}
	if services, err = count(lb.objs.Services); err != nil {
		return
	}
	if backends, err = count(lb.objs.Backends); err != nil {
		return
	}
	affinity, err = count(lb.objs.Affinity)
	return
}

func svcKey(fe dataplane.Frontend) lbSvcKey {
	return lbSvcKey{Addr: addrTo(fe.Addr), Port: portTo(fe.Port), Proto: uint8(fe.Proto)}
}

// addrTo returns the 16-byte form the maps use: the address in network
// order (IPv4 as ::ffff:a.b.c.d), as four u32 whose in-memory bytes are
// those of bpf_sock_addr.user_ip6.
func addrTo(a netip.Addr) [4]uint32 {
	b := a.As16()
	var out [4]uint32
	for i := range out {
		out[i] = binary.NativeEndian.Uint32(b[4*i:])
	}
	return out
}

// addrFrom reverses addrTo; IPv4-mapped addresses become IPv4 addresses.
func addrFrom(u [4]uint32) netip.Addr {
	var b [16]byte
	for i, w := range u {
		binary.NativeEndian.PutUint32(b[4*i:], w)
	}
	return netip.AddrFrom16(b).Unmap()
}

func portTo(p uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], p)
	return binary.NativeEndian.Uint16(b[:])
}

func portFrom(u uint16) uint16 {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], u)
	return binary.BigEndian.Uint16(b[:])
}
