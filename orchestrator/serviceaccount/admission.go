package serviceaccount

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/store"
)

// Names and paths of the token volume, as kube-apiserver's ServiceAccount
// admission plugin writes them.
const (
	// DefaultServiceAccount is the account of pods that name none.
	DefaultServiceAccount = "default"
	// MountPath is where containers find token, ca.crt and namespace.
	MountPath = "/var/run/secrets/kubernetes.io/serviceaccount"
	// VolumePrefix starts the generated volume's name
	// (kube-api-access-<5 random characters>).
	VolumePrefix = "kube-api-access-"
	// RootCAConfigMap is the ConfigMap in every namespace holding the
	// cluster CA under the key ca.crt.
	RootCAConfigMap = "kube-root-ca.crt"
	// TokenExpirationSeconds is the lifetime the projected token asks for
	// (an hour and 7 seconds: kube-apiserver's marker for "may be
	// extended").
	TokenExpirationSeconds = 3607
)

// Admit applies kube-apiserver's ServiceAccount admission to a pod being
// created: spec.serviceAccountName defaults to "default"; the account must
// exist (403 Forbidden otherwise, as upstream); and unless the pod or the
// account turns automountServiceAccountToken off, a projected volume
// kube-api-access-xxxxx (a ServiceAccount token with expirationSeconds
// 3607 at path "token", ca.crt from the kube-root-ca.crt ConfigMap, and the
// namespace from the downward API) is added and mounted read-only at
// [MountPath] in every container and init container that does not mount
// something there already. Mirror pods are left alone. pod is changed in
// place.
func Admit(ctx context.Context, st store.Interface, pod *corev1.Pod) error {
	if _, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return nil
	}
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = pod.Spec.DeprecatedServiceAccount
	}
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = DefaultServiceAccount
	}
	pod.Spec.DeprecatedServiceAccount = pod.Spec.ServiceAccountName
	sa, err := store.Get[*corev1.ServiceAccount](ctx, st, pod.Namespace, pod.Spec.ServiceAccountName)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, pod.Name,
				fmt.Errorf("error looking up service account %s/%s: %w", pod.Namespace, pod.Spec.ServiceAccountName, err))
		}
		return err
	}
	automount := sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken
	if pod.Spec.AutomountServiceAccountToken != nil {
		automount = *pod.Spec.AutomountServiceAccountToken
	}
	if !automount {
		return nil
	}
	name := ""
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, VolumePrefix) && v.Projected != nil {
			name = v.Name // already admitted
		}
	}
	if name == "" {
		taken := map[string]bool{}
		for _, v := range pod.Spec.Volumes {
			taken[v.Name] = true
		}
		for name == "" || taken[name] {
			name = VolumePrefix + utilrand.String(5)
		}
		pod.Spec.Volumes = append(pod.Spec.Volumes, TokenVolume(name))
	}
	mount := func(cs []corev1.Container) {
		for i := range cs {
			has := false
			for _, m := range cs[i].VolumeMounts {
				if m.MountPath == MountPath {
					has = true
				}
			}
			if !has {
				cs[i].VolumeMounts = append(cs[i].VolumeMounts, corev1.VolumeMount{Name: name, ReadOnly: true, MountPath: MountPath})
			}
		}
	}
	mount(pod.Spec.InitContainers)
	mount(pod.Spec.Containers)
	return nil
}

// TokenVolume is the projected volume Admit adds.
func TokenVolume(name string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: ptr.To[int32](0o644),
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: ptr.To[int64](TokenExpirationSeconds), Path: "token"}},
			{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: RootCAConfigMap},
				Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
			}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
				Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"},
			}}}},
		},
	}}}
}
