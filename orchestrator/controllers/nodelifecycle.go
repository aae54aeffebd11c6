package controllers

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// Node lifecycle defaults, as upstream.
const (
	// DefaultNodeMonitorGracePeriod is how long a node may be silent before
	// it is marked Ready=Unknown.
	DefaultNodeMonitorGracePeriod = 40 * time.Second
	// DefaultNodeMonitorPeriod is how often upstream checks nodes; here,
	// how long a node is unhealthy before its NoExecute taint may come.
	DefaultNodeMonitorPeriod = 5 * time.Second
	// DefaultTolerationSeconds is how long a pod without its own toleration
	// for the not-ready/unreachable taints stays on such a node (the
	// DefaultTolerationSeconds admission default).
	DefaultTolerationSeconds = 300
	// DefaultNodeEvictionRate is how many nodes per second per zone get
	// the NoExecute taint of an unhealthy node (--node-eviction-rate).
	DefaultNodeEvictionRate = 0.1
	// DefaultSecondaryNodeEvictionRate applies instead in a partially
	// disrupted zone of a large cluster (--secondary-node-eviction-rate).
	DefaultSecondaryNodeEvictionRate = 0.01
	// DefaultLargeClusterSizeThreshold is the zone size above which a
	// partially disrupted zone uses the secondary rate; at or below it,
	// evictions stop (--large-cluster-size-threshold).
	DefaultLargeClusterSizeThreshold = 50
	// DefaultUnhealthyZoneThreshold is the share of not-ready nodes (with
	// more than 2 of them) that makes a zone partially disrupted
	// (--unhealthy-zone-threshold).
	DefaultUnhealthyZoneThreshold = 0.55
)

// Zone states, as upstream computes them from the nodes' Ready conditions.
const (
	zoneNormal            = "Normal"
	zonePartialDisruption = "PartialDisruption"
	zoneFullDisruption    = "FullDisruption"
)

// NodeLifecycle watches node heartbeats (Leases in kube-node-lease and
// the Ready condition): a node silent for the grace period gets Ready=Unknown
// and the node.kubernetes.io/unreachable NoSchedule and NoExecute taints;
// a NotReady node gets node.kubernetes.io/not-ready. It also evicts (deletes)
// pods from nodes with NoExecute taints they do not tolerate: at once, or
// after the toleration's tolerationSeconds; for the unreachable and
// not-ready taints a pod without its own toleration gets TolerationSeconds.
//
// As upstream, the NoExecute taints that start evictions are rate limited
// per zone (topology.kubernetes.io/region and zone labels): EvictionRate
// nodes per second normally; in a partially disrupted zone (more than 2
// and at least UnhealthyZoneThreshold of its nodes not ready) the
// SecondaryEvictionRate if the zone has more than LargeClusterSizeThreshold
// nodes, else none; when every zone is fully disrupted (no ready node at
// all, likely the control plane's own network) no node gets them and
// those present are removed.
type NodeLifecycle struct {
	cfg    Config
	nodes  controller.Lister[*corev1.Node]
	leases controller.Lister[*coordinationv1.Lease]
	pods   controller.Lister[*corev1.Pod]
	rec    *controller.Recorder
	// GracePeriod is the node monitor grace period (default 40 s).
	GracePeriod time.Duration
	// TolerationSeconds is the implicit toleration of the not-ready and
	// unreachable taints (default 300).
	TolerationSeconds int64
	// EvictionRate, SecondaryEvictionRate, LargeClusterSizeThreshold and
	// UnhealthyZoneThreshold tune rate-limited eviction (defaults 0.1/s,
	// 0.01/s, 50 and 0.55, as kube-controller-manager). Set them before Run.
	EvictionRate, SecondaryEvictionRate float64
	LargeClusterSizeThreshold           int
	UnhealthyZoneThreshold              float64
	// MonitorPeriod is how long a node is Ready=Unknown or False before
	// its NoExecute taint may come (default 5 s, --node-monitor-period).
	MonitorPeriod time.Duration
	// Controller runs the reconciler (keys are node names).
	Controller *controller.Controller

	limMu    sync.Mutex
	limiters map[string]*zoneLimiter
}

