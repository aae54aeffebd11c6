// Package e2e holds the end-to-end walk-through tests: the kubectl
// sessions of the seeds' notes, run with the machine's /usr/bin/kubectl
// against a whole cluster ([github.com/tugboatdev/tugboat/orchestrator/cluster])
// on real containerd, with the eBPF service proxy on a cgroup the test
// makes and the cluster DNS.
//
// One cluster serves every walk-through; each walk-through is a subtest
// working in its own namespace, and the walk-throughs that change the
// node (cordon, drain, taints) run one at a time after the others. The
// tests need root, containerd, runc, the CNI plugins, busybox-static and
// kubectl; outside CI they skip when one is missing, in CI they fail.
//
// Run them with
//
//	go test -race -v ./internal/e2e/
package e2e
