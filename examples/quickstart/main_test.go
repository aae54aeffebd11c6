package main

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	deadlock "github.com/sasha-s/go-deadlock"
	"github.com/vishvananda/netlink"

	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/netproxy"
	"github.com/tugboatdev/tugboat/orchestrator/cluster"
	"github.com/tugboatdev/tugboat/runtime/cni"
	"github.com/tugboatdev/tugboat/runtime/containerd"
	"github.com/tugboatdev/tugboat/runtime/containerd/containerdtest"
)

// TestMain lets the test binary serve as the quickstart's HTTP client
// child (the program re-executes itself inside the proxy's cgroup), and
// turns off go-cni's lock checker, which -race builds enable and which on
// this Go version sees every goroutine as goroutine 0.
func TestMain(m *testing.M) {
	deadlock.Opts.Disable = true
	if isClient, err := clientMain(); isClient {
		if err != nil {
			fmt.Fprintln(os.Stderr, "client:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestQuickstart runs the walk-through on real containers: containerd,
// CNI and the eBPF proxy on the quickstart's own cgroup. It checks every
// printed step, including the bodies answered through the ClusterIP and
// the NodePort (on 127.0.0.1 and on the node's address) before and after
// the rollout, and that nothing is left on the machine afterwards.
func TestQuickstart(t *testing.T) {
	needReal(t)
	q := newRealRun(t, 0)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, q.args, &out)
	t.Log(out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	name, dir, podCIDR := q.name, q.dir, q.podCIDR
	nodeIP := netip.MustParsePrefix(podCIDR).Addr().Next().String()
	pod := `nginx-deployment-[a-z0-9]+-[a-z0-9]{5}`
	for _, want := range []string{
		`==> cluster ready: node node-1 on containerd, node IP ` + regexp.QuoteMeta(nodeIP) + `, service proxy ebpf on cgroup /sys/fs/cgroup/unified/tugboat-` + name + "\n",
		`kubeconfig: ` + regexp.QuoteMeta(dir) + `/admin.kubeconfig`,
		`==> created deployment nginx-deployment \(3 replicas of 127\.0\.0\.1:\d+/demo/web:1\.0\)`,
		`==> created service nginx-service: ClusterIP 10\.115\.\d+\.\d+, NodePort 32600`,
		`==> GET http://10\.115\.\d+\.\d+/version: version=1\.0 hostname=` + pod + "\n",
		`==> GET http://127\.0\.0\.1:32600/version: version=1\.0 hostname=` + pod + "\n",
		`==> GET http://` + regexp.QuoteMeta(nodeIP) + `:32600/version: version=1\.0 hostname=` + pod + "\n",
		`==> scaled to 4 replicas`,
		`==> set image nginx=127\.0\.0\.1:\d+/demo/web:2\.0 \(rolling update\)`,
		`==> rolled out: 4 pods run 127\.0\.0\.1:\d+/demo/web:2\.0`,
		`==> rolled out: .*\n(?s:.*)==> GET http://10\.115\.\d+\.\d+/version: version=2\.0 hostname=` + pod + "\n",
		`==> removed the cluster and ` + regexp.QuoteMeta(dir),
	} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("output does not match %q", want)
		}
	}
	if n := strings.Count(out.String(), " Running "); n != 3+4+4 {
		t.Errorf("%d pod lines Running, want 11", n)
	}

	q.checkNothingLeft(t)
}

// TestQuickstartInterrupted cancels the program's context (what Ctrl-C
// does through signal.NotifyContext) while its first pods start, and
// checks that it stops and removes everything.
func TestQuickstartInterrupted(t *testing.T) {
	needReal(t)
	q := newRealRun(t, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	out := &cancelWriter{on: "==> created deployment", cancel: cancel}
	err := run(ctx, q.args, out)
	t.Log(out.String())
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("run = %v, want the walk-through stopped by the cancellation", err)
	}
	if !strings.Contains(out.String(), "==> removed the cluster and "+q.dir) {
		t.Errorf("output misses the removal")
	}
	q.checkNothingLeft(t)
}

// cancelWriter collects output and calls cancel once it contains on.
type cancelWriter struct {
	bytes.Buffer
	on     string
	cancel func()
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	n, err := w.Buffer.Write(p)
	if strings.Contains(w.String(), w.on) {
		w.cancel()
	}
	return n, err
}

// needReal checks the prerequisites of a run on real containers.
func needReal(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t)
	for _, c := range []string{"containerd", "runc", "/usr/lib/cni/bridge", "/bin/busybox"} {
		testenv.NeedCommand(t, c)
	}
	_, err := os.Stat(filepath.Join(cluster.CgroupV2Root, "cgroup.procs"))
	testenv.Need(t, err == nil, "cgroup v2 mounted at "+cluster.CgroupV2Root)
	testenv.Need(t, netproxy.EBPFAvailable(netproxy.Config{Cgroup: cluster.CgroupV2Root, ServiceCIDR: netip.MustParsePrefix("10.115.0.0/16")}) == nil, "the eBPF service proxy")
}

// realRun names what one run on real containers makes.
type realRun struct {
	name, dir, podCIDR string
	args               []string
}

// newRealRun picks names and ranges of run i of this process that no
// other test uses, and purges them at the end in case run itself crashed.
func newRealRun(t *testing.T, i int) realRun {
	t.Helper()
	q := realRun{name: fmt.Sprintf("qs%04x%d", os.Getpid()&0xffff, i)}
	// Short: containerd's socket lives under it. If the test process is
	// killed, the next one's sweep removes the run's runtime and network.
	q.dir = containerdtest.TempDir(t)
	q.podCIDR = fmt.Sprintf("10.241.%d.0/24", (os.Getpid()+i)%250)
	cfg := cluster.Config{DataDir: q.dir, ContainerdNamespace: q.name, Bridge: bridgeName(q.name),
		PodCIDR: netip.MustParsePrefix(q.podCIDR), ServiceCIDR: netip.MustParsePrefix("10.115.0.0/16")}
	containerdtest.Record(t, containerd.Options{DataDir: filepath.Join(q.dir, "ctr"), Namespace: q.name},
		&cni.Config{Name: "tugboat-" + q.name, Bridge: cfg.Bridge, PodCIDR: cfg.PodCIDR, IPAMDir: filepath.Join(q.dir, "cni", "networks")})
	t.Cleanup(func() {
		// Only after a crash of run itself is anything left here.
		if _, err := os.Stat(q.dir); err == nil {
			_ = cluster.Purge(context.Background(), cfg)
		}
	})
	q.args = []string{"-exit", "-name", q.name, "-pod-cidr", q.podCIDR, "-service-cidr", "10.115.0.0/16", "-data-dir", q.dir}
	return q
}

// checkNothingLeft checks that the run removed its data directory,
// bridge, cgroup and processes.
func (q realRun) checkNothingLeft(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(q.dir); err == nil {
		t.Errorf("data directory %s left behind", q.dir)
	}
	if _, err := netlink.LinkByName(bridgeName(q.name)); err == nil {
		t.Errorf("bridge %s left behind", bridgeName(q.name))
	}
	if _, err := os.Stat(filepath.Join(cluster.CgroupV2Root, "tugboat-"+q.name)); err == nil {
		t.Errorf("cgroup tugboat-%s left behind", q.name)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(q.dir)) {
			t.Errorf("process left running: %s", strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
}

// TestQuickstartSimulated runs the walk-through without root on a
// simulated node and checks the printed steps.
func TestQuickstartSimulated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "qs")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"-simulated", "-exit", "-data-dir", dir}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	t.Log(out.String())
	for _, want := range []string{
		"==> cluster ready: node simulated-0 (simulated runtime)",
		"kubeconfig: " + dir + "/admin.kubeconfig",
		"==> created deployment nginx-deployment (3 replicas of demo/web:1.0)",
		"==> created service nginx-service: ClusterIP 10.112.",
		"==> simulated nodes run no containers: skipping the requests to http://10.112.",
		"==> scaled to 4 replicas",
		"==> rolled out: 4 pods run demo/web:2.0",
		"==> removed the cluster and " + dir,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output misses %q", want)
		}
	}
	if n := strings.Count(out.String(), " Running "); n != 3+4+4 {
		t.Errorf("%d pod lines Running, want 11", n)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("data directory %s left behind", dir)
	}
}
