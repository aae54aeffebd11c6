package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// Config is what every reconciler of this package is built from.
type Config struct {
	// Store is the state interface all reads and writes go through.
	Store storeapi.Interface
	// Informers shares informer caches between controllers; nil makes a
	// private factory (which the controller then starts itself).
	Informers *controller.Factory
	// Clock drives every timing decision; nil means the real clock.
	Clock clock.Clock
	// Log receives the controllers' logs; nil means slog.Default().
	Log *slog.Logger
	// Workers is the number of concurrent reconciles per controller (default 4).
	Workers int
	// ServiceCIDRs are the Service clusterIP ranges (one per family) the
	// store allocates from; [ServiceRepair] reports Services outside them.
	// Empty turns that check off.
	ServiceCIDRs []netip.Prefix
	// NodePortRange is the store's NodePort range; [ServiceRepair] reports
	// Services outside it. Zero turns that check off.
	NodePortRange storeapi.PortRange
	// ServiceRepairInterval is how often [ServiceRepair] checks (default
	// [DefaultServiceRepairInterval]).
	ServiceRepairInterval time.Duration
	// Metrics feeds the HorizontalPodAutoscaler; nil until the node agent reports usage.
	Metrics MetricsSource
	// LocalPathDir is where the local-path provisioner makes volumes
	// (default /var/lib/tugboat/local-path).
	LocalPathDir string
	// RootCAPEM is the cluster CA bundle (PEM) the root CA publisher puts
	// in every namespace's kube-root-ca.crt ConfigMap; empty turns it off.
	RootCAPEM []byte
	// Location is the time zone of CronJobs without spec.timeZone; nil
	// means time.Local (kube-controller-manager's zone).
	Location *time.Location
}

func (c Config) withDefaults() Config {
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Informers == nil {
		c.Informers = controller.NewFactory(c.Store, c.Log)
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Location == nil {
		c.Location = time.Local
	}
	return c
}

func ptr[T any](v T) *T { return &v }

// runWithRecorder runs a reconciler's controller and its event recorder
// until ctx ends or one of them fails.
func runWithRecorder(ctx context.Context, rec *controller.Recorder, c *controller.Controller) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return rec.Run(gctx) })
	g.Go(func() error { return c.Run(gctx) })
	return g.Wait()
}

// enqueueHandler queues an object of a reconciler's own kind when it is
// added or updated; onDelete (nil: nothing) handles its deletion.
func enqueueHandler(c *controller.Controller, onDelete func(runtime.Object)) controller.Handler {
	return controller.Handler{OnAdd: c.EnqueueObject, OnUpdate: func(_, o runtime.Object) { c.EnqueueObject(o) }, OnDelete: onDelete}
}

// deletePodByUID deletes p, only this incarnation of it (a UID precondition),
// for the controller key whose expectations (exp, may be nil) await that
// deletion. A failed delete will never be observed, so it is marked
// observed at once; a pod already gone or replaced is no error. deleted
// reports whether this call deleted it.
func deletePodByUID(ctx context.Context, s storeapi.Interface, exp *controller.Expectations, key string, p *corev1.Pod) (deleted bool, err error) {
	err = storeapi.Delete[*corev1.Pod](ctx, s, p.Namespace, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}})
	if err == nil {
		return true, nil
	}
	if exp != nil {
		exp.DeletionObserved(key, string(p.UID))
	}
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return false, nil
	}
	return false, err
}

func int32Val(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

// isPodActive reports whether a pod counts towards its controller's replicas.
func isPodActive(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && p.DeletionTimestamp == nil
}

func podReadyCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// isPodReady reports the pod's Ready condition.
func isPodReady(p *corev1.Pod) bool {
	c := podReadyCondition(p)
	return c != nil && c.Status == corev1.ConditionTrue
}

// isPodAvailable reports whether a pod has been ready for minReadySeconds at now.
func isPodAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	c := podReadyCondition(p)
	if c == nil || c.Status != corev1.ConditionTrue {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	d := time.Duration(minReadySeconds) * time.Second
	return !c.LastTransitionTime.IsZero() && !c.LastTransitionTime.Add(d).After(now)
}

// availableIn returns how long until a ready pod becomes available (0 if
// it is or cannot become so).
func availableIn(p *corev1.Pod, minReadySeconds int32, now time.Time) time.Duration {
	c := podReadyCondition(p)
	if minReadySeconds == 0 || c == nil || c.Status != corev1.ConditionTrue {
		return 0
	}
	d := c.LastTransitionTime.Add(time.Duration(minReadySeconds) * time.Second).Sub(now)
	return max(d, 0)
}

// controllerRefOf returns obj's controller owner reference, or nil.
func controllerRefOf(obj metav1.Object) *metav1.OwnerReference {
	return metav1.GetControllerOfNoCopy(obj)
}

// newControllerRef returns the owner reference a controller puts on what it creates.
func newControllerRef(owner metav1.Object, gvk schema.GroupVersionKind) metav1.OwnerReference {
	return *metav1.NewControllerRef(owner, gvk)
}

// claim adopts the orphans among candidates that match sel and releases the
// owned ones that no longer match, patching their ownerReferences, and
// returns the ones owner now controls. Objects owned by another controller
// are left alone. A deleting owner adopts nothing.
func claim[T runtime.Object](ctx context.Context, s storeapi.Interface, owner metav1.Object, gvk schema.GroupVersionKind,
	sel labels.Selector, candidates []T) ([]T, error) {
	var out []T
	k, err := storeapi.ResourceOf[T](s)
	if err != nil {
		return nil, err
	}
	for _, c := range candidates {
		acc, _ := meta.Accessor(c)
		ref := controllerRefOf(acc)
		matches := sel.Matches(labels.Set(acc.GetLabels()))
		switch {
		case ref != nil && ref.UID == owner.GetUID():
			if matches || acc.GetDeletionTimestamp() != nil {
				out = append(out, c)
				continue
			}
			// Release: drop our reference.
			patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[{"$patch":"delete","uid":%q}],"uid":%q}}`, owner.GetUID(), acc.GetUID())
			if _, err := s.Patch(ctx, k.GroupResource(), acc.GetNamespace(), acc.GetName(), types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
				return nil, fmt.Errorf("release %s: %w", acc.GetName(), err)
			}
		case ref == nil && matches && owner.GetDeletionTimestamp() == nil && acc.GetDeletionTimestamp() == nil:
			// Adopt.
			r := newControllerRef(owner, gvk)
			rj, _ := json.Marshal(r)
			patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[%s],"uid":%q}}`, rj, acc.GetUID())
			got, err := s.Patch(ctx, k.GroupResource(), acc.GetNamespace(), acc.GetName(), types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return nil, fmt.Errorf("adopt %s: %w", acc.GetName(), err)
			}
			out = append(out, got.(T))
		}
	}
	return out, nil
}

