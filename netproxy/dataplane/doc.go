// Package dataplane is the small internal model of the service data plane that
// every proxy mode programs: a set of [Service] entries, each a frontend
// (virtual IP, port, protocol) with its backends, their ready flags and the
// session-affinity setting.
//
// The store sync translates Services and EndpointSlices into this model once
// ([FromService]) and a [Table] diffs the desired state against what it last
// programmed, calling a [Programmer] (the eBPF maps or the userspace proxy)
// only for frontends that changed.
package dataplane
