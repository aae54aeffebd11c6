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
// time and then the app containers, restarts them per restartPolicy with the
// kubelet's crash-loop back-off (10 s doubling to 5 min), runs liveness,
// readiness and startup probes (exec, tcpSocket, httpGet, grpc) and the
// postStart/preStop hooks, and terminates pods gracefully (preStop, SIGTERM,
// SIGKILL after the grace period) before deleting them from the store with a
// zero grace period. Pod status is written the way kubectl reads it: phase,
// conditions, container states and reasons, restart counts, IPs, QoS class.
//
// The agent also runs static pods from a manifest directory (with mirror
// pods in the API), re-adopts running containers after a restart, evicts
// the lowest-QoS pod under memory pressure, collects usage metrics
// ([MetricsProvider]) and serves logs, exec, attach and port-forward: as Go
// calls ([PodStreamer]) and over HTTP with kubectl's protocols
// ([Agent.ServePod]; [Nodes] routes requests to the agent of a pod's node),
// for the API server to proxy. [Nodes] also serves metrics.k8s.io/v1beta1
// (`kubectl top`, the HorizontalPodAutoscaler) as an http.Handler, so one
// Nodes value plugs into both of the API server's extension points
// (apiserver.Config.Streamer and apiserver.Config.Metrics).
//
// [PodStatusString] computes the STATUS column kubectl prints for a pod
// (Init:1/2, CrashLoopBackOff, Completed, ...), which is how the tests
// check that the status the agent writes reads as upstream's does.
package agent
