package agent

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/tugboatdev/tugboat/store"
)

func TestWatchDir(t *testing.T) {
	dir := t.TempDir()
	changed := make(chan struct{}, 1)
	dw, err := watchDir(dir, changed, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer dw.close()
	wait := func(what string) {
		t.Helper()
		select {
		case <-changed:
		case <-time.After(20 * time.Second):
			t.Fatalf("no inotify notification after %s", what)
		}
	}
	for _, step := range []struct {
		what string
		do   func() error
	}{
		{"create", func() error { return os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("x"), 0o644) }},
		{"write", func() error { return os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("y"), 0o644) }},
		{"rename", func() error { return os.Rename(filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")) }},
		{"remove", func() error { return os.Remove(filepath.Join(dir, "b.yaml")) }},
	} {
		// Drain what earlier steps left (a write is several events).
		for len(changed) > 0 {
			<-changed
		}
		if err := step.do(); err != nil {
			t.Fatal(err)
		}
		wait(step.what)
	}
	if dw.gone() {
		t.Fatal("watcher reports its directory gone")
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	wait("removing the directory")
	deadline := time.Now().Add(20 * time.Second)
	for !dw.gone() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !dw.gone() {
		t.Error("removing the watched directory is not reported")
	}
	if _, err := watchDir(filepath.Join(dir, "missing"), changed, quietLog()); err == nil {
		t.Error("watching a missing directory succeeded")
	}
}

func inotifyRecord(wd int32, mask, cookie uint32, name string, pad int) []byte {
	n := len(name)
	if n > 0 {
		n += pad
	}
	b := make([]byte, unix.SizeofInotifyEvent+n)
	binary.NativeEndian.PutUint32(b[0:], uint32(wd))
	binary.NativeEndian.PutUint32(b[4:], mask)
	binary.NativeEndian.PutUint32(b[8:], cookie)
	binary.NativeEndian.PutUint32(b[12:], uint32(n))
	copy(b[16:], name)
	return b
}

func TestParseInotifyEvents(t *testing.T) {
	two := append(inotifyRecord(1, unix.IN_CREATE, 0, "pod.yaml", 8), inotifyRecord(1, unix.IN_DELETE_SELF, 0, "", 0)...)
	for _, tc := range []struct {
		name    string
		in      []byte
		want    []InotifyEvent
		wantErr bool
	}{
		{name: "empty"},
		{name: "two", in: two, want: []InotifyEvent{{Wd: 1, Mask: unix.IN_CREATE, Name: "pod.yaml"}, {Wd: 1, Mask: unix.IN_DELETE_SELF}}},
		{name: "rename", in: inotifyRecord(3, unix.IN_MOVED_TO, 42, "x", 3), want: []InotifyEvent{{Wd: 3, Mask: unix.IN_MOVED_TO, Cookie: 42, Name: "x"}}},
		{name: "short header", in: two[:10], wantErr: true},
		{name: "short name", in: two[:20], wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseInotifyEvents(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" && !tc.wantErr {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseInotifyEvents(f *testing.F) {
	f.Add(inotifyRecord(1, unix.IN_CREATE, 0, "pod.yaml", 8))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := ParseInotifyEvents(b)
		if err == nil {
			size := 0
			for range evs {
				size += unix.SizeofInotifyEvent
			}
			if size > len(b) {
				t.Fatalf("%d events from %d bytes", len(evs), len(b))
			}
		}
	})
}

// TestStaticPodDirCreatedLater: a manifest directory missing at start
// cannot be watched; the slow resync finds it once it exists (and watches
// it from then on).
func TestStaticPodDirCreatedLater(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	dir := filepath.Join(t.TempDir(), "manifests")
	e := newEnv(t, envOpts{clock: clk, cfg: func(c *Config) { c.StaticPodDir = dir }})
	// Let the agent register and make its first scan of the missing
	// directory before it appears.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := store.Get[*corev1.Node](e.ctx, e.s, "", testNode); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node not registered")
		}
	}
	time.Sleep(200 * time.Millisecond)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := "apiVersion: v1\nkind: Pod\nmetadata: {name: late, namespace: kube-system}\nspec:\n  containers: [{name: c, image: app:1}]\n"
	if err := os.WriteFile(filepath.Join(dir, "late.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	steps := 0
	for {
		if _, err := store.Get[*corev1.Pod](e.ctx, e.s, "kube-system", "late-"+testNode); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("static pod of a directory created after the start never appeared")
		}
		clk.Step(time.Second)
		steps++
		time.Sleep(5 * time.Millisecond)
	}
	if steps < 15 {
		t.Errorf("static pod found after %d fake seconds: before the 20 s resync, so not through it", steps)
	}
	// From now on the directory is watched: a second manifest appears
	// without moving the clock.
	if err := os.WriteFile(filepath.Join(dir, "next.yaml"), []byte(strings.Replace(manifest, "late", "next", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	e.waitPod("kube-system", "next-"+testNode, "mirror pod", func(*corev1.Pod) bool { return true })
}
