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
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// Deployment is the Deployment reconciler: one ReplicaSet per pod template
// (named and labelled by pod-template-hash), RollingUpdate with
// maxSurge/maxUnavailable and Recreate, rollover, revisions and their
// history, rollback by template (what `kubectl rollout undo` patches),
// pause/resume, proportional scaling during a rollout, progress deadlines
// and the status and conditions kubectl reads.
type Deployment struct {
	cfg        Config
	deps       controller.Lister[*appsv1.Deployment]
	rss        controller.Lister[*appsv1.ReplicaSet]
	pods       controller.Lister[*corev1.Pod]
	rec        *controller.Recorder
	Controller *controller.Controller
}

// NewDeployment builds the Deployment reconciler and registers its handlers.
func NewDeployment(cfg Config) *Deployment {
	cfg = cfg.withDefaults()
	d := &Deployment{
		cfg:  cfg,
		deps: controller.ListerFor[*appsv1.Deployment](cfg.Informers),
		rss:  controller.ListerFor[*appsv1.ReplicaSet](cfg.Informers),
		pods: controller.ListerFor[*corev1.Pod](cfg.Informers),
		rec:  controller.NewRecorder(cfg.Store, "deployment-controller", cfg.Clock, cfg.Log),
	}
	c := controller.New("deployment", d, cfg.Workers, cfg.Clock, cfg.Log)
	d.Controller = c
	d.deps.Inf.AddHandler(enqueueHandler(c, c.EnqueueObject))
	matching := func(rs *appsv1.ReplicaSet) {
		for _, dep := range d.deps.List(rs.Namespace, nil) {
			sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
			if err == nil && !sel.Empty() && sel.Matches(labels.Set(rs.Labels)) {
				c.EnqueueObject(dep)
			}
		}
	}
	onRS := func(o runtime.Object) {
		rs := o.(*appsv1.ReplicaSet)
		if key, ok := ownerKeyOf(rs, "Deployment"); ok {
			c.Enqueue(key)
			return
		}
		matching(rs)
	}
	d.rss.Inf.AddHandler(controller.Handler{
		OnAdd: onRS,
		OnUpdate: func(oo, o runtime.Object) {
			if key, ok := ownerKeyOf(oo, "Deployment"); ok {
				c.Enqueue(key)
			}
			onRS(o)
		},
		OnDelete: onRS,
	})
	// Recreate waits for old pods to be gone.
	d.pods.Inf.AddHandler(controller.Handler{OnDelete: func(o runtime.Object) {
		p := podOf(o)
		ref := controllerRefOf(p)
		if ref == nil || ref.Kind != "ReplicaSet" {
			return
		}
		if rs, ok := d.rss.Get(p.Namespace, ref.Name); ok {
			if key, ok := ownerKeyOf(rs, "Deployment"); ok {
				if dep, ok := d.deps.Get(controller.SplitKey(key)); ok && dep.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
					c.Enqueue(key)
				}
			}
		}
	}})
	return d
}

// Run runs the reconciler and its event recorder until ctx ends.
func (d *Deployment) Run(ctx context.Context) error {
	return runWithRecorder(ctx, d.rec, d.Controller)
}

// Reconcile syncs one Deployment.
func (d *Deployment) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	ns, name := controller.SplitKey(key)
	cached, ok := d.deps.Get(ns, name)
	if !ok {
		return controller.Result{}, nil
	}
	dep := cached.DeepCopy()
	sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	if err != nil || sel.Empty() {
		d.rec.Eventf(dep, corev1.EventTypeWarning, "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.")
		return controller.Result{}, nil
	}
	rsList, err := claim(ctx, d.cfg.Store, dep, gvkDeployment, sel, d.rss.List(ns, nil))
	if err != nil {
		return controller.Result{}, err
	}
	if dep.DeletionTimestamp != nil {
		return controller.Result{}, d.syncStatusOnly(ctx, dep, rsList)
	}
	if err := d.checkPaused(ctx, dep); err != nil {
		return controller.Result{}, err
	}
	newRS, oldRSs, err := d.getAllRSsAndSyncRevision(ctx, dep, rsList, false)
	if err != nil {
		return controller.Result{}, err
	}
	if dep.Spec.Paused || d.isScalingEvent(dep, append(oldRSs, newRS)) {
		return controller.Result{}, d.sync(ctx, dep, newRS, oldRSs)
	}
	if dep.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return d.rolloutRecreate(ctx, dep, rsList, newRS, oldRSs)
	}
	return d.rolloutRolling(ctx, dep, rsList, newRS, oldRSs)
}

