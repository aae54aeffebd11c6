package apiserver

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// BenchmarkWritesAt1000PerSecond measures the target directly:
// mutating calls offered at a steady 1,000 writes/s (not as fast as
// possible) by 16 TLS clients, half creates of new pods and half strategic
// merge patches of existing pods, and reports the p50/p99 latency of each
// write from its scheduled start (so queueing behind a slow write counts).
// b.N is the number of writes; sub-benchmarks run creates only, patches
// only and the half-and-half mix.
func BenchmarkWritesAt1000PerSecond(b *testing.B) {
	for _, mix := range []string{"creates", "patches", "mixed"} {
		b.Run(mix, func(b *testing.B) { writesAtRate(b, mix) })
	}
}

func writesAtRate(b *testing.B, mix string) {
	const rate = 1000
	ts := benchServer(b)
	ctx := context.Background()
	clients := make([]*kubernetes.Clientset, benchClients)
	for i := range clients {
		clients[i] = clientset(b, ts.rest, true)
	}
	for c := range clients {
		if _, err := clients[c].CoreV1().Pods("default").Create(ctx, testPod("default", fmt.Sprintf("patched-%d", c), nil), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, b.N)
	work := make(chan int, b.N)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error
	b.ResetTimer()
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				due := start.Add(time.Duration(i) * time.Second / rate)
				time.Sleep(time.Until(due))
				var err error
				if mix == "creates" || (mix == "mixed" && i%2 == 0) {
					_, err = clients[c].CoreV1().Pods("default").Create(ctx, testPod("default", fmt.Sprintf("w%d", i), nil), metav1.CreateOptions{})
				} else {
					patch := fmt.Sprintf(`{"metadata":{"labels":{"n":"%d"}}}`, i)
					_, err = clients[c].CoreV1().Pods("default").Patch(ctx, fmt.Sprintf("patched-%d", c), types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
				}
				if err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
				}
				lat[i] = time.Since(due)
			}
		}()
	}
	for i := 0; i < b.N; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if failed != nil {
		b.Fatal(failed)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
