package controllers

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// StatefulSet is the StatefulSet reconciler: pods named <name>-0 ..
// <name>-(N-1) with hostname and subdomain for the headless service;
// OrderedReady (create in order, each Running and Ready first; delete the
// highest ordinal first; nothing while a pod is unhealthy) or Parallel
// management; RollingUpdate with partition (only ordinals ≥ partition,
// highest first, up to rollingUpdate.maxUnavailable at once) or OnDelete;
// minReadySeconds (a pod counts as healthy once available); one PVC per
// volumeClaimTemplate and ordinal, which outlives its pod unless
// persistentVolumeClaimRetentionPolicy says Delete (whenDeleted: with the
// set; whenScaled: with a scaled-away pod); ControllerRevisions and status.
type StatefulSet struct {
	cfg  Config
	sts  controller.Lister[*appsv1.StatefulSet]
	pods controller.Lister[*corev1.Pod]
	pvcs controller.Lister[*corev1.PersistentVolumeClaim]
	crs  controller.Lister[*appsv1.ControllerRevision]
	rec  *controller.Recorder
	exp  *controller.Expectations
	// Controller runs the reconciler.
	Controller *controller.Controller
}

// NewStatefulSet builds the StatefulSet reconciler.
func NewStatefulSet(cfg Config) *StatefulSet {
	cfg = cfg.withDefaults()
	r := &StatefulSet{cfg: cfg, sts: controller.ListerFor[*appsv1.StatefulSet](cfg.Informers), pods: controller.ListerFor[*corev1.Pod](cfg.Informers),
		pvcs: controller.ListerFor[*corev1.PersistentVolumeClaim](cfg.Informers), crs: controller.ListerFor[*appsv1.ControllerRevision](cfg.Informers),
		rec: controller.NewRecorder(cfg.Store, "statefulset-controller", cfg.Clock, cfg.Log), exp: controller.NewExpectations(cfg.Clock)}
	c := controller.New("statefulset", r, cfg.Workers, cfg.Clock, cfg.Log)
	r.Controller = c
	r.sts.Inf.AddHandler(enqueueHandler(c, nil))
	r.pods.Inf.AddHandler(podOwnerHandler(c, r.exp, "StatefulSet", nil))
	return r
}

// Run runs the reconciler and its recorder until ctx ends.
func (r *StatefulSet) Run(ctx context.Context) error {
	return runWithRecorder(ctx, r.rec, r.Controller)
}

func ordinalOf(set *appsv1.StatefulSet, p *corev1.Pod) int {
	prefix := set.Name + "-"
	if len(p.Name) <= len(prefix) || p.Name[:len(prefix)] != prefix {
		return -1
	}
	suffix := p.Name[len(prefix):]
	n, err := strconv.Atoi(suffix)
	if err != nil || n < 0 || strconv.Itoa(n) != suffix {
		return -1
	}
	return n
}

func claimName(tmpl *corev1.PersistentVolumeClaim, set *appsv1.StatefulSet, ord int) string {
	return fmt.Sprintf("%s-%s-%d", tmpl.Name, set.Name, ord)
}

func (r *StatefulSet) newPod(set *appsv1.StatefulSet, ord int, hash string) *corev1.Pod {
	p := podFromTemplate(&set.Spec.Template, set.Namespace, "", newControllerRef(set, gvkStatefulSet))
	p.Name = fmt.Sprintf("%s-%d", set.Name, ord)
	p.Labels[appsv1.StatefulSetPodNameLabel] = p.Name
	p.Labels[appsv1.PodIndexLabel] = strconv.Itoa(ord)
	p.Labels[appsv1.ControllerRevisionHashLabelKey] = hash
	p.Spec.Hostname = p.Name
	p.Spec.Subdomain = set.Spec.ServiceName
	for i := range set.Spec.VolumeClaimTemplates {
		t := &set.Spec.VolumeClaimTemplates[i]
		vol := corev1.Volume{Name: t.Name, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claimName(t, set, ord)}}}
		replaced := false
		for j := range p.Spec.Volumes {
			if p.Spec.Volumes[j].Name == t.Name {
				p.Spec.Volumes[j] = vol
				replaced = true
			}
		}
		if !replaced {
			p.Spec.Volumes = append(p.Spec.Volumes, vol)
		}
	}
	return p
}

func podHealthy(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && isPodReady(p)
}

// stsHealth judges pods of one StatefulSet: Running, Ready and available
// for minReadySeconds, and remembers when the next ready pod becomes
// available so the set is looked at again then.
type stsHealth struct {
	minReady int32
	now      time.Time
	wake     time.Duration
}

func (h *stsHealth) ok(p *corev1.Pod) bool {
	if !podHealthy(p) {
		return false
	}
	if isPodAvailable(p, h.minReady, h.now) {
		return true
	}
	if d := availableIn(p, h.minReady, h.now); d > 0 && (h.wake == 0 || d < h.wake) {
		h.wake = d
	}
	return false
}

