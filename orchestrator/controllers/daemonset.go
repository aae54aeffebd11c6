package controllers

import (
	"context"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// daemonTolerations are the tolerations upstream adds to every DaemonSet
// pod, so daemons run on cordoned, not-ready and pressured nodes.
var daemonTolerations = []corev1.Toleration{
	{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

// DaemonSet is the DaemonSet reconciler: one pod on every eligible node
// (node selector, required node affinity and taints, with the tolerations
// upstream adds, so cordoned nodes are included), pinned by a required
// metadata.name node affinity; pods on nodes that stop being eligible or
// are deleted are removed; RollingUpdate (maxUnavailable, or maxSurge: a
// new pod beside the old one, which goes once the new one is available)
// and OnDelete updates; ControllerRevisions and status.
type DaemonSet struct {
	cfg   Config
	dss   controller.Lister[*appsv1.DaemonSet]
	nodes controller.Lister[*corev1.Node]
	pods  controller.Lister[*corev1.Pod]
	crs   controller.Lister[*appsv1.ControllerRevision]
	exp   *controller.Expectations
	rec   *controller.Recorder
	// Controller runs the reconciler.
	Controller *controller.Controller
}

// NewDaemonSet builds the DaemonSet reconciler.
func NewDaemonSet(cfg Config) *DaemonSet {
	cfg = cfg.withDefaults()
	r := &DaemonSet{cfg: cfg, dss: controller.ListerFor[*appsv1.DaemonSet](cfg.Informers), nodes: controller.ListerFor[*corev1.Node](cfg.Informers),
		pods: controller.ListerFor[*corev1.Pod](cfg.Informers), crs: controller.ListerFor[*appsv1.ControllerRevision](cfg.Informers),
		exp: controller.NewExpectations(cfg.Clock), rec: controller.NewRecorder(cfg.Store, "daemonset-controller", cfg.Clock, cfg.Log)}
	c := controller.New("daemonset", r, cfg.Workers, cfg.Clock, cfg.Log)
	r.Controller = c
	r.dss.Inf.AddHandler(enqueueHandler(c, func(o runtime.Object) { r.exp.Delete(controller.KeyOf(o)) }))
	all := func(runtime.Object) {
		for _, ds := range r.dss.List("", nil) {
			c.EnqueueObject(ds)
		}
	}
	r.nodes.Inf.AddHandler(controller.Handler{OnAdd: all, OnUpdate: func(_, o runtime.Object) { all(o) }, OnDelete: all})
	r.pods.Inf.AddHandler(podOwnerHandler(c, r.exp, "DaemonSet", nil))
	return r
}

// Run runs the reconciler and its recorder until ctx ends.
func (r *DaemonSet) Run(ctx context.Context) error {
	return runWithRecorder(ctx, r.rec, r.Controller)
}

// daemonRollingLimits resolves a DaemonSet's rolling update maxSurge and
// maxUnavailable against the number of eligible nodes, rounding
// percentages up as upstream; when both are 0, maxUnavailable is 1.
func daemonRollingLimits(ds *appsv1.DaemonSet, desired int) (maxSurge, maxUnavail int) {
	maxUnavail = 1
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ru == nil {
		return 0, 1
	}
	if ru.MaxUnavailable != nil {
		if v, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, desired, true); err == nil {
			maxUnavail = v
		}
	}
	if ru.MaxSurge != nil {
		if v, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxSurge, desired, true); err == nil {
			maxSurge = v
		}
	}
	if maxSurge == 0 && maxUnavail == 0 {
		maxUnavail = 1
	}
	return maxSurge, maxUnavail
}

// countEligible counts the nodes a daemon pod of ds should run on.
func (r *DaemonSet) countEligible(ds *appsv1.DaemonSet, nodes []*corev1.Node) int {
	n := 0
	for _, node := range nodes {
		if nodeEligible(&ds.Spec.Template.Spec, node) {
			n++
		}
	}
	return n
}

// nodeEligible reports whether a daemon pod of tmpl should run on node.
func nodeEligible(tmpl *corev1.PodSpec, node *corev1.Node) bool {
	if !labels.SelectorFromSet(tmpl.NodeSelector).Matches(labels.Set(node.Labels)) {
		return false
	}
	if a := tmpl.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		if !nodeSelectorMatches(a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution, node) {
			return false
		}
	}
	tols := append(append([]corev1.Toleration(nil), tmpl.Tolerations...), daemonTolerations...)
	for i := range node.Spec.Taints {
		t := &node.Spec.Taints[i]
		if t.Effect == corev1.TaintEffectPreferNoSchedule {
			continue
		}
		ok := false
		for j := range tols {
			if toleratesTaint(&tols[j], t) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// nodeSelectorMatches evaluates required node affinity terms (ORed) against a node.
func nodeSelectorMatches(ns *corev1.NodeSelector, node *corev1.Node) bool {
	for _, term := range ns.NodeSelectorTerms {
		ok := true
		for _, req := range term.MatchExpressions {
			sel, err := labels.NewRequirement(req.Key, nodeOp(req.Operator), req.Values)
			if err != nil || !sel.Matches(labels.Set(node.Labels)) {
				ok = false
				break
			}
		}
		for _, req := range term.MatchFields {
			if req.Key != "metadata.name" {
				ok = false
				break
			}
			in := false
			for _, v := range req.Values {
				in = in || v == node.Name
			}
			if (req.Operator == corev1.NodeSelectorOpIn) != in {
				ok = false
				break
			}
		}
		if ok && (len(term.MatchExpressions) > 0 || len(term.MatchFields) > 0) {
			return true
		}
	}
	return false
}

func nodeOp(op corev1.NodeSelectorOperator) selection.Operator {
	switch op {
	case corev1.NodeSelectorOpIn:
		return selection.In
	case corev1.NodeSelectorOpNotIn:
		return selection.NotIn
	case corev1.NodeSelectorOpExists:
		return selection.Exists
	case corev1.NodeSelectorOpDoesNotExist:
		return selection.DoesNotExist
	case corev1.NodeSelectorOpGt:
		return selection.GreaterThan
	default:
		return selection.LessThan
	}
}

// daemonPod builds the pod of ds for node.
func daemonPod(ds *appsv1.DaemonSet, node, hash string) *corev1.Pod {
	p := podFromTemplate(&ds.Spec.Template, ds.Namespace, ds.Name+"-", newControllerRef(ds, gvkDaemonSet))
	p.Labels[appsv1.ControllerRevisionHashLabelKey] = hash
	p.Labels["pod-template-generation"] = fmt.Sprint(ds.Generation)
	if p.Spec.Affinity == nil {
		p.Spec.Affinity = &corev1.Affinity{}
	}
	if p.Spec.Affinity.NodeAffinity == nil {
		p.Spec.Affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
	p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}}
	for _, t := range daemonTolerations {
		has := false
		for _, x := range p.Spec.Tolerations {
			has = has || (x.Key == t.Key && x.Effect == t.Effect)
		}
		if !has {
			p.Spec.Tolerations = append(p.Spec.Tolerations, t)
		}
	}
	return p
}

// nodeOfDaemonPod returns the node a daemon pod is for: its nodeName, or
// its pinned node affinity while unscheduled.
func nodeOfDaemonPod(p *corev1.Pod) string {
	if p.Spec.NodeName != "" {
		return p.Spec.NodeName
	}
	if a := p.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		for _, t := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			for _, f := range t.MatchFields {
				if f.Key == "metadata.name" && len(f.Values) == 1 {
					return f.Values[0]
				}
			}
		}
	}
	return ""
}

