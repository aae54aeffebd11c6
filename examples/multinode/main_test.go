package main

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	deadlock "github.com/sasha-s/go-deadlock"

	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/netproxy"
)

// TestMain lets the test binary serve as a node process (the example
// re-executes itself inside each node's network namespace). It turns off
// go-cni's lock checker, which -race builds enable and which on this Go
// version sees every goroutine as goroutine 0, so two concurrent pod
// set-ups look like a recursive lock and exit the process.
func TestMain(m *testing.M) {
	deadlock.Opts.Disable = true
	if isNode, err := nodeMain(); isNode {
		if err != nil {
			fmt.Fprintln(os.Stderr, "node:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestMultinode runs three nodes in their own network namespaces and
// checks the walk-through: pods spread over every node, pod-to-pod and
// Service traffic across nodes, the NodePort on each node, drain moving
// pods; then that nothing is left on the machine.
func TestMultinode(t *testing.T) {
	testenv.NeedRoot(t)
	for _, c := range []string{"nsenter", "ip", "containerd", "runc", "/usr/lib/cni/bridge", "/bin/busybox"} {
		testenv.NeedCommand(t, c)
	}
	_, err := os.Stat(filepath.Join(cgroupV2Root, "cgroup.procs"))
	testenv.Need(t, err == nil, "cgroup v2 mounted at "+cgroupV2Root)
	testenv.Need(t, netproxy.EBPFAvailable(netproxy.Config{Cgroup: cgroupV2Root, ServiceCIDR: netip.MustParsePrefix("10.114.0.0/16")}) == nil, "the eBPF service proxy")

	prefix := fmt.Sprintf("tbt%04x", os.Getpid()&0xffff)
	dir := filepath.Join(t.TempDir(), "mn")
	l := Layout{Prefix: prefix, Nodes: 3, HostNet: netip.MustParsePrefix("10.252.0.0/24"), PodNet: netip.MustParsePrefix("10.246.0.0/16")}
	t.Cleanup(func() {
		// Only after a crash of run itself is anything left here.
		_ = l.Remove(context.Background())
	})
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err = run(ctx, []string{"-exit", "-prefix", prefix, "-nodes", "3",
		"-host-net", "10.252.0.0/24", "-pod-net", "10.246.0.0/16", "-service-cidr", "10.114.0.0/16", "-data-dir", dir}, &out)
	t.Log(out.String())
	if err != nil {
		for i := range 3 {
			if b, rerr := os.ReadFile(filepath.Join(dir, fmt.Sprintf("node-%d.log", i))); rerr == nil {
				t.Logf("node-%d log:\n%s", i, tail(string(b), 40))
			}
		}
		t.Fatalf("run: %v", err)
	}
	for _, want := range []string{
		"==> 3 nodes Ready",
		"spread over 3 nodes",
		"host reaches all 6 pods",
		"==> client pod on node-0: reached 2 pods on other nodes by IP",
		"==> client pod on node-2: reached 2 pods on other nodes by IP",
		"NodePort 32700 answers on all 3 node addresses",
		"cordoned and drained node-2: 6 pods Running on the other nodes",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output misses %q", want)
		}
	}
	if left := l.Leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	for i := range 3 {
		cg := filepath.Join(cgroupV2Root, fmt.Sprintf("%s-node-%d", prefix, i))
		if _, err := os.Stat(cg); err == nil {
			t.Errorf("cgroup %s left behind", cg)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("data directory %s left behind", dir)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(dir)) {
			t.Errorf("process left running: %s", strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
