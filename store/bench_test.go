package store_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/store"
)

// benchPod is a realistic pod (labels, one container with resources).
func benchPod(name, node string, lbls map[string]string) *corev1.Pod {
	p := pod("default", name, lbls)
	p.Spec.NodeName = node
	p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80}}
	return p
}

// runCreates creates b.N pods from `writers` goroutines and reports creates/s.
func runCreates(b *testing.B, s store.Interface, writers int) {
	runCreatesWith(b, s, writers, store.Create[*corev1.Pod])
}

// runCreatesWith is runCreates with the typed create function to use.
func runCreatesWith(b *testing.B, s store.Interface, writers int, create func(context.Context, store.Interface, *corev1.Pod) (*corev1.Pod, error)) {
	ctx := context.Background()
	var n atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := n.Add(1)
				if i > int64(b.N) {
					return
				}
				if _, err := create(ctx, s, benchPod(fmt.Sprintf("p-%d", i), "", map[string]string{"app": "bench"})); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "creates/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/create")
	if st, ok := s.(*store.Store); ok {
		reportCommitMetrics(b, st)
	}
}

// reportCommitMetrics adds the mean group-commit size and log append time.
func reportCommitMetrics(b *testing.B, s *store.Store) {
	reg := prometheus.NewRegistry()
	for _, c := range s.Collectors() {
		reg.MustRegister(c)
	}
	fams, _ := reg.Gather()
	for _, f := range fams {
		h := f.GetMetric()[0].GetHistogram()
		if h == nil || h.GetSampleCount() == 0 {
			continue
		}
		mean := h.GetSampleSum() / float64(h.GetSampleCount())
		switch f.GetName() {
		case "tugboat_store_commit_batch_size":
			b.ReportMetric(mean, "txns/commit")
		case "tugboat_store_log_append_seconds":
			b.ReportMetric(mean*1000, "ms/append")
		}
	}
}

// cpuTime is the CPU time (user and system) the process has used: on a
// loaded machine, CPU per operation is steadier than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCreateDurable measures acknowledged (fsynced) creates per second
// with 1, 16 and 64 concurrent writers.
func BenchmarkCreateDurable(b *testing.B) {
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := openDir(b, b.TempDir())
			runCreates(b, s, writers)
		})
	}
}

// BenchmarkCreateOwnedDurable is BenchmarkCreateDurable with
// [store.CreateOwned]: the store keeps the pod it is handed and returns it,
// without Create's two copies.
func BenchmarkCreateOwnedDurable(b *testing.B) {
	for _, writers := range []int{64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := openDir(b, b.TempDir())
			runCreatesWith(b, s, writers, store.CreateOwned[*corev1.Pod])
		})
	}
}

// BenchmarkCreateGCTunedDurable is BenchmarkCreateDurable with the store's
// garbage-collector settings for a process that is mostly the store
// (Config.GCPercent 400, MemoryLimit 4 GiB).
func BenchmarkCreateGCTunedDurable(b *testing.B) {
	for _, writers := range []int{64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, err := store.Open(context.Background(), store.Config{Dir: b.TempDir(), Logger: quietLogs, GCPercent: 400, MemoryLimit: 4 << 30})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			runCreates(b, s, writers)
		})
	}
}

// BenchmarkCreateMemory measures creates per second in memory mode.
func BenchmarkCreateMemory(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			runCreates(b, openMem(b), writers)
		})
	}
}

// BenchmarkReferenceBoltTxnPerWrite is the reference for the durable
// figure: 64 writers each committing its own bbolt transaction (one fsync
// per write, no group commit), with the same encoded pod as payload.
func BenchmarkReferenceBoltTxnPerWrite(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "ref.db"), 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err })
	payload, _ := benchPod("p", "", map[string]string{"app": "bench"}).Marshal()
	var n atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := n.Add(1)
				if i > int64(b.N) {
					return
				}
				err := db.Update(func(tx *bolt.Tx) error {
					return tx.Bucket([]byte("b")).Put(binary.BigEndian.AppendUint64(nil, uint64(i)), payload)
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "creates/s")
}

var listStore struct {
	once sync.Once
	s    *store.Store
}

