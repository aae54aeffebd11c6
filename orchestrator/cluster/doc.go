// Package cluster assembles a whole single-machine Kubernetes cluster in
// one process from tugboat's packages, for examples/cluster and for
// programs that embed a cluster:
//
//   - the durable store (store.Open over DataDir/store),
//   - the API server on loopback with TLS, writing an admin kubeconfig to
//     DataDir/admin.kubeconfig that unmodified kubectl uses,
//   - the scheduler and the controller manager (with leader election),
//   - one node agent on containerd (a private containerd supervised under
//     DataDir unless a socket is given) with CNI bridge networking, or N
//     node agents over the simulated runtime,
//   - the service proxy (eBPF on the pods' parent cgroup, or the
//     userspace fallback) with a blackhole route for the service range,
//   - the cluster DNS, published as the kube-dns Service in kube-system at
//     the tenth address of the service range (10.96.0.10),
//   - an OCI registry on 127.0.0.1:5000 holding the demo images
//     127.0.0.1:5000/demo/web:1.0 and :2.0 (busybox httpd answering with
//     its hostname and version) and 127.0.0.1:5000/demo/busybox:1.35.
//
// The API server's pods/log, exec, attach and portforward subresources are
// served by [NodeStreamers], which adapts the node agent to the kubelet's
// streaming protocols, and metrics.k8s.io (kubectl top) by [NodeMetrics]
// from the agents' usage figures.
//
// [Cluster.Run] runs everything until its context ends; a later Run over
// the same DataDir brings back every object and re-adopts the running
// pods. [Purge] removes everything a cluster left on the machine.
package cluster
