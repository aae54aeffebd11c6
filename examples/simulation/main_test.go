package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"
	"time"
)

// TestSimulation runs the program with 20 simulated nodes and 200
// replicas and checks what it reports.
func TestSimulation(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"-nodes", "20", "-replicas", "200", "-data-dir", t.TempDir()}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	t.Log(out.String())
	for _, re := range []string{
		`nodes 20 registered and Ready in \d`,
		`deployment of 200 replicas: all created after \S+, all scheduled after \S+, all Running after \S+ \(\d+ pods/s\) on 20 nodes`,
		`footprint: RSS [1-9][0-9.]* MiB \(peak [1-9][0-9.]* MiB\)`,
	} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("output does not match %q", re)
		}
	}
}

// TestSimulateSpreads checks that the pods are spread over every
// simulated node by the real scheduler.
func TestSimulateSpreads(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	res, err := simulate(ctx, 4, 40, t.TempDir(), false, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if res.NodesUsed != 4 {
		t.Errorf("pods on %d of 4 nodes, want spread over all", res.NodesUsed)
	}
	if res.Running < res.Scheduled || res.Scheduled < res.Created || res.Registered <= 0 || res.RSS <= 0 || res.PeakRSS < res.RSS {
		t.Errorf("implausible result %+v", res)
	}
}