// stsMaxUnavailable resolves rollingUpdate.maxUnavailable (default 1,
// percentages of replicas rounded down, at least 1, as upstream).
func stsMaxUnavailable(set *appsv1.StatefulSet, replicas int) int {
	ru := set.Spec.UpdateStrategy.RollingUpdate
	if ru == nil || ru.MaxUnavailable == nil {
		return 1
	}
	v, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, replicas, false)
	if err != nil || v < 1 {
		return 1
	}
	return v
}

// Reconcile syncs one StatefulSet.
func (r *StatefulSet) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	ns, name := controller.SplitKey(key)
	set, ok := r.sts.Get(ns, name)
	if !ok || set.DeletionTimestamp != nil {
		return controller.Result{}, nil
	}
	hash, owned, ok, err := claimRevisioned(ctx, r.cfg.Store, r.crs, r.pods, set, gvkStatefulSet, set.Spec.Selector, &set.Spec.Template)
	if !ok || err != nil {
		return controller.Result{}, err
	}
	replicas := int(int32Val(set.Spec.Replicas, 1))
	byOrd := map[int]*corev1.Pod{}
	var extra []*corev1.Pod
	for _, p := range owned {
		o := ordinalOf(set, p)
		if o < 0 {
			continue
		}
		if o >= replicas {
			extra = append(extra, p)
		} else {
			byOrd[o] = p
		}
	}
	sort.Slice(extra, func(i, j int) bool { return ordinalOf(set, extra[i]) > ordinalOf(set, extra[j]) })
	parallel := set.Spec.PodManagementPolicy == appsv1.ParallelPodManagement
	health := &stsHealth{minReady: set.Spec.MinReadySeconds, now: r.cfg.Clock.Now()}
	if err := r.syncClaimOwners(ctx, set, replicas, byOrd, extra); err != nil {
		return controller.Result{}, err
	}
	if r.exp.Satisfied(key) {
		if err := r.manage(ctx, key, set, hash, replicas, byOrd, extra, parallel, health); err != nil {
			return controller.Result{}, err
		}
	}
	// Status.
	st := *set.Status.DeepCopy()
	st.ObservedGeneration = set.Generation
	st.UpdateRevision = set.Name + "-" + hash
	var count, ready, avail, updated int32
	for _, p := range owned {
		if p.DeletionTimestamp != nil || ordinalOf(set, p) < 0 {
			continue
		}
		count++
		if isPodReady(p) {
			ready++
		}
		if isPodAvailable(p, set.Spec.MinReadySeconds, r.cfg.Clock.Now()) {
			avail++
		}
		if p.Labels[appsv1.ControllerRevisionHashLabelKey] == hash {
			updated++
		}
	}
	st.Replicas, st.ReadyReplicas, st.AvailableReplicas, st.UpdatedReplicas = count, ready, avail, updated
	for _, p := range owned {
		health.ok(p) // note when a ready pod becomes available, for the status
	}
	if st.CurrentRevision == "" || (updated == int32(replicas) && count == int32(replicas)) {
		st.CurrentRevision = st.UpdateRevision
	}
	st.CurrentReplicas = count
	if st.CurrentRevision != st.UpdateRevision {
		st.CurrentReplicas = count - updated
	}
	if !equality.Semantic.DeepEqual(set.Status, st) {
		up := set.DeepCopy()
		up.Status = st
		if _, err := storeapi.UpdateStatus(ctx, r.cfg.Store, up); err != nil && !apierrors.IsNotFound(err) {
			return controller.Result{}, fmt.Errorf("statefulset %s: status: %w", key, err)
		}
	}
	if health.wake > 0 {
		return controller.Result{RequeueAfter: health.wake}, nil
	}
	return controller.Result{}, nil
}