func (d *Deployment) checkPaused(ctx context.Context, dep *appsv1.Deployment) error {
	if !hasProgressDeadline(dep) {
		return nil
	}
	c := getDeployCond(&dep.Status, appsv1.DeploymentProgressing)
	now := d.cfg.Clock.Now()
	var want *appsv1.DeploymentCondition
	switch {
	case dep.Spec.Paused && (c == nil || c.Reason != ReasonPaused):
		nc := newDeployCond(appsv1.DeploymentProgressing, corev1.ConditionUnknown, ReasonPaused, "Deployment is paused", now)
		want = &nc
	case !dep.Spec.Paused && c != nil && c.Reason == ReasonPaused:
		nc := newDeployCond(appsv1.DeploymentProgressing, corev1.ConditionUnknown, ReasonResumed, "Deployment is resumed", now)
		want = &nc
	}
	if want == nil {
		return nil
	}
	setDeployCond(&dep.Status, *want)
	got, err := storeapi.UpdateStatus(ctx, d.cfg.Store, dep)
	if err != nil {
		return fmt.Errorf("deployment %s/%s: update status: %w", dep.Namespace, dep.Name, err)
	}
	*dep = *got
	return nil
}

// getAllRSsAndSyncRevision splits rsList into the new ReplicaSet (the one
// whose template equals the Deployment's) and the old ones, updates the new
// one's revision annotations and creates it when create is set.
func (d *Deployment) getAllRSsAndSyncRevision(ctx context.Context, dep *appsv1.Deployment, rsList []*appsv1.ReplicaSet, create bool) (*appsv1.ReplicaSet, []*appsv1.ReplicaSet, error) {
	sorted := append([]*appsv1.ReplicaSet(nil), rsList...)
	sortRSsOldestFirst(sorted)
	var newRS *appsv1.ReplicaSet
	var old []*appsv1.ReplicaSet
	for _, rs := range sorted {
		if newRS == nil && equalIgnoreHash(&rs.Spec.Template, &dep.Spec.Template) {
			newRS = rs
			continue
		}
		old = append(old, rs)
	}
	var maxOld int64
	for _, rs := range old {
		maxOld = max(maxOld, revisionOf(rs))
	}
	newRevision := strconv.FormatInt(maxOld+1, 10)
	var err error
	if newRS != nil {
		newRS, err = d.syncNewRSAnnotations(ctx, dep, newRS, newRevision)
	} else if create {
		newRS, err = d.createNewRS(ctx, dep, old, newRevision)
	}
	if err != nil {
		return nil, nil, err
	}
	if newRS != nil {
		if err := d.syncDeploymentRevision(ctx, dep, newRS, create); err != nil {
			return nil, nil, err
		}
	}
	return newRS, old, nil
}

// copyAnnotations copies the Deployment's annotations (change-cause among
// them) to a ReplicaSet, except the controller's own; it reports a change.
func copyAnnotations(dep *appsv1.Deployment, rs *appsv1.ReplicaSet) bool {
	changed := false
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	for k, v := range dep.Annotations {
		if skipCopyAnnotations[k] || strings.HasPrefix(k, "kubectl.kubernetes.io/") && k == annotationLastApplied {
			continue
		}
		if rs.Annotations[k] != v {
			rs.Annotations[k] = v
			changed = true
		}
	}
	return changed
}

