package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/tugboatdev/tugboat/internal/hostfs"
	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/internal/pause"
)

// shmSize is the size of a pod's shared /dev/shm, as the CRI plugin's.
const shmSize = 64 << 20

// newIPCNS creates an IPC namespace kept alive by a bind mount at path, as
// cni.NewNetNS does for network namespaces: a pod's containers share it
// without a pause process.
func newIPCNS(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return err
	}
	f.Close()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/ipc", unix.Gettid()))
	if err != nil {
		return err
	}
	defer orig.Close()
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWIPC); err != nil {
			goruntime.UnlockOSThread()
			errc <- fmt.Errorf("unshare ipc: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/ipc", unix.Gettid())
		err := unix.Mount(src, path, "none", unix.MS_BIND, "")
		if err != nil {
			err = fmt.Errorf("bind mount ipc namespace: %w", err)
		}
		// Back to the original namespace so the thread can serve other
		// goroutines; if that fails the thread stays locked and ends
		// with this goroutine.
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWIPC) == nil {
			goruntime.UnlockOSThread()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// mountShm mounts the pod's /dev/shm tmpfs at dir.
func mountShm(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("shm", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, fmt.Sprintf("mode=1777,size=%d", shmSize)); err != nil {
		return fmt.Errorf("mount shm: %w", err)
	}
	return nil
}

// unmountAndRemove detaches a mount (a namespace bind mount or the shm
// tmpfs) and removes its mount point; missing or unmounted paths are not
// errors.
func unmountAndRemove(path string) error {
	if path == "" {
		return nil
	}
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// isNSMount reports whether path is a live namespace bind mount (after a
// host reboot it is an empty file on a plain file system).
func isNSMount(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// isMountPoint reports whether dir is mounted on (its device differs from
// its parent's).
func isMountPoint(dir string) bool {
	var a, b unix.Stat_t
	if unix.Stat(dir, &a) != nil || unix.Stat(filepath.Dir(dir), &b) != nil {
		return false
	}
	return a.Dev != b.Dev
}

// pausePath is where the pause program is written for the runtime's use.
func (r *Runtime) pausePath() string { return filepath.Join(r.opts.DataDir, "bin", "pause") }

// startPause starts the sandbox's pause process as PID 1 of a new PID
// namespace (shareProcessNamespace) in the pod's cgroup and records its
// PID and start time.
func (r *Runtime) startPause(s *sandbox) error {
	bin := pause.Binary()
	if bin == nil {
		return fmt.Errorf("shareProcessNamespace needs the pause program, which is built for amd64 only (this is %s): %w", goruntime.GOARCH, runtime.ErrInvalid)
	}
	path := r.pausePath()
	if b, err := os.ReadFile(path); err != nil || string(b) != string(bin) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		tmp := fmt.Sprintf("%s.%d", path, os.Getpid())
		if err := os.WriteFile(tmp, bin, 0o755); err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	cmd := exec.Command(path)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start pause: %w", err)
	}
	pid := cmd.Process.Pid
	// Reap it when it is killed (after a restart of the runtime it is no
	// longer our child and init reaps it).
	go func() { _ = cmd.Wait() }()
	start, _, err := hostfs.ProcStart(pid)
	if err != nil {
		_ = cmd.Process.Kill()
		return fmt.Errorf("start pause: %w", err)
	}
	s.PausePID, s.PauseStart = pid, start
	if s.Cgroup != "" {
		if err := joinCgroup(s.Cgroup, pid); err != nil {
			killProcess(pid, start)
			s.PausePID, s.PauseStart = 0, 0
			return err
		}
	}
	return nil
}

// pauseAlive reports whether the sandbox's pause process still runs.
func (s *sandbox) pauseAlive() bool { return hostfs.ProcessAlive(s.PausePID, s.PauseStart) }

// pidNSPath is the PID namespace the sandbox's containers join.
func (s *sandbox) pidNSPath() string { return fmt.Sprintf("/proc/%d/ns/pid", s.PausePID) }

// stopPause ends the sandbox's pause process (and with it every process
// left in the pod's PID namespace). It takes r.mu itself.
func (r *Runtime) stopPause(s *sandbox) {
	r.mu.Lock()
	pid, start := s.PausePID, s.PauseStart
	s.PausePID, s.PauseStart = 0, 0
	r.mu.Unlock()
	killProcess(pid, start)
}

// killProcess kills the process pid, started at start, and waits, briefly,
// until it has exited, so that its cgroup can be removed.
func killProcess(pid int, start uint64) {
	if !hostfs.ProcessAlive(pid, start) {
		return
	}
	_ = unix.Kill(pid, unix.SIGKILL)
	for i := 0; i < 500 && hostfs.ProcessAlive(pid, start); i++ {
		time.Sleep(10 * time.Millisecond)
	}
}

// containerCgroup is a container's cgroup: below the pod cgroup, or below
// CgroupParent for sandboxes made before pod cgroups existed.
func (r *Runtime) containerCgroup(s *sandbox, id string) string {
	if s.Cgroup != "" {
		return s.Cgroup + "/" + id
	}
	return r.opts.CgroupParent + "/" + id
}

// podNamespaceOpts joins a container to the pod's IPC namespace and
// /dev/shm (or the node's, for hostIPC) and to the pod's shared PID
// namespace (shareProcessNamespace) or the node's (hostPID).
func (r *Runtime) podNamespaceOpts(s *sandbox) ([]oci.SpecOpts, error) {
	var opts []oci.SpecOpts
	shm := s.Shm
	switch {
	case s.Config.HostIPC:
		opts = append(opts, oci.WithHostNamespace(specs.IPCNamespace))
		shm = "/dev/shm"
	case s.IPCNS != "":
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.IPCNamespace, Path: s.IPCNS}))
	}
	if shm != "" {
		opts = append(opts, withShm(shm))
	}
	switch {
	case s.Config.HostPID:
		opts = append(opts, oci.WithHostNamespace(specs.PIDNamespace))
	case s.Config.ShareProcessNamespace:
		r.mu.Lock()
		alive, path := s.pauseAlive(), s.pidNSPath()
		r.mu.Unlock()
		if !alive {
			return nil, fmt.Errorf("the sandbox's pause process (PID 1 of the shared PID namespace) is gone: %w", runtime.ErrInvalid)
		}
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.PIDNamespace, Path: path}))
	}
	return opts, nil
}

// withShm replaces the spec's /dev/shm with a bind mount of dir.
func withShm(dir string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		mounts := s.Mounts[:0]
		for _, m := range s.Mounts {
			if filepath.Clean(m.Destination) != "/dev/shm" {
				mounts = append(mounts, m)
			}
		}
		s.Mounts = append(mounts, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: dir, Options: []string{"rbind", "rprivate", "rw"}})
		return nil
	}
}
