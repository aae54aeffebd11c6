package serviceaccount

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/store"
)

func TestAdmit(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := store.Create(ctx, st, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app"}}); err != nil {
		t.Fatal(err)
	}
	if err := EnsureNamespace(ctx, st, "app", []byte("CA")); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(ctx, st, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "quiet", Namespace: "app"},
		AutomountServiceAccountToken: ptr.To(false)}); err != nil {
		t.Fatal(err)
	}
	mounted := corev1.VolumeMount{ReadOnly: true, MountPath: MountPath}
	tests := []struct {
		name       string
		spec       corev1.PodSpec
		wantSA     string
		wantVolume bool
		wantErr    func(error) bool
	}{
		{name: "default account, init and app containers", spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "i"}}, Containers: []corev1.Container{{Name: "a"}, {Name: "b"}}},
			wantSA: "default", wantVolume: true},
		{name: "account turns automount off", spec: corev1.PodSpec{ServiceAccountName: "quiet", Containers: []corev1.Container{{Name: "a"}}},
			wantSA: "quiet"},
		{name: "pod overrides account", spec: corev1.PodSpec{ServiceAccountName: "quiet", AutomountServiceAccountToken: ptr.To(true), Containers: []corev1.Container{{Name: "a"}}},
			wantSA: "quiet", wantVolume: true},
		{name: "pod turns automount off", spec: corev1.PodSpec{AutomountServiceAccountToken: ptr.To(false), Containers: []corev1.Container{{Name: "a"}}},
			wantSA: "default"},
		{name: "missing account", spec: corev1.PodSpec{ServiceAccountName: "ghost", Containers: []corev1.Container{{Name: "a"}}},
			wantErr: apierrors.IsForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "app"}, Spec: tt.spec}
			err := Admit(ctx, st, pod)
			if tt.wantErr != nil {
				if !tt.wantErr(err) {
					t.Fatalf("error %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pod.Spec.ServiceAccountName != tt.wantSA || pod.Spec.DeprecatedServiceAccount != tt.wantSA {
				t.Errorf("serviceAccountName %q/%q, want %q", pod.Spec.ServiceAccountName, pod.Spec.DeprecatedServiceAccount, tt.wantSA)
			}
			if !tt.wantVolume {
				if len(pod.Spec.Volumes) != 0 {
					t.Errorf("volumes %v, want none", pod.Spec.Volumes)
				}
				return
			}
			if len(pod.Spec.Volumes) != 1 {
				t.Fatalf("volumes %v", pod.Spec.Volumes)
			}
			v := pod.Spec.Volumes[0]
			if !strings.HasPrefix(v.Name, "kube-api-access-") || len(v.Name) != len("kube-api-access-")+5 {
				t.Errorf("volume name %q", v.Name)
			}
			if d := cmp.Diff(TokenVolume(v.Name), v); d != "" {
				t.Errorf("volume (-want +got):\n%s", d)
			}
			if got := *v.Projected.Sources[0].ServiceAccountToken.ExpirationSeconds; got != 3607 {
				t.Errorf("expirationSeconds %d", got)
			}
			mounted.Name = v.Name
			for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
				if d := cmp.Diff([]corev1.VolumeMount{mounted}, c.VolumeMounts); d != "" {
					t.Errorf("container %s mounts (-want +got):\n%s", c.Name, d)
				}
			}
			// Admitting again changes nothing.
			again := pod.DeepCopy()
			if err := Admit(ctx, st, again); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(pod, again); d != "" {
				t.Errorf("second Admit changed the pod:\n%s", d)
			}
		})
	}
}
