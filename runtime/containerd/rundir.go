package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	"golang.org/x/sys/unix"

	"github.com/tugboatdev/tugboat/internal/hostfs"
)

// The run directory (DataDir/run) holds the runtime's per-boot state on a
// tmpfs, as /run is on a usual node: the private containerd's state
// directory (task bundles, shim sockets), runc's state (runc root), the
// containers' FIFOs, the network and IPC namespace mount points, and each
// sandbox's hosts, resolv.conf and hostname files and /dev/shm. None of it
// can outlive a reboot (the namespaces, FIFOs and processes it describes
// do not), and the tmpfs survives the adapter's and containerd's restarts
// like /run does. What must survive a reboot stays on disk: sandbox.json,
// the container logs, containerd's root (images, snapshots, metadata) and
// the IP allocations. Creating the per-boot files on a tmpfs also avoids
// the cost of file creation on the data directory's file system (on the
// ext4 without a journal of BENCHMARKS.md, 6-7 % of a pod start's CPU).
const runSubdir = "run"

// runcRootSubdir is runc's state directory below the run directory.
const runcRootSubdir = "runc"

// mountRunDir mounts a tmpfs at dir unless one is already mounted there (an
// earlier Runtime over the same DataDir in this boot), and reports whether
// it mounted one.
func mountRunDir(dir string) (bool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("containerd: %w", err)
	}
	if isTmpfs(dir) && isMountPoint(dir) {
		return false, nil
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return false, fmt.Errorf("containerd: mount the run directory %s: %w", dir, err)
	}
	return true, nil
}

// unmountRunDir detaches the run directory's tmpfs and what is mounted
// below it.
func unmountRunDir(dir string) error {
	if err := hostfs.UnmountUnder(dir); err != nil {
		return err
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("containerd: %w", err)
	}
	return nil
}

// isTmpfs reports whether path is on a tmpfs.
func isTmpfs(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.TMPFS_MAGIC
}

// runPath is a path below the run directory.
func (r *Runtime) runPath(elem ...string) string {
	return filepath.Join(append([]string{r.opts.DataDir, runSubdir}, elem...)...)
}

// privateStateDir is the private containerd's state directory: in the run
// directory, unless a data directory made before the run directory existed
// still needs its state directory on disk: a daemon started with it still
// runs, or tasks' bundles are in it. An unused one is removed.
func privateStateDir(dataDir string) string {
	daemonDir := filepath.Join(dataDir, "containerd")
	legacy := filepath.Join(daemonDir, "state")
	if _, err := os.Stat(legacy); err == nil {
		bundles, _ := filepath.Glob(filepath.Join(legacy, "io.containerd.runtime.v2.task", "*", "*"))
		if len(bundles) > 0 || (&daemon{dir: daemonDir}).leftoverPID() > 0 || os.RemoveAll(legacy) != nil {
			return legacy
		}
	}
	return filepath.Join(dataDir, runSubdir, "containerd")
}

// runDirIdle reports whether nothing lives in the run directory: no
// sandbox, no task in the runtime's namespace, and no namespace mount
// point or FIFO (of another Runtime over the same DataDir) in it.
func (r *Runtime) runDirIdle() bool {
	r.mu.Lock()
	n := len(r.sandboxes)
	r.mu.Unlock()
	if n > 0 {
		return false
	}
	for _, sub := range []string{"netns", "ipcns", "fifo", "sandboxes"} {
		if entries, err := os.ReadDir(r.runPath(sub)); len(entries) > 0 || (err != nil && !errors.Is(err, os.ErrNotExist)) {
			return false
		}
	}
	ctx, cancel := context.WithTimeout(r.nsctx(context.Background()), 5*time.Second)
	defer cancel()
	resp, err := r.client.TaskService().List(ctx, &tasksapi.ListTasksRequest{})
	return err == nil && len(resp.Tasks) == 0
}
