package containerdtest

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tugboatdev/tugboat/internal/hostfs"
	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/runtime/cni"
	"github.com/tugboatdev/tugboat/runtime/containerd"
)

// childEnv makes the test binary run TestSweepKilledTestProcess as the
// test process that is killed.
const childEnv = "CONTAINERDTEST_KILLED_CHILD"

// TestSweepKilledTestProcess runs a test (a child process: this test
// binary again) that starts a runtime with a CNI network and a running
// pod, kills it with SIGKILL so that none of its cleanups run, and checks
// that the sweep of the next test process removes everything the killed
// one left: the private containerd, the shim and the container, the
// mounts and the data directory, the cgroups, runc's state, the bridge
// and the IPAM and libcni files under /var/lib/cni.
func TestSweepKilledTestProcess(t *testing.T) {
	needKilledChild(t)
	if os.Getenv(childEnv) != "" {
		killedChild(t)
		return
	}
	ready := killChildWhenReady(t, "TestSweepKilledTestProcess", childEnv+"=1", 4)
	dir, ns, cgroupParent, netName := ready[0], ready[1], ready[2], ready[3]
	top := filepath.Dir(dir)

	// What the killed test left: the daemon and shim run, the run
	// directory is mounted, the container runs in its cgroup.
	if pids := processesOf(top); len(pids) < 2 {
		t.Errorf("after the kill: processes of %s = %v, want the daemon and a shim", top, pids)
	}
	if pts, _ := hostfs.MountsUnder(top); len(pts) == 0 {
		t.Error("after the kill: no mounts left, want the run directory's tmpfs at least")
	}
	bridge := readMarkerNetwork(t, top)

	Sweep(t)

	checkSwept(t, top, ns, cgroupParent, netName, bridge)
}

// needKilledChild requires what the killed children of the tests below
// need: a real runtime and the CNI plugins.
func needKilledChild(t *testing.T) {
	t.Helper()
	Need(t)
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		_, err := os.Stat(filepath.Join(cni.DefaultPluginDir, p))
		testenv.Need(t, err == nil, "CNI plugin "+p+" in "+cni.DefaultPluginDir+" (containernetworking-plugins)")
	}
}

// killChildWhenReady runs the test name of this binary as a child process
// with the environment variable env, waits for its line "CHILD-READY"
// with n fields, kills it with SIGKILL so that none of its cleanups run,
// and returns the fields. Whatever fails, the child goes at the end of the
// test and a sweep removes what it left.
func killChildWhenReady(t *testing.T, name, env string, n int) []string {
	t.Helper()
	// The bridge plugin turns IP forwarding on; the killed test cannot
	// restore it.
	if forward, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err == nil {
		t.Cleanup(func() { _ = os.WriteFile("/proc/sys/net/ipv4/ip_forward", forward, 0o644) })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	child, sc := startSelf(t, ctx, name, env, "")
	// Whatever fails below, the child goes and its leftovers with it.
	t.Cleanup(func() {
		_ = child.Process.Kill()
		_ = child.Wait()
		Sweep(t)
	})
	var ready []string
	var seen []string
	for sc.Scan() {
		if f, ok := strings.CutPrefix(sc.Text(), "CHILD-READY "); ok {
			ready = strings.Fields(f)
			break
		}
		seen = append(seen, sc.Text())
	}
	if len(ready) != n {
		t.Fatalf("child did not start its pod: %q", seen)
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	return ready
}

// startSelf starts this test binary again, as a child process that runs
// the test name with the environment variable env (in the working
// directory dir, when not empty), and returns it with a scanner of its
// standard output.
func startSelf(t *testing.T, ctx context.Context, name, env, dir string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+name+"$", "-test.count=1")
	child.Dir = dir
	child.Env = append(os.Environ(), env)
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	return child, bufio.NewScanner(out)
}

// checkSwept checks that nothing is left of the directory top, whose
// runtime had the namespace ns and cgroupParent and the network netName
// on bridge.
func checkSwept(t *testing.T, top, ns, cgroupParent, netName, bridge string) {
	t.Helper()
	if _, err := os.Stat(top); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s not removed (stat: %v)", top, err)
	}
	if pids := processesOf(top); len(pids) > 0 {
		t.Errorf("processes of %s still run: %v", top, pids)
	}
	if pts, err := hostfs.MountsUnder(top); err != nil || len(pts) > 0 {
		t.Errorf("mounts left: %v %v", pts, err)
	}
	hs, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, h := range hs {
		if _, err := os.Stat(filepath.Join(h, cgroupParent)); err == nil {
			t.Errorf("cgroup %s left in %s", cgroupParent, h)
		}
	}
	if _, err := os.Stat(filepath.Join("/run/containerd/runc", ns)); err == nil {
		t.Errorf("runc state of %s left", ns)
	}
	if _, err := net.InterfaceByName(bridge); err == nil {
		t.Errorf("bridge %s left", bridge)
	}
	for _, pattern := range []string{"/var/lib/cni/networks/" + netName, "/var/lib/cni/results/" + netName + "-*"} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			t.Errorf("CNI files left: %v", m)
		}
	}
}

// readMarkerNetwork returns the bridge of the network recorded in top's
// marker.
func readMarkerNetwork(t *testing.T, top string) string {
	t.Helper()
	m, err := readMarker(top)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Runtimes) != 1 || m.Runtimes[0].Network == nil {
		t.Fatalf("marker records %+v, want one runtime with a network", m.Runtimes)
	}
	if _, err := net.InterfaceByName(m.Runtimes[0].Network.Bridge); err != nil {
		t.Errorf("after the kill: bridge %s: %v", m.Runtimes[0].Network.Bridge, err)
	}
	return m.Runtimes[0].Network.Bridge
}

// killedChild is the test process that is killed: it runs a pod with a
// container and a network, reports, and waits.
func killedChild(t *testing.T) {
	n, err := rand.Int(rand.Reader, big.NewInt(250))
	if err != nil {
		t.Fatal(err)
	}
	suffix := randHex(3)
	// 10.243.0.0/16 is used by no other test; the bridge's connected
	// route keeps the pod's traffic on the machine.
	netw, err := cni.New(cni.Config{Name: "tbsweep-" + suffix, Bridge: "tbs" + suffix, PodCIDR: netip.MustParsePrefix(fmt.Sprintf("10.243.%d.0/24", n.Int64()))})
	if err != nil {
		t.Fatal(err)
	}
	dir := TempDir(t)
	rt := New(t, containerd.Options{DataDir: dir, Network: netw})
	runSleeper(t, rt)
	m, err := readMarker(filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	rec := m.Runtimes[0]
	fmt.Printf("CHILD-READY %s %s %s %s\n", rec.DataDir, rec.Namespace, rec.CgroupParent, rec.Network.Name)
	time.Sleep(3 * time.Minute) // killed long before
	t.Error("child was not killed")
}
