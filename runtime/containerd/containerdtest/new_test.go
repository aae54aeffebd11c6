package containerdtest

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/containerd"
)

// TestNew runs a container on the runtime New gives and checks that the
// runtime is recorded in its directory's marker for the sweep.
func TestNew(t *testing.T) {
	dir := TempDir(t)
	rt := New(t, containerd.Options{DataDir: dir})
	ctx := context.Background()
	id := runSleeper(t, rt)
	var out bytes.Buffer
	if code, err := rt.Exec(ctx, id, runtime.ExecOptions{Cmd: []string{"echo", "hi"}, Stdout: &out}); err != nil || code != 0 || out.String() != "hi\n" {
		t.Errorf("exec: %q, exit %d, %v", out.String(), code, err)
	}
	m, err := readMarker(filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	want := []runtimeRecord{{DataDir: dir, Namespace: rt.Namespace(), CgroupParent: "/tugboat-" + rt.Namespace()}}
	if diff := cmp.Diff(want, m.Runtimes); diff != "" {
		t.Errorf("recorded runtimes (-want +got):\n%s", diff)
	}
}

// runSleeper runs a pod with a busybox container that sleeps and returns
// the container's ID.
func runSleeper(t *testing.T, rt *containerd.Runtime) string {
	t.Helper()
	ctx := context.Background()
	sb, err := rt.RunPodSandbox(ctx, &runtime.PodSandboxConfig{Name: "sleeper", Namespace: "default", UID: "1"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := rt.CreateContainer(ctx, sb, &runtime.ContainerConfig{Name: "c", Image: BusyboxRef, Command: []string{"sleep", "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	return id
}
