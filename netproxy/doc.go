// Package netproxy is tugboat's service data plane on a node: what
// kube-proxy does, done with eBPF socket load balancing, with a userspace
// proxy as the fallback, plus the cluster DNS (package
// github.com/tugboatdev/tugboat/netproxy/dns).
//
// A [Proxy] watches Services and EndpointSlices (discovery.k8s.io/v1)
// through store.Interface and programs one data plane model
// ([dataplane.Table]) that both modes implement:
//
//   - eBPF ([ModeEBPF], package netproxy/bpf): programs on the cgroup named
//     by [Config.Cgroup] rewrite connect()/sendmsg() to a VIP into a ready
//     backend; a blackhole route for [Config.ServiceCIDR] (and each of
//     [Config.ServiceCIDRs], such as the IPv6 range of a dual-stack
//     cluster) keeps packets to VIPs on the machine even when nothing is
//     attached. IPv4 and IPv6 ClusterIPs are both served (ipFamilies
//     [IPv4], [IPv6] or dual stack), each with the endpoints of its family. The proxy never
//     chooses a cgroup by itself, so it never attaches to the root cgroup
//     unless told to.
//   - userspace ([ModeUserspace], package netproxy/userspace): a Go TCP/UDP
//     proxy listening on each service address, for a service CIDR on a
//     loopback range (for example 127.96.0.0/16).
//
// [New] picks eBPF when it can run (root, a cgroup v2 directory given) and
// the userspace proxy otherwise, and logs a line naming the mode and, for the
// fallback, the reason. [Proxy.Run] does a full resync when both lists are
// read (and after any relist) and then incremental updates of just the
// Services whose objects changed.
//
// Service translation (package netproxy/dataplane): ClusterIPs, externalIPs,
// load-balancer ingress IPs from the Service status, and NodePorts on
// [Config.NodeIPs] each become a frontend; only ready endpoints receive
// connections, chosen at random per connection or by ClientIP session
// affinity; when no endpoint is ready, terminating endpoints that still serve
// take the traffic (as kube-proxy does); a frontend without any usable
// endpoint refuses at once (ECONNREFUSED); headless and ExternalName Services
// get no frontend (DNS only). With [Config.NodeName], externalTrafficPolicy
// and internalTrafficPolicy Local keep only this node's endpoints. Fields
// the data plane does not implement are logged as warnings.
//
// Connections from outside the node reach NodePorts, external IPs and
// load-balancer IPs through tc programs on [Config.ExternalInterfaces]
// (eBPF mode, IPv4 and IPv6; pinned with [Config.PinPath] so a restarted
// proxy re-adopts them) or through the userspace proxy's listeners. With
// externalTrafficPolicy Cluster, such a connection to a backend on another
// host is source-NATed to the node's address (as kube-proxy masquerades);
// with Local the client's address is kept. Package
// netproxy/lbipam assigns load-balancer IPs from a pool; [Proxy.Collector]
// exports Prometheus metrics.
package netproxy
