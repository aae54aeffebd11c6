// Package kubectltest gives tests the kubectl binaries the API server is
// tested with: the kubectl installed on the machine (/usr/bin/kubectl,
// v1.32 here) and the newest kubectl, built from the tools module
// internal/tools/kubectl (k8s.io/kubectl at the version matching tugboat's
// k8s.io modules).
//
// The newest kubectl is built once with `go build` and cached under
// os.UserCacheDir()/tugboat, keyed by a hash of the tools module's go.mod,
// go.sum and main.go, so reruns and other test packages reuse it. A cold
// build needs the Go module proxy and takes minutes; a warm one is a stat.
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
// instead (CI builds it in an earlier step).
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
	if fi, err := os.Stat(out); err == nil && fi.Mode().IsRegular() {
		return out, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", fmt.Errorf("kubectltest: %w", err)
	}
	tmp := fmt.Sprintf("%s.%d.tmp", out, os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build",
		"-ldflags", "-X k8s.io/component-base/version.gitVersion="+version, "-o", tmp, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	if b, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("kubectltest: go build in %s: %w\n%s", dir, err, b)
	}
	t.Logf("built kubectl %s in %s", version, time.Since(start).Round(time.Second))
	if err := os.Rename(tmp, out); err != nil {
		return "", fmt.Errorf("kubectltest: %w", err)
	}
	return out, nil
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
