// Package e2e holds the end-to-end walk-through tests: the kubectl
// sessions of the seeds' notes, run against the examples/cluster binary
// (built by the test and started as a newcomer would, on real containerd,
// with the cluster DNS and its eBPF service proxy narrowed to the pods'
// cgroup instead of the whole machine).
//
// Every walk-through runs twice, with each kubectl of
// [github.com/tugboatdev/tugboat/internal/kubectltest]: the machine's
// /usr/bin/kubectl (v1.32) and the newest kubectl, built from the tools
// module internal/tools/kubectl and cached (a cold build takes minutes).
//
// One cluster serves every walk-through. Each walk-through works in its
// own namespaces, named after the binary ("e2e-job-installed",
// "e2e-job-newest"), and the two binaries' walk-throughs run in parallel
// (TestMain raises the default -test.parallel, since they mostly wait).
// A few take turns between binaries: the seeds' fixed namespace names
// (development, production) and the CPU the rollout asks for allow one at
// a time. The walk-throughs that change the node (taints, cordon and
// drain) run after all the others, one at a time. Host clients (wget of a
// ClusterIP or NodePort) run in a child of the proxy's cgroup.
//
// The tests need root, containerd, runc, the CNI plugins, busybox-static,
// kubectl and Go (to build the newest kubectl); outside CI they skip when
// one is missing, in CI they fail.
//
// Run them with
//
//	go test -race -v ./internal/e2e/
package e2e
