package nodeproc

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/tugboatdev/tugboat/internal/testenv"
)

// TestNodeProcessLinksNoStore guards the node process's footprint: it
// talks to the API server through the remote client, so neither this
// package nor the node binary may link the embedded store (package
// store) or what only the store needs (go-memdb, the durable log's raft,
// raft-wal and bbolt, Prometheus). They come back through any non-test
// import of package store; import store/storeapi instead.
func TestNodeProcessLinksNoStore(t *testing.T) {
	testenv.NeedCommand(t, "go")
	forbidden := []string{
		"github.com/tugboatdev/tugboat/store",
		"github.com/hashicorp/go-memdb",
		"github.com/hashicorp/raft",
		"github.com/hashicorp/raft-wal",
		"go.etcd.io/bbolt",
		"github.com/prometheus/client_golang/prometheus",
	}
	for _, pkg := range []string{".", "../internal/nodeagent"} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) == 0 {
			t.Fatalf("go list -deps %s listed nothing", pkg)
		}
		for _, d := range deps {
			for _, f := range forbidden {
				if d == f {
					t.Errorf("%s links %s", pkg, d)
				}
			}
		}
	}
}
