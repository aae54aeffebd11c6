package containerd

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tugboatdev/tugboat/runtime"
)

// TestSharedShimDeath: when a shared shim dies, every container it served
// is reported exited and its processes are gone, the pods' sandboxes stay
// usable (a new container starts in a new shim), and pods in other shims
// are untouched. This is the failure domain Options.ShimGroups trades for
// fewer processes.
func TestSharedShimDeath(t *testing.T) {
	r := newTestRuntime(t, testOpts{shimGroups: 1})
	ctx := context.Background()
	sleep := func() *runtime.ContainerConfig {
		return &runtime.ContainerConfig{Name: "c", Command: []string{"sleep", "1000"}}
	}
	var sbs, ids []string
	for i := range 3 {
		sb, cs := runPod(t, r, &runtime.PodSandboxConfig{Name: fmt.Sprint("p", i), Namespace: "default", UID: randHex(4)}, sleep())
		sbs, ids = append(sbs, sb), append(ids, cs[0])
	}
	shims := shimPIDs(t, r.ns)
	if len(shims) != 1 {
		t.Fatalf("3 pods with ShimGroups=1 run shims %v, want one", shims)
	}
	var pids []int
	for _, id := range ids {
		st, err := r.ContainerStatus(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != runtime.ContainerRunning {
			t.Fatalf("container %s is %s before the shim dies", id, st.State)
		}
		pids = append(pids, containerPID(t, r, id))
	}

	if err := syscall.Kill(shims[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		st := waitExit(t, r, id, 30*time.Second)
		if st.ExitCode == 0 {
			t.Errorf("container %s: exit code 0 after its shim died", id)
		}
		deadline := time.Now().Add(10 * time.Second)
		for syscall.Kill(pids[i], 0) == nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if syscall.Kill(pids[i], 0) == nil {
			t.Errorf("container %s: process %d still runs after its shim died", id, pids[i])
		}
	}

	// The sandboxes outlive the shim: a new container starts in each.
	for _, sb := range sbs {
		id, err := r.CreateContainer(ctx, sb, &runtime.ContainerConfig{Name: "again", Image: busyboxRef, Command: []string{"sleep", "1000"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.StartContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
		if out, code := execOut(t, r, id, "echo", "up"); code != 0 || out != "up\n" {
			t.Errorf("exec in the new container of %s: %q, exit %d", sb, out, code)
		}
	}
	if after := shimPIDs(t, r.ns); len(after) != 1 || after[0] == shims[0] {
		t.Errorf("after the restart the shims are %v (the dead one was %d), want one new shim", after, shims[0])
	}
}

// shimPIDs lists the shims serving containerd namespace ns.
func shimPIDs(t testing.TB, ns string) []int {
	t.Helper()
	out, _ := exec.Command("pgrep", "-f", "containerd-shim.*-namespace "+ns+" ").Output()
	var pids []int
	for _, f := range bytes.Fields(out) {
		pid, err := strconv.Atoi(string(f))
		if err != nil {
			t.Fatalf("pgrep: %q: %v", out, err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// containerPID is the host PID of a running container's main process.
func containerPID(t testing.TB, r *Runtime, id string) int {
	t.Helper()
	ctx := r.nsctx(context.Background())
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return int(task.Pid())
}
