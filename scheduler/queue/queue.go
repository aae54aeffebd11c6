package queue

import (
	"context"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

// Defaults as upstream kube-scheduler.
const (
	DefaultInitialBackoff           = 1 * time.Second
	DefaultMaxBackoff               = 10 * time.Second
	DefaultMaxUnschedulableDuration = 5 * time.Minute
)

// recentEvents is how many recent events the queue keeps with their
// objects.
const recentEvents = 256

// recordedEvent is an event kept with its objects.
type recordedEvent struct {
	cycle          int64
	ev             framework.ClusterEvent
	oldObj, newObj any
}

type eventKind struct {
	res    framework.EventResource
	action framework.ActionType
}

// QueuedPodInfo is a pending pod with its queueing history.
type QueuedPodInfo struct {
	*framework.PodInfo
	// Timestamp is when the pod was added to the queue; it orders pods of
	// equal priority.
	Timestamp time.Time
	// Attempts counts scheduling attempts.
	Attempts int
	// UnschedulablePlugins names the plugins that rejected the pod in its
	// last attempt; only events they care about requeue it.
	UnschedulablePlugins map[string]struct{}
	// UnschedulableSince is when the pod entered the unschedulable queue.
	UnschedulableSince time.Time
	backoffExpiry      time.Time
	heapIndex          int
}

// Config configures a Queue. Zero values take the upstream defaults.
type Config struct {
	InitialBackoff           time.Duration
	MaxBackoff               time.Duration
	MaxUnschedulableDuration time.Duration
	// Interested decides whether a pod rejected by plugins may fit after
	// an event; nil means always.
	Interested func(plugins map[string]struct{}, ev framework.ClusterEvent) bool
	// QueueingHint decides, per pod, whether an event about oldObj
	// becoming newObj may make the pod schedulable (the plugins' queueing
	// hints; see framework.Framework.QueueingHint). oldObj and newObj are
	// nil when the event carries no object. When set it is used instead of
	// Interested.
	QueueingHint func(p *QueuedPodInfo, ev framework.ClusterEvent, oldObj, newObj any) bool
	// Now returns the time; nil means time.Now.
	Now func() time.Time
	// NewPodInfo builds a pod's facts; nil means framework.NewPodInfo.
	NewPodInfo func(*v1.Pod) *framework.PodInfo
}

// Queue is the scheduling queue: an active heap ordered by priority then
// age, a backoff heap ordered by backoff expiry, and the unschedulable pods
// that wait for a cluster event. Nothing polls: a timer fires when the
// earliest backoff (or the unschedulable time limit) expires, and events
// move pods out of the unschedulable set.
type Queue struct {
	cfg  Config
	mu   sync.Mutex
	cond *sync.Cond

	active        *podHeap
	backoff       *podHeap
	unschedulable map[types.UID]*QueuedPodInfo
	inFlight      map[types.UID]bool

	schedulingCycle int64
	// lastEvent records, per kind of cluster event, the scheduling cycle
	// at which it last arrived, so that a pod failing in a cycle during
	// which a relevant event arrived is retried (after backoff) instead of
	// waiting for another event.
	lastEvent map[eventKind]int64
	// recent keeps the latest events with their objects (a ring of
	// recentEvents), so that a pod failing in a cycle during which events
	// arrived is judged by the queueing hints on those very objects;
	// evictedCycle is the newest cycle of an event pushed out of the ring
	// (when it is not older than a pod's cycle, lastEvent decides).
	recent       [recentEvents]recordedEvent
	recentN      int
	evictedCycle int64

	timer     *time.Timer
	timerAt   time.Time
	closed    bool
	popWaiter int
}

// New returns a queue.
func New(cfg Config) *Queue {
	if cfg.InitialBackoff <= 0 {
		cfg.InitialBackoff = DefaultInitialBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxUnschedulableDuration <= 0 {
		cfg.MaxUnschedulableDuration = DefaultMaxUnschedulableDuration
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewPodInfo == nil {
		cfg.NewPodInfo = framework.NewPodInfo
	}
	q := &Queue{
		cfg: cfg,
		active: newPodHeap(func(a, b *QueuedPodInfo) bool {
			if a.Priority != b.Priority {
				return a.Priority > b.Priority
			}
			return a.Timestamp.Before(b.Timestamp)
		}),
		backoff:       newPodHeap(func(a, b *QueuedPodInfo) bool { return a.backoffExpiry.Before(b.backoffExpiry) }),
		unschedulable: map[types.UID]*QueuedPodInfo{},
		inFlight:      map[types.UID]bool{},
		lastEvent:     map[eventKind]int64{},
		evictedCycle:  -1,
	}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Close wakes Pop callers and stops the timer.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	if q.timer != nil {
		q.timer.Stop()
	}
	q.cond.Broadcast()
}

// Add adds a new pending pod to the active queue.
func (q *Queue) Add(pod *v1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	uid := pod.UID
	if q.active.get(uid) != nil || q.backoff.get(uid) != nil || q.unschedulable[uid] != nil {
		q.updateLocked(pod)
		return
	}
	q.active.addOrUpdate(&QueuedPodInfo{PodInfo: q.cfg.NewPodInfo(pod), Timestamp: q.cfg.Now()})
	q.cond.Signal()
}

// Update records a new version of a pending pod. A pod waiting as
// unschedulable whose spec or labels changed is tried again.
func (q *Queue) Update(pod *v1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.updateLocked(pod)
}

func (q *Queue) updateLocked(pod *v1.Pod) {
	uid := pod.UID
	if e := q.active.get(uid); e != nil {
		n := *e
		n.PodInfo = q.cfg.NewPodInfo(pod)
		q.active.addOrUpdate(&n)
		return
	}
	if e := q.backoff.get(uid); e != nil {
		n := *e
		n.PodInfo = q.cfg.NewPodInfo(pod)
		q.backoff.addOrUpdate(&n)
		return
	}
	if e := q.unschedulable[uid]; e != nil {
		changed := !equality.Semantic.DeepEqual(e.Pod.Spec, pod.Spec) || !equality.Semantic.DeepEqual(e.Pod.Labels, pod.Labels)
		n := *e
		n.PodInfo = q.cfg.NewPodInfo(pod)
		if !changed {
			q.unschedulable[uid] = &n
			return
		}
		delete(q.unschedulable, uid)
		q.requeueLocked(&n)
		return
	}
	if q.inFlight[uid] {
		return
	}
	q.active.addOrUpdate(&QueuedPodInfo{PodInfo: q.cfg.NewPodInfo(pod), Timestamp: q.cfg.Now()})
	q.cond.Signal()
}

// Delete removes a pod from every sub-queue.
func (q *Queue) Delete(pod *v1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.active.remove(pod.UID)
	q.backoff.remove(pod.UID)
	delete(q.unschedulable, pod.UID)
}

// Pop blocks until a pod is active (or ctx ends or the queue closes) and
// returns it with its attempt counted. The caller must call Done.
func (q *Queue) Pop(ctx context.Context) (*QueuedPodInfo, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	// The wake-up on ctx's end is registered only when Pop has to wait: a
	// busy queue pops without touching ctx.
	var stop func() bool
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	for q.active.Len() == 0 {
		if stop == nil && ctx.Done() != nil {
			stop = context.AfterFunc(ctx, func() {
				q.mu.Lock()
				q.cond.Broadcast()
				q.mu.Unlock()
			})
		}
		if q.closed {
			return nil, context.Canceled
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		q.popWaiter++
		q.cond.Wait()
		q.popWaiter--
	}
	p := q.active.pop()
	p.Attempts++
	q.schedulingCycle++
	q.inFlight[p.Pod.UID] = true
	return p, nil
}

// SchedulingCycle returns the number of pods popped so far; pass the value
// read right after Pop to AddUnschedulable.
func (q *Queue) SchedulingCycle() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.schedulingCycle
}

// Done marks a popped pod as no longer being scheduled.
func (q *Queue) Done(uid types.UID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inFlight, uid)
}

// AddUnschedulable returns a popped pod that could not be scheduled. If an
// event that might help it arrived while it was being scheduled (at or
// after cycle), or it failed with an error, it goes to backoff; otherwise
// it waits as unschedulable for an event.
func (q *Queue) AddUnschedulable(p *QueuedPodInfo, cycle int64, isError bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inFlight, p.Pod.UID)
	if q.active.get(p.Pod.UID) != nil || q.backoff.get(p.Pod.UID) != nil || q.unschedulable[p.Pod.UID] != nil {
		return
	}
	if isError || q.eventSinceLocked(p, cycle) {
		q.addBackoffLocked(p)
		return
	}
	p.UnschedulableSince = q.cfg.Now()
	q.unschedulable[p.Pod.UID] = p
	q.armTimerLocked()
}

// eventSinceLocked reports whether an event that could help p arrived
// during or after the scheduling cycle in which p was tried.
func (q *Queue) eventSinceLocked(p *QueuedPodInfo, cycle int64) bool {
	if q.evictedCycle < cycle {
		// Every event since cycle is in the ring: ask the hints about
		// each with its objects.
		for i := max(0, q.recentN-recentEvents); i < q.recentN; i++ {
			e := &q.recent[i%recentEvents]
			if e.cycle >= cycle && q.interestedLocked(p, e.ev, e.oldObj, e.newObj) {
				return true
			}
		}
		return false
	}
	for k, c := range q.lastEvent {
		if c < cycle {
			continue
		}
		ev := framework.ClusterEvent{Resource: k.res, ActionType: k.action}
		// Some events since cycle were pushed out of the ring: decide on
		// the kinds of events alone, which errs on the side of retrying.
		if q.interestedLocked(p, ev, nil, nil) {
			return true
		}
	}
	return false
}

// interestedLocked reports whether ev may help p.
func (q *Queue) interestedLocked(p *QueuedPodInfo, ev framework.ClusterEvent, oldObj, newObj any) bool {
	switch {
	case q.cfg.QueueingHint != nil:
		return q.cfg.QueueingHint(p, ev, oldObj, newObj)
	case q.cfg.Interested != nil:
		return q.cfg.Interested(p.UnschedulablePlugins, ev)
	}
	return true
}

func (q *Queue) backoffDuration(p *QueuedPodInfo) time.Duration {
	d := q.cfg.InitialBackoff
	for i := 1; i < p.Attempts; i++ {
		d *= 2
		if d >= q.cfg.MaxBackoff {
			return q.cfg.MaxBackoff
		}
	}
	return d
}

func (q *Queue) addBackoffLocked(p *QueuedPodInfo) {
	p.backoffExpiry = q.cfg.Now().Add(q.backoffDuration(p))
	q.backoff.addOrUpdate(p)
	q.armTimerLocked()
}

// requeueLocked moves a pod to active if its backoff has expired, else to
// the backoff heap.
func (q *Queue) requeueLocked(p *QueuedPodInfo) {
	if p.backoffExpiry.IsZero() {
		p.backoffExpiry = q.cfg.Now()
		if p.Attempts > 0 {
			p.backoffExpiry = p.UnschedulableSince.Add(q.backoffDuration(p))
		}
	}
	if !q.cfg.Now().Before(p.backoffExpiry) {
		q.active.addOrUpdate(p)
		q.cond.Signal()
		return
	}
	q.backoff.addOrUpdate(p)
	q.armTimerLocked()
}

// MoveOnEvent moves the unschedulable pods that ev could help to the
// active queue (or to backoff while their backoff lasts). It carries no
// object, so queueing hints cannot filter it per pod; prefer
// MoveOnObjectEvent.
func (q *Queue) MoveOnEvent(ev framework.ClusterEvent) {
	q.MoveOnObjectEvent(ev, nil, nil)
}

// MoveOnObjectEvent moves the unschedulable pods that ev, a change of
// oldObj into newObj (oldObj nil for an add, newObj nil for a delete),
// could help to the active queue (or to backoff while their backoff
// lasts). Config.QueueingHint decides per pod.
func (q *Queue) MoveOnObjectEvent(ev framework.ClusterEvent, oldObj, newObj any) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.lastEvent[eventKind{ev.Resource, ev.ActionType}] = q.schedulingCycle
	slot := &q.recent[q.recentN%recentEvents]
	if q.recentN >= recentEvents {
		q.evictedCycle = max(q.evictedCycle, slot.cycle)
	}
	*slot = recordedEvent{cycle: q.schedulingCycle, ev: ev, oldObj: oldObj, newObj: newObj}
	q.recentN++
	for uid, p := range q.unschedulable {
		if !q.interestedLocked(p, ev, oldObj, newObj) {
			continue
		}
		delete(q.unschedulable, uid)
		p.backoffExpiry = time.Time{}
		q.requeueLocked(p)
	}
}

