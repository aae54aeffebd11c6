// Package kubectltest gives tests the kubectl binaries that tugboat is
// tested with: the kubectl installed on the machine (/usr/bin/kubectl,
// v1.32 here) and the newest kubectl, built from the tools module
// internal/tools/kubectl (k8s.io/kubectl at the version matching tugboat's
// k8s.io modules). The API server's kubectl sessions
// (orchestrator/apiserver) and the end-to-end walk-throughs
// (internal/e2e) run with both.
//
// The newest kubectl is built once with `go build` and cached under
// os.UserCacheDir()/tugboat, keyed by a hash of the tools module's go.mod,
// go.sum and main.go, so reruns and other test packages reuse it. A cold
// build needs the Go module proxy and takes minutes; a warm one is a stat.
// Test binaries of several packages that ask at the same time (go test
// runs packages in parallel) share one build: the first takes a lock file
// next to the cached binary and the others wait for it.
// $TUGBOAT_KUBECTL_NEWEST overrides the build with a prebuilt binary.
package kubectltest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tugboatdev/tugboat/internal/testenv"
)

// Binary is a kubectl to run a test with.
type Binary struct {
	// Name names the subtest: "v1.32" (installed) or "newest".
	Name string
	// Path is the executable.
	Path string
}

// Installed is the kubectl the machine has.
const Installed = "/usr/bin/kubectl"

// Binaries returns the installed kubectl and the newest one, building the
// latter when the cache does not hold it. It fails the test (skips outside
// CI) when a prerequisite is missing.
func Binaries(t testing.TB) []Binary {
	t.Helper()
	testenv.NeedCommand(t, "kubectl")
	newest, err := Newest(t)
	if err != nil {
		t.Fatalf("building the newest kubectl: %v", err)
	}
	return []Binary{{Name: "installed", Path: Installed}, {Name: "newest", Path: newest}}
}

// Newest returns the path of the newest kubectl, building it into the
// user cache directory if needed.
//
// $TUGBOAT_KUBECTL_NEWEST, when set, names a prebuilt binary to use
// instead (for example one built in an earlier CI step).
func Newest(t testing.TB) (string, error) {
	t.Helper()
	if p := os.Getenv("TUGBOAT_KUBECTL_NEWEST"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("kubectltest: $TUGBOAT_KUBECTL_NEWEST: %w", err)
		}
		return p, nil
	}
	testenv.NeedCommand(t, "go")
	dir, err := toolsDir()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	var version string
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return "", fmt.Errorf("kubectltest: %w", err)
		}
		h.Write(b)
		if f == "go.mod" {
			version = kubectlVersion(string(b))
		}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("kubectltest: %w", err)
	}
	out := filepath.Join(cache, "tugboat", "kubectl-"+hex.EncodeToString(h.Sum(nil))[:16], "kubectl")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	built, err := buildOnce(ctx, out, func(ctx context.Context, tmp string) error {
		start := time.Now()
		cmd := exec.CommandContext(ctx, "go", "build",
			"-ldflags", "-X k8s.io/component-base/version.gitVersion="+version, "-o", tmp, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build in %s: %w\n%s", dir, err, b)
		}
		t.Logf("built kubectl %s in %s", version, time.Since(start).Round(time.Second))
		return nil
	})
	if err != nil {
		return "", err
	}
	if !built {
		t.Logf("kubectl %s from the cache: %s", version, out)
	}
	return out, nil
}

// buildOnce makes the file out with build unless it exists, and reports
// whether it built it. build writes a temporary file that is renamed to
// out when it succeeds. An exclusive lock on out+".lock" serialises
// builders, also across processes, so a binary is built once while the
// others wait and then find it.
func buildOnce(ctx context.Context, out string, build func(ctx context.Context, tmp string) error) (bool, error) {
	if fi, err := os.Stat(out); err == nil && fi.Mode().IsRegular() {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return false, fmt.Errorf("kubectltest: %w", err)
	}
	lock, err := os.OpenFile(out+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return false, fmt.Errorf("kubectltest: %w", err)
	}
	defer lock.Close() // releases the lock
	if err := flock(ctx, lock); err != nil {
		return false, fmt.Errorf("kubectltest: lock %s: %w", lock.Name(), err)
	}
	if fi, err := os.Stat(out); err == nil && fi.Mode().IsRegular() {
		return false, nil // built by whoever held the lock
	}
	tmp := fmt.Sprintf("%s.%d.tmp", out, os.Getpid())
	if err := build(ctx, tmp); err != nil {
		_ = os.Remove(tmp)
		return false, fmt.Errorf("kubectltest: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		_ = os.Remove(tmp)
		return false, fmt.Errorf("kubectltest: %w", err)
	}
	return true, nil
}

// flock takes an exclusive lock on f, polling so that ctx can end the wait.
func flock(ctx context.Context, f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// kubectlVersion turns the k8s.io/kubectl module version in go.mod
// (v0.37.2) into the Kubernetes version it belongs to (v1.37.2).
func kubectlVersion(gomod string) string {
	sc := bufio.NewScanner(strings.NewReader(gomod))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 && f[0] == "require" { // the one-line form
			f = f[1:]
		}
		if len(f) >= 2 && f[0] == "k8s.io/kubectl" && strings.HasPrefix(f[1], "v0.") {
			return "v1." + strings.TrimPrefix(f[1], "v0.")
		}
	}
	return "v1.0.0-unknown"
}

// toolsDir finds internal/tools/kubectl above the working directory.
func toolsDir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "internal", "tools", "kubectl")
		if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
			return p, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("kubectltest: internal/tools/kubectl not found above " + wd)
		}
	}
}
