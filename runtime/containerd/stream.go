package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/cni"
	"github.com/tugboatdev/tugboat/runtime/crilog"
)

func (r *Runtime) runningTask(ctx context.Context, id string) (client.Container, client.Task, error) {
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, nil, wrapNotFound(err, "container", id)
	}
	t, err := c.Task(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("containerd: container %s is not running: %w", id, runtime.ErrInvalid)
	}
	st, err := t.Status(ctx)
	if err != nil || st.Status != client.Running {
		return nil, nil, fmt.Errorf("containerd: container %s is not running: %w", id, runtime.ErrInvalid)
	}
	return c, t, nil
}

// Exec implements runtime.Runtime.
func (r *Runtime) Exec(ctx context.Context, id string, opts runtime.ExecOptions) (int, error) {
	ctx = r.nsctx(ctx)
	if len(opts.Cmd) == 0 {
		return 0, fmt.Errorf("containerd: exec without command: %w", runtime.ErrInvalid)
	}
	c, task, err := r.runningTask(ctx, id)
	if err != nil {
		return 0, err
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return 0, fmt.Errorf("containerd: %w", err)
	}
	pspec := *spec.Process
	pspec.Args = opts.Cmd
	pspec.Terminal = opts.TTY
	var stdin io.Reader
	var stdinW *io.PipeWriter
	if opts.Stdin != nil {
		var pr *io.PipeReader
		pr, stdinW = io.Pipe()
		stdin = pr
	}
	stdout, stderr := serialized(opts.Stdout, opts.Stderr)
	ioOpts := []cio.Opt{cio.WithStreams(stdin, stdout, stderr), cio.WithFIFODir(filepath.Join(r.opts.DataDir, "fifo", "exec"))}
	if opts.TTY {
		ioOpts = append(ioOpts, cio.WithTerminal)
	}
	execID := "exec-" + newID()[:16]
	proc, err := task.Exec(ctx, execID, &pspec, cio.NewCreator(ioOpts...))
	if err != nil {
		return 0, fmt.Errorf("containerd: exec in %s: %w", id, err)
	}
	defer func() { _, _ = proc.Delete(context.WithoutCancel(ctx), client.WithProcessKill) }()
	statusC, err := proc.Wait(ctx)
	if err != nil {
		return 0, fmt.Errorf("containerd: exec in %s: %w", id, err)
	}
	if err := proc.Start(ctx); err != nil {
		return 0, fmt.Errorf("containerd: exec in %s: %w", id, err)
	}
	if stdinW != nil {
		go func() {
			_, _ = io.Copy(stdinW, opts.Stdin)
			stdinW.Close()
			// The shim keeps the FIFO open: tell it stdin is done.
			_ = proc.CloseIO(context.WithoutCancel(ctx), client.WithStdinCloser)
		}()
	}
	if opts.TTY && opts.Resize != nil {
		go func() {
			for sz := range opts.Resize {
				_ = proc.Resize(ctx, uint32(sz.Width), uint32(sz.Height))
			}
		}()
	}
	select {
	case st := <-statusC:
		code, _, err := st.Result()
		if err != nil {
			return 0, fmt.Errorf("containerd: exec in %s: %w", id, err)
		}
		waitIO(proc.IO(), 2*time.Second)
		return int(code), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// lockedWriter serializes writes to a writer shared by two copiers. It
// also hides io.ReaderFrom: two concurrent ReadFrom calls on one
// bytes.Buffer lose data.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

// Write implements io.Writer.
func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// serialized returns writers for the stdout and stderr copiers (io.Discard
// for nil), sharing one lock when both are the same writer.
func serialized(stdout, stderr io.Writer) (io.Writer, io.Writer) {
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	mu := &sync.Mutex{}
	out := lockedWriter{mu: mu, w: stdout}
	if stderr == stdout {
		return out, lockedWriter{mu: mu, w: stderr}
	}
	return out, lockedWriter{mu: &sync.Mutex{}, w: stderr}
}

// waitIO waits for the output copiers of an exited process, giving up when
// a background child keeps the output open.
func waitIO(i cio.IO, limit time.Duration) {
	if i == nil {
		return
	}
	done := make(chan struct{})
	go func() { i.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		i.Cancel()
	}
}

// Attach implements runtime.Runtime.
func (r *Runtime) Attach(ctx context.Context, id string, opts runtime.AttachOptions) error {
	ctx = r.nsctx(ctx)
	_, task, err := r.runningTask(ctx, id)
	if err != nil {
		return err
	}
	r.mu.Lock()
	lc := r.live[id]
	r.mu.Unlock()
	if lc == nil {
		return fmt.Errorf("containerd: container %s has no attachable streams: %w", id, runtime.ErrInvalid)
	}
	var stdout, stderr io.Writer
	if opts.Stdout != nil || opts.Stderr != nil {
		stdout, stderr = serialized(opts.Stdout, opts.Stderr)
	}
	if opts.Stdout == nil {
		stdout = nil
	}
	if opts.Stderr == nil {
		stderr = nil
	}
	removeOut := lc.outFan.add(stdout)
	defer removeOut()
	removeErr := lc.errFan.add(stderr)
	defer removeErr()
	if opts.Stdin != nil && lc.stdin != nil {
		go func() { _, _ = io.Copy(lc.stdin, opts.Stdin) }()
	}
	if opts.Resize != nil && lc.tty {
		go func() {
			for sz := range opts.Resize {
				_ = task.Resize(ctx, uint32(sz.Width), uint32(sz.Height))
			}
		}()
	}
	select {
	case <-lc.exited:
	case <-ctx.Done():
	}
	return nil
}

// PortForward implements runtime.Runtime: it dials 127.0.0.1:port from
// inside the sandbox's network namespace.
func (r *Runtime) PortForward(ctx context.Context, sandboxID string, port int32, stream io.ReadWriter) error {
	s, err := r.getSandbox(sandboxID)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	var conn net.Conn
	dial := func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, "tcp4", addr)
		return err
	}
	if s.NetNS == "" {
		err = dial()
	} else {
		err = cni.Do(s.NetNS, dial)
	}
	if err != nil {
		return fmt.Errorf("containerd: port-forward to %s in sandbox %s: %w", addr, sandboxID, err)
	}
	defer conn.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(conn, stream)
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(stream, conn)
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = nil
	}
	conn.Close()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("containerd: port-forward: %w", err)
	}
	return nil
}

// ContainerLogs implements runtime.Runtime.
func (r *Runtime) ContainerLogs(ctx context.Context, id string, opts runtime.LogOptions, stdout, stderr io.Writer) error {
	st, err := r.ContainerStatus(ctx, id)
	if err != nil {
		return err
	}
	r.mu.Lock()
	lc := r.live[id]
	r.mu.Unlock()
	done := func() bool { return true }
	if lc != nil {
		done = func() bool {
			select {
			case <-lc.exited:
				return true
			default:
				return false
			}
		}
	}
	err = crilog.Read(ctx, st.LogPath, crilog.ReadOptions{LogOptions: opts, MaxFiles: r.opts.LogMaxFiles, Done: done}, stdout, stderr)
	if errors.Is(err, os.ErrNotExist) && st.State == runtime.ContainerCreated {
		return nil // never started: nothing logged yet
	}
	return err
}
