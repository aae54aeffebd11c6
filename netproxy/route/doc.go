// Package route installs the safety route of the service data plane: a
// blackhole route for the service CIDR, so that a packet addressed to a
// virtual IP never leaves the machine, even when no eBPF program is attached
// or a VIP has no frontend.
package route
