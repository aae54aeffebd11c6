package controllers

import (
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"math"
	"sort"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
)

// Annotations the Deployment controller reads and writes, with upstream's names.
const (
	// AnnotationRevision holds the revision of a ReplicaSet (and the
	// Deployment's current revision), as `kubectl rollout history` reads it.
	AnnotationRevision = "deployment.kubernetes.io/revision"
	// AnnotationRevisionHistory lists the earlier revisions a ReplicaSet had
	// before a rollback made it current again.
	AnnotationRevisionHistory = "deployment.kubernetes.io/revision-history"
	// AnnotationDesiredReplicas is the Deployment's replicas when the
	// ReplicaSet was last scaled.
	AnnotationDesiredReplicas = "deployment.kubernetes.io/desired-replicas"
	// AnnotationMaxReplicas is replicas + maxSurge when the ReplicaSet was
	// last scaled, used for proportional scaling.
	AnnotationMaxReplicas = "deployment.kubernetes.io/max-replicas"
	// AnnotationChangeCause is copied from the Deployment to its
	// ReplicaSets so `kubectl rollout history` shows it.
	AnnotationChangeCause = "kubernetes.io/change-cause"
)

// Condition reasons of a Deployment, as kubectl reads them.
const (
	ReasonNewRSAvailable      = "NewReplicaSetAvailable"
	ReasonRSUpdated           = "ReplicaSetUpdated"
	ReasonNewRSCreated        = "NewReplicaSetCreated"
	ReasonFoundNewRS          = "FoundNewReplicaSet"
	ReasonTimedOut            = "ProgressDeadlineExceeded"
	ReasonPaused              = "DeploymentPaused"
	ReasonResumed             = "DeploymentResumed"
	ReasonMinimumAvailable    = "MinimumReplicasAvailable"
	ReasonMinimumUnavailable  = "MinimumReplicasUnavailable"
	ReasonFailedRSCreate      = "ReplicaSetCreateError"
	ReasonReplicaFailure      = "ReplicaFailure"
	annotationLastApplied     = "kubectl.kubernetes.io/last-applied-configuration"
	annotationDeprecatedRollb = "deprecated.deployment.rollback.to"
)

var skipCopyAnnotations = map[string]bool{
	annotationLastApplied: true, AnnotationRevision: true, AnnotationRevisionHistory: true,
	AnnotationDesiredReplicas: true, AnnotationMaxReplicas: true, annotationDeprecatedRollb: true,
}

