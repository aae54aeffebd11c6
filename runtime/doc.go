// Package runtime runs the pods of one node for the node agent. It knows
// nothing of the object store: the agent asks it to run sandboxes and
// containers and it reports what happened.
//
// The Runtime interface follows the Kubernetes Container Runtime Interface
// (CRI): a pod sandbox holds the network namespace, hostname, /etc/hosts and
// /etc/resolv.conf shared by the pod's containers; containers are created in
// a sandbox, started, stopped (SIGTERM, then SIGKILL after a grace period)
// and removed; exec, attach, port-forward and logs stream into them; events
// and usage statistics report on them; images are pulled, imported, listed
// and removed.
//
// Implementations:
//
//   - runtime/containerd runs real containers with containerd, supervising a
//     private containerd daemon when no socket is given, with pod networking
//     from runtime/cni and CRI-format log files from runtime/crilog.
//   - runtime/simulated runs nothing: containers follow a script on a clock,
//     for control-plane tests and scale simulations.
//
// runtime/images builds runnable OCI images from files or static binaries
// and runs a registry on loopback, so tests and examples need no Docker.
package runtime
