// Package cni gives pods their network through CNI
// (github.com/containerd/go-cni) with the standard plugins Debian ships in
// containernetworking-plugins: a Linux bridge with host-local IP allocation
// from the node's pod CIDR, the loopback interface, and portmap for
// hostPort. Each pod gets its own network namespace (see NewNetNS), an IP
// on the bridge, and reaches the other pods of the node by IP.
//
// Host effects to know about: the bridge plugin (as the pods' gateway)
// turns on net.ipv4.ip_forward; libcni caches results under
// /var/lib/cni/results; host-local keeps allocations under
// /var/lib/cni/networks/<name> unless Config.IPAMDir is set; portmap adds
// the shared CNI-HOSTPORT-* NAT chains. Network.Destroy removes the
// bridge, this network's state and the portmap chains once unused; it
// leaves ip_forward as it is (callers that turned it on may restore it).
// Pod CIDRs under 10.0.0.0/8 need no extra route: the bridge's address
// gives the node a connected route to its pods.
package cni
