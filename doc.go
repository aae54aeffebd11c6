// Package tugboat is Kubernetes as a Go library: the object store,
// scheduler, controllers, container runtime adapter and service proxy are
// packages a Go program imports and composes into a working cluster that
// real kubectl and client-go drive unchanged.
//
// Read the packages in this order; each one's Example functions form a
// step of the tutorial:
//
//   - [github.com/tugboatdev/tugboat/store]: cluster state, the one state
//     interface every component reads and writes through, watch, garbage
//     collection and a durable log;
//   - [github.com/tugboatdev/tugboat/scheduler]: places pods on nodes
//     through a plugin framework;
//   - [github.com/tugboatdev/tugboat/runtime]: runs pods on one node
//     (containerd, CNI networking, images; a simulated runtime for scale);
//   - [github.com/tugboatdev/tugboat/netproxy]: the service data plane
//     (eBPF socket load balancing, a userspace fallback) and cluster DNS.
//
// The layering is strict: examples → orchestrator → scheduler, runtime,
// netproxy → store; runtime knows nothing of store.
package tugboat