func (r *StatefulSet) manage(ctx context.Context, key string, set *appsv1.StatefulSet, hash string, replicas int,
	byOrd map[int]*corev1.Pod, extra []*corev1.Pod, parallel bool, health *stsHealth) error {
	// Failed pods are deleted and made again.
	for o, p := range byOrd {
		if p.Status.Phase == corev1.PodFailed && p.DeletionTimestamp == nil {
			if err := r.deletePod(ctx, key, set, p); err != nil {
				return err
			}
			delete(byOrd, o)
			if !parallel {
				return nil
			}
		}
	}
	// Scale up, in ordinal order.
	for o := 0; o < replicas; o++ {
		p := byOrd[o]
		if p == nil {
			if err := r.createPod(ctx, key, set, o, hash); err != nil {
				return err
			}
			if !parallel {
				return nil
			}
			continue
		}
		if !parallel && !health.ok(p) {
			return nil // OrderedReady: wait for this one (Running, Ready, available) first
		}
	}
	// Scale down, highest ordinal first.
	for _, p := range extra {
		if p.DeletionTimestamp != nil {
			if !parallel {
				return nil
			}
			continue
		}
		if !parallel {
			for _, q := range byOrd {
				if !health.ok(q) {
					return nil // no scale-down while a pod is unhealthy
				}
			}
		}
		if err := r.deletePod(ctx, key, set, p); err != nil {
			return err
		}
		if !parallel {
			return nil
		}
	}
	// Rolling update, highest ordinal first down to the partition.
	if set.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return nil
	}
	partition := 0
	if ru := set.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		partition = int(*ru.Partition)
	}
	// Up to maxUnavailable pods (1 by default) may be down at once,
	// counting those unavailable for any reason; OrderedReady sets also
	// wait for each replaced pod to be healthy before going lower.
	maxUnavail := stsMaxUnavailable(set, replicas)
	unavailable := 0
	for o := 0; o < replicas; o++ {
		if p := byOrd[o]; p == nil || !health.ok(p) {
			unavailable++
		}
	}
	for o := replicas - 1; o >= partition; o-- {
		if unavailable >= maxUnavail {
			return nil
		}
		p := byOrd[o]
		if p == nil || p.DeletionTimestamp != nil {
			if !parallel && maxUnavail == 1 {
				return nil
			}
			continue
		}
		if p.Labels[appsv1.ControllerRevisionHashLabelKey] != hash {
			if err := r.deletePod(ctx, key, set, p); err != nil {
				return err
			}
			unavailable++
			continue
		}
		if !health.ok(p) && !parallel && maxUnavail == 1 {
			return nil
		}
	}
	return nil
}

// claimOwnerRefs returns pvc's owner references with those the retention
// policy manages (to set and to the pod of ordinal ord) made to match it:
// whenDeleted=Delete owns the claim by the set (for a condemned ordinal
// only if whenScaled is Retain); whenScaled=Delete owns a condemned
// ordinal's claim by its pod, so it goes with the pod.
func claimOwnerRefs(set *appsv1.StatefulSet, pvc *corev1.PersistentVolumeClaim, ord, replicas int, pod *corev1.Pod) []metav1.OwnerReference {
	pol := set.Spec.PersistentVolumeClaimRetentionPolicy
	whenDeleted, whenScaled := appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	if pol != nil {
		if pol.WhenDeleted != "" {
			whenDeleted = pol.WhenDeleted
		}
		if pol.WhenScaled != "" {
			whenScaled = pol.WhenScaled
		}
	}
	condemned := ord >= replicas
	wantSet := whenDeleted == appsv1.DeletePersistentVolumeClaimRetentionPolicyType &&
		(!condemned || whenScaled != appsv1.DeletePersistentVolumeClaimRetentionPolicyType)
	wantPod := whenScaled == appsv1.DeletePersistentVolumeClaimRetentionPolicyType && condemned && pod != nil
	podName := fmt.Sprintf("%s-%d", set.Name, ord)
	var out []metav1.OwnerReference
	for _, ref := range pvc.OwnerReferences {
		switch {
		case ref.UID == set.UID:
			if wantSet {
				out = append(out, ref)
				wantSet = false
			}
		case ref.Kind == "Pod" && ref.APIVersion == "v1" && ref.Name == podName:
			if wantPod && ref.UID == pod.UID {
				out = append(out, ref)
				wantPod = false
			}
		default:
			out = append(out, ref)
		}
	}
	if wantSet {
		out = append(out, metav1.OwnerReference{APIVersion: gvkStatefulSet.GroupVersion().String(), Kind: gvkStatefulSet.Kind,
			Name: set.Name, UID: set.UID, BlockOwnerDeletion: ptr(true)})
	}
	if wantPod {
		out = append(out, metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID, BlockOwnerDeletion: ptr(true)})
	}
	return out
}

func stsWhenScaled(set *appsv1.StatefulSet) appsv1.PersistentVolumeClaimRetentionPolicyType {
	if p := set.Spec.PersistentVolumeClaimRetentionPolicy; p != nil && p.WhenScaled != "" {
		return p.WhenScaled
	}
	return appsv1.RetainPersistentVolumeClaimRetentionPolicyType
}

