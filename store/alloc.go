package store

import (
	"fmt"
	"math/big"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// serviceAlloc hands out Service clusterIPs and NodePorts when a Service is
// written, as the API server's Service storage does: a requested address or
// port that is out of range or held by another Service fails the write
// with Invalid, and what a Service held is released when it is deleted or
// stops needing it. It is changed only while seqMu is held (the commit path
// sequences every write), so it always agrees with the sequenced state.
type serviceAlloc struct {
	cidrs []netip.Prefix // primary family first
	ports PortRange
	ips   map[netip.Addr]string // address -> service key
	nps   map[int32]string      // node port (and health-check node port) -> service key
	held  map[string]holding    // service key -> what it holds
	next  map[int]uint64        // per CIDR: offset to try next
	np    int32                 // node port to try next
}

func newServiceAlloc(cfg *Config) *serviceAlloc {
	a := &serviceAlloc{ports: cfg.NodePortRange, ips: map[netip.Addr]string{}, nps: map[int32]string{}, held: map[string]holding{}, next: map[int]uint64{}, np: cfg.NodePortRange.Min}
	for _, c := range []netip.Prefix{cfg.ServiceCIDR, cfg.SecondaryServiceCIDR} {
		if c.IsValid() {
			a.cidrs = append(a.cidrs, c.Masked())
		}
	}
	return a
}

// family returns the CIDR index serving family f, or -1.
func (a *serviceAlloc) family(f corev1.IPFamily) int {
	for i, c := range a.cidrs {
		if (f == corev1.IPv6Protocol) == c.Addr().Is6() {
			return i
		}
	}
	return -1
}

func familyOf(addr netip.Addr) corev1.IPFamily {
	if addr.Is4() {
		return corev1.IPv4Protocol
	}
	return corev1.IPv6Protocol
}

// size is the number of addresses of CIDR i (capped), and firstDynamic the
// offset dynamic allocation starts at: a low band stays free for
// addresses asked for by name, such as the cluster DNS service's, as
// upstream's allocator prefers.
func (a *serviceAlloc) size(i int) uint64 {
	return uint64(1) << min(a.cidrs[i].Addr().BitLen()-a.cidrs[i].Bits(), 62)
}

func (a *serviceAlloc) firstDynamic(i int) uint64 {
	size := a.size(i)
	if first := min(max(size/16, 16), 256); first < size {
		return first
	}
	return 1
}

func (a *serviceAlloc) addrAt(i int, off uint64) netip.Addr {
	base := new(big.Int).SetBytes(a.cidrs[i].Addr().AsSlice())
	base.Add(base, new(big.Int).SetUint64(off))
	addr, _ := netip.AddrFromSlice(base.FillBytes(make([]byte, len(a.cidrs[i].Addr().AsSlice()))))
	return addr
}

// usable excludes the network address and, for IPv4, the broadcast address.
func (a *serviceAlloc) usable(i int, off uint64) bool {
	return off != 0 && (a.cidrs[i].Addr().Is6() || off != a.size(i)-1)
}

// freeIP finds an address in CIDR i that nobody holds and that reserved
// (picked earlier in the same write) does not hold.
func (a *serviceAlloc) freeIP(i int, reserved []netip.Addr) (netip.Addr, bool) {
	size, first := a.size(i), a.firstDynamic(i)
	start := a.next[i]
	if start < first || start >= size {
		start = first
	}
	for n, off := uint64(0), start; n < size; n, off = n+1, off+1 {
		if off >= size {
			off = 1
		}
		if !a.usable(i, off) {
			continue
		}
		addr := a.addrAt(i, off)
		if _, held := a.ips[addr]; !held && !slices.Contains(reserved, addr) {
			return addr, true
		}
	}
	return netip.Addr{}, false
}

// freePort finds a node port nobody holds and that reserved does not hold.
func (a *serviceAlloc) freePort(reserved []int32) (int32, bool) {
	n := a.ports.Max - a.ports.Min + 1
	p := a.np
	for i := int32(0); i < n; i, p = i+1, p+1 {
		if p > a.ports.Max || p < a.ports.Min {
			p = a.ports.Min
		}
		if _, held := a.nps[p]; !held && !slices.Contains(reserved, p) {
			return p, true
		}
	}
	return 0, false
}

// assign fills in the clusterIPs, IP families and node ports svc needs
// (keeping those prev, the Service before an update, already holds) and
// checks the ones it asks for. It changes svc, not the allocator: record
// does that once the write is sure to happen.
func (a *serviceAlloc) assign(key string, svc, prev *corev1.Service) field.ErrorList {
	spec, fld := &svc.Spec, field.NewPath("spec")
	if spec.Type == corev1.ServiceTypeExternalName {
		spec.ClusterIP, spec.ClusterIPs, spec.IPFamilies, spec.IPFamilyPolicy = "", nil, nil, nil
		for i := range spec.Ports {
			spec.Ports[i].NodePort = 0
		}
		return nil
	}
	if prev != nil && prev.Spec.Type != corev1.ServiceTypeExternalName {
		keepAllocated(spec, &prev.Spec)
	}
	var errs field.ErrorList
	errs = append(errs, a.assignIPs(key, spec, fld)...)
	errs = append(errs, a.assignPorts(key, spec, fld)...)
	return errs
}

// keepAllocated carries over what an update left out, as upstream does: the
// clusterIPs and families, and the node port of a port that stays.
func keepAllocated(spec, old *corev1.ServiceSpec) {
	if spec.ClusterIP == "" && len(spec.ClusterIPs) == 0 && old.ClusterIP != "" {
		spec.ClusterIP, spec.ClusterIPs = old.ClusterIP, slices.Clone(old.ClusterIPs)
		if len(spec.IPFamilies) == 0 {
			spec.IPFamilies = slices.Clone(old.IPFamilies)
		}
		if spec.IPFamilyPolicy == nil {
			spec.IPFamilyPolicy = old.IPFamilyPolicy
		}
	}
	if spec.Type != corev1.ServiceTypeNodePort && spec.Type != corev1.ServiceTypeLoadBalancer {
		return
	}
	for i := range spec.Ports {
		p := &spec.Ports[i]
		if p.NodePort != 0 {
			continue
		}
		for _, op := range old.Ports {
			if op.NodePort != 0 && op.Protocol == p.Protocol && (op.Port == p.Port || (op.Name != "" && op.Name == p.Name)) {
				p.NodePort = op.NodePort
				break
			}
		}
	}
	if spec.HealthCheckNodePort == 0 {
		spec.HealthCheckNodePort = old.HealthCheckNodePort
	}
}

func (a *serviceAlloc) assignIPs(key string, spec *corev1.ServiceSpec, fld *field.Path) field.ErrorList {
	if spec.ClusterIP != "" && len(spec.ClusterIPs) == 0 {
		spec.ClusterIPs = []string{spec.ClusterIP}
	}
	if len(spec.ClusterIPs) > 0 && spec.ClusterIP == "" {
		spec.ClusterIP = spec.ClusterIPs[0]
	}
	if len(spec.ClusterIPs) > 0 && spec.ClusterIPs[0] != spec.ClusterIP {
		return field.ErrorList{field.Invalid(fld.Child("clusterIPs").Index(0), spec.ClusterIPs, "must match `clusterIP` when present")}
	}
	headless := spec.ClusterIP == corev1.ClusterIPNone
	// The families: those asked for, else those of the requested
	// addresses, else the cluster's primary family; a dual-stack policy
	// adds the other family when the cluster has one.
	var errs field.ErrorList
	fams := slices.Clone(spec.IPFamilies)
	if len(fams) == 0 && !headless {
		for i, ip := range spec.ClusterIPs {
			addr, err := netip.ParseAddr(ip)
			if err != nil {
				errs = append(errs, field.Invalid(fld.Child("clusterIPs").Index(i), ip, "must be a valid IP address"))
				continue
			}
			fams = append(fams, familyOf(addr))
		}
	}
	if len(fams) == 0 {
		fams = []corev1.IPFamily{familyOf(a.cidrs[0].Addr())}
	}
	policy := corev1.IPFamilyPolicySingleStack
	if spec.IPFamilyPolicy != nil {
		policy = *spec.IPFamilyPolicy
	} else if len(fams) > 1 {
		policy = corev1.IPFamilyPolicyRequireDualStack
	}
	switch policy {
	case corev1.IPFamilyPolicySingleStack:
		if len(fams) > 1 {
			errs = append(errs, field.Invalid(fld.Child("ipFamilies"), fams, "when spec.ipFamilyPolicy is SingleStack, at most one IP family may be given"))
		}
	case corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack:
		if len(a.cidrs) < 2 && policy == corev1.IPFamilyPolicyRequireDualStack {
			errs = append(errs, field.Invalid(fld.Child("ipFamilyPolicy"), policy, "this cluster is not configured for dual-stack services"))
		}
		if len(fams) == 1 && len(a.cidrs) > 1 {
			other := corev1.IPv6Protocol
			if fams[0] == corev1.IPv6Protocol {
				other = corev1.IPv4Protocol
			}
			fams = append(fams, other)
		}
	default:
		errs = append(errs, field.NotSupported(fld.Child("ipFamilyPolicy"), policy, []string{string(corev1.IPFamilyPolicySingleStack), string(corev1.IPFamilyPolicyPreferDualStack), string(corev1.IPFamilyPolicyRequireDualStack)}))
	}
	if len(fams) > 2 || (len(fams) == 2 && fams[0] == fams[1]) {
		errs = append(errs, field.Invalid(fld.Child("ipFamilies"), fams, "may hold at most one IPv4 and one IPv6 family"))
	}
	for i, f := range fams {
		if a.family(f) < 0 {
			errs = append(errs, field.Invalid(fld.Child("ipFamilies").Index(i), f, "not configured on this cluster"))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	spec.IPFamilies, spec.IPFamilyPolicy = fams, &policy
	if headless {
		spec.ClusterIPs = []string{corev1.ClusterIPNone}
		return nil
	}
	var picked []netip.Addr
	ips := make([]string, len(fams))
	for i, f := range fams {
		ci := a.family(f)
		if i < len(spec.ClusterIPs) {
			p := fld.Child("clusterIPs").Index(i)
			addr, err := netip.ParseAddr(spec.ClusterIPs[i])
			switch {
			case err != nil:
				errs = append(errs, field.Invalid(p, spec.ClusterIPs[i], "must be a valid IP address"))
			case familyOf(addr) != f:
				errs = append(errs, field.Invalid(p, spec.ClusterIPs[i], fmt.Sprintf("expected an %s value as indicated by `ipFamilies[%d]`", f, i)))
			case !a.cidrs[ci].Contains(addr):
				errs = append(errs, field.Invalid(p, spec.ClusterIPs[i], fmt.Sprintf("failed to allocate IP %s: the provided IP (%s) is not in the valid range. The range of valid IPs is %s", addr, addr, a.cidrs[ci])))
			case a.ips[addr] != "" && a.ips[addr] != key || slices.Contains(picked, addr):
				errs = append(errs, field.Invalid(p, spec.ClusterIPs[i], fmt.Sprintf("failed to allocate IP %s: provided IP is already allocated", addr)))
			default:
				ips[i] = addr.String()
				picked = append(picked, addr)
			}
			continue
		}
		addr, ok := a.freeIP(ci, picked)
		if !ok {
			errs = append(errs, field.Invalid(fld.Child("clusterIPs").Index(i), "", fmt.Sprintf("failed to allocate a serviceIP: range %s is full", a.cidrs[ci])))
			continue
		}
		ips[i] = addr.String()
		picked = append(picked, addr)
	}
	if len(spec.ClusterIPs) > len(fams) {
		errs = append(errs, field.Invalid(fld.Child("clusterIPs"), spec.ClusterIPs, "may not hold more addresses than `ipFamilies`"))
	}
	if len(errs) > 0 {
		return errs
	}
	spec.ClusterIPs, spec.ClusterIP = ips, ips[0]
	return nil
}

func (a *serviceAlloc) assignPorts(key string, spec *corev1.ServiceSpec, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.Type != corev1.ServiceTypeNodePort && spec.Type != corev1.ServiceTypeLoadBalancer {
		spec.HealthCheckNodePort = 0
		return nil
	}
	var picked []int32
	taken := func(p int32) bool {
		return a.nps[p] != "" && a.nps[p] != key
	}
	want := func(p int32, path *field.Path) {
		switch {
		case p < a.ports.Min || p > a.ports.Max:
			errs = append(errs, field.Invalid(path, p, fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %s", a.ports)))
		case taken(p):
			errs = append(errs, field.Invalid(path, p, "provided port is already allocated"))
		default:
			picked = append(picked, p)
		}
	}
	for i := range spec.Ports {
		if p := spec.Ports[i].NodePort; p != 0 {
			want(p, fld.Child("ports").Index(i).Child("nodePort"))
		}
	}
	if p := spec.HealthCheckNodePort; p != 0 {
		want(p, fld.Child("healthCheckNodePort"))
	}
	if len(errs) > 0 {
		return errs
	}
	// Ports without one get a free one; a port number with TCP and UDP
	// entries shares its node port, as upstream's allocator does.
	for i := range spec.Ports {
		p := &spec.Ports[i]
		if p.NodePort != 0 {
			continue
		}
		for _, q := range spec.Ports[:i] {
			if q.Port == p.Port && q.Protocol != p.Protocol && q.NodePort != 0 {
				p.NodePort = q.NodePort
			}
		}
		if p.NodePort != 0 {
			continue
		}
		np, ok := a.freePort(picked)
		if !ok {
			return field.ErrorList{field.Invalid(fld.Child("ports").Index(i).Child("nodePort"), 0, fmt.Sprintf("failed to allocate a nodePort: range %s is full", a.ports))}
		}
		p.NodePort = np
		picked = append(picked, np)
	}
	if spec.Type == corev1.ServiceTypeLoadBalancer && spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal && spec.HealthCheckNodePort == 0 {
		np, ok := a.freePort(picked)
		if !ok {
			return field.ErrorList{field.Invalid(fld.Child("healthCheckNodePort"), 0, fmt.Sprintf("failed to allocate a nodePort: range %s is full", a.ports))}
		}
		spec.HealthCheckNodePort = np
	}
	return nil
}

// record makes the allocator hold what the Service at key holds after a
// write: svc nil means the Service is gone.
func (a *serviceAlloc) record(key string, svc *corev1.Service) {
	h := a.held[key]
	for _, addr := range h.ips {
		if a.ips[addr] == key {
			delete(a.ips, addr)
		}
	}
	for _, p := range h.ports {
		if a.nps[p] == key {
			delete(a.nps, p)
		}
	}
	delete(a.held, key)
	if svc == nil {
		return
	}
	h = holding{}
	for _, ip := range svc.Spec.ClusterIPs {
		if addr, err := netip.ParseAddr(ip); err == nil {
			if _, held := a.ips[addr]; !held {
				a.ips[addr] = key
				h.ips = append(h.ips, addr)
			}
			for i := range a.cidrs {
				if a.cidrs[i].Contains(addr) {
					a.next[i] = a.offset(i, addr) + 1
				}
			}
		}
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 {
			if _, held := a.nps[p.NodePort]; !held {
				a.nps[p.NodePort] = key
				h.ports = append(h.ports, p.NodePort)
			}
			a.np = p.NodePort + 1
		}
	}
	if p := svc.Spec.HealthCheckNodePort; p != 0 {
		if _, held := a.nps[p]; !held {
			a.nps[p] = key
			h.ports = append(h.ports, p)
		}
	}
	if len(h.ips)+len(h.ports) > 0 {
		a.held[key] = h
	}
}

// holding is what one Service holds.
type holding struct {
	ips   []netip.Addr
	ports []int32
}

func (a *serviceAlloc) offset(i int, addr netip.Addr) uint64 {
	d := new(big.Int).Sub(new(big.Int).SetBytes(addr.AsSlice()), new(big.Int).SetBytes(a.cidrs[i].Addr().AsSlice()))
	return d.Uint64()
}