func (d *Deployment) syncNewRSAnnotations(ctx context.Context, dep *appsv1.Deployment, rs *appsv1.ReplicaSet, newRevision string) (*appsv1.ReplicaSet, error) {
	up := rs.DeepCopy()
	changed := copyAnnotations(dep, up)
	oldRev := up.Annotations[AnnotationRevision]
	oldN, _ := strconv.ParseInt(oldRev, 10, 64)
	newN, _ := strconv.ParseInt(newRevision, 10, 64)
	if oldN < newN {
		up.Annotations[AnnotationRevision] = newRevision
		if oldRev != "" {
			if h := up.Annotations[AnnotationRevisionHistory]; h != "" {
				up.Annotations[AnnotationRevisionHistory] = h + "," + oldRev
			} else {
				up.Annotations[AnnotationRevisionHistory] = oldRev
			}
		}
		changed = true
	}
	if up.Spec.MinReadySeconds != dep.Spec.MinReadySeconds {
		up.Spec.MinReadySeconds = dep.Spec.MinReadySeconds
		changed = true
	}
	if !changed {
		return rs, nil
	}
	got, err := storeapi.Update(ctx, d.cfg.Store, up)
	if err != nil {
		return nil, fmt.Errorf("deployment %s/%s: update new replicaset %s: %w", dep.Namespace, dep.Name, rs.Name, err)
	}
	return got, nil
}

func (d *Deployment) createNewRS(ctx context.Context, dep *appsv1.Deployment, old []*appsv1.ReplicaSet, newRevision string) (*appsv1.ReplicaSet, error) {
	hash := templateHash(&dep.Spec.Template, dep.Status.CollisionCount)
	tmpl := *dep.Spec.Template.DeepCopy()
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	tmpl.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	sel := dep.Spec.Selector.DeepCopy()
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: dep.Name + "-" + hash, Namespace: dep.Namespace, Labels: tmpl.Labels,
			OwnerReferences: []metav1.OwnerReference{newControllerRef(dep, gvkDeployment)},
		},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr(int32(0)), MinReadySeconds: dep.Spec.MinReadySeconds, Selector: sel, Template: tmpl},
	}
	copyAnnotations(dep, rs)
	rs.Annotations[AnnotationRevision] = newRevision
	replicas := newRSNewReplicas(dep, old, rs)
	rs.Spec.Replicas = &replicas
	setReplicasAnnotations(rs, int32Val(dep.Spec.Replicas, 1), int32Val(dep.Spec.Replicas, 1)+maxSurge(dep))
	created, err := storeapi.Create(ctx, d.cfg.Store, rs)
	if apierrors.IsAlreadyExists(err) {
		existing, gerr := storeapi.Get[*appsv1.ReplicaSet](ctx, d.cfg.Store, dep.Namespace, rs.Name)
		if gerr != nil {
			return nil, gerr
		}
		if ref := controllerRefOf(existing); ref != nil && ref.UID == dep.UID && equalIgnoreHash(&existing.Spec.Template, &dep.Spec.Template) {
			return existing, nil
		}
		// A hash collision: bump collisionCount so the next hash differs.
		up := dep.DeepCopy()
		up.Status.CollisionCount = ptr(int32Val(dep.Status.CollisionCount, 0) + 1)
		if _, uerr := storeapi.UpdateStatus(ctx, d.cfg.Store, up); uerr != nil {
			return nil, uerr
		}
		return nil, fmt.Errorf("deployment %s/%s: replicaset name %s collides; collisionCount raised", dep.Namespace, dep.Name, rs.Name)
	}
	if err != nil {
		now := d.cfg.Clock.Now()
		msg := fmt.Sprintf("Failed to create new replica set %q: %v", rs.Name, err)
		if hasProgressDeadline(dep) {
			up := dep.DeepCopy()
			setDeployCond(&up.Status, newDeployCond(appsv1.DeploymentProgressing, corev1.ConditionFalse, ReasonFailedRSCreate, msg, now))
			_, _ = storeapi.UpdateStatus(ctx, d.cfg.Store, up)
		}
		d.rec.Eventf(dep, corev1.EventTypeWarning, ReasonFailedRSCreate, "%s", msg)
		return nil, fmt.Errorf("deployment %s/%s: %w", dep.Namespace, dep.Name, err)
	}
	if replicas > 0 {
		d.rec.Eventf(dep, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled up replica set %s from 0 to %d", created.Name, replicas)
	}
	if hasProgressDeadline(dep) {
		up := dep.DeepCopy()
		setDeployCond(&up.Status, newDeployCond(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonNewRSCreated,
			fmt.Sprintf("Created new replica set %q", created.Name), d.cfg.Clock.Now()))
		got, err := storeapi.UpdateStatus(ctx, d.cfg.Store, up)
		if err == nil {
			*dep = *got
		}
	}
	return created, nil
}

