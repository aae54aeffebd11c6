package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/scheduler/framework"
	"github.com/tugboatdev/tugboat/store"
)

// nominator remembers which pending pods were nominated to which node by
// preemption, so other pods leave room for them.
type nominator struct {
	mu     sync.RWMutex
	byNode map[string][]*framework.PodInfo
	byUID  map[types.UID]string
	n      atomic.Int64
}

func newNominator() *nominator {
	return &nominator{byNode: map[string][]*framework.PodInfo{}, byUID: map[types.UID]string{}}
}

func (n *nominator) add(pi *framework.PodInfo, node string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.removeLocked(pi.Pod.UID)
	n.byNode[node] = append(n.byNode[node], pi)
	n.byUID[pi.Pod.UID] = node
	n.n.Add(1)
}

func (n *nominator) remove(pod *v1.Pod) {
	if n.n.Load() == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.removeLocked(pod.UID)
}

func (n *nominator) removeLocked(uid types.UID) {
	node, ok := n.byUID[uid]
	if !ok {
		return
	}
	delete(n.byUID, uid)
	list := n.byNode[node]
	for i, p := range list {
		if p.Pod.UID == uid {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(n.byNode, node)
	} else {
		n.byNode[node] = list
	}
	n.n.Add(-1)
}

func (n *nominator) all() map[string][]*framework.PodInfo {
	if n.n.Load() == 0 {
		return nil
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make(map[string][]*framework.PodInfo, len(n.byNode))
	for k, v := range n.byNode {
		out[k] = v // lists are replaced, never changed in place
	}
	return out
}

func (n *nominator) pods(node string) []*framework.PodInfo {
	if n.n.Load() == 0 {
		return nil
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.byNode[node]
}

// cluster implements framework.Cluster over the store.
type cluster struct{ s *Scheduler }

func (c *cluster) NamespaceLabels(ns string) labels.Set { return c.s.objs.namespaceLabels(ns) }

func (c *cluster) PodDisruptionBudgets(ns string) []*policyv1.PodDisruptionBudget {
	return c.s.objs.podDisruptionBudgets(ns)
}

func (c *cluster) NominatedPods(node string) []*framework.PodInfo { return c.s.nom.pods(node) }

func (c *cluster) NominatedPodsByNode() map[string][]*framework.PodInfo { return c.s.nom.all() }

func (c *cluster) DefaultSpreadSelector(pod *v1.Pod) labels.Selector {
	return c.s.objs.defaultSpreadSelector(pod)
}

func (c *cluster) ClearNomination(ctx context.Context, pod *v1.Pod) {
	c.s.nom.remove(pod)
	c.s.write(ctx, func(ctx context.Context) {
		_ = c.s.updatePodStatus(ctx, pod, func(p *v1.Pod) bool {
			if p.Status.NominatedNodeName == "" {
				return false
			}
			p.Status.NominatedNodeName = ""
			return true
		})
	})
}

// DeletePod deletes a preemption victim, with a Preempted event.
func (c *cluster) DeletePod(ctx context.Context, victim, preemptor *v1.Pod) error {
	s := c.s
	_, err := s.st.Delete(ctx, podsResource, victim.Namespace, victim.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &victim.UID}})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	msg := fmt.Sprintf("Preempted by pod %s on node %s", preemptor.UID, victim.Spec.NodeName)
	s.write(ctx, func(ctx context.Context) { s.event(ctx, victim, v1.EventTypeNormal, "Preempted", msg) })
	return nil
}

// Bind binds through the store's [store.Binder] when it has one, else it
// writes spec.nodeName with an update that must match the pod's
// resourceVersion; on a conflict it re-reads the pod and retries unless
// the pod was bound meanwhile.
func (c *cluster) Bind(ctx context.Context, pod *v1.Pod, node string) error {
	if b, ok := c.s.st.(store.Binder); ok {
		// One write, as the pods/binding subresource: spec.nodeName and
		// PodScheduled together, refused if the pod was bound or replaced.
		err := b.Bind(ctx, &v1.Binding{
			ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
			Target:     v1.ObjectReference{Kind: "Node", Name: node},
		}, metav1.CreateOptions{})
		if apierrors.IsConflict(err) {
			if cur, gerr := store.Get[*v1.Pod](ctx, c.s.st, pod.Namespace, pod.Name); gerr == nil && cur.UID == pod.UID && cur.Spec.NodeName == node {
				return nil
			}
		}
		if err != nil {
			return fmt.Errorf("bind %s/%s to %s: %w", pod.Namespace, pod.Name, node, err)
		}
		return nil
	}
	// The pod is shared with the informer: copy what a write may touch
	// (the metadata) and the spec's top level, but share the containers
	// and the status, which the store only reads.
	p := &v1.Pod{TypeMeta: pod.TypeMeta, Spec: pod.Spec, Status: pod.Status}
	pod.ObjectMeta.DeepCopyInto(&p.ObjectMeta)
	p.Spec.NodeName = node
	for attempt := 0; ; attempt++ {
		_, err := c.s.st.Update(ctx, p, metav1.UpdateOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsConflict(err) || attempt >= 10 {
			return fmt.Errorf("bind %s/%s to %s: %w", pod.Namespace, pod.Name, node, err)
		}
		cur, gerr := store.Get[*v1.Pod](ctx, c.s.st, pod.Namespace, pod.Name)
		if gerr != nil {
			return fmt.Errorf("bind %s/%s: %w", pod.Namespace, pod.Name, gerr)
		}
		if cur.UID != pod.UID {
			return fmt.Errorf("bind %s/%s: pod was replaced", pod.Namespace, pod.Name)
		}
		if cur.Spec.NodeName != "" {
			if cur.Spec.NodeName == node {
				return nil
			}
			return fmt.Errorf("bind %s/%s: already bound to %s", pod.Namespace, pod.Name, cur.Spec.NodeName)
		}
		p = cur
		p.Spec.NodeName = node
	}
}

var podsResource = v1.SchemeGroupVersion.WithResource("pods").GroupResource()

// updatePodStatus applies change to the latest pod and writes its status
// when change reports a difference, retrying on conflicts.
func (s *Scheduler) updatePodStatus(ctx context.Context, pod *v1.Pod, change func(*v1.Pod) bool) error {
	if s.st == nil {
		return nil
	}
	for attempt := 0; attempt < 5; attempt++ {
		cur, err := store.Get[*v1.Pod](ctx, s.st, pod.Namespace, pod.Name)
		if err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		}
		if cur.UID != pod.UID || !change(cur) {
			return nil
		}
		_, err = s.st.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		if err == nil || !apierrors.IsConflict(err) {
			return err
		}
	}
	return fmt.Errorf("update status of %s/%s: too many conflicts", pod.Namespace, pod.Name)
}

// recordFailure sets PodScheduled=False with reason and message, and the
// nominated node from preemption.
func (s *Scheduler) recordFailure(ctx context.Context, pod *v1.Pod, reason, msg, nominated string) {
	err := s.updatePodStatus(ctx, pod, func(p *v1.Pod) bool {
		if p.Spec.NodeName != "" {
			return false
		}
		changed := false
		if nominated != "" && p.Status.NominatedNodeName != nominated {
			p.Status.NominatedNodeName = nominated
			changed = true
		}
		cond := v1.PodCondition{Type: v1.PodScheduled, Status: v1.ConditionFalse, Reason: reason, Message: msg}
		for i := range p.Status.Conditions {
			c := &p.Status.Conditions[i]
			if c.Type != v1.PodScheduled {
				continue
			}
			if c.Status == cond.Status && c.Reason == cond.Reason && c.Message == cond.Message {
				return changed
			}
			if c.Status != cond.Status {
				c.LastTransitionTime = metav1.Now()
			}
			c.Status, c.Reason, c.Message = cond.Status, cond.Reason, cond.Message
			c.LastProbeTime = metav1.Now()
			return true
		}
		cond.LastTransitionTime = metav1.Now()
		cond.LastProbeTime = cond.LastTransitionTime
		p.Status.Conditions = append(p.Status.Conditions, cond)
		return true
	})
	if err != nil {
		s.log.Warn("recording scheduling failure", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
}

func podScheduledCondition(p *v1.Pod) *v1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == v1.PodScheduled {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// recordScheduled sets PodScheduled=True on a bound pod that an earlier
// attempt marked unschedulable.
func (s *Scheduler) recordScheduled(ctx context.Context, pod *v1.Pod) {
	err := s.updatePodStatus(ctx, pod, func(p *v1.Pod) bool {
		c := podScheduledCondition(p)
		if c == nil || c.Status == v1.ConditionTrue {
			return false
		}
		c.Status, c.Reason, c.Message = v1.ConditionTrue, "", ""
		c.LastTransitionTime = metav1.Now()
		c.LastProbeTime = metav1.Time{}
		return true
	})
	if err != nil {
		s.log.Warn("recording scheduled condition", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
}

// event writes a core/v1 Event about a pod.
func (s *Scheduler) event(ctx context.Context, pod *v1.Pod, typ, reason, msg string) {
	if s.st == nil {
		return
	}
	now := metav1.NewTime(time.Now())
	// Repeats of the same event about the same pod are aggregated into one
	// Event with a count, as upstream's event correlator does.
	key := eventKey{uid: pod.UID, reason: reason, msg: msg}
	if name, ok := s.events[key]; ok {
		old, err := store.Get[*v1.Event](ctx, s.st, pod.Namespace, name)
		if err == nil {
			old.Count++
			old.LastTimestamp = now
			if _, err := s.st.Update(ctx, old, metav1.UpdateOptions{}); err == nil || ctx.Err() != nil {
				return
			}
		}
	}
	name := s.createEvent(ctx, pod, typ, reason, msg)
	if name != "" && reason == "FailedScheduling" {
		if len(s.events) >= maxAggregatedEvents {
			clear(s.events)
		}
		s.events[key] = name
	}
}

// createEvent creates a core/v1 Event about a pod and returns its name
// ("" when it could not be written). It may run on any goroutine.
func (s *Scheduler) createEvent(ctx context.Context, pod *v1.Pod, typ, reason, msg string) string {
	if s.st == nil {
		return ""
	}
	now := metav1.NewTime(time.Now())
	component := pod.Spec.SchedulerName
	if s.profiles[component] == nil {
		component = s.cfg.SchedulerName
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	ev := &v1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name + "." + hex.EncodeToString(b[:]), Namespace: pod.Namespace},
		InvolvedObject: v1.ObjectReference{
			Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, ResourceVersion: pod.ResourceVersion,
		},
		Reason: reason, Message: msg, Type: typ,
		Source:         v1.EventSource{Component: component},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		EventTime:           metav1.NewMicroTime(now.Time),
		ReportingController: component, ReportingInstance: component,
		Action: map[string]string{"Scheduled": "Binding", "FailedScheduling": "Scheduling", "Preempted": "Preempting"}[reason],
	}
	if _, err := s.st.Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		if ctx.Err() == nil {
			s.log.Debug("writing event", "reason", reason, "err", err)
		}
		return ""
	}
	return ev.Name
}

// maxAggregatedEvents bounds the memory of event aggregation.
const maxAggregatedEvents = 10000

// eventKey identifies events that are aggregated into one.
type eventKey struct {
	uid         types.UID
	reason, msg string
}

func assigned(p *v1.Pod) bool { return p.Spec.NodeName != "" }

func terminal(p *v1.Pod) bool {
	return p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed
}

var (
	evAssignedAdd    = framework.ClusterEvent{Resource: framework.AssignedPodResource, ActionType: framework.Add, Label: "AssignedPodAdd"}
	evAssignedDelete = framework.ClusterEvent{Resource: framework.AssignedPodResource, ActionType: framework.Delete, Label: "AssignedPodDelete"}
	evNodeAdd        = framework.ClusterEvent{Resource: framework.NodeResource, ActionType: framework.Add, Label: "NodeAdd"}
	evNodeDelete     = framework.ClusterEvent{Resource: framework.NodeResource, ActionType: framework.Delete, Label: "NodeDelete"}
)

func (s *Scheduler) podHandler() handler {
	return handler{
		add: func(obj runtime.Object) {
			pod, ok := obj.(*v1.Pod)
			if !ok {
				return
			}
			s.podChanged(nil, pod)
		},
		update: func(old, obj runtime.Object) {
			o, _ := old.(*v1.Pod)
			pod, ok := obj.(*v1.Pod)
			if !ok {
				return
			}
			s.podChanged(o, pod)
		},
		delete: func(obj runtime.Object) {
			pod, ok := obj.(*v1.Pod)
			if !ok {
				return
			}
			s.nom.remove(pod)
			if assigned(pod) || s.cache.GetPod(pod.UID) != nil && !s.cache.IsAssumed(pod) {
				s.cache.RemovePod(pod)
				s.queue.MoveOnObjectEvent(evAssignedDelete, pod, nil)
				return
			}
			s.queue.Delete(pod)
			for _, p := range s.profiles {
				p.fw.RejectWaitingPod(pod.UID, "pod deleted")
			}
		},
	}
}

func (s *Scheduler) podChanged(old, pod *v1.Pod) {
	if assigned(pod) {
		if old != nil && !assigned(old) {
			s.queue.Delete(pod)
		}
		s.nom.remove(pod)
		if terminal(pod) {
			if s.cache.GetPod(pod.UID) != nil {
				s.cache.RemovePod(pod)
				s.queue.MoveOnObjectEvent(evAssignedDelete, pod, nil)
			}
			return
		}
		s.cache.AddPod(pod)
		if old == nil || !assigned(old) {
			s.queue.MoveOnObjectEvent(evAssignedAdd, nil, pod)
			return
		}
		var a framework.ActionType
		if !maps.Equal(old.Labels, pod.Labels) {
			a |= framework.UpdatePodLabel
		}
		if scaledDown(old, pod) {
			a |= framework.UpdatePodScaleDown
		}
		if a != 0 {
			s.queue.MoveOnObjectEvent(framework.ClusterEvent{Resource: framework.AssignedPodResource, ActionType: a, Label: "AssignedPodUpdate"}, old, pod)
		}
		return
	}
	if !s.responsible(pod) {
		return
	}
	if pod.DeletionTimestamp != nil || len(pod.Spec.SchedulingGates) > 0 {
		// Deleted, or held back by scheduling gates until they are removed.
		s.queue.Delete(pod)
		s.nom.remove(pod)
		if pod.DeletionTimestamp == nil && (old == nil || len(old.Spec.SchedulingGates) == 0) {
			s.writeAsync(func(ctx context.Context) {
				s.recordFailure(ctx, pod, v1.PodReasonSchedulingGated, "Scheduling is blocked due to non-empty scheduling gates", "")
			})
		}
		return
	}
	if s.cache.IsAssumed(pod) {
		return
	}
	if pod.Status.NominatedNodeName != "" {
		s.nom.add(s.newPodInfo(pod), pod.Status.NominatedNodeName)
	} else {
		s.nom.remove(pod)
	}
	if old == nil {
		s.queue.Add(pod)
	} else {
		s.queue.Update(pod)
	}
}

// scaledDown reports whether an assigned pod's effective requests went
// down for some resource (in-place resize), which may free room.
func scaledDown(old, pod *v1.Pod) bool {
	if equality.Semantic.DeepEqual(old.Spec.Containers, pod.Spec.Containers) && equality.Semantic.DeepEqual(old.Spec.InitContainers, pod.Spec.InitContainers) && equality.Semantic.DeepEqual(old.Spec.Overhead, pod.Spec.Overhead) {
		return false
	}
	o, n := framework.NewPodInfo(old).Requests, framework.NewPodInfo(pod).Requests
	if n.MilliCPU < o.MilliCPU || n.Memory < o.Memory || n.EphemeralStorage < o.EphemeralStorage {
		return true
	}
	for k, v := range o.Scalar {
		if n.Scalar[k] < v {
			return true
		}
	}
	return false
}

// nodeAction classifies a node update into the changes plugins care about.
func nodeAction(old, n *v1.Node) framework.ActionType {
	var a framework.ActionType
	if !reflect.DeepEqual(old.Status.Allocatable, n.Status.Allocatable) {
		a |= framework.UpdateNodeAllocatable
	}
	if !maps.Equal(old.Labels, n.Labels) {
		a |= framework.UpdateNodeLabel
	}
	if old.Spec.Unschedulable != n.Spec.Unschedulable || !reflect.DeepEqual(old.Spec.Taints, n.Spec.Taints) {
		a |= framework.UpdateNodeTaint
	}
	if len(old.Status.Conditions) != len(n.Status.Conditions) {
		a |= framework.UpdateNodeCondition
	} else {
		for i := range n.Status.Conditions {
			if old.Status.Conditions[i].Type != n.Status.Conditions[i].Type || old.Status.Conditions[i].Status != n.Status.Conditions[i].Status {
				a |= framework.UpdateNodeCondition
				break
			}
		}
	}
	return a
}

func (s *Scheduler) nodeHandler() handler {
	return handler{
		add: func(obj runtime.Object) {
			if n, ok := obj.(*v1.Node); ok {
				s.cache.AddNode(n)
				s.queue.MoveOnObjectEvent(evNodeAdd, nil, n)
			}
		},
		update: func(old, obj runtime.Object) {
			n, ok := obj.(*v1.Node)
			if !ok {
				return
			}
			s.cache.UpdateNode(n)
			if o, ok := old.(*v1.Node); ok {
				if a := nodeAction(o, n); a != 0 {
					s.queue.MoveOnObjectEvent(framework.ClusterEvent{Resource: framework.NodeResource, ActionType: a, Label: "NodeUpdate"}, o, n)
				}
			}
		},
		delete: func(obj runtime.Object) {
			if n, ok := obj.(*v1.Node); ok {
				s.cache.RemoveNode(n.Name)
				s.queue.MoveOnObjectEvent(evNodeDelete, n, nil)
			}
		},
	}
}
