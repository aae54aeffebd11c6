package containerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// daemon supervises a private containerd: its root, state, socket and log
// live under dir. It restarts containerd if it dies while supervised.
type daemon struct {
	dir     string
	binary  string
	address string
	logger  *slog.Logger

	mu       sync.Mutex
	pid      int
	exited   chan struct{} // closed when the current process exits
	stopping bool
	stopped  chan struct{} // closed when supervision ends
}

// daemonConfig is containerd 1.6's configuration (version 2) for a private
// daemon: the CRI plugin and snapshotters we do not use are disabled. Its
// root (images, snapshots, metadata) is dir/root; its state (task bundles,
// shim sockets and FIFOs, which do not outlive a reboot) is state.
func daemonConfig(dir, state string) string {
	q := strconv.Quote
	return fmt.Sprintf(`version = 2
root = %s
state = %s
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %s

[ttrpc]
  address = %s

[plugins."io.containerd.internal.v1.opt"]
  path = %s
`, q(filepath.Join(dir, "root")), q(state), q(filepath.Join(dir, "containerd.sock")),
		q(filepath.Join(dir, "containerd.sock.ttrpc")), q(filepath.Join(dir, "opt")))
}

// startDaemon starts (or adopts, when one left by an earlier runtime over
// dir still answers) a private containerd and waits until its socket
// accepts connections. state is its state directory (see daemonConfig).
func startDaemon(ctx context.Context, dir, state, binary string, logger *slog.Logger) (*daemon, error) {
	if binary == "" {
		binary = "containerd"
	}
	d := &daemon{dir: dir, binary: binary, address: filepath.Join(dir, "containerd.sock"), logger: logger, stopped: make(chan struct{})}
	if len(d.address) > 100 {
		return nil, fmt.Errorf("containerd: socket path %q is too long for a unix socket; use a shorter data directory", d.address)
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(daemonConfig(dir, state)), 0o600); err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	if pid := d.leftoverPID(); pid > 0 && dialable(d.address) {
		logger.Info("adopting running private containerd", "pid", pid, "address", d.address)
		d.pid, d.exited = pid, make(chan struct{})
		go d.watchAdopted(pid, d.exited)
	} else if err := d.spawn(); err != nil {
		return nil, err
	}
	go d.supervise()
	if err := d.waitReady(ctx); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

func (d *daemon) pidFile() string { return filepath.Join(d.dir, "containerd.pid") }

// leftoverPID returns the PID recorded by an earlier supervisor if that
// process is still a containerd using our configuration.
func (d *daemon) leftoverPID() int {
	b, err := os.ReadFile(d.pidFile())
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), filepath.Join(d.dir, "config.toml")) {
		return 0
	}
	return pid
}

func dialable(address string) bool {
	c, err := net.DialTimeout("unix", address, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func (d *daemon) spawn() error {
	logf, err := os.OpenFile(filepath.Join(d.dir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	cmd := exec.Command(d.binary, "--config", filepath.Join(d.dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a terminal's Ctrl-C aimed at the program does
	// not take the daemon down before the program stops it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	_ = os.Remove(d.address)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("containerd: start %s: %w", d.binary, err)
	}
	logf.Close()
	exited := make(chan struct{})
	d.mu.Lock()
	d.pid, d.exited = cmd.Process.Pid, exited
	d.mu.Unlock()
	if err := os.WriteFile(d.pidFile(), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	go func() {
		err := cmd.Wait()
		d.logger.Debug("private containerd exited", "pid", cmd.Process.Pid, "err", err)
		close(exited)
	}()
	d.logger.Info("started private containerd", "pid", cmd.Process.Pid, "address", d.address)
	return nil
}

// watchAdopted closes exited when an adopted (not our child) process ends.
func (d *daemon) watchAdopted(pid int, exited chan struct{}) {
	for {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			close(exited)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// supervise restarts containerd when it dies unless stop was called.
func (d *daemon) supervise() {
	for {
		d.mu.Lock()
		exited := d.exited
		d.mu.Unlock()
		select {
		case <-exited:
		case <-d.stopped:
			return
		}
		d.mu.Lock()
		stopping := d.stopping
		d.mu.Unlock()
		if stopping {
			return
		}
		d.logger.Warn("private containerd died; restarting it", "address", d.address)
		for {
			err := d.spawn()
			if err == nil {
				break
			}
			d.logger.Error("restarting containerd", "err", err)
			select {
			case <-d.stopped:
				return
			case <-time.After(time.Second):
			}
		}
	}
}

func (d *daemon) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if dialable(d.address) {
			return nil
		}
		d.mu.Lock()
		exited := d.exited
		d.mu.Unlock()
		select {
		case <-exited:
			return fmt.Errorf("containerd: private daemon exited at start; see %s", filepath.Join(d.dir, "containerd.log"))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd: socket %s not ready after 30s", d.address)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// PID returns the daemon's current process ID.
func (d *daemon) PID() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pid
}

// stop ends supervision and stops containerd (SIGTERM, SIGKILL after 10s).
// Containers keep running in their shims.
func (d *daemon) stop() error {
	d.mu.Lock()
	if d.stopping {
		d.mu.Unlock()
		return nil
	}
	d.stopping = true
	pid, exited := d.pid, d.exited
	d.mu.Unlock()
	close(d.stopped)
	if pid <= 0 {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-exited
	}
	_ = os.Remove(d.pidFile())
	return nil
}
