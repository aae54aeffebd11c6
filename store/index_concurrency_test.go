package store_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tugboatdev/tugboat/store"
)

// TestIndexesAgreeWithScanUnderConcurrentWrites relabels, binds and
// deletes pods from many goroutines (so that one apply batch often writes
// one pod several times) and then checks that every list served from the
// label and node indexes returns exactly what filtering the full list
// returns, also after the store is rebuilt from its log. Run under -race.
func TestIndexesAgreeWithScanUnderConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openDir(t, dir)
	const pods, writers, rounds = 12, 8, 40
	for i := 0; i < pods; i++ {
		if _, err := store.Create(ctx, s, pod("default", fmt.Sprintf("p%d", i), map[string]string{"app": "a0"})); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				name := fmt.Sprintf("p%d", (w*7+r)%pods)
				var err error
				switch r % 5 {
				case 4: // delete and create again
					_, err = s.Delete(ctx, podsGR, "default", name, metav1.DeleteOptions{})
					if err == nil || apierrors.IsNotFound(err) {
						_, err = store.Create(ctx, s, pod("default", name, map[string]string{"app": fmt.Sprintf("a%d", r%3)}))
					}
				case 3: // bind, if not bound yet
					err = s.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Target: corev1.ObjectReference{Name: fmt.Sprintf("n%d", w%3)}}, metav1.CreateOptions{})
				default: // relabel
					var p *corev1.Pod
					if p, err = store.Get[*corev1.Pod](ctx, s, "default", name); err == nil {
						p.Labels = map[string]string{"app": fmt.Sprintf("a%d", (w+r)%3)}
						if r%2 == 0 {
							p.Labels["tier"] = "web"
						}
						_, err = store.Update(ctx, s, p)
					}
				}
				if err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) && !apierrors.IsAlreadyExists(err) {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// At least one pod is unbound, so that spec.nodeName= (the pending
	// pods, which have no node index entry) has something to find.
	if _, err := store.Create(ctx, s, pod("default", "unbound", map[string]string{"app": "a1"})); err != nil {
		t.Fatal(err)
	}

	check := func(s *store.Store, when string) {
		t.Helper()
		all, _, err := store.ListOf[*corev1.Pod](ctx, s, "", metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, sel := range []string{"app=a0", "app=a1", "app=a2", "tier=web", "app in (a1,a2),tier=web"} {
			want := []string{}
			ls, _ := labels.Parse(sel)
			for _, p := range all {
				if ls.Matches(labels.Set(p.Labels)) {
					want = append(want, p.Name)
				}
			}
			got := names(t, s, metav1.ListOptions{LabelSelector: sel})
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: %s from the index differs from the scan (-scan +index):\n%s", when, sel, diff)
			}
		}
		for _, node := range []string{"n0", "n1", "n2", ""} {
			want := []string{}
			for _, p := range all {
				if p.Spec.NodeName == node {
					want = append(want, p.Name)
				}
			}
			got := names(t, s, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: spec.nodeName=%s from the index differs from the scan (-scan +index):\n%s", when, node, diff)
			}
		}
	}
	check(s, "live")
	s.Close()
	check(openDir(t, dir), "recovered")
}

// names lists pods and returns their names in order.
func names(t *testing.T, s *store.Store, opts metav1.ListOptions) []string {
	t.Helper()
	l, _, err := store.ListOf[*corev1.Pod](context.Background(), s, "", opts)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, p := range l {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out
}