// syncDeploymentRevision copies the new ReplicaSet's revision (and its
// change-cause on a rollback) onto the Deployment.
func (d *Deployment) syncDeploymentRevision(ctx context.Context, dep *appsv1.Deployment, newRS *appsv1.ReplicaSet, _ bool) error {
	rev := newRS.Annotations[AnnotationRevision]
	if rev != "" && dep.Annotations[AnnotationRevision] != rev {
		up := dep.DeepCopy()
		if up.Annotations == nil {
			up.Annotations = map[string]string{}
		}
		up.Annotations[AnnotationRevision] = rev
		got, err := storeapi.Update(ctx, d.cfg.Store, up)
		if err != nil {
			return fmt.Errorf("deployment %s/%s: set revision: %w", dep.Namespace, dep.Name, err)
		}
		*dep = *got
	}
	if hasProgressDeadline(dep) && getDeployCond(&dep.Status, appsv1.DeploymentProgressing) == nil {
		up := dep.DeepCopy()
		setDeployCond(&up.Status, newDeployCond(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonFoundNewRS,
			fmt.Sprintf("Found new replica set %q", newRS.Name), d.cfg.Clock.Now()))
		got, err := storeapi.UpdateStatus(ctx, d.cfg.Store, up)
		if err != nil {
			return fmt.Errorf("deployment %s/%s: update status: %w", dep.Namespace, dep.Name, err)
		}
		*dep = *got
	}
	return nil
}

func setReplicasAnnotations(rs *appsv1.ReplicaSet, desired, maxReplicas int32) bool {
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	ds, ms := strconv.Itoa(int(desired)), strconv.Itoa(int(maxReplicas))
	changed := rs.Annotations[AnnotationDesiredReplicas] != ds || rs.Annotations[AnnotationMaxReplicas] != ms
	rs.Annotations[AnnotationDesiredReplicas] = ds
	rs.Annotations[AnnotationMaxReplicas] = ms
	return changed
}

func (d *Deployment) isScalingEvent(dep *appsv1.Deployment, all []*appsv1.ReplicaSet) bool {
	for _, rs := range activeRSs(all) {
		if desired, ok := intAnnotation(rs, AnnotationDesiredReplicas); ok && desired != int32Val(dep.Spec.Replicas, 1) {
			return true
		}
	}
	return false
}

