package containerd

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/tugboatdev/tugboat/runtime"
)

// TestStartTimeRecorded checks the start time a container reports: right
// after StartContainer (before its label is written), from the label once
// written, and, when a Runtime stopped before writing it, from the
// process's start time after re-adoption.
func TestStartTimeRecorded(t *testing.T) {
	dir := shortTempDir(t)
	r := newTestRuntime(t, testOpts{dataDir: dir})
	ctx := context.Background()
	before := time.Now()
	_, ids := runPod(t, r, &runtime.PodSandboxConfig{Name: "started", Namespace: "default", UID: "s"},
		&runtime.ContainerConfig{Name: "c", Command: []string{"sleep", "1000"}})
	after := time.Now()
	id := ids[0]
	st, err := r.ContainerStatus(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.StartedAt.Before(before) || st.StartedAt.After(after) {
		t.Errorf("StartedAt %v not within the StartContainer call [%v, %v]", st.StartedAt, before, after)
	}
	c, err := r.client.LoadContainer(r.nsctx(ctx), id)
	if err != nil {
		t.Fatal(err)
	}
	var label string
	for deadline := time.Now().Add(30 * time.Second); label == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		labels, err := c.Labels(r.nsctx(ctx))
		if err != nil {
			t.Fatal(err)
		}
		label = labels[labelStarted]
	}
	if want := st.StartedAt.UTC().Format(time.RFC3339Nano); label != want {
		t.Errorf("start label = %q, want %q", label, want)
	}

	// A Runtime that stopped before recording the start: no label.
	if _, err := c.SetLabels(r.nsctx(ctx), map[string]string{labelStarted: ""}); err != nil {
		t.Fatal(err)
	}
	if labels, _ := c.Labels(r.nsctx(ctx)); labels[labelStarted] != "" {
		t.Fatalf("start label not removed: %q", labels[labelStarted])
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2, err := New(ctx, Options{DataDir: dir, Namespace: r.ns, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r2.Close() })
	st2, err := r2.ContainerStatus(ctx, id)
	if err != nil || st2.State != runtime.ContainerRunning {
		t.Fatalf("after re-adoption: %+v, %v", st2, err)
	}
	// The process start time has clock-tick and boot-second granularity.
	if d := st2.StartedAt.Sub(st.StartedAt).Abs(); d > 2*time.Second {
		t.Errorf("StartedAt after re-adoption %v, want about %v", st2.StartedAt, st.StartedAt)
	}
}

func TestProcessStartTime(t *testing.T) {
	before := time.Now()
	cmd := exec.Command("sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	after := time.Now()
	at, err := processStartTime(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// Granularity: whole seconds for the boot time, 10 ms ticks.
	if at.Before(before.Add(-time.Second)) || at.After(after.Add(time.Second)) {
		t.Errorf("start time %v, want within [%v, %v]", at, before, after)
	}
	if _, err := processStartTime(1 << 30); !os.IsNotExist(err) {
		t.Errorf("missing process: %v, want not-exist", err)
	}
}

// TestStartAfterStopOfCreated checks that a container stopped before it
// was started (it is then exited) cannot be started from the record
// CreateContainer kept, and that a start of a removed container fails.
func TestStartAfterStopOfCreated(t *testing.T) {
	r := newTestRuntime(t, testOpts{})
	ctx := context.Background()
	sb, _ := runPod(t, r, &runtime.PodSandboxConfig{Name: "stopped-early", Namespace: "default", UID: "se"})
	id, err := r.CreateContainer(ctx, sb, &runtime.ContainerConfig{Name: "c", Image: busyboxRef, Command: []string{"sleep", "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.StopContainer(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
	if st, err := r.ContainerStatus(ctx, id); err != nil || st.State != runtime.ContainerExited {
		t.Fatalf("stopped before start: %+v, %v; want Exited", st, err)
	}
	if err := r.StartContainer(ctx, id); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("start after stop: %v, want ErrInvalid", err)
	}
	removed, err := r.CreateContainer(ctx, sb, &runtime.ContainerConfig{Name: "d", Image: busyboxRef, Command: []string{"sleep", "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveContainer(ctx, removed); err != nil {
		t.Fatal(err)
	}
	if err := r.StartContainer(ctx, removed); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("start after removal: %v, want ErrNotFound", err)
	}
}