// tenThousandPods is a store with 10,000 pods on 100 nodes, 100 apps.
func tenThousandPods(b *testing.B) *store.Store {
	listStore.once.Do(func() {
		s, err := store.Open(context.Background(), store.Config{Logger: quietLogs})
		if err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < 10_000; i += 16 {
					p := benchPod(fmt.Sprintf("p-%05d", i), fmt.Sprintf("node-%d", i%100), map[string]string{"app": fmt.Sprintf("a%d", i/100), "tier": "web"})
					if _, err := store.Create(context.Background(), s, p); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		listStore.s = s
	})
	return listStore.s
}

// BenchmarkList10kPods lists from 10,000 pods by label selector, by node
// (field selector spec.nodeName, served from the node index) and in full.
func BenchmarkList10kPods(b *testing.B) {
	s := tenThousandPods(b)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts metav1.ListOptions
		want int
	}{
		{"label=app=a7", metav1.ListOptions{LabelSelector: "app=a7"}, 100},
		{"label=set-based", metav1.ListOptions{LabelSelector: "app in (a7,a8),tier=web"}, 200},
		{"node=node-7", metav1.ListOptions{FieldSelector: "spec.nodeName=node-7"}, 100},
		{"all", metav1.ListOptions{}, 10_000},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				l, err := s.List(ctx, podsGR, "", tc.opts)
				if err != nil {
					b.Fatal(err)
				}
				if len(l.Items) != tc.want {
					b.Fatalf("%d items, want %d", len(l.Items), tc.want)
				}
			}
		})
	}
}

// BenchmarkWatchLatency1000 measures the time from a write being
// acknowledged... to its event arriving at each of 1,000 watchers: the
// writer stamps the send time in the object and every watcher records the
// delay. Reports p50 and p99 over all deliveries, and the process CPU per
// write (its 1,000 deliveries included).
func BenchmarkWatchLatency1000(b *testing.B) {
	ctx := context.Background()
	s := openMem(b)
	const watchers = 1000
	rv := strconv.FormatUint(s.Revision(), 10)
	// Each watcher's delays go into a slice sized up front: growing
	// 1,000 slices while events arrive would make the harness itself the
	// main source of garbage (about 30 KB per write, three times the
	// store's) and time the collector's work instead of the delivery.
	lat := make([][]time.Duration, watchers)
	for i := range lat {
		lat[i] = make([]time.Duration, 0, b.N)
	}
	var wg sync.WaitGroup
	ws := make([]interface{ Stop() }, watchers)
	for i := 0; i < watchers; i++ {
		w, err := s.Watch(ctx, cmGR, "default", metav1.ListOptions{ResourceVersion: rv})
		if err != nil {
			b.Fatal(err)
		}
		ws[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range w.ResultChan() {
				c := e.Object.(*corev1.ConfigMap)
				if c.Name == "stop" {
					return
				}
				sent, _ := strconv.ParseInt(c.Annotations["sent"], 10, 64)
				lat[i] = append(lat[i], time.Since(time.Unix(0, sent)))
			}
		}()
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		c := cm("default", fmt.Sprintf("c%d", i))
		c.Annotations = map[string]string{"sent": strconv.FormatInt(time.Now().UnixNano(), 10)}
		if _, err := store.Create(ctx, s, c); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Millisecond) // about 1,000 writes/s
	}
	store.Create(ctx, s, cm("default", "stop"))
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/write")
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if len(all) != b.N*watchers {
		b.Fatalf("%d deliveries, want %d", len(all), b.N*watchers)
	}
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	for _, w := range ws {
		w.Stop()
	}
}

// BenchmarkBindPods measures the scheduler's write from 16 writers, in
// memory: an Update that sets spec.nodeName on an existing pod, against
// [store.Store.Bind], which also sets the PodScheduled condition.
func BenchmarkBindPods(b *testing.B) {
	for _, how := range []string{"update", "bind"} {
		b.Run(how, func(b *testing.B) {
			ctx := context.Background()
			s := openMem(b)
			pods := make([]*corev1.Pod, b.N)
			for i := range pods {
				p, err := store.Create(ctx, s, benchPod(fmt.Sprintf("p-%d", i), "", map[string]string{"app": "bench"}))
				if err != nil {
					b.Fatal(err)
				}
				pods[i] = p
			}
			var n atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for w := 0; w < 16; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := n.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						p, node := pods[i], fmt.Sprintf("node-%d", i%100)
						var err error
						if how == "bind" {
							err = s.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, UID: p.UID}, Target: corev1.ObjectReference{Name: node}}, metav1.CreateOptions{})
						} else {
							p.Spec.NodeName = node
							_, err = store.Update(ctx, s, p)
						}
						if err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "binds/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/bind")
		})
	}
}