// Flush moves pods whose backoff expired to active, and pods unschedulable
// for longer than the limit to active or backoff. The queue calls it from
// its timer; tests may call it directly.
func (q *Queue) Flush() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.flushLocked()
	q.armTimerLocked()
}

func (q *Queue) flushLocked() {
	now := q.cfg.Now()
	for {
		p := q.backoff.peek()
		if p == nil || now.Before(p.backoffExpiry) {
			break
		}
		q.backoff.pop()
		q.active.addOrUpdate(p)
		q.cond.Signal()
	}
	for uid, p := range q.unschedulable {
		if now.Sub(p.UnschedulableSince) >= q.cfg.MaxUnschedulableDuration {
			delete(q.unschedulable, uid)
			p.backoffExpiry = time.Time{}
			q.requeueLocked(p)
		}
	}
}

func (q *Queue) armTimerLocked() {
	if q.closed {
		return
	}
	var next time.Time
	if p := q.backoff.peek(); p != nil {
		next = p.backoffExpiry
	}
	for _, p := range q.unschedulable {
		t := p.UnschedulableSince.Add(q.cfg.MaxUnschedulableDuration)
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if next.IsZero() {
		return
	}
	if q.timer != nil && !q.timerAt.IsZero() && !next.Before(q.timerAt) {
		return
	}
	q.timerAt = next
	d := next.Sub(q.cfg.Now())
	if q.timer == nil {
		q.timer = time.AfterFunc(d, q.onTimer)
	} else {
		q.timer.Reset(d)
	}
}

func (q *Queue) onTimer() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.timerAt = time.Time{}
	q.flushLocked()
	q.armTimerLocked()
}

// Stats returns the sizes of the sub-queues.
func (q *Queue) Stats() (active, backoff, unschedulable int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.active.Len(), q.backoff.Len(), len(q.unschedulable)
}

// PendingPods returns the pods in all sub-queues.
func (q *Queue) PendingPods() []*v1.Pod {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*v1.Pod
	for _, p := range q.active.items {
		out = append(out, p.Pod)
	}
	for _, p := range q.backoff.items {
		out = append(out, p.Pod)
	}
	for _, p := range q.unschedulable {
		out = append(out, p.Pod)
	}
	return out
}
