package containerdtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tugboatdev/tugboat/internal/hostfs"
	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/runtime/cni"
	"github.com/tugboatdev/tugboat/runtime/containerd"
)

// recordedEnv makes the test binary run TestSweepRecordedRuntime as the
// killed test process ("owner") or as the node process it starts
// ("node").
const recordedEnv = "CONTAINERDTEST_RECORDED"

// TestSweepRecordedRuntime is TestSweepKilledTestProcess for a runtime
// that the test does not start with New but records with Record and
// leaves to other code, the way the tests of orchestrator/cluster and of
// the examples do: the killed test process makes a TempDir, records a
// runtime over DataDir/ctr with a CNI network whose IPAM store is under
// DataDir (as a cluster lays them out), and starts a node process (this
// binary again, running in the directory) that starts that runtime and a
// pod and outlives the killed test. The sweep must kill the node process
// before it tears the runtime down, then remove everything.
func TestSweepRecordedRuntime(t *testing.T) {
	needKilledChild(t)
	switch os.Getenv(recordedEnv) {
	case "owner":
		recordingOwner(t)
		return
	case "node":
		recordedNode(t)
		return
	}
	ready := killChildWhenReady(t, "TestSweepRecordedRuntime", recordedEnv+"=owner", 5)
	dataDir, ns, cgroupParent, netName := ready[0], ready[1], ready[2], ready[3]
	top := filepath.Dir(filepath.Dir(dataDir))
	var nodePID int
	if _, err := fmt.Sscan(ready[4], &nodePID); err != nil {
		t.Fatal(err)
	}
	node, err := ownerOf(nodePID)
	if err != nil {
		t.Fatalf("the node process died with its test: %v", err)
	}
	if pids := processesOf(top); len(pids) < 3 {
		t.Errorf("after the kill: processes of %s = %v, want the node process, the daemon and a shim", top, pids)
	}
	bridge := readMarkerNetwork(t, top)

	var logs []string
	logf := func(format string, args ...any) {
		logs = append(logs, fmt.Sprintf(format, args...))
		t.Logf(format, args...)
	}
	if err := sweepDir(context.Background(), logf, top); err != nil {
		t.Errorf("sweep: %v", err)
	}

	if alive, err := node.alive(); alive || err != nil {
		t.Errorf("node process %d still runs (%v)", nodePID, err)
	}
	killedNode := slices.IndexFunc(logs, func(l string) bool {
		return strings.HasPrefix(l, fmt.Sprintf("containerdtest: killed process %d ", nodePID))
	})
	destroyed := slices.IndexFunc(logs, func(l string) bool { return strings.HasPrefix(l, "containerdtest: destroyed runtime "+ns+" ") })
	if killedNode < 0 || destroyed < 0 || killedNode > destroyed {
		t.Errorf("sweep log: want the node process %d killed before runtime %s is destroyed:\n%s", nodePID, ns, strings.Join(logs, "\n"))
	}
	checkSwept(t, top, ns, cgroupParent, netName, bridge)
}

// recordingOwner is the test process that is killed: it records a
// runtime and its network, starts the node process that runs them,
// reports and waits.
func recordingOwner(t *testing.T) {
	n, err := rand.Int(rand.Reader, big.NewInt(250))
	if err != nil {
		t.Fatal(err)
	}
	suffix := randHex(3)
	dir := TempDir(t)
	// 10.243.0.0/16 is used by no other test; the bridge's connected
	// route keeps the pod's traffic on the machine.
	netCfg := cni.Config{Name: "tbrec-" + suffix, Bridge: "tbr" + suffix, PodCIDR: netip.MustParsePrefix(fmt.Sprintf("10.243.%d.0/24", n.Int64())),
		IPAMDir: filepath.Join(dir, "cni", "networks")}
	opts := containerd.Options{DataDir: filepath.Join(dir, "ctr"), Namespace: "tbrec-" + suffix}
	Record(t, opts, &netCfg)

	// The node process outlives this one; the sweep knows it by its
	// working directory.
	node, sc := startSelf(t, context.Background(), "TestSweepRecordedRuntime", recordedEnv+"=node", dir)
	var seen []string
	for sc.Scan() && sc.Text() != "NODE-READY" {
		seen = append(seen, sc.Text())
	}
	if sc.Text() != "NODE-READY" {
		t.Fatalf("node process did not start its pod: %q", seen)
	}
	fmt.Printf("CHILD-READY %s %s %s %s %d\n", opts.DataDir, opts.Namespace, "/tugboat-"+opts.Namespace, netCfg.Name, node.Process.Pid)
	time.Sleep(3 * time.Minute) // killed long before
	t.Error("child was not killed")
}

