package dns

import (
	"net/netip"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Catalog is the DNS server's view of the cluster: Services, EndpointSlices
// and Pods, indexed for lookups. It is fed by [Sync] from the store (or by
// hand in tests) and is safe for concurrent use. Objects given to it are
// kept and never modified, so watch events may be passed as they are.
type Catalog struct {
	mu       sync.RWMutex
	services map[nsName]*corev1.Service
	slices   map[nsName]*discoveryv1.EndpointSlice
	bySvc    map[nsName]map[string]bool // service -> slice names
	pods     map[nsName]*corev1.Pod     // pods with hostname and subdomain
	nsCount  map[string]int             // services per namespace

	// Reverse indexes for PTR answers.
	svcByIP map[netip.Addr]nsName      // ClusterIP -> service
	podByIP map[netip.Addr]*corev1.Pod // pod IP -> pod (all pods)
	podIPs  map[nsName][]netip.Addr    // pod -> its indexed IPs
	// endpoint address -> the slices listing it
	sliceByIP map[netip.Addr]map[nsName]bool
}

type nsName struct{ ns, name string }

// NewCatalog returns an empty catalog.
func NewCatalog() *Catalog {
	return &Catalog{
		services: map[nsName]*corev1.Service{},
		slices:   map[nsName]*discoveryv1.EndpointSlice{},
		bySvc:    map[nsName]map[string]bool{},
		pods:     map[nsName]*corev1.Pod{},
		nsCount:  map[string]int{},
		svcByIP:  map[netip.Addr]nsName{},
		podByIP:  map[netip.Addr]*corev1.Pod{},
		podIPs:   map[nsName][]netip.Addr{},

		sliceByIP: map[netip.Addr]map[nsName]bool{},
	}
}

// sliceAddrs calls f with every parsed endpoint address of s.
func sliceAddrs(s *discoveryv1.EndpointSlice, f func(netip.Addr)) {
	for _, e := range s.Endpoints {
		for _, a := range e.Addresses {
			if ip, err := netip.ParseAddr(a); err == nil {
				f(ip.Unmap())
			}
		}
	}
}

// clusterIPs returns the parsed ClusterIPs of s (none for headless and
// ExternalName services).
func clusterIPs(s *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, a := range append([]string{s.Spec.ClusterIP}, s.Spec.ClusterIPs...) {
		if ip, err := netip.ParseAddr(a); err == nil && !slices.Contains(out, ip.Unmap()) {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

// podAddrs returns the parsed IPs of p.
func podAddrs(p *corev1.Pod) []netip.Addr {
	var out []netip.Addr
	add := func(s string) {
		if ip, err := netip.ParseAddr(s); err == nil && !slices.Contains(out, ip.Unmap()) {
			out = append(out, ip.Unmap())
		}
	}
	add(p.Status.PodIP)
	for _, ip := range p.Status.PodIPs {
		add(ip.IP)
	}
	return out
}

func (c *Catalog) unindexService(k nsName) {
	if old := c.services[k]; old != nil {
		for _, ip := range clusterIPs(old) {
			if c.svcByIP[ip] == k {
				delete(c.svcByIP, ip)
			}
		}
	}
}

func (c *Catalog) unindexPod(k nsName) {
	for _, ip := range c.podIPs[k] {
		if p := c.podByIP[ip]; p != nil && p.Namespace == k.ns && p.Name == k.name {
			delete(c.podByIP, ip)
		}
	}
	delete(c.podIPs, k)
}

// SetService adds or replaces a Service.
func (c *Catalog) SetService(s *corev1.Service) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := nsName{s.Namespace, s.Name}
	if _, ok := c.services[k]; !ok {
		c.nsCount[s.Namespace]++
	}
	c.unindexService(k)
	c.services[k] = s
	for _, ip := range clusterIPs(s) {
		c.svcByIP[ip] = k
	}
}

// DeleteService removes a Service.
func (c *Catalog) DeleteService(namespace, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := nsName{namespace, name}
	if _, ok := c.services[k]; ok {
		c.unindexService(k)
		delete(c.services, k)
		if c.nsCount[namespace]--; c.nsCount[namespace] <= 0 {
			delete(c.nsCount, namespace)
		}
	}
}

func sliceService(s *discoveryv1.EndpointSlice) string {
	return s.Labels[discoveryv1.LabelServiceName]
}

// SetEndpointSlice adds or replaces an EndpointSlice; it belongs to the
// Service named by its kubernetes.io/service-name label.
func (c *Catalog) SetEndpointSlice(s *discoveryv1.EndpointSlice) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := nsName{s.Namespace, s.Name}
	c.unindexSlice(k)
	c.slices[k] = s
	sliceAddrs(s, func(ip netip.Addr) {
		if c.sliceByIP[ip] == nil {
			c.sliceByIP[ip] = map[nsName]bool{}
		}
		c.sliceByIP[ip][k] = true
	})
	svc := nsName{s.Namespace, sliceService(s)}
	if c.bySvc[svc] == nil {
		c.bySvc[svc] = map[string]bool{}
	}
	c.bySvc[svc][s.Name] = true
}

func (c *Catalog) unindexSlice(k nsName) {
	old, ok := c.slices[k]
	if !ok {
		return
	}
	sliceAddrs(old, func(ip netip.Addr) {
		delete(c.sliceByIP[ip], k)
		if len(c.sliceByIP[ip]) == 0 {
			delete(c.sliceByIP, ip)
		}
	})
	svc := nsName{old.Namespace, sliceService(old)}
	delete(c.bySvc[svc], old.Name)
	if len(c.bySvc[svc]) == 0 {
		delete(c.bySvc, svc)
	}
	delete(c.slices, k)
}

// DeleteEndpointSlice removes an EndpointSlice.
func (c *Catalog) DeleteEndpointSlice(namespace, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unindexSlice(nsName{namespace, name})
}

// SetPod adds or replaces a Pod. Pods with spec.hostname and
// spec.subdomain get <hostname>.<subdomain>.<ns>.svc records; every pod's
// IPs get PTR records.
func (c *Catalog) SetPod(p *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := nsName{p.Namespace, p.Name}
	c.unindexPod(k)
	if ips := podAddrs(p); len(ips) > 0 {
		c.podIPs[k] = ips
		for _, ip := range ips {
			c.podByIP[ip] = p
		}
	}
	if p.Spec.Hostname == "" || p.Spec.Subdomain == "" {
		delete(c.pods, k)
		return
	}
	c.pods[k] = p
}

// DeletePod removes a Pod.
func (c *Catalog) DeletePod(namespace, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unindexPod(nsName{namespace, name})
	delete(c.pods, nsName{namespace, name})
}

// endpoint is one ready address of a service, with its hostname (if any) and
// its ports by name.
type endpoint struct {
	addr     netip.Addr
	hostname string
	ports    []discoveryv1.EndpointPort
}

// readyEndpoints returns the ready endpoints of a service (all endpoints
// with spec.publishNotReadyAddresses, as StatefulSets need), ordered by
// address.
// The caller holds c.mu.
func (c *Catalog) readyEndpoints(ns, svc string) []endpoint {
	var out []endpoint
	publishAll := false
	if s := c.services[nsName{ns, svc}]; s != nil {
		publishAll = s.Spec.PublishNotReadyAddresses
	}
	for name := range c.bySvc[nsName{ns, svc}] {
		s := c.slices[nsName{ns, name}]
		for _, e := range s.Endpoints {
			if !publishAll && e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			host := ""
			if e.Hostname != nil {
				host = *e.Hostname
			}
			for _, a := range e.Addresses {
				ip, err := netip.ParseAddr(a)
				if err != nil {
					continue
				}
				out = append(out, endpoint{addr: ip.Unmap(), hostname: host, ports: s.Ports})
			}
		}
	}
	slices.SortFunc(out, func(a, b endpoint) int { return a.addr.Compare(b.addr) })
	return slices.CompactFunc(out, func(a, b endpoint) bool { return a.addr == b.addr && a.hostname == b.hostname })
}

// replaceServices replaces all Services.
func (c *Catalog) replaceServices(list []*corev1.Service) {
	c.mu.Lock()
	c.services = map[nsName]*corev1.Service{}
	c.nsCount = map[string]int{}
	c.svcByIP = map[netip.Addr]nsName{}
	c.mu.Unlock()
	for _, s := range list {
		c.SetService(s)
	}
}

// replaceEndpointSlices replaces all EndpointSlices.
func (c *Catalog) replaceEndpointSlices(list []*discoveryv1.EndpointSlice) {
	c.mu.Lock()
	c.slices = map[nsName]*discoveryv1.EndpointSlice{}
	c.bySvc = map[nsName]map[string]bool{}
	c.sliceByIP = map[netip.Addr]map[nsName]bool{}
	c.mu.Unlock()
	for _, s := range list {
		c.SetEndpointSlice(s)
	}
}

// replacePods replaces all Pods.
func (c *Catalog) replacePods(list []*corev1.Pod) {
	c.mu.Lock()
	c.pods = map[nsName]*corev1.Pod{}
	c.podByIP = map[netip.Addr]*corev1.Pod{}
	c.podIPs = map[nsName][]netip.Addr{}
	c.mu.Unlock()
	for _, p := range list {
		c.SetPod(p)
	}
}
