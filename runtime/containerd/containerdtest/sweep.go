package containerdtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tugboatdev/tugboat/internal/hostfs"
	"github.com/tugboatdev/tugboat/runtime/cni"
	"github.com/tugboatdev/tugboat/runtime/containerd"
)

// sweepPattern matches the directories TempDir makes.
const sweepPattern = "/tmp/tb*"

// swept makes the first TempDir or New of a test process sweep.
var swept sync.Once

func sweepOnce(t testing.TB) {
	t.Helper()
	swept.Do(func() { Sweep(t) })
}

// Sweep tears down what killed test processes left in the directories
// that [TempDir] made (see the package documentation) and logs what it
// removed with t.Logf. Directories whose owner still runs, or that have
// no marker, are left alone. Failures are logged, not reported as test
// failures: the leftovers are not the test's. [TempDir] and [New] call it
// once per test process; without root it does nothing.
func Sweep(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	dirs, err := filepath.Glob(sweepPattern)
	if err != nil {
		t.Logf("containerdtest: sweep: %v", err)
		return
	}
	// Directories with runtimes first: a runtime's teardown may need
	// files in another directory of its test (a network's IPAM store).
	slices.SortStableFunc(dirs, func(a, b string) int { return -cmp.Compare(hasRuntimes(a), hasRuntimes(b)) })
	for _, d := range dirs {
		if err := sweepDir(context.Background(), t.Logf, d); err != nil {
			t.Logf("containerdtest: sweep %s: %v", d, err)
		}
	}
}

// hasRuntimes returns 1 if dir's marker records runtimes, 0 otherwise.
func hasRuntimes(dir string) int {
	if m, err := readMarker(dir); err == nil && len(m.Runtimes) > 0 {
		return 1
	}
	return 0
}

// sweepDir tears dir down if its marker names a dead owner.
func sweepDir(ctx context.Context, logf func(string, ...any), dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() {
		return nil
	}
	m, err := readMarker(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil // not ours, or its owner is still writing the marker
	}
	if err != nil {
		return err
	}
	if alive, err := m.alive(); alive || err != nil {
		return err
	}
	unlock, err := lockDir(dir, false)
	if errors.Is(err, unix.EWOULDBLOCK) || errors.Is(err, os.ErrNotExist) {
		return nil // another test process sweeps it now, or did
	}
	if err != nil {
		return err
	}
	defer unlock()
	// Another sweep may have removed the directory before we locked it.
	if m, err = readMarker(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	logf("containerdtest: sweeping %s, left by dead test process %d", dir, m.PID)
	var errs []error
	// The processes that use the runtimes go first (a cluster's or a
	// node's program the test ran as a child): left running, they would
	// start containers while the runtimes are torn down.
	users, err := killProcessesOf(dir, isRuntimeUser)
	errs = append(errs, err)
	for _, p := range users {
		logf("containerdtest: killed process %s of %s", p, dir)
	}
	teardown := func() (failed bool) {
		for _, rec := range slices.Backward(m.Runtimes) {
			if err := teardownRuntime(ctx, logf, rec); err != nil {
				logf("containerdtest: tearing down runtime %s: %v", rec.Namespace, err)
				failed = true
			}
		}
		return failed
	}
	failed := teardown()
	killed, err := killProcessesOf(dir, anyProcess)
	errs = append(errs, err)
	for _, p := range killed {
		logf("containerdtest: killed process %s of %s", p, dir)
	}
	// A daemon or shim that hung the teardown is gone now: a daemon
	// started afresh over the runtime's state cleans up after the dead
	// shims (runc delete ends their containers), and Destroy can finish.
	if failed && len(killed) > 0 {
		failed = teardown()
		more, err := killProcessesOf(dir, anyProcess)
		errs = append(errs, err)
		for _, p := range more {
			logf("containerdtest: killed process %s of %s", p, dir)
		}
	}
	if failed {
		errs = append(errs, errors.New("containerdtest: runtime teardown failed (see above)"))
	}
	for _, cg := range slices.Backward(m.Cgroups) {
		if err := hostfs.RemoveDirTree(cg); err != nil {
			errs = append(errs, err)
		} else {
			logf("containerdtest: removed cgroup %s", cg)
		}
	}
	if pts, err := hostfs.MountsUnder(dir); err == nil && len(pts) > 0 {
		logf("containerdtest: unmounting %s", strings.Join(pts, " "))
	}
	if err := removeDir(dir); err != nil {
		errs = append(errs, err)
	} else {
		logf("containerdtest: removed %s", dir)
	}
	// containerd 1.6 keeps runc's state of a namespace in
	// /run/containerd/runc whatever its state directory is; Destroy
	// removes it, unless it failed.
	for _, rec := range m.Runtimes {
		_ = os.Remove(filepath.Join("/run/containerd/runc", rec.Namespace))
	}
	return errors.Join(errs...)
}

// teardownRuntime removes what a runtime recorded in a marker left, with
// the runtime's own teardown: a Runtime over its data directory and
// namespace (adopting its private daemon, or starting one over its
// state) and Destroy, then its network's Destroy.
func teardownRuntime(ctx context.Context, logf func(string, ...any), rec runtimeRecord) error {
	var errs []error
	var netw *cni.Network
	if rec.Network != nil {
		n, err := cni.New(*rec.Network)
		if err != nil {
			errs = append(errs, err)
		} else {
			netw = n
		}
	}
	// Destroy removes a private runtime's data directory last: without it
	// the runtime was destroyed already.
	if _, err := os.Stat(rec.DataDir); err == nil || rec.Address != "" {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		rt, err := containerd.New(ctx, containerd.Options{DataDir: rec.DataDir, Address: rec.Address, Namespace: rec.Namespace,
			CgroupParent: rec.CgroupParent, Network: netw, Logger: testLogger()})
		if err == nil {
			sbs, _ := rt.ListPodSandboxes(ctx)
			err = rt.Destroy(ctx)
			logf("containerdtest: destroyed runtime %s in %s (%d pod sandboxes)", rec.Namespace, rec.DataDir, len(sbs))
		}
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("runtime %s: %w", rec.Namespace, err))
		}
	}
	if netw != nil {
		if err := netw.Destroy(ctx); err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", rec.Network.Name, err))
		} else {
			logf("containerdtest: destroyed network %s (bridge %s)", rec.Network.Name, rec.Network.Bridge)
		}
	}
	return errors.Join(errs...)
}

