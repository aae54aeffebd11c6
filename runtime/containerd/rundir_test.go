package containerd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tugboatdev/tugboat/runtime"
)

// TestRunDirectory checks where a pod's per-boot state lives: on the
// tmpfs at DataDir/run (runc's state, the private containerd's task
// bundle, the FIFOs, the namespace mount points and the sandbox's files),
// not on the data directory's disk nor in /run/containerd; that a new
// Runtime over the same DataDir keeps that tmpfs (its running container is
// re-adopted, stops and is removed through runc state found there); that
// a container created by one Runtime is started by the next; and that
// Close unmounts the run directory once no pod is left.
func TestRunDirectory(t *testing.T) {
	dir := shortTempDir(t)
	r := newTestRuntime(t, testOpts{dataDir: dir})
	ctx := context.Background()
	sb, ids := runPod(t, r, &runtime.PodSandboxConfig{Name: "rundir", Namespace: "default", UID: "rd"},
		&runtime.ContainerConfig{Name: "c", Command: []string{"sleep", "1000"}})
	id := ids[0]
	run := filepath.Join(dir, "run")
	if !isTmpfs(run) || !isMountPoint(run) {
		t.Fatalf("%s is not a tmpfs mount", run)
	}
	s, err := r.getSandbox(sb)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		filepath.Join(run, "runc", r.ns, id, "state.json"),
		filepath.Join(run, "containerd", "io.containerd.runtime.v2.task", r.ns, id, "config.json"),
		filepath.Join(run, "fifo", id),
		s.NetNS, s.IPCNS, s.Shm,
		filepath.Join(s.RunDir, "hosts"), filepath.Join(s.RunDir, "resolv.conf"), filepath.Join(s.RunDir, "hostname"),
	} {
		if !strings.HasPrefix(p, run+"/") {
			t.Errorf("%s is not in the run directory", p)
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("per-boot state: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "sandbox.json")); err != nil || strings.HasPrefix(s.Dir, run+"/") {
		t.Errorf("sandbox.json must stay on disk in %s: %v", s.Dir, err)
	}
	if _, err := os.Stat(filepath.Join("/run/containerd/runc", r.ns)); err == nil {
		t.Errorf("runc state in /run/containerd/runc/%s", r.ns)
	}
	// The pod's /etc/hosts and /etc/hostname are the run directory's files.
	if out, _ := execOut(t, r, id, "cat", "/etc/hosts", "/etc/hostname"); !strings.Contains(out, "Kubernetes-managed hosts file") || !strings.Contains(out, "rundir\n") {
		t.Errorf("/etc/hosts and /etc/hostname in the container:\n%s", out)
	}

	// A created, not started container, then a new Runtime.
	late, err := r.CreateContainer(ctx, sb, &runtime.ContainerConfig{Name: "late", Image: busyboxRef, Command: []string{"sleep", "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(run, "marker")
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2, err := New(ctx, Options{DataDir: dir, Namespace: r.ns, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r2.Close() })
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the run directory did not survive the Runtime's restart: %v", err)
	}
	if err := r2.StartContainer(ctx, late); err != nil {
		t.Fatalf("starting a container the previous Runtime created: %v", err)
	}
	for _, c := range []string{id, late} {
		if st, err := r2.ContainerStatus(ctx, c); err != nil || st.State != runtime.ContainerRunning {
			t.Fatalf("container %s: %+v, %v", c, st, err)
		}
	}
	if err := r2.StopPodSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if err := r2.RemovePodSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(run, "runc", r.ns, id), filepath.Join(run, "fifo", id), s.RunDir, s.NetNS, s.IPCNS} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left after the sandbox's removal", p)
		}
	}
	// With no pod left, closing the Runtime leaves no mount behind.
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	if isMountPoint(run) {
		t.Errorf("the idle run directory %s is still mounted after Close", run)
	}
}

// TestPrivateStateDir checks which state directory a private containerd
// gets: the run directory's, unless a data directory from before the run
// directory has task bundles in its on-disk state directory; an unused
// on-disk one is removed.
func TestPrivateStateDir(t *testing.T) {
	for _, tc := range []struct {
		name       string
		legacy     bool
		bundle     bool
		wantLegacy bool
	}{
		{name: "fresh"},
		{name: "legacy without tasks", legacy: true},
		{name: "legacy with a task's bundle", legacy: true, bundle: true, wantLegacy: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			legacy := filepath.Join(dir, "containerd", "state")
			if tc.legacy {
				if err := os.MkdirAll(filepath.Join(legacy, "io.containerd.runtime.v2.task", "ns"), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			if tc.bundle {
				if err := os.Mkdir(filepath.Join(legacy, "io.containerd.runtime.v2.task", "ns", "id"), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			want := filepath.Join(dir, "run", "containerd")
			if tc.wantLegacy {
				want = legacy
			}
			if got := privateStateDir(dir); got != want {
				t.Errorf("privateStateDir = %s, want %s", got, want)
			}
			if _, err := os.Stat(legacy); (err == nil) != tc.wantLegacy {
				t.Errorf("on-disk state directory exists: %v, want %v", err == nil, tc.wantLegacy)
			}
		})
	}
}
