// Package nettest builds the isolated worlds that netproxy's tests run in: a
// network namespace with its loopback up and a blackhole route for the
// service CIDR, a cgroup v2 directory of the test's own, a private bpffs
// mount, echo backends inside the namespace, and a client process that runs
// inside both the namespace and the cgroup and connects on command.
//
// Everything is removed by t.Cleanup, also when the test fails.
package nettest
