package containerd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/containerd/containerd/v2/pkg/cio"
	"golang.org/x/sys/unix"
)

// pollIO is the cio.IO of a container's main process. containerd's own
// attach (cio.NewAttach) copies each output FIFO with a goroutine that
// holds a 32 KiB buffer for the container's whole life, blocked in a read;
// at 110 pods that is 7 MiB of a node agent's heap. pollIO waits for
// readability through the Go poller instead and takes a buffer from a
// shared pool only while there is output to copy, so an idle container
// holds none.
//
// The FIFOs' read ends are opened non-blocking. So that a read before the
// shim has opened its write end (or between its writes) says "no data"
// rather than end-of-file, pollIO holds a write end of each output FIFO
// itself until [pollIO.Wait] (the process has exited): after that, a read
// returns end-of-file once the shim has closed its end and the output is
// drained.
type pollIO struct {
	cfg   cio.Config
	fifos *cio.FIFOSet
	pool  *sync.Pool

	mu    sync.Mutex
	files []*os.File // read ends and stdin
	keep  []*os.File // our write ends of the output FIFOs
	wg    sync.WaitGroup
}

var _ cio.IO = (*pollIO)(nil)

// newOutputBuffers returns the pool pollIO copies through.
func newOutputBuffers() *sync.Pool {
	return &sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
}

// attachPoll returns a cio.Attach that copies the process's stdout and
// stderr to stdout and stderr and stdin (if not nil) to its stdin FIFO.
func attachPoll(pool *sync.Pool, stdin io.Reader, stdout, stderr io.Writer) cio.Attach {
	return func(fifos *cio.FIFOSet) (cio.IO, error) {
		if fifos == nil {
			return nil, errors.New("containerd: attach: no FIFOs")
		}
		p := &pollIO{cfg: fifos.Config, fifos: fifos, pool: pool}
		// A stream nobody copies is not handed to the shim.
		if stdin == nil {
			p.cfg.Stdin = ""
		}
		if stdout == nil {
			p.cfg.Stdout = ""
		}
		if stderr == nil {
			p.cfg.Stderr = ""
		}
		if err := p.open(stdin, stdout, stderr); err != nil {
			p.closeFiles()
			return nil, err
		}
		return p, nil
	}
}

func (p *pollIO) open(stdin io.Reader, stdout, stderr io.Writer) error {
	outs := []struct {
		path string
		w    io.Writer
	}{{p.cfg.Stdout, stdout}, {p.cfg.Stderr, stderr}}
	if p.cfg.Terminal {
		outs = outs[:1] // a terminal has one output stream
	}
	for _, o := range outs {
		if o.path == "" || o.w == nil {
			continue
		}
		if err := mkfifo(o.path); err != nil {
			return err
		}
		r, err := os.OpenFile(o.path, os.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("containerd: open %s: %w", o.path, err)
		}
		p.files = append(p.files, r)
		// A FIFO with a reader opens for writing without blocking.
		w, err := os.OpenFile(o.path, os.O_WRONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("containerd: open %s: %w", o.path, err)
		}
		p.keep = append(p.keep, w)
		p.wg.Add(1)
		go p.copyOut(r, o.w)
	}
	if stdin != nil && p.cfg.Stdin != "" {
		if err := mkfifo(p.cfg.Stdin); err != nil {
			return err
		}
		// Read-write: the open does not wait for the shim to open its end.
		f, err := os.OpenFile(p.cfg.Stdin, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("containerd: open %s: %w", p.cfg.Stdin, err)
		}
		p.files = append(p.files, f)
		go func() {
			_, _ = io.Copy(f, stdin)
			// End of input: the process reads end-of-file once no writer is left.
			p.mu.Lock()
			defer p.mu.Unlock()
			for i, g := range p.files {
				if g == f {
					_ = f.Close()
					p.files = append(p.files[:i], p.files[i+1:]...)
					break
				}
			}
		}()
	}
	return nil
}

func mkfifo(path string) error {
	if err := unix.Mkfifo(path, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("containerd: mkfifo %s: %w", path, err)
	}
	return nil
}

// copyOut copies r to w until end-of-file or until r is closed, holding a
// buffer only while a read has data.
func (p *pollIO) copyOut(r *os.File, w io.Writer) {
	defer p.wg.Done()
	rc, err := r.SyscallConn()
	if err != nil {
		return
	}
	for {
		var (
			buf  *[]byte
			n    int
			rerr error
		)
		err := rc.Read(func(fd uintptr) bool {
			buf = p.pool.Get().(*[]byte)
			for {
				n, rerr = unix.Read(int(fd), *buf)
				if rerr != unix.EINTR {
					break
				}
			}
			if rerr == unix.EAGAIN {
				p.pool.Put(buf)
				buf = nil
				return false
			}
			return true
		})
		if buf != nil && n > 0 {
			_, _ = w.Write((*buf)[:n])
		}
		if buf != nil {
			p.pool.Put(buf)
		}
		if err != nil || rerr != nil || n <= 0 {
			return
		}
	}
}

// Config implements cio.IO.
func (p *pollIO) Config() cio.Config { return p.cfg }

// Wait implements cio.IO: called once the process has exited, it lets go
// of pollIO's own write ends and waits until the output is drained.
func (p *pollIO) Wait() {
	p.mu.Lock()
	for _, f := range p.keep {
		_ = f.Close()
	}
	p.keep = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// Cancel implements cio.IO: it stops copying.
func (p *pollIO) Cancel() { p.closeFiles() }

// Close implements cio.IO: it stops copying and removes the FIFOs.
func (p *pollIO) Close() error {
	p.closeFiles()
	if p.fifos != nil {
		return p.fifos.Close()
	}
	return nil
}

func (p *pollIO) closeFiles() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.keep {
		_ = f.Close()
	}
	for _, f := range p.files {
		_ = f.Close()
	}
	p.keep, p.files = nil, nil
}