// templateHash returns the pod-template-hash of a template and collision count.
func templateHash(t *corev1.PodTemplateSpec, collisionCount *int32) string {
	c := t.DeepCopy()
	delete(c.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	b, _ := json.Marshal(c)
	h := fnv.New32a()
	h.Write(b)
	if collisionCount != nil {
		var buf [4]byte
		binary.LittleEndian.PutUint32(buf[:], uint32(*collisionCount))
		h.Write(buf[:])
	}
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

// equalIgnoreHash compares two templates ignoring the pod-template-hash label.
func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	if len(a.Labels) == 0 {
		a.Labels = nil
	}
	if len(b.Labels) == 0 {
		b.Labels = nil
	}
	return equality.Semantic.DeepEqual(a, b)
}

func revisionOf(obj metav1.Object) int64 {
	v, err := strconv.ParseInt(obj.GetAnnotations()[AnnotationRevision], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

func intAnnotation(obj metav1.Object, key string) (int32, bool) {
	v, ok := obj.GetAnnotations()[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}

// fenceposts resolves maxSurge and maxUnavailable against replicas:
// surge rounds up, unavailable down, and both zero means unavailable 1.
func fenceposts(d *appsv1.Deployment) (surge, unavailable int32) {
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || d.Spec.Strategy.RollingUpdate == nil {
		return 0, 0
	}
	desired := int(int32Val(d.Spec.Replicas, 1))
	ru := d.Spec.Strategy.RollingUpdate
	s, u := intstr.FromString("25%"), intstr.FromString("25%")
	if ru.MaxSurge != nil {
		s = *ru.MaxSurge
	}
	if ru.MaxUnavailable != nil {
		u = *ru.MaxUnavailable
	}
	sv, err := intstr.GetScaledValueFromIntOrPercent(&s, desired, true)
	if err != nil {
		sv = 0
	}
	uv, err := intstr.GetScaledValueFromIntOrPercent(&u, desired, false)
	if err != nil {
		uv = 0
	}
	if sv == 0 && uv == 0 {
		uv = 1
	}
	return int32(sv), int32(uv)
}

func maxSurge(d *appsv1.Deployment) int32 {
	s, _ := fenceposts(d)
	return s
}

func maxUnavailable(d *appsv1.Deployment) int32 {
	replicas := int32Val(d.Spec.Replicas, 1)
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || replicas == 0 {
		return 0
	}
	_, u := fenceposts(d)
	return min(u, replicas)
}

func specReplicas(rss ...*appsv1.ReplicaSet) int32 {
	var n int32
	for _, rs := range rss {
		if rs != nil {
			n += int32Val(rs.Spec.Replicas, 0)
		}
	}
	return n
}

func activeRSs(rss []*appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range rss {
		if rs != nil && int32Val(rs.Spec.Replicas, 0) > 0 {
			out = append(out, rs)
		}
	}
	return out
}

func sortRSsOldestFirst(rss []*appsv1.ReplicaSet) {
	sort.SliceStable(rss, func(i, j int) bool {
		a, b := rss[i], rss[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		if ra, rb := revisionOf(a), revisionOf(b); ra != rb {
			return ra < rb
		}
		return a.Name < b.Name
	})
}

// newRSNewReplicas is how many replicas the new ReplicaSet may have now.
func newRSNewReplicas(d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) int32 {
	replicas := int32Val(d.Spec.Replicas, 1)
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		return replicas
	}
	cur := specReplicas(all...)
	maxTotal := replicas + maxSurge(d)
	newCur := specReplicas(newRS)
	if cur >= maxTotal {
		return newCur
	}
	return newCur + min(maxTotal-cur, replicas-newCur)
}

// rsFraction is how much a ReplicaSet should grow or shrink to keep its share
// of the Deployment when the Deployment is scaled during a rollout.
func rsFraction(rs *appsv1.ReplicaSet, d *appsv1.Deployment) int32 {
	replicas := int32Val(d.Spec.Replicas, 1)
	if replicas == 0 {
		return -int32Val(rs.Spec.Replicas, 0)
	}
	deploymentReplicas := replicas + maxSurge(d)
	annotated, ok := intAnnotation(rs, AnnotationMaxReplicas)
	if !ok || annotated == 0 {
		annotated = d.Status.Replicas
	}
	if annotated == 0 {
		return 0
	}
	newSize := float64(int32Val(rs.Spec.Replicas, 0)*deploymentReplicas) / float64(annotated)
	return int32(math.Round(newSize)) - int32Val(rs.Spec.Replicas, 0)
}

func rsProportion(rs *appsv1.ReplicaSet, d *appsv1.Deployment, toAdd, added int32) int32 {
	if rs == nil || int32Val(rs.Spec.Replicas, 0) == 0 || toAdd == 0 || toAdd == added {
		return 0
	}
	f := rsFraction(rs, d)
	allowed := toAdd - added
	if allowed > 0 {
		return min(f, allowed)
	}
	return max(f, allowed)
}

// deploymentComplete reports whether every replica is updated and available.
func deploymentComplete(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	r := int32Val(d.Spec.Replicas, 1)
	return st.UpdatedReplicas == r && st.Replicas == r && st.AvailableReplicas == r && st.ObservedGeneration >= d.Generation
}

func deploymentProgressing(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	old := d.Status
	oldOld := old.Replicas - old.UpdatedReplicas
	newOld := st.Replicas - st.UpdatedReplicas
	return st.UpdatedReplicas > old.UpdatedReplicas || newOld < oldOld || st.ReadyReplicas > old.ReadyReplicas || st.AvailableReplicas > old.AvailableReplicas
}

func getDeployCond(st *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

func removeDeployCond(st *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) {
	var out []appsv1.DeploymentCondition
	for _, c := range st.Conditions {
		if c.Type != t {
			out = append(out, c)
		}
	}
	st.Conditions = out
}

// setDeployCond sets c unless a condition of its type with the same status
// and reason is there already (keeping its times, as upstream).
func setDeployCond(st *appsv1.DeploymentStatus, c appsv1.DeploymentCondition) {
	if cur := getDeployCond(st, c.Type); cur != nil {
		if cur.Status == c.Status && cur.Reason == c.Reason {
			return
		}
		if cur.Status == c.Status {
			c.LastTransitionTime = cur.LastTransitionTime
		}
	}
	removeDeployCond(st, c.Type)
	st.Conditions = append(st.Conditions, c)
}

func newDeployCond(t appsv1.DeploymentConditionType, s corev1.ConditionStatus, reason, msg string, now time.Time) appsv1.DeploymentCondition {
	n := metav1.NewTime(now)
	return appsv1.DeploymentCondition{Type: t, Status: s, Reason: reason, Message: msg, LastUpdateTime: n, LastTransitionTime: n}
}

func deploymentTimedOut(d *appsv1.Deployment, st *appsv1.DeploymentStatus, now time.Time) bool {
	if d.Spec.ProgressDeadlineSeconds == nil || *d.Spec.ProgressDeadlineSeconds == math.MaxInt32 {
		return false
	}
	c := getDeployCond(st, appsv1.DeploymentProgressing)
	if c == nil || c.Reason == ReasonNewRSAvailable {
		return false
	}
	if c.Reason == ReasonTimedOut {
		return true
	}
	deadline := c.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second)
	return now.After(deadline)
}

func hasProgressDeadline(d *appsv1.Deployment) bool {
	return d.Spec.ProgressDeadlineSeconds != nil && *d.Spec.ProgressDeadlineSeconds != math.MaxInt32
}
