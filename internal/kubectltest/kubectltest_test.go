package kubectltest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestKubectlVersion(t *testing.T) {
	tests := []struct{ gomod, want string }{
		{"module x\n\nrequire (\n\tk8s.io/component-base v0.37.2\n\tk8s.io/kubectl v0.37.2\n)\n", "v1.37.2"},
		{"require k8s.io/kubectl v0.38.0-alpha.2\n", "v1.38.0-alpha.2"},
		{"module x\n", "v1.0.0-unknown"},
	}
	for _, tt := range tests {
		if got := kubectlVersion(tt.gomod); got != tt.want {
			t.Errorf("kubectlVersion(%q) = %q, want %q", tt.gomod, got, tt.want)
		}
	}
}

// TestBinaries checks both kubectls run and report their versions (the
// newest one is built, or taken from the cache).
func TestBinaries(t *testing.T) {
	for _, b := range Binaries(t) {
		out, err := exec.Command(b.Path, "version", "--client").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Client Version: v1.") {
			t.Errorf("%s version: %v\n%s", b.Name, err, out)
		}
	}
}

// TestBuildOnce checks that concurrent callers share one build, that the
// result is renamed into place, and that a failed build leaves nothing.
func TestBuildOnce(t *testing.T) {
	out := filepath.Join(t.TempDir(), "sub", "kubectl")
	var builds atomic.Int32
	build := func(ctx context.Context, tmp string) error {
		builds.Add(1)
		return os.WriteFile(tmp, []byte("binary"), 0o755)
	}
	const callers = 8
	var (
		wg    sync.WaitGroup
		built atomic.Int32
		errs  = make(chan error, callers)
	)
	for range callers {
		wg.Go(func() {
			b, err := buildOnce(t.Context(), out, build)
			if err != nil {
				errs <- err
			}
			if b {
				built.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := builds.Load(); got != 1 {
		t.Errorf("%d builds for %d concurrent callers, want 1", got, callers)
	}
	if got := built.Load(); got != 1 {
		t.Errorf("%d callers reported building, want 1", got)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "binary" {
		t.Errorf("built file: %q, %v", b, err)
	}

	failed := filepath.Join(t.TempDir(), "kubectl")
	_, err := buildOnce(t.Context(), failed, func(ctx context.Context, tmp string) error {
		if err := os.WriteFile(tmp, []byte("half"), 0o755); err != nil {
			return err
		}
		return errors.New("compiler said no")
	})
	if err == nil || !strings.Contains(err.Error(), "compiler said no") {
		t.Errorf("failed build: err = %v, want the build's error", err)
	}
	left, _ := filepath.Glob(failed + "*")
	if diff := cmp.Diff([]string{failed + ".lock"}, left); diff != "" {
		t.Errorf("files after a failed build (-want +got):\n%s", diff)
	}
}

// TestFlockWaitsForHolder checks that a second lock waits until the first
// is released, and gives up when its context ends.
func TestFlockWaitsForHolder(t *testing.T) {
	p := filepath.Join(t.TempDir(), "l")
	open := func() *os.File {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	first, second := open(), open()
	if err := flock(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := flock(ctx, second); !errors.Is(err, context.Canceled) {
		t.Errorf("flock while held, context canceled: %v, want context.Canceled", err)
	}
	got := make(chan error, 1)
	go func() { got <- flock(t.Context(), second) }()
	first.Close() // releases the lock
	if err := <-got; err != nil {
		t.Errorf("flock after release: %v", err)
	}
}

// FuzzKubectlVersion checks the go.mod reader never panics and always
// gives a v1.x version.
func FuzzKubectlVersion(f *testing.F) {
	f.Add("module x\n\nrequire (\n\tk8s.io/kubectl v0.37.2\n)\n")
	f.Add("require k8s.io/kubectl v0.38.0-alpha.2\n")
	f.Add("require k8s.io/kubectl\n")
	f.Fuzz(func(t *testing.T, gomod string) {
		if v := kubectlVersion(gomod); !strings.HasPrefix(v, "v1.") {
			t.Errorf("kubectlVersion(%q) = %q, want v1.*", gomod, v)
		}
	})
}