// recordedNode is the node process: it starts the runtime its test
// recorded (read back from the marker of its working directory's
// TempDir), as the code under test would, runs a pod and waits.
func recordedNode(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	m, err := readMarker(filepath.Dir(cwd))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Runtimes) != 1 || m.Runtimes[0].Network == nil {
		t.Fatalf("marker records %+v, want one runtime with a network", m.Runtimes)
	}
	rec := m.Runtimes[0]
	netw, err := cni.New(*rec.Network)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt, err := containerd.New(ctx, containerd.Options{DataDir: rec.DataDir, Namespace: rec.Namespace, CgroupParent: rec.CgroupParent,
		Network: netw, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	arch, err := BusyboxArchive()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.ImportImage(ctx, bytes.NewReader(arch)); err != nil {
		t.Fatal(err)
	}
	runSleeper(t, rt)
	fmt.Println("NODE-READY")
	time.Sleep(3 * time.Minute) // killed long before
	t.Error("node process was not killed")
}

// TestRecord checks what Record writes into the marker: containerd's
// defaults for an empty namespace and cgroup parent, the network given or
// else the runtime's, absolute data directories; and that it refuses a
// data directory outside a TempDir.
func TestRecord(t *testing.T) {
	testenv.NeedRoot(t) // TempDir sweeps, which needs root
	dir := TempDir(t)
	netCfg := cni.Config{Name: "n1", Bridge: "br1", PodCIDR: netip.MustParsePrefix("10.243.0.0/24"), IPAMDir: filepath.Join(dir, "cni")}
	Record(t, containerd.Options{DataDir: filepath.Join(dir, "ctr")}, nil)
	Record(t, containerd.Options{DataDir: filepath.Join(dir, "node", "ctr"), Namespace: "node-1", CgroupParent: "/x"}, &netCfg)
	t.Chdir(dir)
	Record(t, containerd.Options{DataDir: "rel", Namespace: "rel", Address: "/run/x.sock"}, nil)
	m, err := readMarker(filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	want := []runtimeRecord{
		{DataDir: filepath.Join(dir, "ctr"), Namespace: "tugboat", CgroupParent: "/tugboat-tugboat"},
		{DataDir: filepath.Join(dir, "node", "ctr"), Namespace: "node-1", CgroupParent: "/x", Network: &netCfg},
		{DataDir: filepath.Join(dir, "rel"), Address: "/run/x.sock", Namespace: "rel", CgroupParent: "/tugboat-rel"},
	}
	if diff := cmp.Diff(want, m.Runtimes, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("recorded runtimes (-want +got):\n%s", diff)
	}
	if ok, err := record(containerd.Options{DataDir: t.TempDir(), Namespace: "x"}, nil); ok || err != nil {
		t.Errorf("record outside a TempDir = %v, %v; want false, nil", ok, err)
	}
}

// TestSweepRecordedCgroup checks that the sweep removes the cgroups a
// killed test recorded with RecordCgroup, with the cgroups below them,
// keeps a recorded cgroup that still holds a process, and leaves a live
// test's cgroups alone.
func TestSweepRecordedCgroup(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "sleep")
	_, err := os.Stat(cgroupRoot + "unified/cgroup.procs")
	testenv.Need(t, err == nil, "cgroup v2 at "+cgroupRoot+"unified")
	base := cgroupRoot + "unified/tbcgtest-" + randHex(4)
	t.Cleanup(func() {
		if err := hostfs.RemoveDirTree(base); err != nil {
			t.Error(err)
		}
	})
	mk := func(cg string) {
		t.Helper()
		if err := os.MkdirAll(cg, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dead := newFakeDir(t, deadOwner(t))
	gone, below, busy := base+"/gone", base+"/gone/below", base+"/busy"
	RecordCgroup(t, dead.dir, gone)
	RecordCgroup(t, dead.dir, busy)
	mk(below)
	mk(busy)
	sleeper := exec.Command("sleep", "1000")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	if err := os.WriteFile(busy+"/cgroup.procs", []byte(fmt.Sprint(sleeper.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	live := base + "/live"
	RecordCgroup(t, TempDir(t), live)
	mk(live)

	Sweep(t)

	for cg, want := range map[string]bool{gone: false, below: false, busy: true, live: true} {
		if _, err := os.Stat(cg); (err == nil) != want {
			t.Errorf("cgroup %s: stat %v, want it kept %v", cg, err, want)
		}
	}
	if _, err := os.Stat(dead.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s not removed (stat: %v)", dead.dir, err)
	}
}
