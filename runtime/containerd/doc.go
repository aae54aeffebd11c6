// Package containerd implements runtime.Runtime with containerd.
//
// New either connects to a given containerd socket or, as k3s does, starts
// and supervises a private containerd whose root, state, socket and log live
// under Options.DataDir, so a node needs only Debian's containerd, runc and
// containernetworking-plugins packages and no configuration. Everything the
// runtime creates lives in its own containerd namespace. If the private
// daemon dies it is restarted; containers keep running in their shims.
//
// A pod sandbox is a network namespace (bind-mounted under DataDir/netns)
// attached to the pod network by runtime/cni, plus the pod's hostname,
// /etc/hosts and /etc/resolv.conf files that every container of the pod
// mounts; there is no pause container. Containers run from overlayfs
// snapshots of their image with the Kubernetes command/args rules,
// environment, working directory, user and group, capabilities, privileged
// mode, read-only root, cgroup (v1) CPU and memory limits and the volume
// mounts the agent prepared (bind, tmpfs, read-only, subPath). A container
// over its memory limit is reported as OOMKilled with exit code 137.
// StopContainer sends SIGTERM and SIGKILL after the grace period.
//
// Container output is written by the runtime to per-container log files in
// the CRI format (runtime/crilog), "<log dir>/<name>/<attempt>.log",
// rotated at 10 MiB, which is how `kubectl logs --previous` is served from
// the previous attempt's file.
//
// The state needed after a restart lives in containerd (container labels)
// and in DataDir (sandboxes): a new Runtime over the same DataDir re-adopts
// running containers, re-attaching their output to the log files.
package containerd
