package crilog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// DefaultMaxSize is the size at which a log file is rotated (10 MiB, the
// kubelet's containerLogMaxSize default).
const DefaultMaxSize = 10 << 20

// DefaultMaxFiles is how many files (current plus rotated) are kept.
const DefaultMaxFiles = 2

// maxLine is the longest content of one entry; longer lines are split into
// partial entries, as CRI runtimes do.
const maxLine = 16 << 10

// Stream names.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// Entry is one parsed log line.
type Entry struct {
	Time    time.Time
	Stream  string
	Partial bool
	Content []byte
}

// ParseLine parses one log line (without its trailing newline).
func ParseLine(line []byte) (Entry, error) {
	var e Entry
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return e, fmt.Errorf("crilog: no timestamp in %q", truncate(line))
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return e, fmt.Errorf("crilog: bad timestamp: %w", err)
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return e, fmt.Errorf("crilog: no stream in %q", truncate(line))
	}
	switch string(stream) {
	case Stdout, Stderr:
	default:
		return e, fmt.Errorf("crilog: unknown stream %q", truncate(stream))
	}
	tag, content, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		// "ts stream F" with empty content is written as "ts stream F ".
		return e, fmt.Errorf("crilog: no tag in %q", truncate(line))
	}
	switch string(tag) {
	case "F":
	case "P":
		e.Partial = true
	default:
		return e, fmt.Errorf("crilog: unknown tag %q", truncate(tag))
	}
	e.Time, e.Stream, e.Content = t, string(stream), content
	return e, nil
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// AppendEntry appends the encoded entry, newline included, to dst.
func AppendEntry(dst []byte, e Entry) []byte {
	dst = e.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, ' ')
	dst = append(dst, e.Stream...)
	if e.Partial {
		dst = append(dst, " P "...)
	} else {
		dst = append(dst, " F "...)
	}
	dst = append(dst, e.Content...)
	return append(dst, '\n')
}

// Writer appends entries to a log file and rotates it. Its Stream writers
// may be used from several goroutines.
type Writer struct {
	path     string
	maxSize  int64
	maxFiles int
	now      func() time.Time

	mu   sync.Mutex
	f    *os.File
	size int64
}

// WriterOptions tune a Writer; zero values mean the defaults.
type WriterOptions struct {
	MaxSize  int64
	MaxFiles int
	// Now returns the time stamped on entries; nil means time.Now.
	Now func() time.Time
}

// NewWriter opens (appending to) the log file at path, creating its
// directory.
func NewWriter(path string, opts WriterOptions) (*Writer, error) {
	w := &Writer{path: path, maxSize: opts.MaxSize, maxFiles: opts.MaxFiles, now: opts.Now}
	if w.maxSize <= 0 {
		w.maxSize = DefaultMaxSize
	}
	if w.maxFiles <= 0 {
		w.maxFiles = DefaultMaxFiles
	}
	if w.now == nil {
		w.now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("crilog: %w", err)
	}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) open() error {
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("crilog: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("crilog: %w", err)
	}
	w.f, w.size = f, st.Size()
	return nil
}

// Path returns the current log file's path.
func (w *Writer) Path() string { return w.path }

// RotatedPath returns the path of the n-th rotated file (1 is the newest).
func RotatedPath(path string, n int) string { return path + "." + strconv.Itoa(n) }

func (w *Writer) writeEntry(e Entry) error {
	buf := AppendEntry(nil, e)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return os.ErrClosed
	}
	if w.size > 0 && w.size+int64(len(buf)) > w.maxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(buf)
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("crilog: %w", err)
	}
	return nil
}

// rotate shifts path.(n) to path.(n+1), path to path.1 and opens a new
// file. Called with mu held.
func (w *Writer) rotate() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("crilog: %w", err)
	}
	w.f = nil
	keep := w.maxFiles - 1
	if keep < 1 {
		if err := os.Remove(w.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("crilog: %w", err)
		}
		return w.open()
	}
	_ = os.Remove(RotatedPath(w.path, keep))
	for n := keep - 1; n >= 1; n-- {
		if err := os.Rename(RotatedPath(w.path, n), RotatedPath(w.path, n+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("crilog: %w", err)
		}
	}
	if err := os.Rename(w.path, RotatedPath(w.path, 1)); err != nil {
		return fmt.Errorf("crilog: %w", err)
	}
	return w.open()
}

// Close closes the file. Partial lines still buffered in stream writers are
// flushed by closing those first (see StreamWriter.Close).
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// Stream returns a writer that turns bytes written to it into entries of
// the named stream, one per line.
func (w *Writer) Stream(stream string) *StreamWriter {
	return &StreamWriter{w: w, stream: stream}
}

// StreamWriter splits what is written to it into lines and logs them.
type StreamWriter struct {
	w      *Writer
	stream string
	mu     sync.Mutex
	buf    []byte
}

// Write implements io.Writer.
func (s *StreamWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			break
		}
		line := s.buf[:i]
		for len(line) > maxLine {
			if err := s.w.writeEntry(Entry{Time: s.w.now(), Stream: s.stream, Partial: true, Content: line[:maxLine]}); err != nil {
				return 0, err
			}
			line = line[maxLine:]
		}
		if err := s.w.writeEntry(Entry{Time: s.w.now(), Stream: s.stream, Content: line}); err != nil {
			return 0, err
		}
		s.buf = s.buf[i+1:]
	}
	for len(s.buf) >= maxLine {
		if err := s.w.writeEntry(Entry{Time: s.w.now(), Stream: s.stream, Partial: true, Content: s.buf[:maxLine]}); err != nil {
			return 0, err
		}
		s.buf = s.buf[maxLine:]
	}
	if len(s.buf) == 0 {
		s.buf = nil
	}
	return len(p), nil
}

// Close logs a trailing unterminated line as a full entry.
func (s *StreamWriter) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.buf) == 0 {
		return nil
	}
	err := s.w.writeEntry(Entry{Time: s.w.now(), Stream: s.stream, Content: s.buf})
	s.buf = nil
	return err
}
