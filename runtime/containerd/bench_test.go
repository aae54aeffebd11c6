package containerd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"golang.org/x/sys/unix"

	"github.com/tugboatdev/tugboat/internal/testenv"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/cni"
)

// percentiles reports p50 and p99 of ds in milliseconds.
func percentiles(b *testing.B, prefix string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(q * float64(len(s)-1))
		return float64(s[i].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), prefix+"-p50-ms")
	b.ReportMetric(at(0.99), prefix+"-p99-ms")
}

// BenchmarkPodLifecycle measures, per pod (sandbox with CNI network + one
// container, image present): create→running and stop→removed.
func BenchmarkPodLifecycle(b *testing.B) {
	network := newTestNetwork(b)
	acct := newCPUAccount(b)
	r := newTestRuntime(b, testOpts{network: network, cgroupParent: acct.dir + "/pods"})
	ctx := context.Background()
	var start, stop []time.Duration
	var startCPU, stopCPU time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		acct.reset()
		t0 := time.Now()
		sb, err := r.RunPodSandbox(ctx, &runtime.PodSandboxConfig{Name: fmt.Sprintf("bench-%d", i), Namespace: "bench", UID: fmt.Sprint(i)})
		if err != nil {
			b.Fatal(err)
		}
		id, err := r.CreateContainer(ctx, sb, &runtime.ContainerConfig{Name: "c", Image: busyboxRef, Command: []string{"sleep", "1000"}})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.StartContainer(ctx, id); err != nil {
			b.Fatal(err)
		}
		start = append(start, time.Since(t0))
		startCPU += acct.usage()
		acct.reset()
		t1 := time.Now()
		if err := r.StopPodSandbox(ctx, sb); err != nil {
			b.Fatal(err)
		}
		if err := r.RemovePodSandbox(ctx, sb); err != nil {
			b.Fatal(err)
		}
		stop = append(stop, time.Since(t1))
		stopCPU += acct.usage()
	}
	b.StopTimer()
	percentiles(b, "start", start)
	percentiles(b, "stop", stop)
	// CPU time of a start without concurrency (all processes involved):
	// the floor of what 100 concurrent starts cost on the node's cores.
	b.ReportMetric(float64(startCPU.Microseconds())/1000/float64(len(start)), "start-cpu-ms/pod")
	b.ReportMetric(float64(stopCPU.Microseconds())/1000/float64(len(stop)), "stop-cpu-ms/pod")
}

// BenchmarkConcurrentPodStart100 starts 100 pods at once and measures the
// wall time until all containers run (then removes them, untimed).
func BenchmarkConcurrentPodStart100(b *testing.B) {
	for _, v := range []struct {
		name    string
		opts    testOpts
		hostIPC bool
	}{
		{"pod", testOpts{}, false},
		{"bounded=8", testOpts{startConcurrency: 8}, false},
		{"hostIPC", testOpts{}, true},
		{"unshared-shims", testOpts{shimGroups: -1}, false},
		{"shimgroups=4", testOpts{shimGroups: 4}, false},
		{"shimgroups=8", testOpts{shimGroups: 8}, false},
		{"execIPAM", testOpts{execIPAM: true}, false},
	} {
		b.Run(v.name, func(b *testing.B) { benchConcurrentPodStart(b, v.opts, v.hostIPC) })
	}
}

func benchConcurrentPodStart(b *testing.B, o testOpts, hostIPC bool) {
	o.network = newTestNetwork(b, func(c *cni.Config) { c.ExecIPAM = o.execIPAM })
	acct := newCPUAccount(b)
	o.cgroupParent = acct.dir + "/pods"
	r := newTestRuntime(b, o)
	ctx := context.Background()
	var walls, sandboxT, createT, startT, cpu []time.Duration
	var shims int
	var shimPss int64
	for b.Loop() {
		acct.reset()
		t0 := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		sbs := make([]string, 100)
		var phaseMu sync.Mutex
		for i := range 100 {
			wg.Go(func() {
				t1 := time.Now()
				sb, err := r.RunPodSandbox(ctx, &runtime.PodSandboxConfig{Name: fmt.Sprintf("c-%d", i), Namespace: "bench", UID: randHex(4), HostIPC: hostIPC})
				if err != nil {
					errs <- err
					return
				}
				sbs[i] = sb
				t2 := time.Now()
				id, err := r.CreateContainer(ctx, sb, &runtime.ContainerConfig{Name: "c", Image: busyboxRef, Command: []string{"sleep", "1000"}})
				t3 := time.Now()
				if err == nil {
					err = r.StartContainer(ctx, id)
				}
				if err != nil {
					errs <- err
				}
				t4 := time.Now()
				phaseMu.Lock()
				sandboxT, createT, startT = append(sandboxT, t2.Sub(t1)), append(createT, t3.Sub(t2)), append(startT, t4.Sub(t3))
				phaseMu.Unlock()
			})
		}
		wg.Wait()
		walls = append(walls, time.Since(t0))
		cpu = append(cpu, acct.usage())
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		b.StopTimer()
		if shims == 0 {
			shims, shimPss = shimMemory(b, r.ns)
		}
		var rw sync.WaitGroup
		for _, sb := range sbs {
			rw.Go(func() {
				if err := r.RemovePodSandbox(ctx, sb); err != nil {
					b.Error(err)
				}
			})
		}
		rw.Wait()
		b.StartTimer()
	}
	b.ReportMetric(float64(walls[0].Milliseconds()), "wall-ms/100pods")
	// CPU time of everything the start took (this process, containerd,
	// shims, runc, CNI plugins, the containers), which unlike the wall time
	// does not depend on what else the shared machine runs.
	b.ReportMetric(float64(cpu[0].Milliseconds())/100, "cpu-ms/pod")
	// Where the time goes under concurrency: each phase's median.
	percentiles(b, "sandbox", sandboxT)
	percentiles(b, "create", createT)
	percentiles(b, "start", startT)
	// The memory the node pays for its shims while the 100 pods run.
	b.ReportMetric(float64(shims), "shims")
	b.ReportMetric(float64(shimPss)/(1<<20), "shims-Pss-MiB")
}

