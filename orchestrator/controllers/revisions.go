package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// revisionHash is the controller-revision-hash of a pod template.
func revisionHash(t *corev1.PodTemplateSpec) string {
	b, _ := json.Marshal(t)
	h := fnv.New32a()
	h.Write(b)
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

// claimRevisioned starts the reconcile of a workload that keeps its pod
// templates as ControllerRevisions (DaemonSet, StatefulSet): it makes sure
// the revision of tmpl exists and returns its hash and the pods owner
// controls among those selector matches (adopting and releasing as
// [claim]). ok is false when selector is invalid or empty: such a workload
// manages no pods.
func claimRevisioned(ctx context.Context, s storeapi.Interface, crs controller.Lister[*appsv1.ControllerRevision], pods controller.Lister[*corev1.Pod],
	owner metav1.Object, gvk schema.GroupVersionKind, selector *metav1.LabelSelector, tmpl *corev1.PodTemplateSpec) (hash string, owned []*corev1.Pod, ok bool, err error) {
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil || sel.Empty() {
		return "", nil, false, nil
	}
	hash, err = ensureRevision(ctx, s, crs, owner, gvk, tmpl)
	if err != nil {
		return "", nil, false, err
	}
	owned, err = claim(ctx, s, owner, gvk, sel, pods.List(owner.GetNamespace(), sel))
	if err != nil {
		return "", nil, false, err
	}
	return hash, owned, true, nil
}

// ensureRevision makes sure a ControllerRevision named <owner>-<hash>
// holding tmpl exists for owner and returns the hash; a new revision gets
// the next revision number.
func ensureRevision(ctx context.Context, s storeapi.Interface, crs controller.Lister[*appsv1.ControllerRevision], owner metav1.Object,
	gvk schema.GroupVersionKind, tmpl *corev1.PodTemplateSpec) (string, error) {
	hash := revisionHash(tmpl)
	name := owner.GetName() + "-" + hash
	var maxRev int64
	for _, cr := range crs.ByIndex(controller.IndexControllerUID, string(owner.GetUID())) {
		if cr.Name == name {
			return hash, nil
		}
		maxRev = max(maxRev, cr.Revision)
	}
	data, err := json.Marshal(map[string]any{"spec": map[string]any{"template": tmpl, "$patch": "replace"}})
	if err != nil {
		return "", err
	}
	cr := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Namespace: owner.GetNamespace(), Name: name,
			Labels:          map[string]string{appsv1.ControllerRevisionHashLabelKey: hash},
			OwnerReferences: []metav1.OwnerReference{newControllerRef(owner, gvk)}},
		Data: runtime.RawExtension{Raw: data}, Revision: maxRev + 1,
	}
	if _, err := storeapi.Create(ctx, s, cr); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("controllerrevision %s: %w", name, err)
	}
	return hash, nil
}
