package store_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/store"
)

// Every manifest under examples/manifests (the seeds' manifests) decodes
// strictly and is accepted by validation.
func TestSeedManifests(t *testing.T) {
	files, err := filepath.Glob("../examples/manifests/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests found: %v", err)
	}
	s := openMem(t)
	ctx := context.Background()
	n := 0
	for _, f := range files {
		data, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := store.DecodeAll(s.Registry(), data)
		data.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, o := range objs {
			acc := o.(metav1.Object)
			if s.Registry().ForObject(o).Namespaced && acc.GetNamespace() == "" {
				acc.SetNamespace("default")
			}
			if _, err := s.Create(ctx, o, metav1.CreateOptions{}); err != nil {
				t.Errorf("%s: create %s: %v", f, acc.GetName(), err)
			}
			n++
		}
	}
	if n < 12 {
		t.Errorf("only %d objects in the manifests", n)
	}
}
