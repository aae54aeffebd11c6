package store

import (
	"errors"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// admitClaims applies the claim admission of kube-apiserver: on create, a
// claim without storageClassName gets the default StorageClass (the one
// annotated storageclass.kubernetes.io/is-default-class=true; the newest
// if several); on update, the resize rules of admitResize.
func (s *Store) admitClaims(v *view, ops []op) error {
	for _, o := range ops {
		if o.del || o.prev != nil || o.kind.GroupResource() != pvcResource {
			continue
		}
		if pvc := o.obj.(*corev1.PersistentVolumeClaim); pvc.Spec.StorageClassName == nil {
			if name := s.defaultStorageClass(v); name != "" {
				pvc.Spec.StorageClassName = &name
			}
		}
	}
	return s.admitResize(v, ops)
}

// defaultStorageClassAnnotation marks the default StorageClass.
const defaultStorageClassAnnotation = "storageclass.kubernetes.io/is-default-class"

func (s *Store) defaultStorageClass(v *view) string {
	k := s.reg.ForResource(storageClassResource)
	if k == nil {
		return ""
	}
	var best *storagev1.StorageClass
	v.each(k, func(obj runtime.Object) bool {
		sc := obj.(*storagev1.StorageClass)
		if sc.Annotations[defaultStorageClassAnnotation] == "true" && (best == nil || sc.CreationTimestamp.After(best.CreationTimestamp.Time) ||
			(sc.CreationTimestamp.Equal(&best.CreationTimestamp) && sc.Name < best.Name)) {
			best = sc
		}
		return true
	})
	if best == nil {
		return ""
	}
	return best.Name
}

// admitResize checks PersistentVolumeClaim updates as kube-apiserver's
// validation and its PersistentVolumeClaimResize admission do: a bound
// claim's storage request may grow only if its StorageClass has
// allowVolumeExpansion, and may never shrink. It runs under seqMu, so the
// class it reads is the one in force.
func (s *Store) admitResize(v *view, ops []op) error {
	for _, o := range ops {
		if o.del || o.prev == nil || o.kind.GroupResource() != pvcResource {
			continue
		}
		next, old := o.obj.(*corev1.PersistentVolumeClaim), o.prev.(*corev1.PersistentVolumeClaim)
		want, had := next.Spec.Resources.Requests[corev1.ResourceStorage], old.Spec.Resources.Requests[corev1.ResourceStorage]
		if want.Cmp(had) == 0 {
			continue
		}
		fld := field.NewPath("spec", "resources", "requests", "storage")
		if want.Cmp(had) < 0 {
			return invalid(o.kind, next.Name, field.ErrorList{field.Forbidden(fld, "field can not be less than previous value")})
		}
		if old.Spec.VolumeName == "" {
			return invalid(o.kind, next.Name, field.ErrorList{field.Forbidden(field.NewPath("spec"), "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims")})
		}
		if !s.allowsExpansion(v, next) {
			return apierrors.NewForbidden(pvcResource, next.Name, errors.New("only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize"))
		}
	}
	return nil
}

var (
	pvcResource          = schema.GroupResource{Resource: "persistentvolumeclaims"}
	storageClassResource = schema.GroupResource{Group: "storage.k8s.io", Resource: "storageclasses"}
)

func (s *Store) allowsExpansion(v *view, pvc *corev1.PersistentVolumeClaim) bool {
	if pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName == "" {
		return false
	}
	k := s.reg.ForResource(storageClassResource)
	if k == nil {
		return false
	}
	sc, _ := v.get(k, objKey("", *pvc.Spec.StorageClassName)).(*storagev1.StorageClass)
	return sc != nil && sc.AllowVolumeExpansion != nil && *sc.AllowVolumeExpansion
}
