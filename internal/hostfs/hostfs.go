// Package hostfs holds the few helpers over the host's /proc, mount table
// and cgroup directories that the container runtime and its test helpers
// share: a process's identity (PID plus start time, which survives PID
// reuse), removing a directory tree with rmdir (as cgroup trees must be
// removed) and detaching every mount below a directory.
package hostfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// ParseProcStat reads a process's start time (clock ticks after boot,
// field 22) and whether it is a zombie or dead (state Z or X, field 3)
// from the content of /proc/<pid>/stat. The command (field 2) is in
// parentheses and may itself hold spaces and parentheses, so the fields
// are counted after its last ')'.
func ParseProcStat(b []byte) (start uint64, zombie bool, err error) {
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false, errors.New("malformed /proc/<pid>/stat: no command")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, false, errors.New("malformed /proc/<pid>/stat: too few fields")
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("malformed /proc/<pid>/stat: start time: %w", err)
	}
	return start, f[0] == "Z" || f[0] == "X", nil
}

// ProcStart returns the start time of process pid (clock ticks after
// boot) and whether it is a zombie. A process that does not exist gives
// an error that matches os.ErrNotExist.
func ProcStart(pid int) (start uint64, zombie bool, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, unix.ESRCH) {
		err = fmt.Errorf("process %d: %w", pid, os.ErrNotExist)
	}
	if err != nil {
		return 0, false, err
	}
	start, zombie, err = ParseProcStat(b)
	if err != nil {
		return 0, false, fmt.Errorf("process %d: %w", pid, err)
	}
	return start, zombie, nil
}

// ProcessAlive reports whether the process pid that started at start
// (see [ProcStart]) still runs: a later process with the same PID, or a
// zombie, is not it.
func ProcessAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, zombie, err := ProcStart(pid)
	return err == nil && !zombie && st == start
}

// RemoveDirTree removes dir and every directory below it with rmdir,
// deepest first, as a cgroup tree must be removed (its files go with
// their directory). A directory already gone is no error; one that cannot
// go (a cgroup that still holds processes) stays, and every such failure
// is returned.
func RemoveDirTree(dir string) error {
	var dirs []string
	walkErr := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil
		case err != nil:
			return err
		case d.IsDir():
			dirs = append(dirs, p)
		}
		return nil
	})
	var errs []error
	if walkErr != nil {
		errs = append(errs, walkErr)
	}
	for _, d := range slices.Backward(dirs) {
		if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("rmdir %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// MountsUnder lists the mount points at or below dir in this process's
// mount namespace.
func MountsUnder(dir string) ([]string, error) {
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, err
	}
	pts := make([]string, 0, len(ms))
	for _, m := range ms {
		pts = append(pts, m.Mountpoint)
	}
	return pts, nil
}

// UnmountUnder detaches every mount at or below dir, deepest first. A
// mount that is already gone is no error; every other failure is
// returned.
func UnmountUnder(dir string) error {
	pts, err := MountsUnder(dir)
	if err != nil {
		return err
	}
	slices.SortFunc(pts, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, p := range pts {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
