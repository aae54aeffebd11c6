package store_test

import (
	"context"
	"math"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestClaimResize grows a bound claim only when its class allows
// expansion, and never shrinks one.
func TestClaimResize(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	for name, allow := range map[string]bool{"grow": true, "fixed": false} {
		if _, err := s.Create(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: "example.com/p", AllowVolumeExpansion: ptr(allow)}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	claim := func(name, class, volume string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr(class), VolumeName: volume,
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	}
	resize := func(name, size string) error {
		obj, err := s.Get(ctx, schema.GroupResource{Resource: "persistentvolumeclaims"}, "default", name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		c := obj.(*corev1.PersistentVolumeClaim)
		c.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse(size)
		_, err = s.Update(ctx, c, metav1.UpdateOptions{})
		return err
	}
	for _, c := range []*corev1.PersistentVolumeClaim{claim("a", "grow", "pv-a"), claim("b", "fixed", "pv-b"), claim("c", "grow", "")} {
		if _, err := s.Create(ctx, c, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := resize("a", "2Gi"); err != nil {
		t.Errorf("grow a bound claim of an expandable class: %v", err)
	}
	if err := resize("a", "1Gi"); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.resources.requests.storage: Forbidden: field can not be less than previous value") {
		t.Errorf("shrink: %v", err)
	}
	if err := resize("b", "2Gi"); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "storageclass that provisions the pvc must support resize") {
		t.Errorf("grow with a class without expansion: %v", err)
	}
	if err := resize("c", "2Gi"); !apierrors.IsInvalid(err) {
		t.Errorf("grow an unbound claim: %v", err)
	}
}

// TestJobDefaultsFollowPolicies checks the defaults that depend on other
// fields, as upstream: backoffLimit is off with a per-index limit, and a
// pod failure policy makes replacements wait for failed pods.
func TestJobDefaultsFollowPolicies(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	job := func(name string, mut func(*batchv1.Job)) *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}
		mut(j)
		return j
	}
	plain, err := s.Create(ctx, job("plain", func(*batchv1.Job) {}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if j := plain.(*batchv1.Job); *j.Spec.BackoffLimit != 6 || *j.Spec.PodReplacementPolicy != batchv1.TerminatingOrFailed {
		t.Errorf("plain job: backoffLimit %d, podReplacementPolicy %s", *j.Spec.BackoffLimit, *j.Spec.PodReplacementPolicy)
	}
	perIndex, err := s.Create(ctx, job("per-index", func(j *batchv1.Job) {
		j.Spec.CompletionMode = ptr(batchv1.IndexedCompletion)
		j.Spec.Completions = ptr(int32(3))
		j.Spec.BackoffLimitPerIndex = ptr(int32(1))
	}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if j := perIndex.(*batchv1.Job); *j.Spec.BackoffLimit != math.MaxInt32 {
		t.Errorf("backoffLimitPerIndex job: backoffLimit %d, want MaxInt32", *j.Spec.BackoffLimit)
	}
	withPolicy, err := s.Create(ctx, job("policy", func(j *batchv1.Job) {
		j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{Action: batchv1.PodFailurePolicyActionFailJob,
			OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}}}}
	}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if j := withPolicy.(*batchv1.Job); *j.Spec.PodReplacementPolicy != batchv1.Failed {
		t.Errorf("podFailurePolicy job: podReplacementPolicy %s, want Failed", *j.Spec.PodReplacementPolicy)
	}
}

// TestClaimGetsDefaultStorageClass checks the DefaultStorageClass
// admission: a claim without a class gets the one marked default.
func TestClaimGetsDefaultStorageClass(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	pvc := func(name string, class *string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: class, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	}
	// No default class yet: the claim keeps no class.
	got, err := s.Create(ctx, pvc("before", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := got.(*corev1.PersistentVolumeClaim).Spec.StorageClassName; c != nil {
		t.Errorf("class %q with no default class", *c)
	}
	for name, isDefault := range map[string]string{"fast": "false", "local-path": "true"} {
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": isDefault}}, Provisioner: "example.com/p"}
		if _, err := s.Create(ctx, sc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	got, err = s.Create(ctx, pvc("after", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := got.(*corev1.PersistentVolumeClaim).Spec.StorageClassName; c == nil || *c != "local-path" {
		t.Errorf("class %v, want the default local-path", c)
	}
	// An explicit class, even "", is kept.
	got, err = s.Create(ctx, pvc("none", ptr("")), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := got.(*corev1.PersistentVolumeClaim).Spec.StorageClassName; c == nil || *c != "" {
		t.Errorf("explicit empty class became %v", c)
	}
}

// TestSecretStringData checks that stringData is merged into data
// (winning over it) and not stored.
func TestSecretStringData(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	in := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"},
		Data: map[string][]byte{"user": []byte("old"), "host": []byte("db")}, StringData: map[string]string{"user": "admin", "password": "s3cret"}}
	out, err := s.Create(ctx, in, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sec := out.(*corev1.Secret)
	if string(sec.Data["user"]) != "admin" || string(sec.Data["password"]) != "s3cret" || string(sec.Data["host"]) != "db" || sec.StringData != nil || sec.Type != corev1.SecretTypeOpaque {
		t.Errorf("secret data %q stringData %v type %s", sec.Data, sec.StringData, sec.Type)
	}
	sec.StringData = map[string]string{"password": "new"}
	upd, err := s.Update(ctx, sec, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := upd.(*corev1.Secret); string(got.Data["password"]) != "new" || got.StringData != nil {
		t.Errorf("after update: data %q stringData %v", got.Data, got.StringData)
	}
}
