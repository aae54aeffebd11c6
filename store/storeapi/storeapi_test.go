package storeapi_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tugboatdev/tugboat/store"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// TestKindTables checks the table names the embedded store keeps a kind's
// objects and index rows in, for registered and unregistered kinds.
func TestKindTables(t *testing.T) {
	reg := storeapi.DefaultRegistry()
	tests := []struct {
		kind        *storeapi.Kind
		table, rows string
	}{
		{reg.Lookup("pods"), "pods", "pods#idx"},
		{reg.Lookup("deployments"), "deployments.apps", "deployments.apps#idx"},
		{&storeapi.Kind{Resource: "widgets"}, "widgets", "widgets#idx"},
	}
	for _, tc := range tests {
		got := []string{tc.kind.Table(), tc.kind.IndexTable()}
		if diff := cmp.Diff([]string{tc.table, tc.rows}, got); diff != "" {
			t.Errorf("%s: tables (-want +got):\n%s", tc.kind.Resource, diff)
		}
	}
}

// TestResourceOfUnregistered checks that the typed helpers refuse a Go
// type the store's registry does not know.
func TestResourceOfUnregistered(t *testing.T) {
	s := fakeStore{reg: storeapi.NewRegistry()}
	if k, err := storeapi.ResourceOf[*corev1.Pod](s); err == nil {
		t.Fatalf("ResourceOf in an empty registry = %v, want an error", k)
	}
	k, err := storeapi.ResourceOf[*corev1.Pod](fakeStore{reg: storeapi.DefaultRegistry()})
	if err != nil || k.Resource != "pods" {
		t.Fatalf("ResourceOf[*corev1.Pod] = %v, %v, want pods", k, err)
	}
}

// TestSameObject compares objects that are equal only semantically
// (quantities written differently) and objects that differ.
func TestSameObject(t *testing.T) {
	podWith := func(cpu string) *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}}}}
	}
	tests := []struct {
		name string
		a, b any
		want bool
	}{
		{"equal pods", podWith("1"), podWith("1"), true},
		{"same quantity written differently", podWith("1"), podWith("1000m"), true},
		{"different pods", podWith("1"), podWith("2"), false},
		{"specs", &podWith("1").Spec, &podWith("1").Spec, true},
		{"non-protobuf values", map[string]int{"a": 1}, map[string]int{"a": 1}, true},
		{"different non-protobuf values", []string{"a"}, []string{"b"}, false},
	}
	for _, tc := range tests {
		if got := storeapi.SameObject(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: SameObject = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestStoreAliases checks that package store's names are this package's:
// the embedded store is a storeapi.Interface, and store's registry and
// port range are the same values.
func TestStoreAliases(t *testing.T) {
	var _ storeapi.Interface = (*store.Store)(nil)
	var _ storeapi.OwnedCreator = (*store.Store)(nil)
	if store.DefaultRegistry() != storeapi.DefaultRegistry() {
		t.Error("store.DefaultRegistry() is not storeapi.DefaultRegistry()")
	}
	if got, want := store.DefaultNodePortRange().String(), "30000-32767"; got != want {
		t.Errorf("DefaultNodePortRange = %s, want %s", got, want)
	}
}

// fakeStore is an Interface with only a registry: enough for ResourceOf.
type fakeStore struct {
	storeapi.Interface
	reg *storeapi.Registry
}

func (f fakeStore) Registry() *storeapi.Registry { return f.reg }
