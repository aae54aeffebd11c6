package netproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tugboatdev/tugboat/netproxy/bpf"
	"github.com/tugboatdev/tugboat/netproxy/dataplane"
	"github.com/tugboatdev/tugboat/netproxy/route"
	"github.com/tugboatdev/tugboat/netproxy/userspace"
)

// Mode selects the data plane.
type Mode string

// Data plane modes.
const (
	// ModeAuto uses eBPF when it is available and the userspace proxy
	// otherwise.
	ModeAuto Mode = ""
	// ModeEBPF requires the eBPF socket load balancer.
	ModeEBPF Mode = "ebpf"
	// ModeUserspace uses the Go TCP/UDP proxy.
	ModeUserspace Mode = "userspace"
)

// Config configures [New].
type Config struct {
	// Mode selects the data plane; the zero value chooses automatically.
	Mode Mode
	// Cgroup is the cgroup v2 directory whose processes the eBPF programs
	// serve. eBPF mode needs it; it is never chosen implicitly.
	Cgroup string
	// ServeHost allows Cgroup to be the root of the cgroup v2 hierarchy
	// (see [bpf.Config.ServeHost]): the host's own processes are served,
	// as kube-proxy and Cilium do on a node.
	ServeHost bool
	// PinPath is a bpffs directory for the pinned maps and links (eBPF
	// mode); empty disables pinning.
	PinPath string
	// ServiceCIDR is the service range. In eBPF mode a blackhole route is
	// installed for it so no packet to a VIP leaves the machine.
	ServiceCIDR netip.Prefix
	// ServiceCIDRs are further service ranges, for example the IPv6 range of
	// a dual-stack cluster (fd00:10:96::/108); each gets a blackhole route
	// like ServiceCIDR.
	ServiceCIDRs []netip.Prefix
	// Netlink chooses the network namespace of the blackhole route; nil is
	// the namespace of the calling thread. Tests pass a handle of a
	// namespace they created.
	Netlink *netlink.Handle
	// NodeName is this node's name, for the traffic policies Local.
	NodeName string
	// NodeIPs are this node's addresses, where NodePorts are served.
	NodeIPs []netip.Addr
	// ExternalInterfaces names the node's network interfaces (in the
	// namespace of the calling thread) on which eBPF mode serves NodePorts,
	// external IPs and load-balancer IPs to clients outside the node. List
	// the interfaces towards other nodes too: answers of source-NATed
	// connections to backends there come back through them. Backends on
	// other hosts also need forwarding enabled (net.ipv4.ip_forward,
	// net.ipv6.conf.all.forwarding), which the proxy does not change.
	ExternalInterfaces []string
	// Logger receives logs; nil uses slog.Default().
	Logger *slog.Logger
}

// Proxy is the service data plane of a node: a [dataplane.Table] programming
// the eBPF load balancer or the userspace proxy, kept in sync with the store
// by [Proxy.Run].
type Proxy struct {
	cfg       Config
	log       *slog.Logger
	mode      Mode
	lb        *bpf.LoadBalancer
	us        *userspace.Proxy
	blackhole []*route.Blackhole
	table     *dataplane.Table

	synced   chan struct{}
	syncOnce sync.Once
	stats    statsRecorder
	metrics  *metrics
	// afterSet is called after an owner was programmed (tests, benchmarks).
	afterSet func(owner string, received time.Time)
}

