// Package containerd implements runtime.Runtime with containerd.
//
// New either connects to a given containerd socket or, as k3s does, starts
// and supervises a private containerd whose root, state, socket and log live
// under Options.DataDir, so a node needs only Debian's containerd, runc and
// containernetworking-plugins packages and no configuration. Everything the
// runtime creates lives in its own containerd namespace. If the private
// daemon dies it is restarted; containers keep running in their shims.
//
// Per-boot state lives on a tmpfs the runtime mounts at DataDir/run, as
// /run is on a usual node: the private containerd's state directory, runc's
// state (the runc shim's Root option), the containers' FIFOs, the
// namespace mount points and the sandboxes' hostname, hosts and
// resolv.conf files. It survives the runtime's and containerd's restarts,
// not a reboot (nor does what it describes); sandbox.json, the logs and
// containerd's root stay on disk.
//
// A pod sandbox is a network namespace (bind-mounted under DataDir/run/netns)
// attached to the pod network by runtime/cni, an IPC namespace
// (bind-mounted under DataDir/run/ipcns) and a 64 MiB /dev/shm tmpfs that all
// the pod's containers share, a pod-level cgroup
// (CgroupParent/kubepods[/burstable|/besteffort]/pod<uid>, as the kubelet
// lays it out) limited to the pod's totals, with the containers' cgroups
// nested in it, plus the pod's hostname, /etc/hosts and /etc/resolv.conf
// files that every container mounts. There is no pause container: a pod
// gets a pause process only with shareProcessNamespace, as PID 1 of the
// PID namespace its containers then share (an 8 KiB static program, see
// runtime/internal/pause, started directly, not through containerd).
// hostNetwork, hostPID and hostIPC use the node's namespaces.
//
// Seccomp: RuntimeDefault is containerd's default profile
// (contrib/seccomp), Localhost a JSON profile under
// Options.SeccompProfileRoot, Unconfined (the default unless
// Options.SeccompDefault) none. AppArmor profiles apply where the kernel
// has AppArmor enabled; elsewhere RuntimeDefault has nothing to apply and
// Localhost is refused.
//
// When the runtime starts, a sandbox whose namespaces or pause process did
// not survive (a host reboot) is reported NotReady, its CNI attachment is
// deleted with the configuration libcni cached and its containers are
// reported exited, so that the node agent makes a new sandbox. Containers run from overlayfs
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
//
// A container's start makes three calls to containerd (task create, wait,
// start): the container's record and root file system mounts come from
// CreateContainer instead of being read again.
//
// The pods share DefaultShimGroups containerd shims (runc v2 shim
// grouping, all containers of a pod in one shim) instead of one shim per
// pod as the CRI plugin runs them: a start then launches one Go process
// fewer, and a node with 100 pods keeps 16 shims instead of 100.
// Options.ShimGroups chooses another number, or one shim per pod.
package containerd
