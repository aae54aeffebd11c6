package store_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tugboatdev/tugboat/store"
)

// Many writers increment one counter with read-modify-write and Conflict
// retries: no increment may be lost, and a watcher sees every revision in
// order. Run under -race.
func TestConcurrentWritersWithConflictRetries(t *testing.T) {
	for _, mode := range []string{"memory", "durable"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			dir := ""
			if mode == "durable" {
				dir = t.TempDir()
			}
			s := openDir(t, dir)
			c, err := store.Create(ctx, s, cm("default", "counter"))
			if err != nil {
				t.Fatal(err)
			}
			w, err := s.Watch(ctx, cmGR, "default", metav1.ListOptions{ResourceVersion: c.ResourceVersion, FieldSelector: "metadata.name=counter"})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			const writers, each = 8, 40
			var wg sync.WaitGroup
			conflicts := make([]int, writers)
			for g := 0; g < writers; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < each; i++ {
						for {
							cur, err := store.Get[*corev1.ConfigMap](ctx, s, "default", "counter")
							if err != nil {
								t.Error(err)
								return
							}
							n, _ := strconv.Atoi(cur.Data["n"])
							cur.Data["n"] = strconv.Itoa(n + 1)
							_, err = store.Update(ctx, s, cur)
							if apierrors.IsConflict(err) {
								conflicts[g]++
								continue
							}
							if err != nil {
								t.Error(err)
								return
							}
							break
						}
						// Independent creates interleave with the counter.
						if _, err := store.Create(ctx, s, cm("default", fmt.Sprintf("w%d-%d", g, i))); err != nil {
							t.Error(err)
						}
					}
				}()
			}
			wg.Wait()
			final, _ := store.Get[*corev1.ConfigMap](ctx, s, "default", "counter")
			if final.Data["n"] != strconv.Itoa(writers*each) {
				t.Fatalf("counter = %s, want %d (lost updates)", final.Data["n"], writers*each)
			}
			total := 0
			for _, c := range conflicts {
				total += c
			}
			t.Logf("%d conflicts retried", total)
			prev := 0
			for i := 1; i <= writers*each; i++ {
				e := <-w.ResultChan()
				if e.Type != watch.Modified {
					t.Fatalf("event %d: %s", i, e.Type)
				}
				got := e.Object.(*corev1.ConfigMap)
				n, _ := strconv.Atoi(got.Data["n"])
				if n != prev+1 {
					t.Fatalf("watch saw counter %d after %d", n, prev)
				}
				prev = n
			}
		})
	}
}

// Concurrent creates of the same name: exactly one wins.
func TestConcurrentCreateSameName(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := store.Create(ctx, s, cm("default", "same"))
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !apierrors.IsAlreadyExists(err) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d creates of one name succeeded", wins)
	}
}

// Objects with lazily cached fields (a Quantity's string) are shared
// between readers: encoding and copying them concurrently must not race.
func TestSharedObjectsAreReadOnly(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		ctx := context.Background()
		s := openDir(t, dir)
		p := pod("default", "tmpfs", nil)
		size := *resource.NewQuantity(64<<20, resource.BinarySI) // no cached string yet
		p.Spec.Volumes = []corev1.Volume{{Name: "m", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &size}}}}
		created, err := store.Create(ctx, s, p)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := s.Watch(ctx, podsGR, "default", metav1.ListOptions{ResourceVersion: "0"})
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for i := 0; i < 2; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
						store.Get[*corev1.Pod](ctx, s, "default", "tmpfs")
					}
				}
			}()
		}
		for i := 0; i < 20; i++ {
			up := created.DeepCopy()
			up.ResourceVersion = ""
			up.Labels = map[string]string{"x": fmt.Sprint(i)}
			if _, err := store.Update(ctx, s, up); err != nil {
				t.Fatal(err)
			}
			e := <-w.ResultChan()
			e.Object.(*corev1.Pod).Marshal()
		}
		close(stop)
		wg.Wait()
		w.Stop()
	}
}

// Patches of one object from many clients all succeed: after a few
// optimistic tries a patch is applied under the write lock.
func TestConcurrentPatchesNeverConflict(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	store.Create(ctx, s, cm("default", "hot"))
	var wg sync.WaitGroup
	const clients, each = 16, 30
	for g := 0; g < clients; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				patch := fmt.Sprintf(`{"data":{"c%d-%d":"x"}}`, g, i)
				if _, err := store.Patch[*corev1.ConfigMap](ctx, s, "default", "hot", types.MergePatchType, []byte(patch)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got, _ := store.Get[*corev1.ConfigMap](ctx, s, "default", "hot")
	if len(got.Data) != clients*each+1 {
		t.Errorf("%d keys, want %d", len(got.Data), clients*each+1)
	}
}