// shimMemory counts the containerd shims serving containerd namespace ns
// and sums their proportional set sizes (shared pages of the one shim
// binary counted once over all of them).
func shimMemory(tb testing.TB, ns string) (n int, pss int64) {
	tb.Helper()
	procs, err := os.ReadDir("/proc")
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		args := strings.Split(string(cmd), "\x00")
		if err != nil || !strings.Contains(args[0], "containerd-shim") || !slices.Contains(args, ns) {
			continue
		}
		rollup, err := os.ReadFile(filepath.Join("/proc", p.Name(), "smaps_rollup"))
		if err != nil {
			continue // exited meanwhile
		}
		for l := range strings.Lines(string(rollup)) {
			if v, ok := strings.CutPrefix(l, "Pss:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				if err != nil {
					tb.Fatalf("smaps_rollup of %s: %q: %v", p.Name(), l, err)
				}
				n++
				pss += kb << 10
				break
			}
		}
	}
	return n, pss
}

// BenchmarkBareContainerd is the reference: containerd's client alone
// creating, starting, waiting for and deleting a container running
// sh -c 'exit 0' (no network, no logs), on the same daemon.
func BenchmarkBareContainerd(b *testing.B) {
	r := newTestRuntime(b, testOpts{})
	ctx := r.nsctx(context.Background())
	img, err := r.client.GetImage(ctx, busyboxRef)
	if err != nil {
		b.Fatal(err)
	}
	var cycle []time.Duration
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		id := fmt.Sprintf("bare-%d-%s", i, randHex(4))
		c, err := r.client.NewContainer(ctx, id, client.WithImage(img), client.WithSnapshotter("overlayfs"), client.WithNewSnapshot(id, img),
			client.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("sh", "-c", "exit 0"), oci.WithCgroup(r.opts.CgroupParent+"/"+id)))
		if err != nil {
			b.Fatal(err)
		}
		task, err := c.NewTask(ctx, cio.NullIO)
		if err != nil {
			b.Fatal(err)
		}
		statusC, err := task.Wait(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := task.Start(ctx); err != nil {
			b.Fatal(err)
		}
		<-statusC
		if _, err := task.Delete(ctx); err != nil {
			b.Fatal(err)
		}
		if err := c.Delete(ctx, client.WithSnapshotCleanup); err != nil {
			b.Fatal(err)
		}
		cycle = append(cycle, time.Since(t0))
	}
	percentiles(b, "cycle", cycle)
}

// cpuAccount measures the CPU time of this process and all it starts:
// the process moves into a fresh cpuacct (v1) cgroup that its children
// (containerd, shims, runc, CNI plugins) inherit, and the containers'
// cgroups are made below it.
type cpuAccount struct {
	dir  string // cgroup path, relative to the hierarchy root
	base time.Duration
}

func newCPUAccount(b *testing.B) *cpuAccount {
	root := "/sys/fs/cgroup/cpuacct"
	_, err := os.Stat(filepath.Join(root, "cpuacct.usage"))
	testenv.Need(b, err == nil, "cgroup v1 cpuacct hierarchy at "+root)
	a := &cpuAccount{dir: "/tbbench-" + randHex(4)}
	if err := os.Mkdir(root+a.dir, 0o755); err != nil {
		b.Fatal(err)
	}
	old, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		b.Fatal(err)
	}
	prev := "/"
	for _, line := range strings.Split(string(old), "\n") {
		if f := strings.SplitN(line, ":", 3); len(f) == 3 && slices.Contains(strings.Split(f[1], ","), "cpuacct") {
			prev = f[2]
		}
	}
	// Registered first, so it runs last: after the runtime is destroyed.
	b.Cleanup(func() {
		_ = os.WriteFile(filepath.Join(root, prev, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644)
		hier, _ := filepath.Glob("/sys/fs/cgroup/*")
		for _, h := range hier {
			_ = unix.Rmdir(filepath.Join(h, a.dir, "pods"))
			_ = unix.Rmdir(filepath.Join(h, a.dir))
		}
		if _, err := os.Stat(root + a.dir); err == nil {
			b.Errorf("cgroup %s left behind", root+a.dir)
		}
	})
	if err := os.WriteFile(filepath.Join(root, a.dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		b.Fatal(err)
	}
	return a
}

func (a *cpuAccount) read() time.Duration {
	v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpuacct", a.dir, "cpuacct.usage"))
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64)
	return time.Duration(n)
}

func (a *cpuAccount) reset()               { a.base = a.read() }
func (a *cpuAccount) usage() time.Duration { return a.read() - a.base }
