package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

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

// bound returns a copy of p bound to node.
func bound(p *v1.Pod, node string) *v1.Pod {
	p = p.DeepCopy()
	p.Spec.NodeName = node
	return p
}

func TestVerifyPlacementFindsViolations(t *testing.T) {
	n0, n1 := simulatedNode(0, nil), simulatedNode(1, nil)
	z := func(i int, zone string) *v1.Node {
		return simulatedNode(i, map[string]string{v1.LabelTopologyZone: zone, legacyZoneLabel: zone})
	}
	big := benchPod("big")
	big.Spec.Containers[0].Resources.Requests[v1.ResourceCPU] = *n0.Status.Allocatable.Cpu()
	once := func(pods ...*v1.Pod) map[string]int {
		m := map[string]int{}
		for _, p := range pods {
			m[p.Namespace+"/"+p.Name] = 1
		}
		return m
	}
	a, b := bound(benchPod("a"), n0.Name), bound(benchPod("b"), n0.Name)
	tests := []struct {
		name  string
		nodes []*v1.Node
		pods  []*v1.Pod
		binds map[string]int
		check func([]*v1.Node, []*v1.Pod) error
		want  string // "" means no error
	}{
		{"fine", []*v1.Node{n0, n1}, []*v1.Pod{a, b}, once(a, b), nil, ""},
		{"unbound", []*v1.Node{n0}, []*v1.Pod{benchPod("c")}, nil, nil, "pod default/c is not bound"},
		{"bound twice", []*v1.Node{n0}, []*v1.Pod{a}, map[string]int{"default/a": 2}, nil, "bound 2 times"},
		{"bound without a binding", []*v1.Node{n0}, []*v1.Pod{a}, nil, nil, "bound 0 times"},
		{"over-committed cpu", []*v1.Node{n0}, []*v1.Pod{a, bound(big, n0.Name)}, once(a, big), nil, "over-committed"},
		{"unknown node", []*v1.Node{n1}, []*v1.Pod{a}, once(a), nil, "not a node"},
		{"anti-affinity", []*v1.Node{n0}, []*v1.Pod{bound(antiAffinityPod("x"), n0.Name), bound(antiAffinityPod("y"), n0.Name)},
			map[string]int{"default/x": 1, "default/y": 1}, checkAntiAffinity, "anti-affinity violated"},
		{"spread", []*v1.Node{z(0, "moon-1"), z(1, "moon-2"), z(2, "moon-3")},
			[]*v1.Pod{bound(spreadPod("x"), "sim-node-00000"), bound(spreadPod("y"), "sim-node-00000")},
			map[string]int{"default/x": 1, "default/y": 1}, checkSpread, "topology spread violated"},
		{"spread holds", []*v1.Node{z(0, "moon-1"), z(1, "moon-2"), z(2, "moon-3")},
			[]*v1.Pod{bound(spreadPod("x"), "sim-node-00000"), bound(spreadPod("y"), "sim-node-00001")},
			map[string]int{"default/x": 1, "default/y": 1}, checkSpread, ""},
		{"node affinity", []*v1.Node{z(0, "zone1"), z(1, "zone2")},
			[]*v1.Pod{bound(nodeAffinityPod("x"), "sim-node-00000"), bound(nodeAffinityPod("y"), "sim-node-00001")},
			map[string]int{"default/x": 1, "default/y": 1}, checkNodeAffinity, "node affinity violated: y on sim-node-00001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifyPlacement(tt.nodes, tt.pods, tt.binds, tt.check)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("verifyPlacement: %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("verifyPlacement: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