// EBPFAvailable reports why the eBPF data plane cannot run for cfg, or nil.
func EBPFAvailable(cfg Config) error {
	if cfg.Cgroup == "" {
		return errors.New("no cgroup configured")
	}
	if os.Geteuid() != 0 {
		return errors.New("not running as root")
	}
	var st unix.Statfs_t
	if err := unix.Statfs(cfg.Cgroup, &st); err != nil {
		return fmt.Errorf("cgroup %s: %w", cfg.Cgroup, err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return fmt.Errorf("%s is not on cgroup v2", cfg.Cgroup)
	}
	return nil
}

// New sets up the data plane chosen by cfg.Mode and logs which mode runs.
func New(ctx context.Context, cfg Config) (*Proxy, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	p := &Proxy{cfg: cfg, log: log, synced: make(chan struct{})}
	p.metrics = newMetrics(p)
	var reason error
	if cfg.Mode == ModeAuto || cfg.Mode == ModeEBPF {
		reason = EBPFAvailable(cfg)
		if reason == nil {
			lb, err := bpf.Open(ctx, bpf.Config{Cgroup: cfg.Cgroup, ServeHost: cfg.ServeHost, PinPath: cfg.PinPath, Logger: log})
			if err == nil {
				p.lb, p.mode = lb, ModeEBPF
			} else {
				reason = err
			}
		}
		if reason != nil && cfg.Mode == ModeEBPF {
			return nil, fmt.Errorf("netproxy: eBPF mode unavailable: %w", reason)
		}
	}
	switch p.mode {
	case ModeEBPF:
		fail := func(err error) (*Proxy, error) {
			p.lb.Close()
			for _, bh := range p.blackhole {
				bh.Remove()
			}
			return nil, err
		}
		for _, cidr := range append([]netip.Prefix{cfg.ServiceCIDR}, cfg.ServiceCIDRs...) {
			if !cidr.IsValid() {
				continue
			}
			bh, err := route.InstallBlackhole(cfg.Netlink, cidr)
			if err != nil {
				return fail(fmt.Errorf("netproxy: %w", err))
			}
			p.blackhole = append(p.blackhole, bh)
		}
		for _, name := range cfg.ExternalInterfaces {
			ifc, err := net.InterfaceByName(name)
			if err == nil {
				err = p.lb.AttachExternal(ifc.Index)
			}
			if err != nil {
				return fail(fmt.Errorf("netproxy: external interface %s: %w", name, err))
			}
		}
		p.table = dataplane.NewTable(p.lb)
		log.Info("netproxy data plane mode: ebpf (socket load balancer)", "mode", "ebpf", "cgroup", cfg.Cgroup, "pinPath", cfg.PinPath, "serviceCIDR", cfg.ServiceCIDR, "serviceCIDRs", cfg.ServiceCIDRs)
	default:
		p.mode = ModeUserspace
		p.us = userspace.New(userspace.Config{Logger: log})
		p.table = dataplane.NewTable(p.us)
		attrs := []any{"mode", "userspace"}
		if reason != nil {
			attrs = append(attrs, "reason", reason.Error())
		}
		log.Info("netproxy data plane mode: userspace (Go TCP/UDP proxy)", attrs...)
	}
	return p, nil
}

// Mode returns the data plane that runs.
func (p *Proxy) Mode() Mode { return p.mode }

// Table returns the data plane table, to program services by hand or
// inspect them.
func (p *Proxy) Table() *dataplane.Table { return p.table }

// Synced is closed once the first full resync from the store is done.
func (p *Proxy) Synced() <-chan struct{} { return p.synced }

// Close stops the data plane. In eBPF mode with a PinPath the programs stay
// attached and the maps and the blackhole route stay, so a restarted proxy
// takes over without disturbing connections; use [Proxy.Uninstall] to remove
// everything.
func (p *Proxy) Close() error {
	if p.lb != nil {
		return p.lb.Close()
	}
	return p.us.Close()
}

// Uninstall removes everything the proxy installed: programs, pinned maps
// and links, and the blackhole route.
func (p *Proxy) Uninstall() error {
	var errs []error
	if p.lb != nil {
		errs = append(errs, p.lb.Uninstall())
	} else {
		errs = append(errs, p.us.Close())
	}
	for _, bh := range p.blackhole {
		errs = append(errs, bh.Remove())
	}
	return errors.Join(errs...)
}
