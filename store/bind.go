package store

import (
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Binder is implemented by stores that can bind a pod to a node in one
// write, as the API server's pods/binding subresource does. The scheduler
// and the API server use it when their store offers it (the embedded
// [Store] does) and fall back to an Update otherwise.
type Binder interface {
	// Bind assigns the pod named by binding's namespace and name to the
	// node binding.Target names: it sets spec.nodeName, the binding's
	// annotations and the PodScheduled condition in one revision. It
	// fails with Conflict if the pod is bound already, is being deleted,
	// or (when binding.UID is set) is not the pod with that UID.
	Bind(ctx context.Context, binding *corev1.Binding, opts metav1.CreateOptions) error
}

var (
	_ Binder       = (*Store)(nil)
	_ OwnedCreator = (*Store)(nil)
)

var podsResource = schema.GroupResource{Resource: "pods"}

// Bind implements [Binder].
func (s *Store) Bind(ctx context.Context, b *corev1.Binding, opts metav1.CreateOptions) error {
	k := s.reg.ForResource(podsResource)
	if k == nil {
		return unknownResource(podsResource)
	}
	if err := validateBinding(b); err != nil {
		return invalid(k, b.Name, err)
	}
	now := metav1.NewTime(s.now().Truncate(1e9))
	key := objKey(b.Namespace, b.Name)
	_, err := s.commit(ctx, isDryRun(opts.DryRun), func(v *view, rev uint64) ([]op, error) {
		raw := v.get(k, key)
		if raw == nil {
			return nil, apierrors.NewNotFound(podsResource, b.Name)
		}
		old := raw.(*corev1.Pod)
		switch {
		case b.UID != "" && old.UID != b.UID:
			return nil, apierrors.NewConflict(podsResource, b.Name, fmt.Errorf("precondition failed: UID in precondition: %v, UID in object meta: %v", b.UID, old.UID))
		case old.DeletionTimestamp != nil:
			return nil, apierrors.NewConflict(podsResource, b.Name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", b.Name))
		case old.Spec.NodeName != "":
			return nil, apierrors.NewConflict(podsResource, b.Name, fmt.Errorf("pod %s is already assigned to node %q", b.Name, old.Spec.NodeName))
		}
		// Stored objects are never changed, so the new pod may share
		// everything the binding does not touch with the old one.
		next := &corev1.Pod{TypeMeta: old.TypeMeta, Spec: old.Spec, Status: old.Status}
		old.ObjectMeta.DeepCopyInto(&next.ObjectMeta)
		if len(b.Annotations) > 0 {
			if next.Annotations == nil {
				next.Annotations = map[string]string{}
			}
			maps.Copy(next.Annotations, b.Annotations)
		}
		next.Spec.NodeName = b.Target.Name
		next.Status.Conditions = setScheduled(old.Status.Conditions, now)
		return []op{{kind: k, key: key, obj: next, prev: old}}, nil
	})
	return err
}

// setScheduled returns a copy of conds with PodScheduled True.
func setScheduled(conds []corev1.PodCondition, now metav1.Time) []corev1.PodCondition {
	out := make([]corev1.PodCondition, 0, len(conds)+1)
	found := false
	for _, c := range conds {
		if c.Type == corev1.PodScheduled {
			c.Status, c.Reason, c.Message, c.LastTransitionTime, found = corev1.ConditionTrue, "", "", now, true
		}
		out = append(out, c)
	}
	if !found {
		out = append(out, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	return out
}

func validateBinding(b *corev1.Binding) field.ErrorList {
	var errs field.ErrorList
	if b == nil {
		return field.ErrorList{field.Required(field.NewPath("binding"), "")}
	}
	if b.Name == "" {
		errs = append(errs, field.Required(field.NewPath("metadata", "name"), "name is required"))
	}
	if b.Namespace == "" {
		errs = append(errs, field.Required(field.NewPath("metadata", "namespace"), "namespace is required"))
	}
	if b.Target.Kind != "" && b.Target.Kind != "Node" {
		errs = append(errs, field.NotSupported(field.NewPath("target", "kind"), b.Target.Kind, []string{"Node", "<empty>"}))
	}
	if b.Target.Name == "" {
		errs = append(errs, field.Required(field.NewPath("target", "name"), ""))
	} else {
		for _, msg := range path.IsValidPathSegmentName(b.Target.Name) {
			errs = append(errs, field.Invalid(field.NewPath("target", "name"), b.Target.Name, msg))
		}
	}
	return errs
}
