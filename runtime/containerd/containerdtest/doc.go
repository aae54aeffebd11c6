// Package containerdtest provides utilities for tests of code that needs a
// real container runtime, as net/http/httptest does for HTTP servers: it
// starts a [containerd.Runtime] over a private containerd daemon in a fresh
// short temporary directory and containerd namespace, imports a busybox
// image built from the machine's busybox-static, and destroys everything
// when the test ends.
//
// [Need] checks the prerequisites (root, containerd, runc, the runc v2 shim
// and busybox-static) through internal/testenv: outside CI a missing one
// skips the test, in CI it fails it. [New] gives a ready runtime; [TempDir]
// gives a short data directory for tests that build their own.
//
// # Leftovers of killed test processes
//
// t.Cleanup does not run when a test binary is killed (a timeout's SIGKILL,
// a panic in another goroutine), so a killed test leaves its private
// containerd, shims, containers, mounts, cgroups and CNI state behind. To
// repair that, every directory made by [TempDir] holds a marker file
// (containerdtest.json) that names its owner, the test process (its PID,
// its start time, so that a reused PID does not pass for the owner, and
// the boot), and the runtimes [New] started in it. A runtime that the
// test starts otherwise, through the code under test (a cluster, a node
// process) or in a child process (an example's binary), is recorded with
// [Record], and a cgroup the test makes itself with [RecordCgroup]. The
// first [TempDir] or [New] of a test process sweeps: in
// every /tmp/tb* directory whose marker names an owner that is no longer
// running, the processes proven to belong to it (root-owned ones whose
// command line or working directory names a path in it) that use a
// runtime are killed (a child that runs a cluster would otherwise start
// containers while they are removed), the recorded runtimes are torn down
// with the runtime's own teardown ([containerd.New] over the recorded
// data directory and namespace, which adopts or restarts the private
// daemon, then [containerd.Runtime.Destroy], and [cni.Network.Destroy]
// for a recorded network), then the remaining processes of the directory
// (daemons, shims) are killed, the recorded cgroups are removed, the
// mounts below it are detached and the directory is removed. A directory whose owner is alive (another test process,
// possibly another developer's, running now) or that has no marker (made
// by other code) is never touched. [Sweep] runs a sweep at once.
//
// The package keeps two pieces of package-level state, both set once per
// test process: the busybox archive (built on first use) and whether the
// sweep has run.
package containerdtest