// scaleRS sets a ReplicaSet's replicas and its replica annotations.
func (d *Deployment) scaleRS(ctx context.Context, dep *appsv1.Deployment, rs *appsv1.ReplicaSet, size int32) (bool, *appsv1.ReplicaSet, error) {
	cur := int32Val(rs.Spec.Replicas, 0)
	desired, maxReplicas := int32Val(dep.Spec.Replicas, 1), int32Val(dep.Spec.Replicas, 1)+maxSurge(dep)
	annChanged := setReplicasAnnotations(rs.DeepCopy(), desired, maxReplicas)
	if cur == size && !annChanged {
		return false, rs, nil
	}
	got, err := writeRetry(ctx, d.cfg.Store, rs, false, func(up *appsv1.ReplicaSet) {
		setReplicasAnnotations(up, desired, maxReplicas)
		up.Spec.Replicas = &size
	})
	if err != nil {
		return false, rs, fmt.Errorf("deployment %s/%s: scale replicaset %s: %w", dep.Namespace, dep.Name, rs.Name, err)
	}
	if cur != size {
		dir := "up"
		if size < cur {
			dir = "down"
		}
		d.rec.Eventf(dep, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled %s replica set %s from %d to %d", dir, rs.Name, cur, size)
	}
	return cur != size, got, nil
}

// sync scales proportionally and records status, without a rollout: used
// while paused and for scaling events.
func (d *Deployment) sync(ctx context.Context, dep *appsv1.Deployment, newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) error {
	if err := d.scale(ctx, dep, newRS, oldRSs); err != nil {
		return err
	}
	if dep.Spec.Paused {
		if err := d.cleanup(ctx, dep, oldRSs); err != nil {
			return err
		}
	}
	return d.syncStatusOnly(ctx, dep, d.currentRSs(dep))
}

// currentRSs returns the cached ReplicaSets owned by dep. Right after a
// scale the cache may lag; the ReplicaSet update event queues dep again.
func (d *Deployment) currentRSs(dep *appsv1.Deployment) []*appsv1.ReplicaSet {
	return d.rss.ByIndex(controller.IndexControllerUID, string(dep.UID))
}

func (d *Deployment) scale(ctx context.Context, dep *appsv1.Deployment, newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) error {
	replicas := int32Val(dep.Spec.Replicas, 1)
	// Only one active ReplicaSet (or none): it takes the whole size.
	olds := append([]*appsv1.ReplicaSet(nil), oldRSs...)
	sort.SliceStable(olds, func(i, j int) bool { return olds[j].CreationTimestamp.Before(&olds[i].CreationTimestamp) })
	act := activeRSs(append(append([]*appsv1.ReplicaSet(nil), olds...), newRS))
	var only *appsv1.ReplicaSet
	switch len(act) {
	case 0:
		if newRS != nil {
			only = newRS
		} else if len(olds) > 0 {
			only = olds[0]
		}
	case 1:
		only = act[0]
	}
	if only != nil || len(act) <= 1 {
		if only == nil {
			return nil
		}
		_, _, err := d.scaleRS(ctx, dep, only, replicas)
		return err
	}
	// A saturated new ReplicaSet: the old ones go.
	if newRS != nil && int32Val(newRS.Spec.Replicas, 0) == replicas && newRS.Status.AvailableReplicas == replicas {
		if desired, ok := intAnnotation(newRS, AnnotationDesiredReplicas); ok && desired == replicas {
			for _, rs := range activeRSs(oldRSs) {
				if _, _, err := d.scaleRS(ctx, dep, rs, 0); err != nil {
					return err
				}
			}
			return nil
		}
	}
	if dep.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		return nil
	}
	all := act
	var allowed int32
	if replicas > 0 {
		allowed = replicas + maxSurge(dep)
	}
	toAdd := allowed - specReplicas(all...)
	if toAdd > 0 {
		// Larger first; on a tie, newer first.
		sort.SliceStable(all, func(i, j int) bool {
			a, b := int32Val(all[i].Spec.Replicas, 0), int32Val(all[j].Spec.Replicas, 0)
			if a != b {
				return a > b
			}
			return all[j].CreationTimestamp.Before(&all[i].CreationTimestamp)
		})
	} else if toAdd < 0 {
		// Larger first; on a tie, older first.
		sort.SliceStable(all, func(i, j int) bool {
			a, b := int32Val(all[i].Spec.Replicas, 0), int32Val(all[j].Spec.Replicas, 0)
			if a != b {
				return a > b
			}
			return all[i].CreationTimestamp.Before(&all[j].CreationTimestamp)
		})
	}
	sizes := make([]int32, len(all))
	var added int32
	for i, rs := range all {
		sizes[i] = int32Val(rs.Spec.Replicas, 0)
		if toAdd != 0 {
			p := rsProportion(rs, dep, toAdd, added)
			sizes[i] += p
			added += p
		}
	}
	if toAdd != 0 && len(all) > 0 {
		sizes[0] += toAdd - added
		if sizes[0] < 0 {
			sizes[0] = 0
		}
	}
	for i, rs := range all {
		if _, _, err := d.scaleRS(ctx, dep, rs, sizes[i]); err != nil {
			return err
		}
	}
	return nil
}

