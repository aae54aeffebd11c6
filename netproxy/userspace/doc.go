// Package userspace is the fallback service data plane: a TCP and UDP proxy
// in Go with the semantics of the eBPF socket load balancer, for machines
// without root or cgroup v2.
//
// Every frontend gets a listening socket on its own address and port, so the
// service addresses must be local: in userspace mode the cluster's service
// CIDR is a loopback range (for example 127.96.0.0/16, which Linux routes to
// lo as all of 127.0.0.0/8), and NodePorts listen on the node's addresses.
// A frontend without a ready backend has no socket, so a connection is
// refused at once by the kernel (ECONNREFUSED), as in eBPF mode.
//
// Listening sockets are opened by the goroutine that programs the frontend
// and backend connections by the proxy's goroutines, so the proxy serves the
// network namespace of its process. Open TCP connections survive endpoint
// changes and frontend removal; UDP sessions to a backend that is no longer
// ready are ended.
package userspace
