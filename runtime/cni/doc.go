// Package cni gives pods their network through CNI
// (github.com/containerd/go-cni) with the standard plugins Debian ships in
// containernetworking-plugins: a Linux bridge with host-local IP allocation
// from the node's pod CIDR, the loopback interface, and portmap for
// hostPort. Each pod gets its own network namespace (see NewNetNS), an IP
// on the bridge, and reaches the other pods of the node by IP.
//
// One plugin process per pod: a pod without hostPorts is attached by the
// bridge plugin alone (the veth pair on the bridge), and its IP comes from
// an allocator in this process that keeps host-local's on-disk store (the
// same directory, lock file and file format), so it shares one pool with
// the host-local runs of hostPort pods and of older versions; its
// interface is then configured as the plugin's IPAM step would (address,
// default route via the bridge, arp_notify). Config.ExecIPAM runs
// host-local for every pod instead. Loopback is brought up in-process.
//
// Host effects to know about: as the pods' gateway, the bridge gets the
// first address of the pod CIDR and net.ipv4.ip_forward is turned on (by
// the bridge plugin, or by Setup for pods it attaches without IPAM);
// libcni caches results under /var/lib/cni/results; IP allocations are
// kept under
// /var/lib/cni/networks/<name> unless Config.IPAMDir is set; portmap adds
// the shared CNI-HOSTPORT-* NAT chains. Network.Destroy removes the
// bridge, this network's state and the portmap chains once unused; it
// leaves ip_forward as it is (callers that turned it on may restore it).
// Pod CIDRs under 10.0.0.0/8 need no extra route: the bridge's address
// gives the node a connected route to its pods.
package cni