// zoneLimiter is a token bucket (burst 1) on the controller's clock.
type zoneLimiter struct {
	tokens float64
	last   time.Time
}

// take takes a token at rate qps, or says how long until one is there.
func (l *zoneLimiter) take(qps float64, now time.Time) (bool, time.Duration) {
	if !l.last.IsZero() {
		l.tokens = min(1, l.tokens+now.Sub(l.last).Seconds()*qps)
	}
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		return true, 0
	}
	return false, time.Duration((1 - l.tokens) / qps * float64(time.Second))
}

// nodeZone is the key of a node's zone (region and zone labels).
func nodeZone(n *corev1.Node) string {
	return n.Labels[corev1.LabelTopologyRegion] + ":\x00:" + n.Labels[corev1.LabelTopologyZone]
}

// zoneStates computes every zone's state and size from the nodes' Ready
// conditions, as upstream's ComputeZoneState.
func (r *NodeLifecycle) zoneStates() (map[string]string, map[string]int) {
	ready, notReady := map[string]int{}, map[string]int{}
	for _, n := range r.nodes.List("", nil) {
		z := nodeZone(n)
		if c := nodeReady(n); c != nil && c.Status == corev1.ConditionTrue {
			ready[z]++
		} else {
			notReady[z]++
		}
	}
	states, sizes := map[string]string{}, map[string]int{}
	for _, m := range []map[string]int{ready, notReady} {
		for z := range m {
			total := ready[z] + notReady[z]
			sizes[z] = total
			switch {
			case ready[z] == 0 && notReady[z] > 0:
				states[z] = zoneFullDisruption
			case notReady[z] > 2 && float64(notReady[z])/float64(total) >= r.UnhealthyZoneThreshold:
				states[z] = zonePartialDisruption
			default:
				states[z] = zoneNormal
			}
		}
	}
	return states, sizes
}

// admitNoExecute decides whether an unhealthy node may get its NoExecute
// taint now. It returns (false, 0) when evictions are off for its zone
// (or everywhere) and (false, d) when the zone's rate allows one in d.
func (r *NodeLifecycle) admitNoExecute(node *corev1.Node, now time.Time) (bool, time.Duration, bool) {
	states, sizes := r.zoneStates()
	allFull := len(states) > 0
	for _, st := range states {
		allFull = allFull && st == zoneFullDisruption
	}
	if allFull {
		return false, 0, true
	}
	z := nodeZone(node)
	qps := r.EvictionRate
	if states[z] == zonePartialDisruption {
		qps = 0
		if sizes[z] > r.LargeClusterSizeThreshold {
			qps = r.SecondaryEvictionRate
		}
	}
	if qps <= 0 {
		return false, 0, false
	}
	r.limMu.Lock()
	defer r.limMu.Unlock()
	if r.limiters == nil {
		r.limiters = map[string]*zoneLimiter{}
	}
	l := r.limiters[z]
	if l == nil {
		l = &zoneLimiter{tokens: 1}
		r.limiters[z] = l
	}
	ok, wait := l.take(qps, now)
	return ok, wait, false
}

