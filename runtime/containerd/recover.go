package containerd

import (
	"context"
	"strconv"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"

	"github.com/tugboatdev/tugboat/runtime"
)

// sandboxGone reports why a Ready sandbox can no longer run containers:
// its network or IPC namespace bind mount, its /dev/shm or its pause
// process is gone (after a reboot all of them are), or "" if it is whole.
func (s *sandbox) sandboxGone() string {
	switch {
	case s.NetNS != "" && !isNSMount(s.NetNS):
		return "network namespace is gone"
	case s.IPCNS != "" && !isNSMount(s.IPCNS):
		return "IPC namespace is gone"
	case s.Shm != "" && !isMountPoint(s.Shm):
		return "/dev/shm is gone"
	case s.Config.ShareProcessNamespace && !s.Config.HostPID && !s.pauseAlive():
		return "pause process is gone"
	}
	return ""
}

// recoverSandboxes runs when the runtime starts: every sandbox whose
// namespaces or pause process did not survive (a host reboot, a killed
// shim and a deleted namespace) is reported NotReady so that the node
// agent makes a new one, and what it left is cleaned up: its containers
// are stopped and their dead tasks deleted (which unmounts their root
// file systems), the CNI attachment is deleted with the configuration
// libcni cached at setup (releasing the IP), its pause process is killed.
// Its containers, snapshots and log files stay until RemovePodSandbox, so
// that their last state and logs can still be read.
func (r *Runtime) recoverSandboxes(ctx context.Context) {
	r.mu.Lock()
	var dead []*sandbox
	for _, s := range r.sandboxes {
		if s.State != runtime.SandboxReady {
			continue
		}
		if why := s.sandboxGone(); why != "" {
			r.logger.Warn("sandbox did not survive; reporting it NotReady", "sandbox", s.ID, "pod", s.Config.Namespace+"/"+s.Config.Name, "reason", why)
			s.State = runtime.SandboxNotReady
			dead = append(dead, s)
		}
	}
	r.mu.Unlock()
	for _, s := range dead {
		cs, err := r.ListContainers(ctx, runtime.ContainerFilter{SandboxID: s.ID})
		if err != nil {
			r.logger.Warn("listing containers of a dead sandbox", "sandbox", s.ID, "err", err)
		}
		for _, c := range cs {
			if c.State == runtime.ContainerRunning {
				if err := r.StopContainer(ctx, c.ID, 0); err != nil {
					r.logger.Warn("stopping a container of a dead sandbox", "container", c.ID, "err", err)
				}
			}
			r.deleteDeadTask(ctx, c.ID)
		}
		if s.Networked && r.opts.Network != nil {
			if err := r.opts.Network.TeardownCached(ctx, s.ID, s.NetNS, s.Config.PortMappings); err != nil {
				r.logger.Warn("CNI teardown of a dead sandbox", "sandbox", s.ID, "err", err)
			} else {
				s.Networked = false
			}
		}
		r.stopPause(s)
		if err := r.save(s); err != nil {
			r.logger.Warn("saving a dead sandbox", "sandbox", s.ID, "err", err)
		}
	}
}

// deleteDeadTask deletes a container's stopped task (its exit status is
// kept in a label first, so the container still reports it).
func (r *Runtime) deleteDeadTask(ctx context.Context, id string) {
	c, task, err := r.containerTask(ctx, id)
	if err != nil {
		return
	}
	st, err := task.Status(ctx)
	if err != nil || st.Status != client.Stopped {
		return
	}
	code := st.ExitStatus
	if code == 0 && st.ExitTime.IsZero() {
		code = 128 + uint32(syscall.SIGKILL)
	}
	if _, err := c.SetLabels(ctx, map[string]string{labelExit: strconv.FormatUint(uint64(code), 10), labelFinished: st.ExitTime.UTC().Format(time.RFC3339Nano)}); err != nil {
		return
	}
	if err := deleteTask(ctx, c, task); err != nil {
		r.logger.Warn("deleting a dead task", "container", id, "err", err)
	}
}
