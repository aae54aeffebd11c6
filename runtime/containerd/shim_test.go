package containerd

import (
	"bytes"
	"fmt"
	"os/exec"
	"testing"

	"github.com/tugboatdev/tugboat/runtime"
)

// TestShimGroups: by default each pod has its own shim (as with the CRI
// plugin); with Options.ShimGroups the pods share that many shims.
func TestShimGroups(t *testing.T) {
	for _, tc := range []struct {
		groups, pods, maxShims, minShims int
	}{
		{0, 3, 3, 3},
		{2, 6, 2, 1},
	} {
		t.Run(fmt.Sprintf("groups=%d", tc.groups), func(t *testing.T) {
			r := newTestRuntime(t, testOpts{shimGroups: tc.groups})
			for i := range tc.pods {
				runPod(t, r, &runtime.PodSandboxConfig{Name: fmt.Sprint("p", i), Namespace: "default", UID: randHex(4)},
					&runtime.ContainerConfig{Name: "c", Command: []string{"sleep", "1000"}})
			}
			out, _ := exec.Command("pgrep", "-f", "containerd-shim.*-namespace "+r.ns+" ").Output()
			n := len(bytes.Fields(out))
			if n < tc.minShims || n > tc.maxShims {
				t.Errorf("%d pods with ShimGroups=%d run %d shims, want %d..%d", tc.pods, tc.groups, n, tc.minShims, tc.maxShims)
			}
		})
	}
}
