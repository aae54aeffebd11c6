package scheduler

import (
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tugboatdev/tugboat/scheduler/framework"
	"github.com/tugboatdev/tugboat/scheduler/queue"
)

type selectorKind int

const (
	kindService selectorKind = iota
	kindRC
	kindRS
	kindSS
	numKinds
)

// objects holds what the scheduler needs besides nodes and pods:
// namespace labels, disruption budgets, PriorityClasses and the selectors
// of the workloads used for default spreading.
type objects struct {
	mu         sync.RWMutex
	namespaces map[string]labels.Set
	pdbs       map[string]*policyv1.PodDisruptionBudget
	classes    map[string]*schedulingv1.PriorityClass
	selectors  [numKinds]map[string]map[string]labels.Selector // kind -> ns -> name -> selector
}

func newObjects() *objects {
	o := &objects{namespaces: map[string]labels.Set{}, pdbs: map[string]*policyv1.PodDisruptionBudget{}, classes: map[string]*schedulingv1.PriorityClass{}}
	for i := range o.selectors {
		o.selectors[i] = map[string]map[string]labels.Selector{}
	}
	return o
}

func (o *objects) namespaceLabels(ns string) labels.Set {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.namespaces[ns]
}

// priority resolves a PriorityClass name (or the global default when the
// name is empty) to its value, 0 when unknown.
func (o *objects) priority(name string) int32 {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if name != "" {
		if pc := o.classes[name]; pc != nil {
			return pc.Value
		}
		return 0
	}
	for _, pc := range o.classes {
		if pc.GlobalDefault {
			return pc.Value
		}
	}
	return 0
}

func (o *objects) priorityHandler() handler {
	set := func(obj runtime.Object) {
		if pc, ok := obj.(*schedulingv1.PriorityClass); ok {
			o.mu.Lock()
			o.classes[pc.Name] = pc
			o.mu.Unlock()
		}
	}
	return handler{
		add:    set,
		update: func(_, obj runtime.Object) { set(obj) },
		delete: func(obj runtime.Object) {
			if pc, ok := obj.(*schedulingv1.PriorityClass); ok {
				o.mu.Lock()
				delete(o.classes, pc.Name)
				o.mu.Unlock()
			}
		},
	}
}

func (o *objects) namespaceHandler(q *queue.Queue) handler {
	set := func(old, obj runtime.Object, action framework.ActionType) {
		if ns, ok := obj.(*v1.Namespace); ok {
			o.mu.Lock()
			o.namespaces[ns.Name] = labels.Set(ns.Labels)
			o.mu.Unlock()
			var oldObj any
			if old != nil {
				oldObj = old
			}
			q.MoveOnObjectEvent(framework.ClusterEvent{Resource: framework.NamespaceResource, ActionType: action, Label: "Namespace"}, oldObj, ns)
		}
	}
	return handler{
		add:    func(obj runtime.Object) { set(nil, obj, framework.Add) },
		update: func(old, obj runtime.Object) { set(old, obj, framework.UpdateOther) },
		delete: func(obj runtime.Object) {
			if ns, ok := obj.(*v1.Namespace); ok {
				o.mu.Lock()
				delete(o.namespaces, ns.Name)
				o.mu.Unlock()
			}
		},
	}
}

func (o *objects) pdbHandler() handler {
	set := func(obj runtime.Object) {
		if p, ok := obj.(*policyv1.PodDisruptionBudget); ok {
			o.mu.Lock()
			o.pdbs[p.Namespace+"/"+p.Name] = p
			o.mu.Unlock()
		}
	}
	return handler{
		add:    set,
		update: func(_, obj runtime.Object) { set(obj) },
		delete: func(obj runtime.Object) {
			if p, ok := obj.(*policyv1.PodDisruptionBudget); ok {
				o.mu.Lock()
				delete(o.pdbs, p.Namespace+"/"+p.Name)
				o.mu.Unlock()
			}
		},
	}
}

func (o *objects) podDisruptionBudgets(ns string) []*policyv1.PodDisruptionBudget {
	o.mu.RLock()
	defer o.mu.RUnlock()
	var out []*policyv1.PodDisruptionBudget
	for _, p := range o.pdbs {
		if ns == "" || p.Namespace == ns {
			out = append(out, p)
		}
	}
	return out
}

// selectorOf returns the pod selector of a Service, ReplicationController,
// ReplicaSet or StatefulSet.
func selectorOf(obj runtime.Object) (ns, name string, sel labels.Selector) {
	switch x := obj.(type) {
	case *v1.Service:
		if len(x.Spec.Selector) > 0 {
			sel = labels.SelectorFromSet(x.Spec.Selector)
		}
		return x.Namespace, x.Name, sel
	case *v1.ReplicationController:
		if len(x.Spec.Selector) > 0 {
			sel = labels.SelectorFromSet(x.Spec.Selector)
		}
		return x.Namespace, x.Name, sel
	case *appsv1.ReplicaSet:
		if s, err := metav1.LabelSelectorAsSelector(x.Spec.Selector); err == nil && x.Spec.Selector != nil {
			sel = s
		}
		return x.Namespace, x.Name, sel
	case *appsv1.StatefulSet:
		if s, err := metav1.LabelSelectorAsSelector(x.Spec.Selector); err == nil && x.Spec.Selector != nil {
			sel = s
		}
		return x.Namespace, x.Name, sel
	}
	return "", "", nil
}

func (o *objects) selectorHandler(kind selectorKind) handler {
	set := func(obj runtime.Object) {
		ns, name, sel := selectorOf(obj)
		o.mu.Lock()
		defer o.mu.Unlock()
		m := o.selectors[kind][ns]
		if sel == nil || sel.Empty() {
			if m != nil {
				delete(m, name)
			}
			return
		}
		if m == nil {
			m = map[string]labels.Selector{}
			o.selectors[kind][ns] = m
		}
		m[name] = sel
	}
	return handler{
		add:    set,
		update: func(_, obj runtime.Object) { set(obj) },
		delete: func(obj runtime.Object) {
			ns, name, _ := selectorOf(obj)
			o.mu.Lock()
			if m := o.selectors[kind][ns]; m != nil {
				delete(m, name)
			}
			o.mu.Unlock()
		},
	}
}

// defaultSpreadSelector merges the selectors of every Service, RC,
// ReplicaSet and StatefulSet in the pod's namespace that selects the pod,
// as upstream's default spreading does; nil when none selects it.
func (o *objects) defaultSpreadSelector(pod *v1.Pod) labels.Selector {
	o.mu.RLock()
	defer o.mu.RUnlock()
	podLabels := labels.Set(pod.Labels)
	var merged labels.Selector
	for kind := range o.selectors {
		for _, sel := range o.selectors[kind][pod.Namespace] {
			if !sel.Matches(podLabels) {
				continue
			}
			if merged == nil {
				merged = labels.NewSelector()
			}
			reqs, _ := sel.Requirements()
			merged = merged.Add(reqs...)
		}
	}
	return merged
}