// NewNodeLifecycle builds the node lifecycle reconciler.
func NewNodeLifecycle(cfg Config) *NodeLifecycle {
	cfg = cfg.withDefaults()
	r := &NodeLifecycle{cfg: cfg, nodes: controller.ListerFor[*corev1.Node](cfg.Informers),
		leases: controller.ListerFor[*coordinationv1.Lease](cfg.Informers), pods: controller.ListerFor[*corev1.Pod](cfg.Informers),
		rec:         controller.NewRecorder(cfg.Store, "node-controller", cfg.Clock, cfg.Log),
		GracePeriod: DefaultNodeMonitorGracePeriod, TolerationSeconds: DefaultTolerationSeconds,
		EvictionRate: DefaultNodeEvictionRate, SecondaryEvictionRate: DefaultSecondaryNodeEvictionRate,
		LargeClusterSizeThreshold: DefaultLargeClusterSizeThreshold, UnhealthyZoneThreshold: DefaultUnhealthyZoneThreshold,
		MonitorPeriod: DefaultNodeMonitorPeriod}
	c := controller.New("nodelifecycle", r, cfg.Workers, cfg.Clock, cfg.Log)
	r.Controller = c
	r.pods.Inf.AddIndex("node", func(o runtime.Object) []string { return []string{o.(*corev1.Pod).Spec.NodeName} })
	r.nodes.Inf.AddHandler(enqueueHandler(c, nil))
	r.leases.Inf.AddHandler(controller.Handler{
		OnAdd:    func(o runtime.Object) { r.enqueueLease(o) },
		OnUpdate: func(_, o runtime.Object) { r.enqueueLease(o) },
	})
	r.pods.Inf.AddHandler(controller.Handler{
		OnAdd: func(o runtime.Object) {
			if n := podOf(o).Spec.NodeName; n != "" {
				c.Enqueue(n)
			}
		},
		OnUpdate: func(_, o runtime.Object) {
			if n := podOf(o).Spec.NodeName; n != "" {
				c.Enqueue(n)
			}
		},
	})
	return r
}

func (r *NodeLifecycle) enqueueLease(o runtime.Object) {
	l := o.(*coordinationv1.Lease)
	if l.Namespace == corev1.NamespaceNodeLease {
		r.Controller.Enqueue(l.Name)
	}
}

// Run runs the reconciler and its recorder until ctx ends.
func (r *NodeLifecycle) Run(ctx context.Context) error {
	return runWithRecorder(ctx, r.rec, r.Controller)
}

