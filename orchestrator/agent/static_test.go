package agent

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/tugboatdev/tugboat/store"
)

func TestParseStaticPod(t *testing.T) {
	reg := store.DefaultRegistry()
	for _, tc := range []struct {
		name, manifest, wantErr string
	}{
		{name: "ok", manifest: "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: nginx}]\n"},
		{name: "json", manifest: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"kube-system"},"spec":{"containers":[{"name":"c","image":"nginx"}]}}`},
		{name: "unknown field", manifest: "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containerz: []\n", wantErr: "containerz"},
		{name: "not a pod", manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n", wantErr: "want a Pod"},
		{name: "no name", manifest: "apiVersion: v1\nkind: Pod\nspec:\n  containers: [{name: c, image: nginx}]\n", wantErr: "metadata.name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseStaticPod(reg, []byte(tc.manifest), "n1", "/etc/manifests/web.yaml")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != "web-n1" || p.Spec.NodeName != "n1" || p.UID == "" || p.Annotations[AnnotationConfigSource] != "file" ||
				p.Annotations[AnnotationConfigHash] != string(p.UID) || p.Spec.RestartPolicy != corev1.RestartPolicyAlways || p.Namespace == "" {
				t.Errorf("pod = %+v", p.ObjectMeta)
			}
			again, _ := ParseStaticPod(reg, []byte(tc.manifest), "n1", "/etc/manifests/web.yaml")
			if again.UID != p.UID {
				t.Error("UID is not stable")
			}
			other, _ := ParseStaticPod(reg, []byte(tc.manifest), "n2", "/etc/manifests/web.yaml")
			if other.UID == p.UID {
				t.Error("UID does not depend on the node")
			}
		})
	}
}

func FuzzParseStaticPod(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: nginx}]\n"))
	f.Add([]byte(`{"kind":"Pod","apiVersion":"v1","metadata":{"name":"x"}}`))
	f.Add([]byte("kind: Pod\n"))
	reg := store.DefaultRegistry()
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseStaticPod(reg, data, "node", "f.yaml")
		if err != nil {
			return
		}
		if p.Spec.NodeName != "node" || !strings.HasSuffix(p.Name, "-node") || p.UID == "" {
			t.Fatalf("accepted manifest gave %+v", p.ObjectMeta)
		}
	})
}