// cleanup deletes the oldest fully scaled-down ReplicaSets beyond
// revisionHistoryLimit.
func (d *Deployment) cleanup(ctx context.Context, dep *appsv1.Deployment, oldRSs []*appsv1.ReplicaSet) error {
	if dep.Spec.RevisionHistoryLimit == nil {
		return nil
	}
	var alive []*appsv1.ReplicaSet
	for _, rs := range oldRSs {
		if rs.DeletionTimestamp == nil {
			alive = append(alive, rs)
		}
	}
	diff := len(alive) - int(*dep.Spec.RevisionHistoryLimit)
	if diff <= 0 {
		return nil
	}
	sort.SliceStable(alive, func(i, j int) bool {
		ri, rj := revisionOf(alive[i]), revisionOf(alive[j])
		if ri != rj {
			return ri < rj
		}
		return alive[i].CreationTimestamp.Before(&alive[j].CreationTimestamp)
	})
	for _, rs := range alive[:diff] {
		if rs.Status.Replicas != 0 || int32Val(rs.Spec.Replicas, 0) != 0 || rs.Generation > rs.Status.ObservedGeneration {
			continue
		}
		err := storeapi.Delete[*appsv1.ReplicaSet](ctx, d.cfg.Store, rs.Namespace, rs.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &rs.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deployment %s/%s: delete old replicaset %s: %w", dep.Namespace, dep.Name, rs.Name, err)
		}
	}
	return nil
}

func (d *Deployment) calculateStatus(dep *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) appsv1.DeploymentStatus {
	st := *dep.Status.DeepCopy()
	var actual, ready, avail int32
	for _, rs := range all {
		actual += rs.Status.Replicas
		ready += rs.Status.ReadyReplicas
		avail += rs.Status.AvailableReplicas
	}
	st.ObservedGeneration = dep.Generation
	st.Replicas = actual
	st.UpdatedReplicas = 0
	if newRS != nil {
		st.UpdatedReplicas = newRS.Status.Replicas
	}
	st.ReadyReplicas = ready
	st.AvailableReplicas = avail
	st.UnavailableReplicas = max(specReplicas(all...)-avail, 0)
	replicas := int32Val(dep.Spec.Replicas, 1)
	now := d.cfg.Clock.Now()
	if avail >= replicas-maxUnavailable(dep) {
		setDeployCond(&st, newDeployCond(appsv1.DeploymentAvailable, corev1.ConditionTrue, ReasonMinimumAvailable, "Deployment has minimum availability.", now))
	} else {
		setDeployCond(&st, newDeployCond(appsv1.DeploymentAvailable, corev1.ConditionFalse, ReasonMinimumUnavailable, "Deployment does not have minimum availability.", now))
	}
	return st
}

func (d *Deployment) writeStatus(ctx context.Context, dep *appsv1.Deployment, st appsv1.DeploymentStatus) error {
	if equality.Semantic.DeepEqual(dep.Status, st) {
		return nil
	}
	up := dep.DeepCopy()
	up.Status = st
	got, err := storeapi.UpdateStatus(ctx, d.cfg.Store, up)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("deployment %s/%s: update status: %w", dep.Namespace, dep.Name, err)
	}
	*dep = *got
	return nil
}

func (d *Deployment) syncStatusOnly(ctx context.Context, dep *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	var newRS *appsv1.ReplicaSet
	sorted := append([]*appsv1.ReplicaSet(nil), rsList...)
	sortRSsOldestFirst(sorted)
	for _, rs := range sorted {
		if equalIgnoreHash(&rs.Spec.Template, &dep.Spec.Template) {
			newRS = rs
			break
		}
	}
	return d.writeStatus(ctx, dep, d.calculateStatus(dep, rsList, newRS))
}

func (d *Deployment) rolloutRolling(ctx context.Context, dep *appsv1.Deployment, rsList []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) (controller.Result, error) {
	var err error
	if newRS == nil {
		if newRS, oldRSs, err = d.getAllRSsAndSyncRevision(ctx, dep, rsList, true); err != nil {
			return controller.Result{}, err
		}
	}
	all := append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS)
	// Scale up the new ReplicaSet.
	if newRS != nil {
		replicas := int32Val(dep.Spec.Replicas, 1)
		cur := int32Val(newRS.Spec.Replicas, 0)
		var scaled bool
		switch {
		case cur > replicas:
			scaled, _, err = d.scaleRS(ctx, dep, newRS, replicas)
		case cur < replicas:
			scaled, _, err = d.scaleRS(ctx, dep, newRS, newRSNewReplicas(dep, all, newRS))
		}
		if err != nil {
			return controller.Result{}, err
		}
		if scaled {
			return d.syncRolloutStatus(ctx, dep)
		}
	}
	scaledDown, err := d.reconcileOld(ctx, dep, all, activeRSs(oldRSs), newRS)
	if err != nil {
		return controller.Result{}, err
	}
	if scaledDown {
		return d.syncRolloutStatus(ctx, dep)
	}
	st := d.calculateStatus(dep, all, newRS)
	if deploymentComplete(dep, &st) {
		if err := d.cleanup(ctx, dep, oldRSs); err != nil {
			return controller.Result{}, err
		}
	}
	return d.syncRolloutStatus(ctx, dep)
}

