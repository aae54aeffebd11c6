package controllers

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store"
)

// Node lifecycle defaults, as upstream.
const (
	// DefaultNodeMonitorGracePeriod is how long a node may be silent before
	// it is marked Ready=Unknown.
	DefaultNodeMonitorGracePeriod = 40 * time.Second
	// DefaultTolerationSeconds is how long a pod without its own toleration
	// for the not-ready/unreachable taints stays on such a node (the
	// DefaultTolerationSeconds admission default).
	DefaultTolerationSeconds = 300
)

// NodeLifecycle watches node heartbeats (Leases in kube-node-lease and
// the Ready condition): a node silent for the grace period gets Ready=Unknown
// and the node.kubernetes.io/unreachable NoSchedule and NoExecute taints;
// a NotReady node gets node.kubernetes.io/not-ready. It also evicts (deletes)
// pods from nodes with NoExecute taints they do not tolerate: at once, or
// after the toleration's tolerationSeconds; for the unreachable and
// not-ready taints a pod without its own toleration gets TolerationSeconds.
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
	// Controller runs the reconciler (keys are node names).
	Controller *controller.Controller
}

// NewNodeLifecycle builds the node lifecycle reconciler.
func NewNodeLifecycle(cfg Config) *NodeLifecycle {
	cfg = cfg.withDefaults()
	r := &NodeLifecycle{cfg: cfg, nodes: controller.ListerFor[*corev1.Node](cfg.Informers),
		leases: controller.ListerFor[*coordinationv1.Lease](cfg.Informers), pods: controller.ListerFor[*corev1.Pod](cfg.Informers),
		rec:         controller.NewRecorder(cfg.Store, "node-controller", cfg.Clock, cfg.Log),
		GracePeriod: DefaultNodeMonitorGracePeriod, TolerationSeconds: DefaultTolerationSeconds}
	c := controller.New("nodelifecycle", r, cfg.Workers, cfg.Clock, cfg.Log)
	r.Controller = c
	r.pods.Inf.AddIndex("node", func(o runtime.Object) []string { return []string{o.(*corev1.Pod).Spec.NodeName} })
	r.nodes.Inf.AddHandler(controller.Handler{OnAdd: c.EnqueueObject, OnUpdate: func(_, o runtime.Object) { c.EnqueueObject(o) }})
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
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.rec.Run(gctx) })
	g.Go(func() error { return r.Controller.Run(gctx) })
	return g.Wait()
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
		if l, err := store.Get[*coordinationv1.Lease](ctx, r.cfg.Store, corev1.NamespaceNodeLease, key); err == nil && l.Spec.RenewTime != nil {
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
			got, err := store.UpdateStatus(ctx, r.cfg.Store, up)
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
	if next, changed := syncConditionTaints(node.Spec.Taints, want, now); changed {
		up := node.DeepCopy()
		up.Spec.Taints = next
		got, err := store.Update(ctx, r.cfg.Store, up)
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

// evict deletes the pods on node that do not tolerate its NoExecute taints,
// and returns when to look again for the next toleration to run out.
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
		err := store.Delete[*corev1.Pod](ctx, r.cfg.Store, p.Namespace, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
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
