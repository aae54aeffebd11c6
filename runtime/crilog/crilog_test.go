package crilog

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tugboatdev/tugboat/runtime"
)

// fakeClock returns seconds 1, 2, 3, ... after a fixed base.
func fakeClock() func() time.Time {
	var n atomic.Int64
	base := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	return func() time.Time { return base.Add(time.Duration(n.Add(1)) * time.Second) }
}

func TestParseLine(t *testing.T) {
	tests := []struct {
		line    string
		want    Entry
		wantErr bool
	}{
		{line: "2026-01-02T03:04:05.5Z stdout F hello world", want: Entry{Time: time.Date(2026, 1, 2, 3, 4, 5, 5e8, time.UTC), Stream: "stdout", Content: []byte("hello world")}},
		{line: "2026-01-02T03:04:05Z stderr P part", want: Entry{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Stream: "stderr", Partial: true, Content: []byte("part")}},
		{line: "2026-01-02T03:04:05Z stdout F ", want: Entry{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Stream: "stdout", Content: []byte{}}},
		{line: "garbage", wantErr: true},
		{line: "2026-01-02T03:04:05Z stdin F x", wantErr: true},
		{line: "2026-01-02T03:04:05Z stdout X x", wantErr: true},
		{line: "2026-01-02T03:04:05Z stdout F", wantErr: true},
		{line: "yesterday stdout F x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, err := ParseLine([]byte(tt.line))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !got.Time.Equal(tt.want.Time) {
				t.Errorf("time = %v, want %v", got.Time, tt.want.Time)
			}
			got.Time = tt.want.Time
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(bytes.Equal)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseLine(f *testing.F) {
	f.Add([]byte("2026-01-02T03:04:05.5Z stdout F hello world"))
	f.Add([]byte("2026-01-02T03:04:05Z stderr P "))
	f.Add([]byte("x y z"))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := ParseLine(line)
		if err != nil {
			return
		}
		if bytes.IndexByte(e.Content, '\n') >= 0 {
			return // not produced by the writer
		}
		enc := AppendEntry(nil, e)
		e2, err := ParseLine(enc[:len(enc)-1])
		if err != nil {
			t.Fatalf("re-parse of %q: %v", enc, err)
		}
		if !e.Time.Equal(e2.Time) || e.Stream != e2.Stream || e.Partial != e2.Partial || !bytes.Equal(e.Content, e2.Content) {
			t.Fatalf("round trip changed %+v into %+v", e, e2)
		}
	})
}

func readAll(t *testing.T, path string, opts ReadOptions) (string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	if err := Read(context.Background(), path, opts, &out, &errb); err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String()
}

func TestWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c", "0.log")
	w, err := NewWriter(path, WriterOptions{Now: fakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	so, se := w.Stream(Stdout), w.Stream(Stderr)
	fmt.Fprint(so, "one\ntw")
	fmt.Fprint(se, "oops\n")
	fmt.Fprint(so, "o\nthree")
	so.Close()
	se.Close()
	w.Close()

	raw, _ := os.ReadFile(path)
	wantRaw := "2026-01-02T03:04:01Z stdout F one\n2026-01-02T03:04:02Z stderr F oops\n2026-01-02T03:04:03Z stdout F two\n2026-01-02T03:04:04Z stdout F three\n"
	if diff := cmp.Diff(wantRaw, string(raw)); diff != "" {
		t.Fatalf("file (-want +got):\n%s", diff)
	}
	tests := []struct {
		name             string
		opts             runtime.LogOptions
		wantOut, wantErr string
	}{
		{name: "all", opts: runtime.LogOptions{TailLines: -1}, wantOut: "one\ntwo\nthree\n", wantErr: "oops\n"},
		{name: "tail", opts: runtime.LogOptions{TailLines: 2}, wantOut: "two\nthree\n"},
		{name: "tail0", opts: runtime.LogOptions{TailLines: 0}},
		{name: "timestamps", opts: runtime.LogOptions{TailLines: 1, Timestamps: true}, wantOut: "2026-01-02T03:04:04Z three\n"},
		{name: "since", opts: runtime.LogOptions{TailLines: -1, Since: time.Date(2026, 1, 2, 3, 4, 2, 0, time.UTC)}, wantOut: "two\nthree\n", wantErr: "oops\n"},
		{name: "limit", opts: runtime.LogOptions{TailLines: -1, LimitBytes: 6}, wantOut: "one\n", wantErr: "oo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errs := readAll(t, path, ReadOptions{LogOptions: tt.opts})
			if out != tt.wantOut || errs != tt.wantErr {
				t.Errorf("got %q %q, want %q %q", out, errs, tt.wantOut, tt.wantErr)
			}
		})
	}
}

func TestLongLineSplitsIntoPartials(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	w, err := NewWriter(path, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", maxLine*2+5)
	fmt.Fprintln(w.Stream(Stdout), long)
	w.Close()
	raw, _ := os.ReadFile(path)
	if got := strings.Count(string(raw), " P "); got != 2 {
		t.Errorf("partial entries = %d, want 2", got)
	}
	out, _ := readAll(t, path, ReadOptions{LogOptions: runtime.LogOptions{TailLines: 1}})
	if out != long+"\n" {
		t.Errorf("reassembled line has %d bytes, want %d", len(out), len(long)+1)
	}
}

func TestRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	w, err := NewWriter(path, WriterOptions{MaxSize: 200, MaxFiles: 3, Now: fakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	s := w.Stream(Stdout)
	var want strings.Builder
	for i := range 30 {
		fmt.Fprintf(s, "line %02d\n", i)
		fmt.Fprintf(&want, "line %02d\n", i)
	}
	w.Close()
	for _, p := range []string{path, RotatedPath(path, 1), RotatedPath(path, 2)} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 200 {
			t.Errorf("%s has %d bytes, more than the 200 limit", p, st.Size())
		}
	}
	if _, err := os.Stat(RotatedPath(path, 3)); !os.IsNotExist(err) {
		t.Errorf("a fourth file exists: %v", err)
	}
	out, _ := readAll(t, path, ReadOptions{MaxFiles: 3, LogOptions: runtime.LogOptions{TailLines: -1}})
	// The oldest lines are gone; what is left is a suffix, in order.
	if !strings.HasSuffix(want.String(), out) || strings.Count(out, "\n") != 15 {
		t.Errorf("read %q, not a suffix of the written lines", out)
	}
}

func TestFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	// Each file holds about 5 lines (125 ms of writing), more than the
	// reader's poll interval: no file is rotated away unread.
	w, err := NewWriter(path, WriterOptions{MaxSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	s := w.Stream(Stdout)
	fmt.Fprintln(s, "before")
	var done atomic.Bool
	var out bytes.Buffer
	finished := make(chan error, 1)
	go func() {
		finished <- Read(context.Background(), path, ReadOptions{LogOptions: runtime.LogOptions{Follow: true, TailLines: -1}, Done: done.Load}, &out, nil)
	}()
	var want strings.Builder
	want.WriteString("before\n")
	for i := range 20 { // crosses several rotations
		fmt.Fprintf(s, "after %02d\n", i)
		fmt.Fprintf(&want, "after %02d\n", i)
		time.Sleep(pollInterval / 2)
	}
	time.Sleep(3 * pollInterval)
	done.Store(true)
	if err := <-finished; err != nil {
		t.Fatal(err)
	}
	if out.String() != want.String() {
		t.Errorf("followed %q, want %q", out.String(), want.String())
	}
}
