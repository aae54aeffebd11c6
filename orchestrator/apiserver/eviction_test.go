package apiserver

import (
	"context"
	"fmt"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tugboatdev/tugboat/store"
)

// TestConcurrentEvictions evicts pods covered by one budget at the same
// time, as kubectl drain does: the budget allows two, so exactly two
// succeed (their conflicts on the budget's status are retried) and the
// rest get 429.
func TestConcurrentEvictions(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const pods = 6
	for i := 0; i < pods; i++ {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("web-%d", i), Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		if _, err := store.Create(ctx, st, p); err != nil {
			t.Fatal(err)
		}
	}
	minAvailable := intstr.FromInt32(pods - 2)
	pdb, err := store.Create(ctx, st, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &minAvailable, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}})
	if err != nil {
		t.Fatal(err)
	}
	pdb.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: pdb.Generation, DisruptionsAllowed: 2, CurrentHealthy: pods, DesiredHealthy: pods - 2, ExpectedPods: pods}
	if _, err := store.UpdateStatus(ctx, st, pdb); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, pods)
	for i := 0; i < pods; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = EvictPod(ctx, st, "default", fmt.Sprintf("web-%d", i), nil)
		}()
	}
	wg.Wait()
	ok, refused := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case apierrors.IsTooManyRequests(err):
			refused++
		default:
			t.Errorf("eviction: %v", err)
		}
	}
	if ok != 2 || refused != pods-2 {
		t.Errorf("%d evictions succeeded and %d were refused, want 2 and %d", ok, refused, pods-2)
	}
}