// ownerKeyOf returns the key of obj's controller owner when it has kind.
func ownerKeyOf(obj runtime.Object, kind string) (string, bool) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return "", false
	}
	ref := controllerRefOf(acc)
	if ref == nil || ref.Kind != kind {
		return "", false
	}
	return controller.Key(acc.GetNamespace(), ref.Name), true
}

// podOf converts an informer object to a pod (deleted objects arrive as
// their last state).
func podOf(o runtime.Object) *corev1.Pod { p, _ := o.(*corev1.Pod); return p }

// sortPodsForDeletion orders pods so the ones to delete first come first:
// unassigned before assigned, Pending before Unknown before Running, not
// ready before ready, ready for less time before longer, more restarts
// before fewer, newer before older (as upstream ranks them).
func sortPodsForDeletion(pods []*corev1.Pod) {
	phaseRank := map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}
	restarts := func(p *corev1.Pod) int32 {
		var n int32
		for _, c := range p.Status.ContainerStatuses {
			n = max(n, c.RestartCount)
		}
		return n
	}
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
			return a.Spec.NodeName == ""
		}
		if phaseRank[a.Status.Phase] != phaseRank[b.Status.Phase] {
			return phaseRank[a.Status.Phase] < phaseRank[b.Status.Phase]
		}
		ra, rb := isPodReady(a), isPodReady(b)
		if ra != rb {
			return !ra
		}
		if ra && rb {
			ta, tb := podReadyCondition(a).LastTransitionTime, podReadyCondition(b).LastTransitionTime
			if !ta.Equal(&tb) {
				return tb.Before(&ta)
			}
		}
		if restarts(a) != restarts(b) {
			return restarts(a) > restarts(b)
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return b.CreationTimestamp.Before(&a.CreationTimestamp)
		}
		return a.Name > b.Name
	})
}

var (
	gvkReplicaSet  = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
	gvkDeployment  = appsv1.SchemeGroupVersion.WithKind("Deployment")
	gvkStatefulSet = appsv1.SchemeGroupVersion.WithKind("StatefulSet")
	gvkDaemonSet   = appsv1.SchemeGroupVersion.WithKind("DaemonSet")
)

// podFromTemplate builds a pod for a controller from its template.
func podFromTemplate(t *corev1.PodTemplateSpec, namespace, generateName string, ref metav1.OwnerReference) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, GenerateName: generateName,
			Labels: map[string]string{}, Annotations: map[string]string{},
			OwnerReferences: []metav1.OwnerReference{ref},
			Finalizers:      append([]string(nil), t.Finalizers...),
		},
		Spec: *t.Spec.DeepCopy(),
	}
	for k, v := range t.Labels {
		p.Labels[k] = v
	}
	for k, v := range t.Annotations {
		p.Annotations[k] = v
	}
	return p
}

// writeRetry writes mutate(copy of cur) with Update (or UpdateStatus when
// status is set). On a conflict it re-reads the object and, when its
// generation (its spec) is unchanged, so that only status or metadata
// moved, applies mutate again and retries. Controllers that write
// different parts of one object (the Deployment controller the spec of a
// ReplicaSet, the ReplicaSet controller its status) thus do not back each
// other off.
func writeRetry[T runtime.Object](ctx context.Context, s storeapi.Interface, cur T, status bool, mutate func(T)) (T, error) {
	for attempt := 0; ; attempt++ {
		up := cur.DeepCopyObject().(T)
		mutate(up)
		var got T
		var err error
		if status {
			got, err = storeapi.UpdateStatus(ctx, s, up)
		} else {
			got, err = storeapi.Update(ctx, s, up)
		}
		if err == nil || !apierrors.IsConflict(err) || attempt >= 4 {
			return got, err
		}
		oldAcc, _ := meta.Accessor(cur)
		fresh, gerr := storeapi.Get[T](ctx, s, oldAcc.GetNamespace(), oldAcc.GetName())
		if gerr != nil {
			return got, err
		}
		newAcc, _ := meta.Accessor(fresh)
		if newAcc.GetGeneration() != oldAcc.GetGeneration() || newAcc.GetUID() != oldAcc.GetUID() {
			return got, err
		}
		cur = fresh
	}
}
