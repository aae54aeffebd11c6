package store_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/store"
)

// onlyInterface hides every method of a store but those of store.Interface,
// as the API server's client offers.
type onlyInterface struct{ store.Interface }

// TestCreateOwned checks that CreateOwned stores the object it is handed
// (no copy), with everything Create fills in, and that the typed function
// falls back to Create for a store without OwnedCreator.
func TestCreateOwned(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	for _, tc := range []struct {
		name   string
		s      store.Interface
		shared bool // the result is the object handed over
	}{
		{"embedded store", s, true},
		{"Interface only", onlyInterface{s}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := pod("default", "", map[string]string{"app": "web"})
			in.GenerateName = "owned-"
			out, err := store.CreateOwned(ctx, tc.s, in)
			if err != nil {
				t.Fatal(err)
			}
			if got := out == in; got != tc.shared {
				t.Errorf("result is the object handed over: %v, want %v", got, tc.shared)
			}
			if out.UID == "" || out.ResourceVersion == "" || out.Status.Phase != corev1.PodPending || len(out.Name) != len("owned-")+5 {
				t.Errorf("not filled in like Create: uid %q rv %q phase %q name %q", out.UID, out.ResourceVersion, out.Status.Phase, out.Name)
			}
			got, err := store.Get[*corev1.Pod](ctx, s, "default", out.Name)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(out, got); diff != "" {
				t.Errorf("stored object differs from the result (-result +stored):\n%s", diff)
			}
			if _, err := store.CreateOwned(ctx, tc.s, pod("default", out.Name, nil)); !apierrors.IsAlreadyExists(err) {
				t.Errorf("second create of %s: %v, want AlreadyExists", out.Name, err)
			}
		})
	}
	// A dry run stores nothing.
	if _, err := s.CreateOwned(ctx, pod("default", "dry", nil), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get[*corev1.Pod](ctx, s, "default", "dry"); !apierrors.IsNotFound(err) {
		t.Errorf("dry-run create stored the pod: %v", err)
	}
}
