package containerd

import (
	"fmt"
	"testing"

	"github.com/tugboatdev/tugboat/runtime"
)

// TestShimGroups: by default the pods share DefaultShimGroups shims; with
// a negative Options.ShimGroups each pod has its own shim (as with the CRI
// plugin), and with a positive one the pods share that many shims.
func TestShimGroups(t *testing.T) {
	for _, tc := range []struct {
		groups, pods, maxShims, minShims int
	}{
		{-1, 3, 3, 3},
		{0, 3, 3, 1},
		{2, 6, 2, 1},
	} {
		t.Run(fmt.Sprintf("groups=%d", tc.groups), func(t *testing.T) {
			r := newTestRuntime(t, testOpts{shimGroups: tc.groups})
			for i := range tc.pods {
				runPod(t, r, &runtime.PodSandboxConfig{Name: fmt.Sprint("p", i), Namespace: "default", UID: randHex(4)},
					&runtime.ContainerConfig{Name: "c", Command: []string{"sleep", "1000"}})
			}
			n := len(shimPIDs(t, r.ns))
			if n < tc.minShims || n > tc.maxShims {
				t.Errorf("%d pods with ShimGroups=%d run %d shims, want %d..%d", tc.pods, tc.groups, n, tc.minShims, tc.maxShims)
			}
		})
	}
}

// TestShimGroupNames: the default spreads sandboxes over exactly
// DefaultShimGroups names, a sandbox always gets the same one, and a
// negative ShimGroups gives every sandbox its own.
func TestShimGroupNames(t *testing.T) {
	r := &Runtime{ns: "tbtest"}
	names := map[string]int{}
	for i := range 2000 {
		id := fmt.Sprintf("sandbox-%d", i)
		g := r.shimGroup(id)
		if again := r.shimGroup(id); again != g {
			t.Fatalf("sandbox %s: shim group %q, then %q", id, g, again)
		}
		names[g]++
	}
	if len(names) != DefaultShimGroups {
		t.Errorf("2000 sandboxes over %d shim groups, want %d", len(names), DefaultShimGroups)
	}
	for g, n := range names {
		if n < 2000/DefaultShimGroups/2 {
			t.Errorf("shim group %s serves %d of 2000 sandboxes", g, n)
		}
	}
	r.opts.ShimGroups = -1
	if a, b := r.shimGroup("a"), r.shimGroup("b"); a == b {
		t.Errorf("ShimGroups=-1: sandboxes a and b share shim %q", a)
	}
}
