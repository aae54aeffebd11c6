package kubectltest

import (
	"os/exec"
	"strings"
	"testing"
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
