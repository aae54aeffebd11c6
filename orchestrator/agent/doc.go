// Package agent is tugboat's node agent, the equivalent of the kubelet: it
// makes the pods bound to one node real through a [runtime.Runtime] and
// reports node and pod status through [store.Interface] (in process or over
// the API server's HTTP client).
//
// An [Agent] registers its Node (labels, taints, addresses, capacity and
// allocatable, nodeInfo, pod CIDR), keeps the node's conditions (Ready,
// MemoryPressure, DiskPressure, PIDPressure) from real measurements, renews
// its Lease in kube-node-lease every 10 seconds and writes the node status at
// least every 60 seconds.
//
// For every pod whose spec.nodeName names the node, a pod worker prepares
// the volumes (emptyDir on disk or tmpfs, hostPath, configMap, secret,
// downwardAPI, projected, persistentVolumeClaim over hostPath/local
// PersistentVolumes, subPath), runs the sandbox, the init containers one at a
// time (sidecars, init containers with restartPolicy Always, start in order,
// keep running beside the app containers, restart whenever they exit and
// stop after the app containers, in reverse order) and then the app
// containers, restarts them per restartPolicy with the
// kubelet's crash-loop back-off (10 s doubling to 5 min), runs liveness,
// readiness and startup probes (exec, tcpSocket, httpGet, grpc) and the
// postStart/preStop hooks, and terminates pods gracefully (preStop, SIGTERM,
// SIGKILL after the grace period) before deleting them from the store with a
// zero grace period. Pod status is written the way kubectl reads it: phase,
// conditions, container states and reasons, restart counts, IPs, QoS class.
// A pod worker holds no goroutine while it waits: a change of the pod, a
// runtime event, its timer or the periodic resync starts one that syncs the
// pod and ends (110 idle pods cost 110 small structs, not 110 goroutine
// stacks).
//
// Volumes honour the pod's fsGroup (group ownership and setgid, with
// fsGroupChangePolicy OnRootMismatch) and projected serviceAccountToken
// sources get bound tokens from a [TokenRequester], renewed at 80 % of
// their lifetime. A running pod whose state the runtime cannot report
// (after an agent restart, say) turns Unknown.
//
// The agent also runs static pods from a manifest directory watched with
// inotify (with mirror pods in the API), re-adopts running containers after
// a restart, keeps the node's pressure conditions and their NoSchedule
// taints from hard eviction thresholds (memory.available, nodefs.available,
// imagefs.available, pid.available; [ParseThreshold]), refuses new pods a
// pressured node cannot take, evicts one pod per interval under pressure
// (memory: lowest QoS first; disk: pods over their ephemeral-storage
// request first, then by priority, then by their usage of the filesystem
// under pressure: containers' writable layers as the runtime measures
// them, logs and emptyDir volumes, split between nodefs and a dedicated
// imagefs as the kubelet does; PIDs: by priority, then by process count
// from the runtime; see [PodStats]), collects usage metrics (CPU, memory,
// writable layer and process count per container; [MetricsProvider]) and
// serves logs, exec, attach and port-forward: as Go
// calls ([PodStreamer]) and over HTTP with kubectl's protocols
// ([Agent.ServePod]; [Nodes] routes requests to the agent of a pod's node),
// for the API server to proxy. [Nodes] also serves metrics.k8s.io/v1beta1
// (`kubectl top`, the HorizontalPodAutoscaler) as an http.Handler, so one
// Nodes value plugs into both of the API server's extension points
// (apiserver.Config.Streamer and apiserver.Config.Metrics).
//
// Package nodeproc (orchestrator/agent/nodeproc) composes the agent with the
// containerd runtime adapter and the API server's client into a node
// process, as examples/multinode's nodes run it.
//
// [PodStatusString] computes the STATUS column kubectl prints for a pod
// (Init:1/2, CrashLoopBackOff, Completed, ...), which is how the tests
// check that the status the agent writes reads as upstream's does.
package agent
