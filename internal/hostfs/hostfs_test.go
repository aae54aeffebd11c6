package hostfs

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tugboatdev/tugboat/internal/testenv"
)

func TestParseProcStat(t *testing.T) {
	tail := " 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 4242 20 21\n"
	for _, tc := range []struct {
		name, in string
		start    uint64
		zombie   bool
		ok       bool
	}{
		{"pause", "42 (pause) S 1 42 42 0 -1 4194560 50 0 0 0 0 0 0 0 20 0 1 0 12345 1000 0 18446744073709551615", 12345, false, true},
		{"plain", "123 (sleep) S" + tail, 4242, false, true},
		{"zombie, command with parens", "42 (a) (b) Z 1 42 42 0 -1 4194560 50 0 0 0 0 0 0 0 20 0 1 0 777 0 0", 777, true, true},
		{"dead, command with spaces and parens", "123 (a) b (c)) X" + tail, 4242, true, true},
		{"no command", "123 sleep S" + tail, 0, false, false},
		{"unclosed command", "42 (pause S 1", 0, false, false},
		{"too short", "123 (sleep) S 1 2 3", 0, false, false},
		{"bad start", "123 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 -1 20", 0, false, false},
		{"long state", "123 (x) SS" + tail, 0, false, false},
		{"empty", "", 0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start, zombie, err := ParseProcStat([]byte(tc.in))
			if (err == nil) != tc.ok || (tc.ok && (start != tc.start || zombie != tc.zombie)) {
				t.Errorf("ParseProcStat(%q) = %d, %v, %v; want %d, %v, ok %v", tc.in, start, zombie, err, tc.start, tc.zombie, tc.ok)
			}
		})
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("42 (pause) S 1 42 42 0 -1 4194560 50 0 0 0 0 0 0 0 20 0 1 0 12345 1000 0"))
	f.Add([]byte("1 ((x)) R"))
	f.Fuzz(func(t *testing.T, b []byte) {
		start, zombie, err := ParseProcStat(b)
		if err != nil && (start != 0 || zombie) {
			t.Errorf("ParseProcStat(%q) failed (%v) but returned %d, %v", b, err, start, zombie)
		}
	})
}

// TestProcessIdentity: a running process is alive by its PID and start
// time; with another start time, or once it has exited, it is not.
func TestProcessIdentity(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	start, zombie, err := ProcStart(pid)
	if err != nil || zombie || start == 0 {
		t.Fatalf("ProcStart(%d) = %d, %v, %v", pid, start, zombie, err)
	}
	if !ProcessAlive(pid, start) {
		t.Errorf("ProcessAlive(%d, %d) = false for a running process", pid, start)
	}
	if ProcessAlive(pid, start+1) {
		t.Errorf("ProcessAlive(%d, %d) = true with another start time", pid, start+1)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if ProcessAlive(pid, start) {
		t.Errorf("ProcessAlive(%d, %d) = true after the process exited", pid, start)
	}
	if _, _, err := ProcStart(pid); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ProcStart of an exited process: %v, want os.ErrNotExist", err)
	}
	if ProcessAlive(0, 0) || ProcessAlive(-1, 0) {
		t.Error("ProcessAlive of PID 0 or -1 is true")
	}
}

func TestRemoveDirTree(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "a")
	for _, d := range []string{"a/b/c", "a/d"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveDirTree(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists: %v", root, err)
	}
	if err := RemoveDirTree(root); err != nil {
		t.Errorf("removing a tree that is gone: %v", err)
	}
	// A directory that cannot go (here: it holds a file, as a cgroup
	// holding processes cannot go) stays, with an error naming it; the
	// rest is removed.
	for _, d := range []string{"x/full", "x/empty"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "x/full/f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := RemoveDirTree(filepath.Join(dir, "x"))
	if err == nil || !errors.Is(err, unix.ENOTEMPTY) {
		t.Errorf("RemoveDirTree over a directory holding a file: %v, want ENOTEMPTY", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x/empty")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("x/empty was not removed: %v", err)
	}
}

// TestUnmountUnder mounts two nested tmpfs below a directory (root only)
// and detaches both, leaving a mount beside the directory alone.
func TestUnmountUnder(t *testing.T) {
	testenv.NeedRoot(t)
	dir := t.TempDir()
	under, nested, beside := filepath.Join(dir, "d"), filepath.Join(dir, "d", "n"), filepath.Join(dir, "d2")
	for _, p := range []string{under, beside} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, p := range []string{nested, under, beside} {
			_ = unix.Unmount(p, unix.MNT_DETACH)
		}
	})
	for _, p := range []string{under, nested, beside} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", p, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatal(err)
		}
	}
	pts, err := MountsUnder(under)
	if err != nil || len(pts) != 2 {
		t.Fatalf("MountsUnder(%s) = %v, %v; want the two mounts", under, pts, err)
	}
	if err := UnmountUnder(under); err != nil {
		t.Fatal(err)
	}
	if pts, err := MountsUnder(under); err != nil || len(pts) != 0 {
		t.Errorf("after UnmountUnder: %v, %v", pts, err)
	}
	if pts, err := MountsUnder(beside); err != nil || len(pts) != 1 {
		t.Errorf("the mount beside the directory: %v, %v; want it kept", pts, err)
	}
}
