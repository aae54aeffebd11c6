package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
)

func TestRunEveryWorkload(t *testing.T) {
	tests := []struct {
		workload              string
		nodes, initPods, pods int
		constraint            bool
	}{
		{"basic", 10, 5, 40, false},
		{"anti-affinity", 30, 5, 20, true},
		{"spread", 30, 5, 31, true},
		{"node-affinity", 30, 5, 40, true},
	}
	for _, tt := range tests {
		t.Run(tt.workload, func(t *testing.T) {
			var out bytes.Buffer
			o := options{workload: tt.workload, nodes: tt.nodes, initPods: tt.initPods, pods: tt.pods, clients: 2, eventQPS: 50}
			if err := run(context.Background(), &out, o); err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			want := `(?m)^verified: \d+ pods each bound exactly once, no node over-committed$`
			if tt.constraint {
				want = `(?m)^verified: \d+ pods each bound exactly once, no node over-committed, workload constraint holds$`
			}
			if !regexp.MustCompile(want).MatchString(out.String()) {
				t.Errorf("output does not match %s:\n%s", want, out.String())
			}
			if !strings.Contains(out.String(), "workload "+tt.workload+": scheduled") {
				t.Errorf("output does not name the workload:\n%s", out.String())
			}
		})
	}
}

func TestRunRejectsUnknownWorkload(t *testing.T) {
	err := run(context.Background(), &bytes.Buffer{}, options{workload: "nope", nodes: 1, pods: 1, clients: 1})
	if err == nil || !strings.Contains(err.Error(), `unknown -workload "nope"`) {
		t.Errorf("run with an unknown workload: %v, want an error naming it", err)
	}
}

func TestWorkloadDefaultsAndHelp(t *testing.T) {
	help := workloadHelp()
	for _, n := range workloadNames() {
		w := workloads[n]
		if w.name != n || w.pods <= 0 || w.node == nil || w.initPod == nil || w.pod == nil {
			t.Errorf("workload %q is incomplete: %+v", n, w)
		}
		if !strings.Contains(help, "\n  "+n+": ") {
			t.Errorf("help does not describe %q:%s", n, help)
		}
	}
}

func TestSimulatedNode(t *testing.T) {
	n := simulatedNode(7, map[string]string{"extra": "x"})
	got := map[string]string{"name": n.Name, "hostname": n.Labels[v1.LabelHostname], "simulated": n.Labels[SimulatedLabel], "extra": n.Labels["extra"], "cpu": n.Status.Allocatable.Cpu().String()}
	want := map[string]string{"name": "sim-node-00007", "hostname": "sim-node-00007", "simulated": "true", "extra": "x", "cpu": "4"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("simulatedNode (-want +got):\n%s", diff)
	}
}
