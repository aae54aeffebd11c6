package manifests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tugboatdev/tugboat/store"
)

// TestManifests decodes every manifest strictly, checks that its images
// come from the demo registry, and creates its objects in a store, which
// validates them as the API server does.
func TestManifests(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) < 10 {
		t.Fatalf("manifests: %v %v", files, err)
	}
	// Namespaces first, so objects naming them can be created.
	for i, f := range files {
		if f == "namespaces.yaml" {
			files[0], files[i] = files[i], files[0]
		}
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(f, ".yaml"), func(t *testing.T) {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			objs, err := store.DecodeAll(st.Registry(), fh)
			if err != nil {
				t.Fatalf("decoding: %v", err)
			}
			if len(objs) == 0 {
				t.Fatal("no objects")
			}
			for _, o := range objs {
				for _, img := range images(o) {
					if !strings.HasPrefix(img, "127.0.0.1:5000/demo/") {
						t.Errorf("%T uses image %q, want one of the demo registry", o, img)
					}
				}
				m, err := meta.Accessor(o)
				if err != nil {
					t.Fatal(err)
				}
				gvk := o.GetObjectKind().GroupVersionKind()
				if m.GetNamespace() == "" && gvk.Kind != "Namespace" {
					m.SetNamespace("default")
				}
				if _, err := st.Create(ctx, o, metav1.CreateOptions{}); err != nil {
					t.Errorf("creating %s %s: %v", gvk.Kind, m.GetName(), err)
				}
			}
		})
	}
}

// images lists the container images of a workload or pod.
func images(o runtime.Object) []string {
	var spec *corev1.PodSpec
	switch v := o.(type) {
	case *corev1.Pod:
		spec = &v.Spec
	case *appsv1.Deployment:
		spec = &v.Spec.Template.Spec
	case *appsv1.StatefulSet:
		spec = &v.Spec.Template.Spec
	case *appsv1.DaemonSet:
		spec = &v.Spec.Template.Spec
	case *batchv1.Job:
		spec = &v.Spec.Template.Spec
	case *batchv1.CronJob:
		spec = &v.Spec.JobTemplate.Spec.Template.Spec
	default:
		return nil
	}
	var out []string
	for _, c := range append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...) {
		out = append(out, c.Image)
	}
	return out
}