// Reconcile syncs one DaemonSet.
func (r *DaemonSet) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	ns, name := controller.SplitKey(key)
	ds, ok := r.dss.Get(ns, name)
	if !ok || ds.DeletionTimestamp != nil {
		return controller.Result{}, nil
	}
	hash, pods, ok, err := claimRevisioned(ctx, r.cfg.Store, r.crs, r.pods, ds, gvkDaemonSet, ds.Spec.Selector, &ds.Spec.Template)
	if !ok || err != nil {
		return controller.Result{}, err
	}
	byNode := map[string][]*corev1.Pod{}
	for _, p := range pods {
		if p.DeletionTimestamp == nil {
			n := nodeOfDaemonPod(p)
			byNode[n] = append(byNode[n], p)
		}
	}
	now := r.cfg.Clock.Now()
	var create []string
	var del []*corev1.Pod
	var st appsv1.DaemonSetStatus
	nodes := r.nodes.List("", nil)
	rolling := ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType
	maxSurge, maxUnavail := daemonRollingLimits(ds, r.countEligible(ds, nodes))
	surge := rolling && maxSurge > 0
	var oldAvailable []*corev1.Pod // old pods a rolling update may replace
	var surgeCandidates []string   // nodes whose available old pod may get a new one beside it
	unavailable, surging := 0, 0
	known := map[string]bool{}
	for _, node := range nodes {
		known[node.Name] = true
		ps := byNode[node.Name]
		if !nodeEligible(&ds.Spec.Template.Spec, node) {
			st.NumberMisscheduled += int32(len(ps))
			del = append(del, ps...)
			continue
		}
		st.DesiredNumberScheduled++
		var newPods, oldPods []*corev1.Pod
		for _, p := range ps {
			switch {
			case p.Status.Phase == corev1.PodFailed:
				del = append(del, p)
			case p.Labels[appsv1.ControllerRevisionHashLabelKey] == hash:
				newPods = append(newPods, p)
			default:
				oldPods = append(oldPods, p)
			}
		}
		if len(newPods)+len(oldPods) == 0 {
			create = append(create, node.Name)
			unavailable++
			continue
		}
		oldestFirst := func(ps []*corev1.Pod) {
			sort.Slice(ps, func(i, j int) bool { return ps[i].CreationTimestamp.Before(&ps[j].CreationTimestamp) })
		}
		oldestFirst(newPods)
		oldestFirst(oldPods)
		// One pod of each revision at most; without surge one pod in all.
		if len(newPods) > 1 {
			del = append(del, newPods[1:]...)
			newPods = newPods[:1]
		}
		if len(oldPods) > 1 || (len(oldPods) > 0 && len(newPods) > 0 && !surge && rolling) {
			keep := 1
			if len(newPods) > 0 && !surge && rolling {
				keep = 0
			}
			del = append(del, oldPods[keep:]...)
			oldPods = oldPods[:keep]
		}
		if len(newPods) > 0 && len(oldPods) > 0 && !rolling {
			// OnDelete: keep the older pod of the two.
			if oldPods[0].CreationTimestamp.Before(&newPods[0].CreationTimestamp) {
				del, newPods = append(del, newPods...), nil
			} else {
				del, oldPods = append(del, oldPods...), nil
			}
		}
		st.CurrentNumberScheduled++
		var p *corev1.Pod // the pod that stands for this node in status
		switch {
		case len(newPods) > 0 && len(oldPods) > 0: // surging on this node
			if isPodAvailable(newPods[0], ds.Spec.MinReadySeconds, now) {
				del = append(del, oldPods...)
				p = newPods[0]
			} else {
				surging++
				p = oldPods[0]
				if !isPodAvailable(p, ds.Spec.MinReadySeconds, now) {
					p = newPods[0]
				}
			}
		case len(newPods) > 0:
			p = newPods[0]
		default:
			p = oldPods[0]
		}
		updated := p.Labels[appsv1.ControllerRevisionHashLabelKey] == hash
		if len(newPods) > 0 {
			st.UpdatedNumberScheduled++
		}
		if isPodReady(p) {
			st.NumberReady++
		}
		if isPodAvailable(p, ds.Spec.MinReadySeconds, now) {
			st.NumberAvailable++
			if !updated && len(newPods) == 0 {
				oldAvailable = append(oldAvailable, p)
				surgeCandidates = append(surgeCandidates, node.Name)
			}
			continue
		}
		unavailable++
		if !updated && len(newPods) == 0 && rolling {
			if surge {
				// An old pod that is not available anyway gets its
				// replacement at once, beyond maxSurge.
				create = append(create, node.Name)
			} else {
				// An old pod that is not available anyway goes at once.
				del = append(del, p)
			}
		}
	}
	// Pods of nodes that no longer exist.
	for n, ps := range byNode {
		if !known[n] {
			del = append(del, ps...)
		}
	}
	switch {
	case surge:
		// Rolling update with surge: a new pod beside the old one on up to
		// maxSurge nodes at a time; the old one goes once the new is available.
		for _, n := range surgeCandidates {
			if surging >= maxSurge {
				break
			}
			create = append(create, n)
			surging++
		}
	case rolling:
		// Rolling update: replace old available pods within maxUnavailable.
		for _, p := range oldAvailable {
			if unavailable >= maxUnavail {
				break
			}
			del = append(del, p)
			unavailable++
		}
	}
	st.NumberUnavailable = max(st.DesiredNumberScheduled-st.NumberAvailable, 0)
	st.ObservedGeneration = ds.Generation
	if r.exp.Satisfied(key) {
		if err := r.manage(ctx, key, ds, hash, create, del); err != nil {
			return controller.Result{}, err
		}
	}
	if !equality.Semantic.DeepEqual(ds.Status, st) {
		if _, err := writeRetry(ctx, r.cfg.Store, ds, true, func(up *appsv1.DaemonSet) { up.Status = st }); err != nil && !apierrors.IsNotFound(err) {
			return controller.Result{}, fmt.Errorf("daemonset %s: status: %w", key, err)
		}
	}
	return controller.Result{}, nil
}

func (r *DaemonSet) manage(ctx context.Context, key string, ds *appsv1.DaemonSet, hash string, create []string, del []*corev1.Pod) error {
	uids := make([]string, len(del))
	for i, p := range del {
		uids[i] = string(p.UID)
	}
	r.exp.Expect(key, len(create), uids)
	for _, p := range del {
		if _, err := deletePodByUID(ctx, r.cfg.Store, r.exp, key, p); err != nil {
			r.exp.Delete(key) // nothing more is in flight: start afresh next time
			return fmt.Errorf("daemonset %s: delete %s: %w", key, p.Name, err)
		}
		r.rec.Eventf(ds, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
	}
	for i, node := range create {
		got, err := storeapi.Create(ctx, r.cfg.Store, daemonPod(ds, node, hash))
		if err != nil {
			r.exp.LowerCreations(key, len(create)-i)
			return fmt.Errorf("daemonset %s: create pod for %s: %w", key, node, err)
		}
		r.rec.Eventf(ds, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", got.Name)
	}
	return nil
}