// reconcileOld scales old ReplicaSets down as far as maxUnavailable allows:
// first their unhealthy replicas (which is what makes rollover immediate),
// then available ones, oldest first.
func (d *Deployment) reconcileOld(ctx context.Context, dep *appsv1.Deployment, all, oldActive []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) (bool, error) {
	if specReplicas(oldActive...) == 0 {
		return false, nil
	}
	replicas := int32Val(dep.Spec.Replicas, 1)
	minAvailable := replicas - maxUnavailable(dep)
	var newUnavailable int32
	if newRS != nil {
		newUnavailable = int32Val(newRS.Spec.Replicas, 0) - newRS.Status.AvailableReplicas
	}
	maxScaledDown := specReplicas(all...) - minAvailable - newUnavailable
	if maxScaledDown <= 0 {
		return false, nil
	}
	olds := append([]*appsv1.ReplicaSet(nil), oldActive...)
	sortRSsOldestFirst(olds)
	var cleaned int32
	for i, rs := range olds {
		if cleaned >= maxScaledDown {
			break
		}
		cur := int32Val(rs.Spec.Replicas, 0)
		if cur == 0 || cur == rs.Status.AvailableReplicas {
			continue
		}
		n := min(maxScaledDown-cleaned, cur-rs.Status.AvailableReplicas)
		if n <= 0 {
			continue
		}
		_, got, err := d.scaleRS(ctx, dep, rs, cur-n)
		if err != nil {
			return false, err
		}
		olds[i] = got
		cleaned += n
	}
	// Scale down available old replicas while enough stay available.
	var avail int32
	for _, rs := range olds {
		avail += rs.Status.AvailableReplicas
	}
	if newRS != nil {
		avail += newRS.Status.AvailableReplicas
	}
	var scaled int32
	if avail > minAvailable {
		total := avail - minAvailable
		for _, rs := range olds {
			if scaled >= total {
				break
			}
			cur := int32Val(rs.Spec.Replicas, 0)
			if cur == 0 {
				continue
			}
			n := min(cur, total-scaled)
			if _, _, err := d.scaleRS(ctx, dep, rs, cur-n); err != nil {
				return false, err
			}
			scaled += n
		}
	}
	return cleaned+scaled > 0, nil
}

func (d *Deployment) rolloutRecreate(ctx context.Context, dep *appsv1.Deployment, rsList []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) (controller.Result, error) {
	var err error
	scaled := false
	for _, rs := range activeRSs(oldRSs) {
		s, _, err := d.scaleRS(ctx, dep, rs, 0)
		if err != nil {
			return controller.Result{}, err
		}
		scaled = scaled || s
	}
	if scaled {
		return d.syncRolloutStatus(ctx, dep)
	}
	if d.oldPodsRunning(oldRSs) {
		return d.syncRolloutStatus(ctx, dep)
	}
	if newRS == nil {
		if newRS, oldRSs, err = d.getAllRSsAndSyncRevision(ctx, dep, rsList, true); err != nil {
			return controller.Result{}, err
		}
	}
	if newRS != nil {
		if _, _, err := d.scaleRS(ctx, dep, newRS, int32Val(dep.Spec.Replicas, 1)); err != nil {
			return controller.Result{}, err
		}
	}
	st := d.calculateStatus(dep, append(oldRSs, newRS), newRS)
	if deploymentComplete(dep, &st) {
		if err := d.cleanup(ctx, dep, oldRSs); err != nil {
			return controller.Result{}, err
		}
	}
	return d.syncRolloutStatus(ctx, dep)
}