// syncClaimOwners applies persistentVolumeClaimRetentionPolicy to the
// set's claims through their owner references; the garbage collector then
// deletes them with the set or with a condemned pod.
func (r *StatefulSet) syncClaimOwners(ctx context.Context, set *appsv1.StatefulSet, replicas int, byOrd map[int]*corev1.Pod, extra []*corev1.Pod) error {
	if len(set.Spec.VolumeClaimTemplates) == 0 {
		return nil
	}
	pods := map[int]*corev1.Pod{}
	for o, p := range byOrd {
		pods[o] = p
	}
	for _, p := range extra {
		pods[ordinalOf(set, p)] = p
	}
	for _, pvc := range r.pvcs.List(set.Namespace, nil) {
		ord := -1
		for i := range set.Spec.VolumeClaimTemplates {
			prefix := set.Spec.VolumeClaimTemplates[i].Name + "-" + set.Name + "-"
			if strings.HasPrefix(pvc.Name, prefix) {
				suffix := pvc.Name[len(prefix):]
				if n, err := strconv.Atoi(suffix); err == nil && n >= 0 && strconv.Itoa(n) == suffix {
					ord = n
				}
			}
		}
		if ord < 0 || pvc.DeletionTimestamp != nil {
			continue
		}
		if ord >= replicas && pods[ord] == nil && stsWhenScaled(set) == appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
			// Its pod is gone already: nothing uses the claim any more.
			err := storeapi.Delete[*corev1.PersistentVolumeClaim](ctx, r.cfg.Store, pvc.Namespace, pvc.Name,
				metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pvc.UID}})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return fmt.Errorf("statefulset %s/%s: delete claim %s: %w", set.Namespace, set.Name, pvc.Name, err)
			}
			continue
		}
		want := claimOwnerRefs(set, pvc, ord, replicas, pods[ord])
		if equality.Semantic.DeepEqual(want, pvc.OwnerReferences) || (len(want) == 0 && len(pvc.OwnerReferences) == 0) {
			continue
		}
		_, err := writeRetry(ctx, r.cfg.Store, pvc, false, func(up *corev1.PersistentVolumeClaim) {
			up.OwnerReferences = claimOwnerRefs(set, up, ord, replicas, pods[ord])
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("statefulset %s/%s: claim %s owners: %w", set.Namespace, set.Name, pvc.Name, err)
		}
	}
	return nil
}

func (r *StatefulSet) createPod(ctx context.Context, key string, set *appsv1.StatefulSet, ord int, hash string) error {
	for i := range set.Spec.VolumeClaimTemplates {
		t := &set.Spec.VolumeClaimTemplates[i]
		name := claimName(t, set, ord)
		if _, ok := r.pvcs.Get(set.Namespace, name); ok {
			continue
		}
		pvc := t.DeepCopy()
		pvc.ObjectMeta = metav1.ObjectMeta{Namespace: set.Namespace, Name: name, Labels: map[string]string{}, Annotations: t.Annotations}
		for k, v := range set.Spec.Selector.MatchLabels {
			pvc.Labels[k] = v
		}
		for k, v := range t.Labels {
			pvc.Labels[k] = v
		}
		pvc.Status = corev1.PersistentVolumeClaimStatus{}
		// The retention policy's owner references from the start, so a
		// claim made just as the set goes is collected with it.
		pvc.OwnerReferences = claimOwnerRefs(set, pvc, ord, int(int32Val(set.Spec.Replicas, 1)), nil)
		if _, err := storeapi.Create(ctx, r.cfg.Store, pvc); err != nil && !apierrors.IsAlreadyExists(err) {
			r.rec.Eventf(set, corev1.EventTypeWarning, "FailedCreate", "create Claim %s for Pod %s-%d in StatefulSet %s failed error: %v", name, set.Name, ord, set.Name, err)
			return fmt.Errorf("statefulset %s: create pvc %s: %w", key, name, err)
		}
		r.rec.Eventf(set, corev1.EventTypeNormal, "SuccessfulCreate", "create Claim %s Pod %s-%d in StatefulSet %s success", name, set.Name, ord, set.Name)
	}
	r.exp.Expect(key, 1, nil)
	p := r.newPod(set, ord, hash)
	if _, err := storeapi.Create(ctx, r.cfg.Store, p); err != nil {
		r.exp.LowerCreations(key, 1)
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return fmt.Errorf("statefulset %s: create pod %s: %w", key, p.Name, err)
	}
	r.rec.Eventf(set, corev1.EventTypeNormal, "SuccessfulCreate", "create Pod %s in StatefulSet %s successful", p.Name, set.Name)
	return nil
}

func (r *StatefulSet) deletePod(ctx context.Context, key string, set *appsv1.StatefulSet, p *corev1.Pod) error {
	r.exp.Expect(key, 0, []string{string(p.UID)})
	deleted, err := deletePodByUID(ctx, r.cfg.Store, r.exp, key, p)
	if err != nil {
		return fmt.Errorf("statefulset %s: delete %s: %w", key, p.Name, err)
	}
	if !deleted {
		return nil
	}
	r.rec.Eventf(set, corev1.EventTypeNormal, "SuccessfulDelete", "delete Pod %s in StatefulSet %s successful", p.Name, set.Name)
	return nil
}
