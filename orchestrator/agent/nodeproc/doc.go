// Package nodeproc composes a node process: the node agent
// ([agent.Agent]) with the containerd runtime adapter
// ([containerd.Runtime], supervising a private containerd) reaching the
// API server over HTTPS through the remote store client
// ([remote.Client]), as a kubelet node of a multi-machine cluster runs.
//
// [Run] builds the three from a [Config], runs the agent and any
// components the caller adds beside it (a service proxy, the node's
// streaming endpoint) until the context ends or one of them fails, and
// then removes every container, image, the containerd namespace and the
// daemon. examples/multinode's node processes and the agent-alone
// benchmark's command (orchestrator/agent/internal/nodeagent) both run
// through it, so the benchmark measures the process examples/multinode
// runs.
//
// # Memory
//
// A node process keeps a small live heap (6–7 MiB with 110 pods) and
// its Go runtime would otherwise let the heap grow to twice that between
// collections. Run therefore sets a soft memory limit
// (runtime/debug.SetMemoryLimit) of [DefaultMemoryLimit] unless the
// GOMEMLIMIT environment variable or [Config.MemoryLimit] says otherwise;
// the limit makes the collector run sooner and return freed pages to the
// kernel when the process nears it, and costs nothing while it is far
// away. orchestrator/agent/BENCHMARKS.md gives the figures with and
// without it.
//
// This package lives below orchestrator/agent so that programs embedding
// the agent with another runtime (the simulated one, an in-process store)
// do not link the containerd client or the HTTP client.
package nodeproc
