package containerdtest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tugboatdev/tugboat/internal/hostfs"
	"github.com/tugboatdev/tugboat/internal/testenv"
)

// fakeDir is a directory as a test process that was killed leaves it: a
// marker naming its owner, a tmpfs mounted in it and processes started
// from it.
type fakeDir struct {
	dir   string
	procs []*exec.Cmd
	done  []chan struct{} // closed when procs[i] has been reaped
}

// newFakeDir makes a /tmp/tb* directory owned by o holding a tmpfs at
// run/ and two processes: one that names a file in it on its command line
// and one that runs in it. Everything goes at the end of the test.
func newFakeDir(t *testing.T, o owner) *fakeDir {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "tb")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDir{dir: dir}
	t.Cleanup(func() {
		for i, p := range f.procs {
			_ = p.Process.Kill()
			<-f.done[i]
		}
		if err := removeDir(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	run := filepath.Join(dir, "run")
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", run, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, "log"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	byArg := exec.Command("tail", "-f", filepath.Join(run, "log"))
	byCwd := exec.Command("sleep", "1000")
	byCwd.Dir = run
	for _, c := range []*exec.Cmd{byArg, byCwd} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		f.procs, f.done = append(f.procs, c), append(f.done, done)
	}
	// The marker comes last: a sweep of another test process meanwhile
	// skips a directory without one.
	if err := storeMarker(dir, &marker{owner: o}); err != nil {
		t.Fatal(err)
	}
	return f
}

// running reports whether procs[i] still runs (not exited, not a zombie).
func (f *fakeDir) running(i int) bool {
	select {
	case <-f.done[i]:
		return false
	default:
	}
	o, err := ownerOf(f.procs[i].Process.Pid)
	if err != nil {
		return false
	}
	alive, err := o.alive()
	return err == nil && alive
}

// deadOwner returns the identity of a process that ran and was reaped.
func deadOwner(t *testing.T) owner {
	t.Helper()
	c := exec.Command("sleep", "1000")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	o, err := ownerOf(c.Process.Pid)
	_ = c.Process.Kill()
	_ = c.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestSweep makes directories as killed (or live) test processes leave
// them and checks that the sweep tears down exactly those whose owner is
// dead: their processes killed, tmpfs unmounted, directory removed; a
// live owner's directory, and a process that merely runs meanwhile, stay.
func TestSweep(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "tail")
	testenv.NeedCommand(t, "sleep")
	self, err := ownerOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	reused := self
	reused.Start++ // our PID, but another process: the owner's PID was reused
	rebooted := self
	rebooted.Boot = "00000000-0000-0000-0000-000000000000"
	for _, tc := range []struct {
		name  string
		owner owner
		swept bool
	}{
		{"owner exited", deadOwner(t), true},
		{"owner's PID reused", reused, true},
		{"owner from an earlier boot", rebooted, true},
		{"owner alive", self, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDir(t, tc.owner)
			// A process that does not belong to the directory.
			bystander := exec.Command("sleep", "1000")
			if err := bystander.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = bystander.Process.Kill(); _ = bystander.Wait() })

			Sweep(t)

			_, err := os.Stat(f.dir)
			pts, merr := hostfs.MountsUnder(f.dir)
			if merr != nil {
				t.Fatal(merr)
			}
			if tc.swept {
				if !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s not removed (stat: %v)", f.dir, err)
				}
				if len(pts) > 0 {
					t.Errorf("mounts left: %v", pts)
				}
				for i, p := range f.procs {
					select {
					case <-f.done[i]:
						if ws, ok := p.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
							t.Errorf("%v ended with %v, want SIGKILL", p.Args, p.ProcessState)
						}
					case <-time.After(10 * time.Second):
						t.Errorf("%v (cwd %q) still runs", p.Args, p.Dir)
					}
				}
			} else {
				if err != nil {
					t.Errorf("live owner's %s: %v", f.dir, err)
				}
				if len(pts) != 1 {
					t.Errorf("live owner's mounts = %v, want its tmpfs", pts)
				}
				if _, err := readMarker(f.dir); err != nil {
					t.Errorf("live owner's marker: %v", err)
				}
				for i, p := range f.procs {
					if !f.running(i) {
						t.Errorf("live owner's %v was stopped", p.Args)
					}
				}
			}
			if err := syscall.Kill(bystander.Process.Pid, 0); err != nil {
				t.Errorf("bystander process: %v", err)
			}
		})
	}
}

