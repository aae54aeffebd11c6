package framework

import (
	v1 "k8s.io/api/core/v1"
)

// QueueingHint is a plugin's verdict on whether one cluster event may make
// one pod that the plugin rejected schedulable.
type QueueingHint int

const (
	// QueueSkip means the event cannot help the pod: it stays
	// unschedulable (as far as this plugin is concerned).
	QueueSkip QueueingHint = iota
	// Queue means the event may help: the pod moves to the active queue
	// (or to backoff while its backoff lasts).
	Queue
)

// String returns "Queue" or "QueueSkip".
func (h QueueingHint) String() string {
	if h == Queue {
		return "Queue"
	}
	return "QueueSkip"
}

// QueueingHintFn decides, for one pending pod the plugin rejected, whether
// an event may make it schedulable. oldObj and newObj are the object the
// event is about before and after the change (oldObj is nil for an add,
// newObj nil for a delete): a *v1.Node for node events, a *v1.Pod for pod
// events, a *v1.Namespace for namespace events. Either may also be nil when
// the event has no single object (the scheduler then queues the pod). An
// error counts as Queue. The function must not change its arguments.
type QueueingHintFn func(pod *v1.Pod, oldObj, newObj any) (QueueingHint, error)

// PodInfoQueueingHintFn is a QueueingHintFn that gets the pod's
// precomputed facts (requests, parsed affinity terms, host ports) instead
// of the bare pod, so that it need not parse them again for every event.
type PodInfoQueueingHintFn func(pod *PodInfo, oldObj, newObj any) (QueueingHint, error)

// ClusterEventWithHint is an event a plugin registers, with the function
// that filters it per pod. With neither function set, the event always
// queues.
type ClusterEventWithHint struct {
	Event          ClusterEvent
	QueueingHintFn QueueingHintFn
	// PodInfoQueueingHintFn, when set, is used instead of QueueingHintFn.
	PodInfoQueueingHintFn PodInfoQueueingHintFn
}

// EnqueueExtensionsWithHint is implemented by plugins that register
// events with per-pod queueing hints, as upstream's EventsToRegister does.
// When a plugin implements both this and EnqueueExtensions, this one is
// used.
type EnqueueExtensionsWithHint interface {
	EventsToRegisterWithHint() []ClusterEventWithHint
}

// registeredEvents returns the events p registers, with hints.
func registeredEvents(p Plugin) []ClusterEventWithHint {
	if x, ok := p.(EnqueueExtensionsWithHint); ok {
		return x.EventsToRegisterWithHint()
	}
	if x, ok := p.(EnqueueExtensions); ok {
		evs := x.EventsToRegister()
		out := make([]ClusterEventWithHint, len(evs))
		for i, ev := range evs {
			out[i] = ClusterEventWithHint{Event: ev}
		}
		return out
	}
	return []ClusterEventWithHint{{Event: ClusterEvent{Resource: WildCardResource, ActionType: All}}}
}

// QueueingHint reports whether ev, about oldObj becoming newObj, may make
// pod schedulable, given the plugins that rejected it in its last attempt.
// As upstream: a pod no plugin rejected (it failed for another reason) is
// always queued; otherwise it is queued when at least one rejecting plugin
// registered a matching event whose hint returns Queue (or has no hint, or
// fails, or the event carries no object).
func (f *Framework) QueueingHint(plugins map[string]struct{}, pod *v1.Pod, ev ClusterEvent, oldObj, newObj any) bool {
	return f.queueingHint(plugins, pod, nil, ev, oldObj, newObj)
}

// QueueingHintForPodInfo is QueueingHint for a pod whose facts are already
// computed (the queue keeps them).
func (f *Framework) QueueingHintForPodInfo(plugins map[string]struct{}, pi *PodInfo, ev ClusterEvent, oldObj, newObj any) bool {
	var pod *v1.Pod
	if pi != nil {
		pod = pi.Pod
	}
	return f.queueingHint(plugins, pod, pi, ev, oldObj, newObj)
}

func (f *Framework) queueingHint(plugins map[string]struct{}, pod *v1.Pod, pi *PodInfo, ev ClusterEvent, oldObj, newObj any) bool {
	if len(plugins) == 0 {
		return true
	}
	for name := range plugins {
		evs, ok := f.hints[name]
		if !ok {
			// Not a plugin of this profile (e.g. an extender or Permit
			// timeout): be safe and queue.
			return true
		}
		for _, r := range evs {
			if !r.Event.Match(ev) {
				continue
			}
			if r.QueueingHintFn == nil && r.PodInfoQueueingHintFn == nil || pod == nil || (oldObj == nil && newObj == nil) {
				return true
			}
			var h QueueingHint
			var err error
			if r.PodInfoQueueingHintFn != nil {
				if pi == nil {
					pi = NewPodInfo(pod)
				}
				h, err = r.PodInfoQueueingHintFn(pi, oldObj, newObj)
			} else {
				h, err = r.QueueingHintFn(pod, oldObj, newObj)
			}
			if err != nil || h == Queue {
				return true
			}
		}
	}
	return false
}
