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
// from the agents' usage figures. Node agents in other processes serve
// their pods' streams with [NodeStreamHandler] (the kubelet's port 10250),
// and the API server reaches them through a [NodeProxy], as
// examples/multinode does.
//
// [Cluster.Run] runs everything until its context ends; a later Run over
// the same DataDir brings back every object and re-adopts the running
// pods. [Purge] removes everything a cluster left on the machine.
//
// The cluster also has a default StorageClass, "local-path", whose volumes
// are host directories under DataDir/local-path, so StatefulSets'
// volumeClaimTemplates and plain PersistentVolumeClaims bind at once.
//
// # Tutorial
//
// The package's Examples lead from nothing to a running cluster:
//
//  1. Example (step1OpenAStore): open a store, create pods, list them by
//     label; every component reads and writes state through this one
//     interface.
//  2. Example (step2ScheduleAPod): the scheduler binds a pod to a Node.
//  3. Example (step3ComposeAControlPlane): store, scheduler, controller
//     manager and a node agent composed by hand; a Deployment becomes
//     running pods (examples/quickstart is the same as a program with the
//     API server added for kubectl).
//  4. Example (step4RunACluster): [New] and [Cluster.Run] do all of it
//     with real containers, networking, the service proxy and DNS, as
//     examples/cluster does; the package Example runs the same cluster on
//     simulated nodes.
//
// # Reaching Services from the host
//
// The eBPF proxy serves the processes of [Config.ProxyCgroup]: by default
// the pods' parent cgroup, so pods (and host processes moved into that
// cgroup) reach ClusterIPs and NodePorts. Set it to [CgroupV2Root] to
// serve every process of the machine, as kube-proxy does on a dedicated
// node; the default avoids rewriting other users' connections on a shared
// machine.
package cluster