// TestTempDirMarker checks that TempDir names this process as the owner
// and that New's record of a runtime lands in the marker.
func TestTempDirMarker(t *testing.T) {
	testenv.NeedRoot(t)
	dir := TempDir(t)
	top := filepath.Dir(dir)
	if !strings.HasPrefix(top, "/tmp/tb") {
		t.Fatalf("TempDir %s not in /tmp/tb*", dir)
	}
	m, err := readMarker(top)
	if err != nil {
		t.Fatal(err)
	}
	if alive, err := m.alive(); !alive || err != nil || m.PID != os.Getpid() {
		t.Errorf("marker owner %+v: alive %v, %v; want this process %d", m.owner, alive, err, os.Getpid())
	}
	// A sweep leaves the directory of a live test alone.
	Sweep(t)
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}

func TestParseMarker(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"owner only", `{"pid":7,"start":9,"boot":"b"}`, true},
		{"with runtime", `{"pid":7,"start":9,"boot":"b","runtimes":[{"dataDir":"/tmp/tb1/d","namespace":"n","cgroupParent":"/tugboat-n"}]}`, true},
		{"with network", `{"pid":7,"start":9,"boot":"b","runtimes":[{"dataDir":"/tmp/tb1/d","namespace":"n","cgroupParent":"/t","network":{"Name":"x","Bridge":"br","PodCIDR":"10.0.0.0/24"}}]}`, true},
		{"unknown field", `{"pid":7,"start":9,"boot":"b","extra":1}`, false},
		{"no pid", `{"start":9,"boot":"b"}`, false},
		{"relative data dir", `{"pid":7,"runtimes":[{"dataDir":"d","namespace":"n"}]}`, false},
		{"no namespace", `{"pid":7,"runtimes":[{"dataDir":"/d"}]}`, false},
		{"truncated", `{"pid":7,"sta`, false},
		{"with cgroups", `{"pid":7,"cgroups":["/sys/fs/cgroup/unified/tbx","/sys/fs/cgroup/pids/a/b"]}`, true},
		{"cgroup root", `{"pid":7,"cgroups":["/sys/fs/cgroup/unified"]}`, false},
		{"cgroup outside", `{"pid":7,"cgroups":["/tmp/x/y"]}`, false},
		{"cgroup unclean", `{"pid":7,"cgroups":["/sys/fs/cgroup/unified/../../../etc"]}`, false},
		{"cgroup trailing slash", `{"pid":7,"cgroups":["/sys/fs/cgroup/unified/"]}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseMarker([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Errorf("err = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func FuzzParseMarker(f *testing.F) {
	f.Add([]byte(`{"pid":7,"start":9,"boot":"b","runtimes":[{"dataDir":"/tmp/tb1/d","namespace":"n","cgroupParent":"/t","network":{"Name":"x","Bridge":"br","PodCIDR":"10.0.0.0/24"}}]}`))
	f.Add([]byte(`{"pid":7,"cgroups":["/sys/fs/cgroup/unified/tbx/c"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMarker(b)
		if err != nil {
			return
		}
		if m.PID <= 0 {
			t.Errorf("accepted marker without owner: %q", b)
		}
		for _, r := range m.Runtimes {
			if !filepath.IsAbs(r.DataDir) || r.Namespace == "" {
				t.Errorf("accepted incomplete runtime %+v", r)
			}
		}
		for _, c := range m.Cgroups {
			if rel, ok := strings.CutPrefix(c, "/sys/fs/cgroup/"); !ok || filepath.Clean(c) != c || !strings.Contains(rel, "/") {
				t.Errorf("accepted cgroup %q", c)
			}
		}
	})
}
