package crilog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/tugboatdev/tugboat/runtime"
)

// errLimit stops reading when LimitBytes is reached.
var errLimit = errors.New("log byte limit reached")

// pollInterval is how often a followed file is checked for growth.
const pollInterval = 50 * time.Millisecond

// ReadOptions are runtime.LogOptions plus what following needs.
type ReadOptions struct {
	runtime.LogOptions
	// MaxFiles is the number of files the writer keeps (rotated ones are
	// read first); zero means DefaultMaxFiles.
	MaxFiles int
	// Done reports that the writer has finished (the container exited);
	// with Follow, reading stops at the end of the file once it does. Nil
	// means never.
	Done func() bool
}

// Read writes the entries of the log at path (and its rotated files) to
// stdout and stderr as the kubelet does for `kubectl logs`.
func Read(ctx context.Context, path string, opts ReadOptions, stdout, stderr io.Writer) error {
	out := &output{opts: opts.LogOptions, stdout: stdout, stderr: stderr, remaining: opts.LimitBytes}
	maxFiles := opts.MaxFiles
	if maxFiles <= 0 {
		maxFiles = DefaultMaxFiles
	}
	var entries []Entry
	for n := maxFiles - 1; n >= 1; n-- {
		es, _, err := readFile(RotatedPath(path, n))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		entries = append(entries, es...)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("crilog: %w", err)
	}
	defer func() { f.Close() }()
	r := bufio.NewReader(f)
	es, pending, err := readEntries(r)
	if err != nil {
		return err
	}
	entries = append(entries, es...)
	entries = tail(filterSince(entries, opts.Since), opts.TailLines)
	for _, e := range entries {
		if err := out.write(e); err != nil {
			return ignoreLimit(err)
		}
	}
	if !opts.Follow {
		return nil
	}
	for {
		done := opts.Done != nil && opts.Done()
		es, rest, err := readEntriesFrom(r, pending)
		if err != nil {
			return err
		}
		pending = rest
		for _, e := range filterSince(es, opts.Since) {
			if err := out.write(e); err != nil {
				return ignoreLimit(err)
			}
		}
		if len(es) > 0 {
			continue
		}
		if rotated(f, path) {
			nf, err := os.Open(path)
			if err == nil {
				// Drain what was appended to the old file before it was
				// renamed, then follow the new one.
				es, _, err := readEntriesFrom(r, pending)
				if err != nil {
					nf.Close()
					return err
				}
				for _, e := range filterSince(es, opts.Since) {
					if err := out.write(e); err != nil {
						nf.Close()
						return ignoreLimit(err)
					}
				}
				f.Close()
				f, r, pending = nf, bufio.NewReader(nf), nil
				continue
			}
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pollInterval):
		}
	}
}

func ignoreLimit(err error) error {
	if errors.Is(err, errLimit) {
		return nil
	}
	return err
}

// rotated reports whether path now names another file than f.
func rotated(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	if err1 != nil || err2 != nil {
		return false
	}
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Ino != sb.Ino
}

func readFile(path string) ([]Entry, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	return readEntries(bufio.NewReader(f))
}

func readEntries(r *bufio.Reader) ([]Entry, []byte, error) { return readEntriesFrom(r, nil) }

// readEntriesFrom reads complete lines; an unterminated last line is
// returned to be completed by the next call. Malformed lines are skipped.
func readEntriesFrom(r *bufio.Reader, pending []byte) ([]Entry, []byte, error) {
	var out []Entry
	for {
		chunk, err := r.ReadBytes('\n')
		pending = append(pending, chunk...)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, pending, nil
			}
			return out, pending, fmt.Errorf("crilog: %w", err)
		}
		line := pending[:len(pending)-1]
		if e, perr := ParseLine(line); perr == nil {
			e.Content = append([]byte(nil), e.Content...)
			out = append(out, e)
		}
		pending = nil
	}
}

func filterSince(es []Entry, since time.Time) []Entry {
	if since.IsZero() {
		return es
	}
	out := es[:0:0]
	for _, e := range es {
		if !e.Time.Before(since) {
			out = append(out, e)
		}
	}
	return out
}

// tail keeps the entries of the last n lines (a line is a run of partial
// entries ended by a full one); n < 0 keeps all.
func tail(es []Entry, n int64) []Entry {
	if n < 0 {
		return es
	}
	if n == 0 {
		return nil
	}
	var lines int64
	for i := len(es) - 1; i >= 0; i-- {
		if !es[i].Partial {
			lines++
			if lines > n {
				return es[i+1:]
			}
		}
	}
	return es
}

type output struct {
	opts           runtime.LogOptions
	stdout, stderr io.Writer
	remaining      int64
	midLine        map[string]bool
}

func (o *output) write(e Entry) error {
	w := o.stdout
	if e.Stream == Stderr {
		w = o.stderr
	}
	if w == nil {
		return nil
	}
	if o.midLine == nil {
		o.midLine = map[string]bool{}
	}
	var buf []byte
	if o.opts.Timestamps && !o.midLine[e.Stream] {
		buf = e.Time.UTC().AppendFormat(buf, time.RFC3339Nano)
		buf = append(buf, ' ')
	}
	buf = append(buf, e.Content...)
	if !e.Partial {
		buf = append(buf, '\n')
	}
	o.midLine[e.Stream] = e.Partial
	var err error
	if o.opts.LimitBytes > 0 {
		if int64(len(buf)) >= o.remaining {
			buf = buf[:o.remaining]
			err = errLimit
		}
		o.remaining -= int64(len(buf))
	}
	if _, werr := w.Write(buf); werr != nil {
		return fmt.Errorf("crilog: %w", werr)
	}
	return err
}
