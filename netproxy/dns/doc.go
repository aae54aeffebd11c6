// Package dns is the cluster DNS of tugboat: a server built on
// github.com/miekg/dns that answers over UDP and TCP from a [Catalog] of
// Services, EndpointSlices and Pods kept in sync with the store by [Sync].
//
// Records, for the cluster domain (default cluster.local):
//
//   - <svc>.<ns>.svc.<domain>: A/AAAA with the ClusterIPs; for a headless
//     Service the addresses of its ready endpoints.
//   - _<port>._<proto>.<svc>.<ns>.svc.<domain>: SRV for each named port;
//     the target is the service name (ClusterIP) or one name per ready
//     endpoint (headless), with address records in the additional section.
//   - <hostname>.<svc>.<ns>.svc.<domain>: A/AAAA for endpoints with that
//     hostname (StatefulSet pods) and for pods whose spec.hostname and
//     spec.subdomain name it.
//   - <a-b-c-d>.<ns>.pod.<domain>: A for a dashed pod address.
//   - ExternalName Services: a CNAME to the external name.
//   - PTR in in-addr.arpa and ip6.arpa, as the upstream CoreDNS kubernetes
//     plugin answers them: a ClusterIP gives <svc>.<ns>.svc.<domain>, a
//     ready endpoint <hostname or dashed address>.<svc>.<ns>.svc.<domain>,
//     another pod IP <hostname>.<subdomain>.<ns>.svc.<domain> when the pod
//     sets both, else <dashed address>.<ns>.pod.<domain>.
//
// Unknown names inside the cluster domain get NXDOMAIN, existing names with
// another type NOERROR without answers, both with the zone's SOA. Names
// outside the domain are REFUSED unless upstream resolvers are configured
// (forwarding is off by default); with [Config.Upstreams] they, and reverse
// names of addresses the cluster does not know, are forwarded to the
// upstreams in order over the transport the query came on (UDP or TCP).
// Answers over UDP are truncated to the client's buffer (512 bytes, or its
// EDNS0 size up to 1232) with the TC bit set, so the client retries over
// TCP.
//
// [Register] publishes the servers as the kube-dns Service in kube-system
// (with an EndpointSlice), so pods reach them through the service proxy at
// the Service's ClusterIP.
package dns
