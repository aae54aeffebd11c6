package containerd

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/cni"
)

// ppid reads a process's parent PID.
func ppid(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	t.Fatalf("no PPid in /proc/%d/status", pid)
	return 0
}

// TestSandboxRecoveryAfterReboot simulates a host reboot for one pod
// while the adapter is down: its shim and container are killed and its
// namespaces, /dev/shm and pause process vanish. The next adapter reports
// that sandbox NotReady (so the agent makes a new one), releases its IP
// with a CNI DEL from the cached configuration, reports its container
// exited, and leaves the other pod running; the dead sandbox is then
// removed cleanly and the pod can get a new sandbox.
func TestSandboxRecoveryAfterReboot(t *testing.T) {
	needContainerd(t)
	network := newTestNetwork(t)
	dir := shortTempDir(t)
	r := newTestRuntime(t, testOpts{dataDir: dir, network: network})
	ctx := context.Background()
	deadSB, deadIDs := runPod(t, r, &runtime.PodSandboxConfig{Name: "rebooted", Namespace: "default", UID: "rebooted", ShareProcessNamespace: true},
		&runtime.ContainerConfig{Name: "c", Command: []string{"sleep", "1000"}})
	liveSB, liveIDs := runPod(t, r, &runtime.PodSandboxConfig{Name: "survivor", Namespace: "default", UID: "survivor"},
		&runtime.ContainerConfig{Name: "c", Command: []string{"sleep", "1000"}})
	dead, _ := r.getSandbox(deadSB)
	deadIP := dead.IP
	ipFile := filepath.Join(network.Config().IPAMDir, network.Config().Name, deadIP)
	if _, err := os.Stat(ipFile); err != nil {
		t.Fatalf("host-local has no allocation for %s: %v", deadIP, err)
	}
	c, err := r.client.LoadContainer(r.nsctx(ctx), deadIDs[0])
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.Task(r.nsctx(ctx), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctrPID := int(task.Pid())
	shimPID := ppid(t, ctrPID)
	pausePID := dead.PausePID
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	// The "reboot" of one pod: its processes and kernel objects vanish.
	for _, pid := range []int{shimPID, ctrPID, pausePID} {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", pid, err)
		}
	}
	if err := cni.DeleteNetNS(dead.NetNS); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dead.IPCNS, dead.Shm} {
		if err := unmountAndRemove(p); err != nil {
			t.Fatal(err)
		}
	}

	r2, err := New(ctx, Options{DataDir: dir, Namespace: r.ns, Network: network, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r2.Close() })
	if s, err := r2.PodSandboxStatus(ctx, deadSB); err != nil || s.State != runtime.SandboxNotReady {
		t.Errorf("rebooted sandbox: %+v, %v; want NotReady", s, err)
	}
	if s, err := r2.PodSandboxStatus(ctx, liveSB); err != nil || s.State != runtime.SandboxReady {
		t.Errorf("surviving sandbox: %+v, %v; want Ready", s, err)
	}
	if st, err := r2.ContainerStatus(ctx, liveIDs[0]); err != nil || st.State != runtime.ContainerRunning {
		t.Errorf("surviving container: %+v, %v", st, err)
	}
	st, err := r2.ContainerStatus(ctx, deadIDs[0])
	if err != nil || st.State != runtime.ContainerExited {
		t.Errorf("container of the rebooted sandbox: %+v, %v; want Exited", st, err)
	}
	if _, err := os.Stat(ipFile); err == nil {
		t.Errorf("IP %s of the rebooted sandbox is still allocated", deadIP)
	}
	if m, _ := filepath.Glob("/var/lib/cni/results/" + network.Config().Name + "-" + deadSB + "-*"); len(m) > 0 {
		t.Errorf("libcni cache of the rebooted sandbox left: %v", m)
	}
	if _, err := r2.CreateContainer(ctx, deadSB, &runtime.ContainerConfig{Name: "late", Image: busyboxRef, Command: []string{"true"}}); err == nil {
		t.Error("CreateContainer in a NotReady sandbox succeeded")
	}

	// The agent's response: a new sandbox for the pod, the old one removed.
	_, newIDs := runPod(t, r2, &runtime.PodSandboxConfig{Name: "rebooted", Namespace: "default", UID: "rebooted", Attempt: 1, ShareProcessNamespace: true},
		&runtime.ContainerConfig{Name: "c", Command: []string{"sleep", "1000"}})
	if err := r2.RemovePodSandbox(ctx, deadSB); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.ContainerStatus(ctx, deadIDs[0]); err == nil {
		t.Error("container of the removed sandbox still exists")
	}
	if _, err := r2.client.SnapshotService(r2.opts.Snapshotter).Stat(r2.nsctx(ctx), deadIDs[0]); err == nil {
		t.Error("snapshot of the removed container still exists")
	}
	// The cleanup after the killed shim found runc's state in the run
	// directory (the runc root the shim recorded in the task's bundle).
	if _, err := os.Stat(r2.runPath(runcRootSubdir, r2.ns, deadIDs[0])); err == nil {
		t.Error("runc state of the killed shim's container left in the run directory")
	}
	if st, err := r2.ContainerStatus(ctx, newIDs[0]); err != nil || st.State != runtime.ContainerRunning {
		t.Errorf("container in the new sandbox: %+v, %v", st, err)
	}
}