func nodeReady(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func (r *NodeLifecycle) lastHeartbeat(n *corev1.Node) time.Time {
	var t time.Time
	if c := nodeReady(n); c != nil {
		t = c.LastHeartbeatTime.Time
	}
	if l, ok := r.leases.Get(corev1.NamespaceNodeLease, n.Name); ok && l.Spec.RenewTime != nil && l.Spec.RenewTime.After(t) {
		t = l.Spec.RenewTime.Time
	}
	if t.IsZero() {
		t = n.CreationTimestamp.Time
	}
	return t
}

// Reconcile checks one node's heartbeat, taints and NoExecute evictions.
func (r *NodeLifecycle) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	node, ok := r.nodes.Get("", key)
	if !ok {
		return controller.Result{}, nil
	}
	now := r.cfg.Clock.Now()
	silent := now.Sub(r.lastHeartbeat(node))
	var requeue time.Duration
	if silent > r.GracePeriod {
		// The cache may lag behind the heartbeats: confirm from the store
		// before declaring the node lost.
		if l, err := storeapi.Get[*coordinationv1.Lease](ctx, r.cfg.Store, corev1.NamespaceNodeLease, key); err == nil && l.Spec.RenewTime != nil {
			if fresh := now.Sub(l.Spec.RenewTime.Time); fresh <= r.GracePeriod {
				return controller.Result{RequeueAfter: r.GracePeriod - fresh + time.Second}, nil
			}
		}
	}
	if silent > r.GracePeriod {
		if c := nodeReady(node); c == nil || c.Status != corev1.ConditionUnknown {
			up := node.DeepCopy()
			nowT := metav1.NewTime(now)
			found := false
			for i := range up.Status.Conditions {
				c := &up.Status.Conditions[i]
				if c.Type == corev1.NodeReady {
					found = true
				}
				c.Status, c.Reason, c.Message, c.LastTransitionTime = corev1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status.", nowT
			}
			if !found {
				up.Status.Conditions = append(up.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown,
					Reason: "NodeStatusNeverUpdated", Message: "Kubelet never posted node status.", LastTransitionTime: nowT})
			}
			got, err := storeapi.UpdateStatus(ctx, r.cfg.Store, up)
			if err != nil {
				return controller.Result{}, fmt.Errorf("node %s: mark unknown: %w", key, err)
			}
			node = got
			r.rec.Eventf(node, corev1.EventTypeNormal, "NodeNotReady", "Node %s status is now: NodeNotReady", key)
		}
	} else {
		requeue = r.GracePeriod - silent + time.Second
	}
	// Taints follow the Ready condition.
	var want []corev1.Taint
	if c := nodeReady(node); c != nil {
		switch c.Status {
		case corev1.ConditionUnknown:
			want = []corev1.Taint{{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule}, {Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}}
		case corev1.ConditionFalse:
			want = []corev1.Taint{{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}, {Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}}
		}
	}
	// The NoExecute taint of an unhealthy node is rate limited per zone.
	for i := 0; i < len(want); i++ {
		w := want[i]
		if w.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		has := false
		for _, t := range node.Spec.Taints {
			has = has || (t.Key == w.Key && t.Effect == w.Effect)
		}
		ok, wait, allFull := has, time.Duration(0), false
		if c := nodeReady(node); !has && c != nil && c.LastTransitionTime.Add(r.MonitorPeriod).After(now) {
			// One monitor period after the node went bad, so that nodes
			// lost together are all marked before zone states are read
			// (upstream marks every node of a pass before tainting).
			ok, wait = false, c.LastTransitionTime.Add(r.MonitorPeriod).Sub(now)
		} else if !has {
			ok, wait, allFull = r.admitNoExecute(node, now)
		} else if _, _, allFull = r.admitNoExecuteCheck(); allFull {
			ok = false
		}
		if ok {
			continue
		}
		want = append(want[:i], want[i+1:]...)
		i--
		if wait <= 0 {
			wait = 10 * time.Second // look again as zone states change
		}
		if requeue == 0 || wait < requeue {
			requeue = wait
		}
		if allFull {
			r.cfg.Log.Info("node lifecycle: every zone is fully disrupted, not evicting", "node", key)
		}
	}
	if next, changed := syncConditionTaints(node.Spec.Taints, want, now); changed {
		up := node.DeepCopy()
		up.Spec.Taints = next
		got, err := storeapi.Update(ctx, r.cfg.Store, up)
		if err != nil {
			return controller.Result{}, fmt.Errorf("node %s: taints: %w", key, err)
		}
		node = got
	}
	d, err := r.evict(ctx, node, now)
	if err != nil {
		return controller.Result{}, err
	}
	if d > 0 && (requeue == 0 || d < requeue) {
		requeue = d
	}
	return controller.Result{RequeueAfter: requeue}, nil
}

// admitNoExecuteCheck reports whether every zone is fully disrupted.
func (r *NodeLifecycle) admitNoExecuteCheck() (bool, time.Duration, bool) {
	states, _ := r.zoneStates()
	allFull := len(states) > 0
	for _, st := range states {
		allFull = allFull && st == zoneFullDisruption
	}
	return false, 0, allFull
}

// syncConditionTaints replaces the not-ready/unreachable taints in cur by want.
func syncConditionTaints(cur, want []corev1.Taint, now time.Time) ([]corev1.Taint, bool) {
	managed := func(t corev1.Taint) bool {
		return t.Key == corev1.TaintNodeUnreachable || t.Key == corev1.TaintNodeNotReady
	}
	var out []corev1.Taint
	changed := false
	for _, t := range cur {
		if !managed(t) {
			out = append(out, t)
			continue
		}
		keep := false
		for _, w := range want {
			if w.Key == t.Key && w.Effect == t.Effect {
				keep = true
			}
		}
		if keep {
			out = append(out, t)
		} else {
			changed = true
		}
	}
	for _, w := range want {
		has := false
		for _, t := range out {
			if t.Key == w.Key && t.Effect == w.Effect {
				has = true
			}
		}
		if !has {
			if w.Effect == corev1.TaintEffectNoExecute {
				ts := metav1.NewTime(now)
				w.TimeAdded = &ts
			}
			out = append(out, w)
			changed = true
		}
	}
	return out, changed
}

