package main

import (
	"bytes"
	"context"
	"math"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRunPrintsThroughputAndLatency(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out, options{workload: "basic", nodes: 20, initPods: 20, pods: 200, clients: 2, eventQPS: -1}); err != nil {
		t.Fatalf("run: %v", err)
	}
	text := out.String()
	for _, re := range []string{
		`(?m)^created 20 simulated nodes$`,
		`(?m)^scheduled 20 initial pods$`,
		`(?m)^workload basic: scheduled 200 pods on 20 nodes in \S+$`,
		`(?m)^throughput: [0-9]+ pods/s$`,
		`(?m)^upstream SchedulingThroughput: `,
		`(?m)^cpu: [0-9]+ µs/pod \(\S+ of process CPU\)$`,
		`(?m)^latency: p50 \S+, p99 \S+$`,
		`(?m)^Scheduled events: [0-9]+ written, 0 dropped \(rate limit -1/s\)$`,
		`(?m)^verified: 220 pods each bound exactly once, no node over-committed$`,
	} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("output does not match %s:\n%s", re, text)
		}
	}
	m := regexp.MustCompile(`throughput: ([0-9]+) pods/s`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no throughput in %q", text)
	}
	if n, _ := strconv.Atoi(m[1]); n <= 0 {
		t.Errorf("throughput %d pods/s, want > 0", n)
	}
	lat := regexp.MustCompile(`p50 (\S+), p99 (\S+)`).FindStringSubmatch(text)
	p50, err1 := time.ParseDuration(lat[1])
	p99, err2 := time.ParseDuration(lat[2])
	if err1 != nil || err2 != nil || p50 <= 0 || p99 < p50 {
		t.Errorf("latencies p50 %q p99 %q: want 0 < p50 <= p99 (%v, %v)", lat[1], lat[2], err1, err2)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	if err := run(context.Background(), &bytes.Buffer{}, options{workload: "basic", nodes: 0, pods: 10, clients: 1, eventQPS: 50}); err == nil {
		t.Error("run with 0 nodes succeeded")
	}
}

func TestPercentile(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		var d []time.Duration
		for _, v := range n {
			d = append(d, time.Duration(v)*time.Millisecond)
		}
		return d
	}
	tests := []struct {
		in   []time.Duration
		p    int
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 50, 5 * time.Millisecond},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, percentile(tt.in, tt.p)); diff != "" {
			t.Errorf("percentile(%v, %d) (-want +got):\n%s", tt.in, tt.p, diff)
		}
	}
}

func TestRunWritesProfile(t *testing.T) {
	var out, prof bytes.Buffer
	if err := run(context.Background(), &out, options{workload: "basic", nodes: 5, pods: 50, clients: 1, eventQPS: 50, profile: &prof}); err != nil {
		t.Fatalf("run: %v", err)
	}
	// A pprof profile is gzip-compressed protobuf.
	if b := prof.Bytes(); len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("profile is not gzip data: %d bytes", len(b))
	}
}

func TestUpstreamThroughput(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms ...int) []time.Time {
		var out []time.Time
		for _, m := range ms {
			out = append(out, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return out
	}
	// every returns n bindings evenly spread over (from, to] milliseconds.
	every := func(from, to, n int) []time.Time {
		var out []time.Time
		for i := 1; i <= n; i++ {
			out = append(out, t0.Add(time.Duration(from)*time.Millisecond+time.Duration(i*(to-from))*time.Millisecond/time.Duration(n)))
		}
		return out
	}
	tests := []struct {
		name    string
		bound   []time.Time
		avg     float64
		samples int
	}{
		{"nothing bound", nil, 0, 0},
		{"shorter than two ticks", at(100, 900, 1500), 0, 0},
		// Ticks at 1s (baseline 1000 pods), 2s (+1000) and 3s (+1000);
		// the last 500 pods after 3s fall in the unsampled tail.
		{"steady", every(0, 3500, 3500), 1000, 2},
		// No binding between 1s and 3s: the 3s tick records its rate
		// twice (two intervals), as upstream does.
		{"gap", append(at(500, 900), at(2500, 2600, 2700, 2800, 3100)...), 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			avg, n := upstreamThroughput(t0, tt.bound, time.Second)
			if n != tt.samples || math.Abs(avg-tt.avg) > 1e-6 {
				t.Errorf("upstreamThroughput = %v over %d samples, want %v over %d", avg, n, tt.avg, tt.samples)
			}
		})
	}
}
