package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/netproxy"
	"github.com/tugboatdev/tugboat/runtime/containerd/containerdtest"
	"github.com/tugboatdev/tugboat/store"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// benchConfig is a real-node configuration private to this benchmark run.
func benchConfig(b *testing.B, dir string) Config {
	sfx := fmt.Sprintf("%04x", os.Getpid()&0xffff)
	return Config{
		DataDir:             dir,
		NodeName:            "bench-" + sfx,
		ContainerdNamespace: "tbbn-" + sfx,
		Bridge:              "tbbn" + sfx,
		PodCIDR:             netip.MustParsePrefix(fmt.Sprintf("10.249.%d.0/24", os.Getpid()%250)),
		ServiceCIDR:         netip.MustParsePrefix("10.112.0.0/16"),
		APIAddress:          "127.0.0.1:0",
		RegistryAddress:     "127.0.0.1:0",
		ProxyMode:           netproxy.ModeEBPF,
		Logger:              quietLogger(),
	}
}

func needRealNode(b *testing.B) {
	testenv.NeedRoot(b)
	testenv.NeedCommand(b, "containerd")
	testenv.NeedCommand(b, kubectlPath)
	testenv.Need(b, netproxy.EBPFAvailable(netproxy.Config{Cgroup: CgroupV2Root, ServiceCIDR: netip.MustParsePrefix("10.112.0.0/16")}) == nil, "the eBPF service proxy")
}

// runUntilReady starts a cluster and returns a stop function.
func runUntilReady(b *testing.B, cfg Config) (*Cluster, func()) {
	c, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-c.Ready():
	case err := <-done:
		cancel()
		b.Fatalf("cluster stopped: %v", err)
	}
	return c, func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}
}

// BenchmarkStartToReady measures Run until Ready: a fresh data directory
// each time (store, PKI and kubeconfig created, demo images built and
// pushed, node registered).
func BenchmarkStartToReady(b *testing.B) {
	b.Run("simulated-1", func(b *testing.B) {
		for b.Loop() {
			dir := b.TempDir()
			_, stop := runUntilReady(b, Config{DataDir: dir, Simulated: true, APIAddress: "127.0.0.1:0", RegistryAddress: "127.0.0.1:0", Logger: quietLogger()})
			b.StopTimer()
			stop()
			b.StartTimer()
		}
	})
	b.Run("containerd", func(b *testing.B) {
		needRealNode(b)
		for b.Loop() {
			b.StopTimer()
			cfg := benchConfig(b, containerdtest.TempDir(b))
			recordRuntime(b, cfg)
			b.StartTimer()
			_, stop := runUntilReady(b, cfg)
			b.StopTimer()
			stop()
			if err := Purge(context.Background(), cfg); err != nil {
				b.Error(err)
			}
			b.StartTimer()
		}
	})
}

// BenchmarkApplyToReady measures `kubectl apply` of the seeds' nginx
// Deployment (3 replicas of the demo web image) until all its pods are
// Ready, on one real node; the Deployment is deleted (untimed) between
// iterations. Idle RSS of the whole process (cluster and test binary) and
// of the private containerd are reported after a 5 s settle with the
// Deployment running.
func BenchmarkApplyToReady(b *testing.B) {
	needRealNode(b)
	cfg := benchConfig(b, containerdtest.TempDir(b))
	recordRuntime(b, cfg)
	c, stop := runUntilReady(b, cfg)
	defer func() {
		stop()
		if err := Purge(context.Background(), cfg); err != nil {
			b.Error(err)
		}
	}()
	tc := &testCluster{c: c, cfg: cfg}
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "manifests", "nginx-deployment.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	manifest := strings.ReplaceAll(string(raw), "127.0.0.1:5000/", c.RegistryHost()+"/")
	ctx := context.Background()
	readyPods := func() int {
		pods, _, err := store.ListOf[*corev1.Pod](ctx, c.Store(), "default", metav1.ListOptions{LabelSelector: "app=nginx"})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, p := range pods {
			if p.DeletionTimestamp == nil && podReady(p) {
				n++
			}
		}
		return n
	}
	countPods := func() int {
		pods, _, _ := store.ListOf[*corev1.Pod](ctx, c.Store(), "default", metav1.ListOptions{LabelSelector: "app=nginx"})
		return len(pods)
	}
	last := false
	for b.Loop() {
		if _, err := tc.kubectl(manifest, "apply", "-f", "-"); err != nil {
			b.Fatal(err)
		}
		for readyPods() < 3 {
			time.Sleep(20 * time.Millisecond)
		}
		b.StopTimer()
		if _, err := tc.kubectl("", "delete", "deployment", "nginx-deployment", "--wait=false"); err != nil {
			b.Fatal(err)
		}
		for countPods() > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		last = true
		b.StartTimer()
	}
	if !last {
		return
	}
	// Idle figures with the Deployment running.
	if _, err := tc.kubectl(manifest, "apply", "-f", "-"); err != nil {
		b.Fatal(err)
	}
	for readyPods() < 3 {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(5 * time.Second)
	b.ReportMetric(rssMiB(os.Getpid()), "process-RSS-MiB")
	if pid := c.ContainerdPID(); pid > 0 {
		b.ReportMetric(rssMiB(pid), "containerd-RSS-MiB")
	}
}

// rssMiB reads VmRSS of a process.
func rssMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