func (d *Deployment) oldPodsRunning(oldRSs []*appsv1.ReplicaSet) bool {
	for _, rs := range oldRSs {
		if rs.Status.Replicas > 0 {
			return true
		}
		for _, p := range d.pods.ByIndex(controller.IndexControllerUID, string(rs.UID)) {
			if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
				return true
			}
		}
	}
	return false
}

// syncRolloutStatus recomputes status from the current ReplicaSets and sets
// the Progressing and ReplicaFailure conditions; it returns when to look
// again for a progress deadline.
func (d *Deployment) syncRolloutStatus(ctx context.Context, dep *appsv1.Deployment) (controller.Result, error) {
	all := d.currentRSs(dep)
	var newRS *appsv1.ReplicaSet
	sorted := append([]*appsv1.ReplicaSet(nil), all...)
	sortRSsOldestFirst(sorted)
	for _, rs := range sorted {
		if equalIgnoreHash(&rs.Spec.Template, &dep.Spec.Template) {
			newRS = rs
			break
		}
	}
	st := d.calculateStatus(dep, all, newRS)
	now := d.cfg.Clock.Now()
	if !hasProgressDeadline(dep) {
		removeDeployCond(&st, appsv1.DeploymentProgressing)
	}
	cur := getDeployCond(&st, appsv1.DeploymentProgressing)
	complete := st.Replicas == st.UpdatedReplicas && cur != nil && cur.Reason == ReasonNewRSAvailable
	if hasProgressDeadline(dep) && !complete && newRS != nil {
		switch {
		case deploymentComplete(dep, &st):
			c := newDeployCond(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonNewRSAvailable,
				fmt.Sprintf("ReplicaSet %q has successfully progressed.", newRS.Name), now)
			if cur != nil && cur.Status == corev1.ConditionTrue {
				c.LastTransitionTime = cur.LastTransitionTime
			}
			removeDeployCond(&st, appsv1.DeploymentProgressing)
			st.Conditions = append(st.Conditions, c)
		case deploymentProgressing(dep, &st):
			c := newDeployCond(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonRSUpdated,
				fmt.Sprintf("ReplicaSet %q is progressing.", newRS.Name), now)
			if cur != nil && cur.Status == corev1.ConditionTrue {
				c.LastTransitionTime = cur.LastTransitionTime
			}
			removeDeployCond(&st, appsv1.DeploymentProgressing)
			st.Conditions = append(st.Conditions, c)
		case deploymentTimedOut(dep, &st, now):
			setDeployCond(&st, newDeployCond(appsv1.DeploymentProgressing, corev1.ConditionFalse, ReasonTimedOut,
				fmt.Sprintf("ReplicaSet %q has timed out progressing.", newRS.Name), now))
		}
	}
	// ReplicaFailure mirrors the first failing ReplicaSet.
	var failure *appsv1.ReplicaSetCondition
	for _, rs := range all {
		for i := range rs.Status.Conditions {
			if c := rs.Status.Conditions[i]; c.Type == appsv1.ReplicaSetReplicaFailure && c.Status == corev1.ConditionTrue && failure == nil {
				failure = &rs.Status.Conditions[i]
			}
		}
	}
	if failure != nil {
		setDeployCond(&st, appsv1.DeploymentCondition{Type: appsv1.DeploymentReplicaFailure, Status: failure.Status, Reason: failure.Reason,
			Message: failure.Message, LastUpdateTime: failure.LastTransitionTime, LastTransitionTime: failure.LastTransitionTime})
	} else {
		removeDeployCond(&st, appsv1.DeploymentReplicaFailure)
	}
	if err := d.writeStatus(ctx, dep, st); err != nil {
		return controller.Result{}, err
	}
	// Look again when the progress deadline would pass.
	if hasProgressDeadline(dep) && !deploymentComplete(dep, &st) && !deploymentTimedOut(dep, &st, now) {
		if c := getDeployCond(&st, appsv1.DeploymentProgressing); c != nil {
			after := c.LastUpdateTime.Add(time.Duration(*dep.Spec.ProgressDeadlineSeconds) * time.Second).Sub(now)
			return controller.Result{RequeueAfter: max(after, 0) + time.Second}, nil
		}
	}
	return controller.Result{}, nil
}
