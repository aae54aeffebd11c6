package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/tugboatdev/tugboat/internal/testenv"
)

// purgeTestName returns a name no other test uses, short enough for a
// bridge.
func purgeTestName(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "tbpg" + hex.EncodeToString(b)
}

// mountTmpfs mounts a tmpfs at dir, unmounted at the test's end.
func mountTmpfs(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
}

// makeCgroup makes cgroupParent/child in the hierarchy h, removed at the
// test's end.
func makeCgroup(t *testing.T, h, cgroupParent, child string) string {
	t.Helper()
	d := filepath.Join(cgroupRoot, h, cgroupParent, child)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = os.Remove(d)
		_ = os.Remove(filepath.Join(cgroupRoot, h, cgroupParent))
	})
	return d
}

// startSleeper starts a process that waits until the test ends (killed
// by its PID then), with args after the shell's script.
func startSleeper(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	// "; :" keeps the shell from exec-ing sleep, so the shell's command
	// line (with args) stays.
	cmd := exec.Command("/bin/sh", append([]string{"-c", "sleep 600; :"}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func TestRuntimeAlive(t *testing.T) {
	testenv.NeedRoot(t)
	for _, tt := range []struct {
		name  string
		setup func(t *testing.T, dir, cgroupParent string)
		want  bool
	}{
		{name: "no directory", setup: func(t *testing.T, dir, _ string) {
			if err := os.Remove(dir); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "files, a tmpfs and empty cgroups", setup: func(t *testing.T, dir, cgroupParent string) {
			mountTmpfs(t, filepath.Join(dir, "run"))
			for _, f := range []string{"root/meta.db", "run/containerd/x.sock"} {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			makeCgroup(t, "pids", cgroupParent, "pod1")
			makeCgroup(t, "unified", cgroupParent, "")
		}},
		{name: "a pod's network namespace", want: true, setup: func(t *testing.T, dir, _ string) {
			ns := filepath.Join(dir, "netns", "pod1")
			if err := os.MkdirAll(filepath.Dir(ns), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(ns, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mount("/proc/self/ns/net", ns, "", unix.MS_BIND, ""); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = unix.Unmount(ns, unix.MNT_DETACH) })
		}},
		{name: "a shim or daemon naming the directory", want: true, setup: func(t *testing.T, dir, _ string) {
			startSleeper(t, filepath.Join(dir, "run", "containerd.sock"))
		}},
		{name: "a container in the cgroups", want: true, setup: func(t *testing.T, _, cgroupParent string) {
			cg := makeCgroup(t, "pids", cgroupParent, "pod1")
			cmd := startSleeper(t)
			// The sleeper is killed before its cgroup is removed: cleanups
			// run last first.
			if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ctr")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			cgroupParent := "/tugboat-" + purgeTestName(t)
			tt.setup(t, dir, cgroupParent)
			got, err := runtimeAlive(dir, cgroupParent)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("runtimeAlive = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestPurgeStoppedRuntimeStartsNoDaemon: after a cluster whose node had
// no pods left stopped, Purge removes its runtime's files, mounts and
// cgroups without starting containerd (a containerd on PATH that only
// records its start would fail the purge).
func TestPurgeStoppedRuntimeStartsNoDaemon(t *testing.T) {
	testenv.NeedRoot(t)
	bin := t.TempDir()
	started := filepath.Join(bin, "containerd-started")
	fake := "#!/bin/sh\ntouch " + started + "\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "containerd"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	name := purgeTestName(t)
	cfg := Config{
		DataDir:             filepath.Join(t.TempDir(), "data"),
		ContainerdNamespace: name,
		Bridge:              name,
		PodCIDR:             netip.MustParsePrefix("10.233.7.0/24"),
		ServiceCIDR:         netip.MustParsePrefix("10.234.0.0/16"),
	}
	ctr := filepath.Join(cfg.DataDir, "ctr")
	mountTmpfs(t, filepath.Join(ctr, "run"))
	for _, f := range []string{"root/io.containerd.metadata.v1.bolt/meta.db", "run/containerd/containerd.sock", "store/wal"} {
		p := filepath.Join(ctr, f)
		if f == "store/wal" {
			p = filepath.Join(cfg.DataDir, f)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cgroupParent := "/tugboat-" + name
	cgs := []string{makeCgroup(t, "pids", cgroupParent, "pod1"), makeCgroup(t, "unified", cgroupParent, "")}

	if err := Purge(context.Background(), cfg); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	if _, err := os.Stat(started); err == nil {
		t.Error("Purge started containerd")
	}
	if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("DataDir left: %v", err)
	}
	if ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(cfg.DataDir)); err != nil || len(ms) > 0 {
		t.Errorf("mounts left under DataDir: %d, %v", len(ms), err)
	}
	for _, d := range append(cgs, filepath.Join(cgroupRoot, "pids", cgroupParent)) {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s left: %v", d, err)
		}
	}
}
