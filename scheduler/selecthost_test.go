package scheduler

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

// TestSelectHost checks that the highest total wins and that ties are
// broken uniformly: every tied node is chosen, none of the others ever.
func TestSelectHost(t *testing.T) {
	s, err := New(context.Background(), nil, Config{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	nodes := make([]*framework.NodeInfo, 6)
	for i := range nodes {
		nodes[i] = framework.NewNodeInfo()
		nodes[i].SetNode(makeNode(fmt.Sprintf("n%d", i), "1", "1Gi", 10, nil))
	}
	tests := []struct {
		name   string
		totals []int64
		want   map[string]bool // the nodes that may be chosen
	}{
		{"single best first", []int64{9, 1, 2, 3, 4, 5}, map[string]bool{"n0": true}},
		{"single best last", []int64{1, 2, 3, 4, 5, 9}, map[string]bool{"n5": true}},
		{"three-way tie", []int64{7, 2, 7, 3, 7, 1}, map[string]bool{"n0": true, "n2": true, "n4": true}},
		{"all equal", []int64{4, 4, 4, 4, 4, 4}, map[string]bool{"n0": true, "n1": true, "n2": true, "n3": true, "n4": true, "n5": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const rounds = 6000
			got := map[string]int{}
			for range rounds {
				got[s.selectHost(nodes, tt.totals)]++
			}
			chosen := map[string]bool{}
			for n, c := range got {
				chosen[n] = true
				// Uniform among the ties: each share within ±25% of
				// the expected count (binomial spread is ~±5% here).
				exp := rounds / len(tt.want)
				if c < exp*3/4 || c > exp*5/4 {
					t.Errorf("node %s chosen %d times of %d, expected about %d", n, c, rounds, exp)
				}
			}
			if diff := cmp.Diff(tt.want, chosen); diff != "" {
				t.Errorf("chosen nodes (-want +got):\n%s", diff)
			}
		})
	}
}
