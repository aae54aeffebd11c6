package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"golang.org/x/sys/unix"

	"github.com/tugboatdev/tugboat/internal/hostfs"
	"github.com/tugboatdev/tugboat/runtime"
)

type snapshotInfo = snapshots.Info

func defaultPlatform() platforms.MatchComparer { return platforms.Default() }

func isNotFound(err error) bool { return errors.Is(err, runtime.ErrNotFound) }

// removeCgroupParent removes the (empty) parent cgroup of the runtime's
// pods and containers, with the pod and QoS cgroups below it, from every
// hierarchy.
func removeCgroupParent(parent string) error { return removeCgroupTree(parent) }

// readopt loads persisted sandboxes and re-attaches to running containers:
// their output goes to their log files again and their exits are watched.
func (r *Runtime) readopt(ctx context.Context) (err error) {
	if err := r.loadSandboxes(); err != nil {
		return err
	}
	defer func() {
		if err == nil {
			r.recoverSandboxes(ctx)
		}
	}()
	cs, err := r.client.Containers(ctx)
	if err != nil {
		return fmt.Errorf("containerd: list containers: %w", err)
	}
	for _, c := range cs {
		labels, err := c.Labels(ctx)
		if err != nil || labels[labelSandbox] == "" {
			continue
		}
		t, err := c.Task(ctx, nil)
		if err != nil {
			continue
		}
		st, err := t.Status(ctx)
		if err != nil || st.Status != "running" {
			continue
		}
		spec, err := c.Spec(ctx)
		if err != nil {
			continue
		}
		lc, err := r.newLive(c.ID(), labels, spec.Process.Terminal)
		if err != nil {
			return err
		}
		task, err := c.Task(ctx, r.attach(lc))
		if err != nil {
			lc.closeLog()
			if errdefs.IsNotFound(err) {
				continue
			}
			return fmt.Errorf("containerd: re-attach %s: %w", c.ID(), err)
		}
		lc.io = task.IO()
		statusC, err := task.Wait(r.bg)
		if err != nil {
			lc.closeLog()
			return fmt.Errorf("containerd: re-attach %s: %w", c.ID(), err)
		}
		if labels[labelStarted] == "" {
			// The previous Runtime stopped before it recorded the start
			// (StartContainer records it after the start): the process's
			// start time stands in.
			if at, err := processStartTime(int(task.Pid())); err == nil {
				lc.startedAt = at
				r.wg.Add(1)
				go r.recordStart(c.ID(), at)
			}
		}
		r.mu.Lock()
		r.live[c.ID()] = lc
		r.mu.Unlock()
		r.wg.Add(1)
		go r.monitor(lc, labels[labelSandbox], statusC)
		r.logger.Info("re-adopted running container", "container", c.ID(), "name", labels[labelName])
	}
	return nil
}

// killOrphanShims ends shims still serving address after the daemon
// stopped (left by a client that died while creating a task), by PID.
func killOrphanShims(address string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) == 0 || !strings.Contains(filepath.Base(args[0]), "containerd-shim") || !slices.Contains(args, address) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err == nil {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
}

// processStartTime is when process pid started (its start time in clock
// ticks after boot, on top of the boot time of /proc/stat).
func processStartTime(pid int) (time.Time, error) {
	ticks, _, err := hostfs.ProcStart(pid)
	if err != nil {
		return time.Time{}, err
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			boot, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, err
			}
			// USER_HZ is 100 on Linux whatever the kernel's HZ.
			return time.Unix(boot, 0).Add(time.Duration(ticks) * 10 * time.Millisecond), nil
		}
	}
	return time.Time{}, errors.New("no btime in /proc/stat")
}
