package containerd

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/tugboatdev/tugboat/runtime"
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
	r := newTestRuntime(b, testOpts{network: network})
	ctx := context.Background()
	var start, stop []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
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
		t1 := time.Now()
		if err := r.StopPodSandbox(ctx, sb); err != nil {
			b.Fatal(err)
		}
		if err := r.RemovePodSandbox(ctx, sb); err != nil {
			b.Fatal(err)
		}
		stop = append(stop, time.Since(t1))
	}
	b.StopTimer()
	percentiles(b, "start", start)
	percentiles(b, "stop", stop)
}

// BenchmarkConcurrentPodStart100 starts 100 pods at once and measures the
// wall time until all containers run (then removes them, untimed).
func BenchmarkConcurrentPodStart100(b *testing.B) {
	network := newTestNetwork(b)
	r := newTestRuntime(b, testOpts{network: network})
	ctx := context.Background()
	var walls []time.Duration
	for b.Loop() {
		t0 := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		sbs := make([]string, 100)
		for i := range 100 {
			wg.Go(func() {
				sb, err := r.RunPodSandbox(ctx, &runtime.PodSandboxConfig{Name: fmt.Sprintf("c-%d", i), Namespace: "bench", UID: randHex(4)})
				if err != nil {
					errs <- err
					return
				}
				sbs[i] = sb
				id, err := r.CreateContainer(ctx, sb, &runtime.ContainerConfig{Name: "c", Image: busyboxRef, Command: []string{"sleep", "1000"}})
				if err == nil {
					err = r.StartContainer(ctx, id)
				}
				if err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		walls = append(walls, time.Since(t0))
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		b.StopTimer()
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
