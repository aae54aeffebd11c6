package dataplane

import (
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// DefaultAffinityTimeout is the ClientIP affinity timeout when the Service
// does not set one (Kubernetes' default, three hours).
const DefaultAffinityTimeout = 10800 * time.Second

// Options tune [FromService].
type Options struct {
	// NodeName is this node's name. With it, externalTrafficPolicy: Local
	// (for NodePorts, external and load-balancer IPs) and
	// internalTrafficPolicy: Local (for ClusterIPs) keep only the endpoints
	// whose nodeName is this node; without it those policies are served as
	// Cluster (and [Unsupported] reports them).
	NodeName string
	// NodeIPs are this node's addresses; each NodePort is served on every one
	// of them.
	NodeIPs []netip.Addr
}

// FromService translates a Service and its EndpointSlices into data plane
// entries: one per (ClusterIP, external IP, load-balancer ingress IP or node
// address) × service port. Headless and ExternalName services, and ports with
// an unsupported protocol, produce nothing. Endpoint ports are matched to
// service ports by name, so a named targetPort resolves per endpoint as the
// EndpointSlice controller recorded it. Slices of another address family than
// the frontend are ignored.
func FromService(svc *corev1.Service, slices []*discoveryv1.EndpointSlice, opts Options) []Service {
	if svc == nil || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	var vips []netip.Addr
	for _, s := range append([]string{svc.Spec.ClusterIP}, svc.Spec.ClusterIPs...) {
		if s == "" || s == corev1.ClusterIPNone {
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			vips = appendUnique(vips, a.Unmap())
		}
	}
	if len(vips) == 0 {
		return nil // headless
	}
	var external []netip.Addr
	for _, s := range svc.Spec.ExternalIPs {
		if a, err := netip.ParseAddr(s); err == nil {
			external = appendUnique(external, a.Unmap())
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if a, err := netip.ParseAddr(in.IP); err == nil {
				external = appendUnique(external, a.Unmap())
			}
		}
	}
	var affinity time.Duration
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		affinity = DefaultAffinityTimeout
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil && *c.ClientIP.TimeoutSeconds > 0 {
			affinity = time.Duration(*c.ClientIP.TimeoutSeconds) * time.Second
		}
	}
	var out []Service
	for _, sp := range svc.Spec.Ports {
		var proto Protocol
		switch sp.Protocol {
		case corev1.ProtocolTCP, "":
			proto = TCP
		case corev1.ProtocolUDP:
			proto = UDP
		default:
			continue
		}
		name := svc.Namespace + "/" + svc.Name + ":" + portName(sp)
		v4 := backendsFor(slices, discoveryv1.AddressTypeIPv4, sp, proto)
		v6 := backendsFor(slices, discoveryv1.AddressTypeIPv6, sp, proto)
		add := func(a netip.Addr, p32 int32, localOnly, external bool) {
			if p32 <= 0 || p32 > 65535 {
				return
			}
			port := uint16(p32)
			cands := v4
			if a.Is6() {
				cands = v6
			}
			be := make([]Backend, 0, len(cands))
			for _, c := range cands {
				if !localOnly || opts.NodeName == "" || c.node == opts.NodeName {
					be = append(be, c.Backend)
				}
			}
			s := Service{Frontend: Frontend{Addr: a, Port: port, Proto: proto}, Name: name,
				Backends: be, AffinityTimeout: affinity, KeepSource: external && localOnly}
			s.Normalize()
			out = append(out, s)
		}
		internalLocal := svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal
		externalLocal := svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
		for _, a := range vips {
			add(a, sp.Port, internalLocal, false)
		}
		for _, a := range external {
			add(a, sp.Port, externalLocal, true)
		}
		if sp.NodePort != 0 && (svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer) {
			for _, a := range opts.NodeIPs {
				add(a.Unmap(), sp.NodePort, externalLocal, true)
			}
		}
	}
	return out
}

func portName(sp corev1.ServicePort) string {
	if sp.Name != "" {
		return sp.Name
	}
	return itoa(int(sp.Port))
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}

// candidate is a backend with the node its endpoint runs on.
type candidate struct {
	Backend
	node string
}

func backendsFor(slices []*discoveryv1.EndpointSlice, family discoveryv1.AddressType, sp corev1.ServicePort, proto Protocol) []candidate {
	var out []candidate
	var terminating []bool
	for _, sl := range slices {
		if sl == nil || sl.AddressType != family {
			continue
		}
		var port int32 = -1
		for _, ep := range sl.Ports {
			name := ""
			if ep.Name != nil {
				name = *ep.Name
			}
			p := corev1.ProtocolTCP
			if ep.Protocol != nil {
				p = *ep.Protocol
			}
			if name == sp.Name && ((proto == TCP && p == corev1.ProtocolTCP) || (proto == UDP && p == corev1.ProtocolUDP)) && ep.Port != nil {
				port = *ep.Port
				break
			}
		}
		if port <= 0 || port > 65535 {
			continue
		}
		for _, e := range sl.Endpoints {
			// Kubernetes: a nil ready condition means ready.
			ready := e.Conditions.Ready == nil || *e.Conditions.Ready
			for _, s := range e.Addresses {
				a, err := netip.ParseAddr(s)
				if err != nil {
					continue
				}
				node := ""
				if e.NodeName != nil {
					node = *e.NodeName
				}
				out = append(out, candidate{Backend: Backend{Addr: a.Unmap(), Port: uint16(port), Ready: ready}, node: node})
				terminating = append(terminating, !ready && e.Conditions.Serving != nil && *e.Conditions.Serving &&
					e.Conditions.Terminating != nil && *e.Conditions.Terminating)
			}
		}
	}
	// As kube-proxy does: when no endpoint is ready, endpoints that are
	// terminating but still serving take the traffic rather than none.
	for _, b := range out {
		if b.Ready {
			return out
		}
	}
	for i := range out {
		out[i].Ready = terminating[i]
	}
	return out
}

// Unsupported lists the fields of svc that the data plane accepts but does
// not implement with opts, so callers can warn instead of ignoring them
// silently.
func Unsupported(svc *corev1.Service, opts Options) []string {
	var out []string
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal && opts.NodeName == "" {
		out = append(out, "spec.externalTrafficPolicy: Local is served as Cluster (no node name configured)")
	}
	if p := svc.Spec.InternalTrafficPolicy; p != nil && *p == corev1.ServiceInternalTrafficPolicyLocal && opts.NodeName == "" {
		out = append(out, "spec.internalTrafficPolicy: Local is served as Cluster (no node name configured)")
	}
	if svc.Spec.TrafficDistribution != nil {
		out = append(out, "spec.trafficDistribution is ignored")
	}
	for _, sp := range svc.Spec.Ports {
		if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP && sp.Protocol != corev1.ProtocolUDP {
			out = append(out, "spec.ports["+portName(sp)+"].protocol "+string(sp.Protocol)+" is not served")
		}
	}
	return out
}

func appendUnique(list []netip.Addr, a netip.Addr) []netip.Addr {
	for _, x := range list {
		if x == a {
			return list
		}
	}
	return append(list, a)
}
