package dataplane

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Protocol is an IP protocol number as used in the data plane maps.
type Protocol uint8

// Protocols the data plane serves.
const (
	TCP Protocol = 6
	UDP Protocol = 17
)

// String returns "TCP" or "UDP".
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

// Frontend is the address a client connects to: a virtual IP (ClusterIP,
// external IP, load-balancer IP or node address for a NodePort), a port and a
// protocol.
type Frontend struct {
	Addr  netip.Addr
	Port  uint16
	Proto Protocol
}

// String formats the frontend as "10.96.0.10:53/UDP".
func (f Frontend) String() string {
	return netip.AddrPortFrom(f.Addr, f.Port).String() + "/" + f.Proto.String()
}

// Compare orders frontends by address, port and protocol.
func (f Frontend) Compare(o Frontend) int {
	if c := f.Addr.Compare(o.Addr); c != 0 {
		return c
	}
	if f.Port != o.Port {
		return int(f.Port) - int(o.Port)
	}
	return int(f.Proto) - int(o.Proto)
}

// Backend is one endpoint of a service port.
type Backend struct {
	Addr  netip.Addr
	Port  uint16
	Ready bool
}

// AddrPort returns the backend's address and port.
func (b Backend) AddrPort() netip.AddrPort { return netip.AddrPortFrom(b.Addr, b.Port) }

// Service is one frontend with its backends. A Kubernetes Service with two
// ports and a NodePort becomes several Service entries.
type Service struct {
	Frontend Frontend
	// Name identifies the origin for logs and metrics, "namespace/name:port".
	Name string
	// Backends lists all endpoints, ready or not, sorted by address and port.
	Backends []Backend
	// AffinityTimeout is the ClientIP session-affinity timeout; zero means no
	// affinity (a random ready backend per connection).
	AffinityTimeout time.Duration
	// KeepSource keeps the client's source address on connections arriving
	// from outside the node (externalTrafficPolicy: Local). Without it the
	// eBPF data plane source-NATs them to the node's address when the
	// backend is on another host, as kube-proxy masquerades for
	// externalTrafficPolicy: Cluster.
	KeepSource bool
}

// Ready returns the ready backends, in order.
func (s Service) Ready() []Backend {
	out := make([]Backend, 0, len(s.Backends))
	for _, b := range s.Backends {
		if b.Ready {
			out = append(out, b)
		}
	}
	return out
}

// Equal reports whether two services program the data plane identically.
func (s Service) Equal(o Service) bool {
	return s.Frontend == o.Frontend && s.Name == o.Name && s.AffinityTimeout == o.AffinityTimeout &&
		s.KeepSource == o.KeepSource && slices.Equal(s.Backends, o.Backends)
}

// Normalize sorts the backends and removes duplicates (a backend listed twice
// counts as ready if either copy is).
func (s *Service) Normalize() {
	slices.SortFunc(s.Backends, func(a, b Backend) int { return a.AddrPort().Compare(b.AddrPort()) })
	out := s.Backends[:0]
	for _, b := range s.Backends {
		if n := len(out); n > 0 && out[n-1].AddrPort() == b.AddrPort() {
			out[n-1].Ready = out[n-1].Ready || b.Ready
			continue
		}
		out = append(out, b)
	}
	s.Backends = out
}

// Programmer is a data plane mode: it installs, replaces and removes frontends.
// Upsert is called with the full desired state of one frontend. Implementations
// must be safe for use by one goroutine at a time (the [Table] serialises
// calls).
type Programmer interface {
	// Mode names the data plane ("ebpf" or "userspace") for logs.
	Mode() string
	// Upsert installs or replaces one frontend.
	Upsert(ctx context.Context, svc Service) error
	// Delete removes one frontend; deleting an unknown frontend is no error.
	Delete(ctx context.Context, fe Frontend) error
	// Programmed lists the frontends currently installed, including ones left
	// over from an earlier run (pinned eBPF maps), so a full resync can remove
	// stale entries.
	Programmed() []Frontend
}

// BatchProgrammer is implemented by data planes that install many frontends
// faster together than one by one (the eBPF maps use batch syscalls). The
// [Table] uses it for full resyncs.
type BatchProgrammer interface {
	Programmer
	// UpsertMany installs or replaces the given frontends and returns one
	// error (or nil) per service, in order.
	UpsertMany(ctx context.Context, svcs []Service) []error
}