// killProcessesOf kills (SIGKILL) the root-owned processes whose command
// line names dir or a path below it, or whose working directory is in
// it, and for whose command line which holds, and waits for them to end.
// It returns them as "pid (command)".
func killProcessesOf(dir string, which func(args []string) bool) ([]string, error) {
	var killed []string
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for pid := range processesOf(dir) {
		// A pidfd pins the process: once it is open, the check and the
		// signal concern the same process even if the PID is reused.
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue
		}
		args, ok := belongsTo(pid, dir)
		if !ok || !which(args) {
			unix.Close(fd)
			continue
		}
		if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil {
			unix.Close(fd)
			continue
		}
		fds = append(fds, fd)
		killed = append(killed, fmt.Sprintf("%d (%s)", pid, strings.Join(args, " ")))
	}
	// A pidfd becomes readable when its process has exited.
	deadline := time.Now().Add(10 * time.Second)
	for _, fd := range fds {
		for {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(pfd, max(0, int(time.Until(deadline).Milliseconds())))
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if n == 0 && err == nil {
				return killed, errors.New("containerdtest: killed processes still running after 10s")
			}
			break
		}
	}
	return killed, nil
}

// processesOf returns the processes (but this one and init) that
// belong to dir (see belongsTo), with their command lines.
func processesOf(dir string) map[int]string {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	out := map[int]string{}
	for _, p := range procs {
		pid, err := strconv.Atoi(filepath.Base(p))
		if err != nil || pid == os.Getpid() || pid == 1 {
			continue
		}
		if args, ok := belongsTo(pid, dir); ok {
			out[pid] = strings.Join(args, " ")
		}
	}
	return out
}

// belongsTo reports whether process pid is root's and names dir in its
// command line or runs in it, and returns its command line.
func belongsTo(pid int, dir string) ([]string, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d", pid), &st); err != nil || st.Uid != 0 {
		return nil, false
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	if slices.ContainsFunc(args, func(a string) bool { return namesPathIn(a, dir) }) {
		return args, true
	}
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return nil, false
	}
	cwd = strings.TrimSuffix(cwd, " (deleted)")
	return args, cwd == dir || strings.HasPrefix(cwd, dir+"/")
}

// anyProcess selects every process for killProcessesOf.
func anyProcess([]string) bool { return true }

// isRuntimeUser reports whether a process with the command line args uses
// a runtime rather than being part of it: anything but a containerd
// daemon, a shim, runc and a pod's pause process, which the runtime's
// teardown ends itself.
func isRuntimeUser(args []string) bool {
	if len(args) == 0 {
		return true
	}
	switch base := filepath.Base(args[0]); {
	case base == "containerd", strings.HasPrefix(base, "containerd-shim"), base == "runc", base == "pause":
		return false
	}
	return true
}

// namesPathIn reports whether a command-line argument names dir or a
// path below it (also as part of an argument, such as --config=dir/x).
func namesPathIn(arg, dir string) bool {
	return strings.Contains(arg, dir+"/") || arg == dir || strings.HasSuffix(arg, "="+dir)
}
