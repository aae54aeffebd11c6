package cni

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// ipStore allocates pod IPs in this process with the on-disk store of the
// host-local IPAM plugin (containernetworking-plugins), so that the two
// allocate from one pool without conflicts and either releases what the
// other reserved:
//
//   - the store of network <name> is the directory <dataDir>/<name>;
//   - every operation holds an exclusive flock on its file "lock";
//   - an allocated IP is a file named by the IP whose content is
//     "<container id>\r\n<interface name>" (older plugin versions wrote
//     the container id alone);
//   - "last_reserved_ip.0" holds the last IP handed out from the (single)
//     range; the next allocation starts after it, wrapping around.
//
// The range is the pod CIDR without its network and broadcast addresses;
// its first address is the gateway (the bridge) and is never allocated.
// This replaces one plugin process per pod start and one per pod removal
// (host-local, run by the bridge plugin), about 6 ms of CPU each on the
// machine of BENCHMARKS.md.
type ipStore struct {
	dir     string
	subnet  netip.Prefix
	gateway netip.Addr
	first   netip.Addr // first allocatable address
	last    netip.Addr // last allocatable address

	// mu guards mine: what this process allocated, by owner, so that a
	// release need not read every allocation file to find its IP.
	mu   sync.Mutex
	mine map[string]netip.Addr
}

const (
	// storeLineBreak separates the container id and the interface name in
	// an allocation file, as host-local writes it.
	storeLineBreak = "\r\n"
	// lastReservedFile is host-local's record of the last IP it handed
	// out from range set 0.
	lastReservedFile = "last_reserved_ip.0"
	lockFile         = "lock"
)

// newIPStore makes the store for network name under dataDir (host-local's
// default /var/lib/cni/networks when empty) allocating from subnet.
func newIPStore(dataDir, name string, subnet netip.Prefix) (*ipStore, error) {
	subnet = subnet.Masked()
	if !subnet.Addr().Is4() || subnet.Bits() > 30 {
		return nil, fmt.Errorf("cni: pod CIDR %v: need an IPv4 prefix of at most /30", subnet)
	}
	if dataDir == "" {
		dataDir = filepath.Join(libcniDir, "networks")
	}
	gw := subnet.Addr().Next()
	return &ipStore{
		dir: filepath.Join(dataDir, name), subnet: subnet, gateway: gw,
		first: gw, last: broadcast(subnet).Prev(), mine: map[string]netip.Addr{},
	}, nil
}

// broadcast is the last address of an IPv4 prefix.
func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// locked runs fn holding the store's lock, as host-local does.
func (s *ipStore) locked(fn func() error) error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("cni: ipam: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("cni: ipam: %w", err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("cni: ipam: lock %s: %w", f.Name(), err)
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN) //nolint:errcheck // closing releases it too
	return fn()
}

// owner is the content of an allocation file for id and ifname.
func owner(id, ifname string) string { return strings.TrimSpace(id) + storeLineBreak + ifname }

// ownedBy reports whether the content of an allocation file names the
// container id on interface ifname (or, as older host-local versions
// wrote it, the container id alone).
func ownedBy(content []byte, id, ifname string) bool {
	c := strings.TrimSpace(string(content))
	return c == owner(id, ifname) || c == strings.TrimSpace(id)
}

// parseLastReserved reads last_reserved_ip.0; anything that is not an
// IPv4 address of the subnet counts as no record.
func (s *ipStore) parseLastReserved(b []byte) (netip.Addr, bool) {
	a, err := netip.ParseAddr(strings.TrimSpace(string(b)))
	if err != nil || !a.Is4() || !s.subnet.Contains(a) {
		return netip.Addr{}, false
	}
	return a, true
}

// allocate reserves an IP for container id on interface ifname and
// returns it with the subnet's prefix length. Unlike host-local it does
// not first look for an IP the id already holds (that reads every
// allocation file): sandbox ids are fresh, Setup releases what it
// allocated when it fails, and release frees every IP of an id.
func (s *ipStore) allocate(id, ifname string) (netip.Prefix, error) {
	var got netip.Addr
	err := s.locked(func() error {
		start := s.first
		if b, err := os.ReadFile(filepath.Join(s.dir, lastReservedFile)); err == nil {
			if last, ok := s.parseLastReserved(b); ok {
				start = last.Next()
			}
		}
		if start.Less(s.first) || s.last.Less(start) {
			start = s.first
		}
		a := start
		for {
			if a != s.gateway {
				ok, err := s.reserve(a, id, ifname)
				if err != nil {
					return err
				}
				if ok {
					got = a
					return nil
				}
			}
			if a = a.Next(); s.last.Less(a) {
				a = s.first
			}
			if a == start {
				return fmt.Errorf("cni: ipam: no IP addresses available in %v", s.subnet)
			}
		}
	})
	if err != nil {
		return netip.Prefix{}, err
	}
	s.mu.Lock()
	s.mine[owner(id, ifname)] = got
	s.mu.Unlock()
	return netip.PrefixFrom(got, s.subnet.Bits()), nil
}

// reserve creates a's allocation file unless it exists, and records a as
// the last reserved IP.
func (s *ipStore) reserve(a netip.Addr, id, ifname string) (bool, error) {
	name := filepath.Join(s.dir, a.String())
	f, err := os.OpenFile(name, os.O_RDWR|os.O_EXCL|os.O_CREATE, 0o644)
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cni: ipam: %w", err)
	}
	_, err = f.WriteString(owner(id, ifname))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return false, fmt.Errorf("cni: ipam: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, lastReservedFile), []byte(a.String()), 0o644); err != nil {
		os.Remove(name)
		return false, fmt.Errorf("cni: ipam: %w", err)
	}
	return true, nil
}

// allocationFiles lists the store's allocation files (named by an IP).
func (s *ipStore) allocationFiles() []string {
	entries, _ := os.ReadDir(s.dir)
	var out []string
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err == nil && e.Type().IsRegular() {
			out = append(out, e.Name())
		}
	}
	return out
}

// release frees every IP the store holds for id on ifname; none is not an
// error (releasing is idempotent, as host-local's DEL).
func (s *ipStore) release(id, ifname string) error {
	if _, err := os.Stat(s.dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	key := owner(id, ifname)
	s.mu.Lock()
	a, known := s.mine[key]
	delete(s.mine, key)
	s.mu.Unlock()
	return s.locked(func() error {
		if known {
			// Allocated by this process: its file, unless something else
			// (host-local's DEL) released it meanwhile.
			p := filepath.Join(s.dir, a.String())
			if b, err := os.ReadFile(p); err == nil && ownedBy(b, id, ifname) {
				if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("cni: ipam: %w", err)
				}
				return nil
			}
		}
		var errs []error
		for _, name := range s.allocationFiles() {
			p := filepath.Join(s.dir, name)
			b, err := os.ReadFile(p)
			if err == nil && ownedBy(b, id, ifname) {
				if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, fmt.Errorf("cni: ipam: %w", err))
				}
			}
		}
		return errors.Join(errs...)
	})
}
