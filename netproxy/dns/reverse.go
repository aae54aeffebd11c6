package dns

import (
	"net/netip"
	"strconv"
	"strings"

	mdns "github.com/miekg/dns"
)

// Reverse zones the server answers PTR queries in.
const (
	reverseZone4 = "in-addr.arpa."
	reverseZone6 = "ip6.arpa."
)

// ParseReverseName returns the address a reverse-lookup name stands for:
// "4.3.2.1.in-addr.arpa." is 1.2.3.4, and 32 nibble labels under ip6.arpa.
// an IPv6 address. Names of partial addresses (a reverse zone's inner
// nodes) and anything else give ok false. Case does not matter and the
// final dot is optional.
func ParseReverseName(name string) (addr netip.Addr, ok bool) {
	name = strings.ToLower(mdns.Fqdn(name))
	if rest, found := strings.CutSuffix(name, "."+reverseZone4); found {
		labels := strings.Split(rest, ".")
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, l := range labels {
			// Decimal octets without leading zeros, as the zone names them.
			if l == "" || len(l) > 3 || (len(l) > 1 && l[0] == '0') {
				return netip.Addr{}, false
			}
			v, err := strconv.ParseUint(l, 10, 8)
			if err != nil {
				return netip.Addr{}, false
			}
			b[3-i] = byte(v)
		}
		return netip.AddrFrom4(b), true
	}
	if rest, found := strings.CutSuffix(name, "."+reverseZone6); found {
		labels := strings.Split(rest, ".")
		if len(labels) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, l := range labels {
			if len(l) != 1 {
				return netip.Addr{}, false
			}
			v, err := strconv.ParseUint(l, 16, 8)
			if err != nil {
				return netip.Addr{}, false
			}
			n := 31 - i // nibble index from the most significant
			if n%2 == 0 {
				b[n/2] |= byte(v) << 4
			} else {
				b[n/2] |= byte(v)
			}
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

// isReverse reports whether name (lower case, fully qualified) is in a
// reverse zone, and which.
func isReverse(name string) (zone string, ok bool) {
	for _, z := range []string{reverseZone4, reverseZone6} {
		if mdns.IsSubDomain(z, name) {
			return z, true
		}
	}
	return "", false
}

// ptrTarget returns the cluster name of ip as the upstream CoreDNS
// kubernetes plugin gives it: <svc>.<ns>.svc.<zone> for a ClusterIP,
// <endpoint>.<svc>.<ns>.svc.<zone> for a ready endpoint (its hostname or
// dashed address), and for other pod IPs <hostname>.<subdomain>.<ns>.svc.<zone>
// when the pod sets both, else <dashed-ip>.<ns>.pod.<zone>.
func (s *Server) ptrTarget(ip netip.Addr) (string, bool) {
	ip = ip.Unmap()
	c := s.cat
	c.mu.RLock()
	defer c.mu.RUnlock()
	if k, ok := c.svcByIP[ip]; ok {
		return k.name + "." + k.ns + ".svc." + s.zone, true
	}
	// Ready endpoints (all with publishNotReadyAddresses) of existing
	// services; when several list the address, the first name in order.
	best := ""
	for sk := range c.sliceByIP[ip] {
		sl := c.slices[sk]
		svc := c.services[nsName{sl.Namespace, sliceService(sl)}]
		if svc == nil {
			continue
		}
		for _, e := range sl.Endpoints {
			if !svc.Spec.PublishNotReadyAddresses && e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			host := ""
			if e.Hostname != nil {
				host = *e.Hostname
			}
			for _, a := range e.Addresses {
				if addr, err := netip.ParseAddr(a); err != nil || addr.Unmap() != ip {
					continue
				}
				name := endpointName(endpoint{addr: ip, hostname: host}) + "." + svc.Name + "." + svc.Namespace + ".svc." + s.zone
				if best == "" || name < best {
					best = name
				}
			}
		}
	}
	if best != "" {
		return best, true
	}
	if p := c.podByIP[ip]; p != nil {
		if p.Spec.Hostname != "" && p.Spec.Subdomain != "" {
			return strings.ToLower(p.Spec.Hostname + "." + p.Spec.Subdomain + "." + p.Namespace + ".svc." + s.zone), true
		}
		return dashed(ip) + "." + p.Namespace + ".pod." + s.zone, true
	}
	return "", false
}

func dashed(ip netip.Addr) string {
	return strings.NewReplacer(".", "-", ":", "-").Replace(ip.String())
}

// reverse answers a query in a reverse zone: found is false when the name
// is no cluster address (the query may then be forwarded).
func (s *Server) reverse(name string, qtype uint16) (ans []mdns.RR, found bool) {
	ip, ok := ParseReverseName(name)
	if !ok {
		return nil, false
	}
	target, ok := s.ptrTarget(ip)
	if !ok {
		return nil, false
	}
	if qtype != mdns.TypePTR && qtype != mdns.TypeANY {
		return nil, true
	}
	return []mdns.RR{&mdns.PTR{Hdr: s.hdr(name, mdns.TypePTR), Ptr: target}}, true
}