// evict deletes the pods on node that do not tolerate its NoExecute taints
// (after setting their DisruptionTarget condition, reason
// DeletionByTaintManager), and returns when to look again for the next toleration to run out.
func (r *NodeLifecycle) evict(ctx context.Context, node *corev1.Node, now time.Time) (time.Duration, error) {
	var taints []corev1.Taint
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			taints = append(taints, t)
		}
	}
	if len(taints) == 0 {
		return 0, nil
	}
	var next time.Duration
	for _, p := range r.pods.ByIndex("node", node.Name) {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		evictAt, forever := now, true
		for _, t := range taints {
			secs, ok := r.tolerates(p, t)
			if !ok {
				evictAt, forever = now, false
				break
			}
			if secs == nil {
				continue
			}
			added := now
			if t.TimeAdded != nil {
				added = t.TimeAdded.Time
			}
			at := added.Add(time.Duration(*secs) * time.Second)
			if forever || at.Before(evictAt) {
				evictAt = at
			}
			forever = false
		}
		if forever {
			continue
		}
		if evictAt.After(now) {
			if d := evictAt.Sub(now); next == 0 || d < next {
				next = d
			}
			continue
		}
		// As upstream, the pod first gets the DisruptionTarget condition
		// (what a Job's podFailurePolicy onPodConditions matches).
		if _, err := writeRetry(ctx, r.cfg.Store, p, true, func(up *corev1.Pod) {
			cond := corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "DeletionByTaintManager",
				Message: "Taint manager: deleting due to NoExecute taint", LastTransitionTime: metav1.NewTime(now)}
			for i := range up.Status.Conditions {
				if up.Status.Conditions[i].Type == corev1.DisruptionTarget {
					up.Status.Conditions[i] = cond
					return
				}
			}
			up.Status.Conditions = append(up.Status.Conditions, cond)
		}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return 0, fmt.Errorf("node %s: evict %s/%s: condition: %w", node.Name, p.Namespace, p.Name, err)
		}
		if _, err := deletePodByUID(ctx, r.cfg.Store, nil, "", p); err != nil {
			return 0, fmt.Errorf("node %s: evict %s/%s: %w", node.Name, p.Namespace, p.Name, err)
		}
		r.rec.Eventf(p, corev1.EventTypeNormal, "TaintManagerEviction", "Marking for deletion Pod %s/%s", p.Namespace, p.Name)
	}
	return next, nil
}

// tolerates reports whether p tolerates taint t and for how long (nil: forever).
func (r *NodeLifecycle) tolerates(p *corev1.Pod, t corev1.Taint) (*int64, bool) {
	var best *int64
	found := false
	for i := range p.Spec.Tolerations {
		tol := &p.Spec.Tolerations[i]
		if !toleratesTaint(tol, &t) {
			continue
		}
		if tol.TolerationSeconds == nil {
			return nil, true
		}
		if !found || *tol.TolerationSeconds < *best {
			best = tol.TolerationSeconds
		}
		found = true
	}
	if found {
		return best, true
	}
	if t.Key == corev1.TaintNodeUnreachable || t.Key == corev1.TaintNodeNotReady {
		secs := r.TolerationSeconds
		return &secs, true
	}
	return nil, false
}

// toleratesTaint matches a toleration against a taint: same key (or an
// empty key with Exists), Exists or an equal value, same or empty effect.
func toleratesTaint(tol *corev1.Toleration, t *corev1.Taint) bool {
	if tol.Effect != "" && tol.Effect != t.Effect {
		return false
	}
	if tol.Key != "" && tol.Key != t.Key {
		return false
	}
	switch tol.Operator {
	case corev1.TolerationOpExists:
		return true
	case corev1.TolerationOpEqual, "":
		return tol.Key != "" && tol.Value == t.Value
	}
	return false
}
