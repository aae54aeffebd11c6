package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tugboatdev/tugboat/scheduler/cache"
	"github.com/tugboatdev/tugboat/scheduler/framework"
	"github.com/tugboatdev/tugboat/scheduler/queue"
	"github.com/tugboatdev/tugboat/store"
	"github.com/tugboatdev/tugboat/store/informer"
)

// Scheduler places the pending pods that name it on nodes. It reads nodes,
// pods and the objects its plugins need through the store's watch, keeps
// them in a cache, and binds pods by writing spec.nodeName.
type Scheduler struct {
	cfg   Config
	st    store.Interface
	log   *slog.Logger
	cache *cache.Cache
	queue *queue.Queue
	fw    *framework.Framework
	// profiles maps each schedulerName served to its profile; they share
	// the cache, the snapshot and the queue, as upstream.
	profiles  map[string]*profile
	extenders []framework.Extender
	snap      *framework.Snapshot
	nom       *nominator
	objs      *objects

	rng       *rand.Rand
	nextStart int
	feasible  []*framework.NodeInfo
	rejected  []rejection
	totals    []int64

	bindCh  chan *bindTask
	writeCh chan func(context.Context)
	// eventCh queues the "Scheduled" events for the event writer.
	eventCh chan scheduledEvent
	limiter *rate.Limiter
	// events maps aggregated FailedScheduling events to their names; only
	// the writer goroutine uses it.
	events    map[eventKey]string
	informers []*informer.Informer
	stats     stats
}

type stats struct {
	scheduled, unschedulable, errors, preempted, bindFailures atomic.Int64
	eventsWritten, eventsDropped                              atomic.Int64
}

// Stats are counters of a scheduler's work so far.
type Stats struct {
	// Scheduled counts pods bound.
	Scheduled int64
	// Unschedulable counts attempts that found no node.
	Unschedulable int64
	// Errors counts attempts that failed with an internal error.
	Errors int64
	// Preemptions counts successful preemptions.
	Preemptions int64
	// BindFailures counts bindings that failed and were undone.
	BindFailures int64
	// ScheduledEvents counts "Scheduled" Events written.
	ScheduledEvents int64
	// ScheduledEventsDropped counts "Scheduled" Events dropped because the
	// queue of events waiting for the rate limit was full.
	ScheduledEventsDropped int64
}

// New builds a scheduler over a store. Call Run to start it.
func New(ctx context.Context, st store.Interface, cfg Config) (*Scheduler, error) {
	cfg.defaults()
	s := &Scheduler{
		cfg:     cfg,
		st:      st,
		log:     cfg.Logger.With("component", "scheduler", "scheduler", cfg.SchedulerName),
		snap:    framework.NewSnapshot(),
		nom:     newNominator(),
		objs:    newObjects(),
		rng:     rand.New(rand.NewPCG(cfg.Seed, 0x5ced)),
		bindCh:  make(chan *bindTask, 1024),
		writeCh: make(chan func(context.Context), 4096),
		eventCh: make(chan scheduledEvent, scheduledEventQueue),
		limiter: rate.NewLimiter(rate.Inf, 0),
		events:  map[eventKey]string{},
	}
	if cfg.ScheduledEventQPS > 0 {
		s.limiter = rate.NewLimiter(rate.Limit(cfg.ScheduledEventQPS), cfg.ScheduledEventBurst)
	}
	s.snap.NamespaceLabels = s.objs.namespaceLabels
	s.cache = cache.New(s.newPodInfo)
	ignored := map[v1.ResourceName]struct{}{}
	for _, ec := range cfg.Extenders {
		e, err := NewHTTPExtender(ec)
		if err != nil {
			return nil, fmt.Errorf("scheduler: %w", err)
		}
		s.extenders = append(s.extenders, e)
		for _, r := range ec.ManagedResources {
			if r.IgnoredByScheduler {
				ignored[v1.ResourceName(r.Name)] = struct{}{}
			}
		}
	}
	s.profiles = make(map[string]*profile, len(cfg.Profiles))
	for _, p := range cfg.Profiles {
		if _, dup := s.profiles[p.SchedulerName]; dup {
			return nil, fmt.Errorf("scheduler: two profiles named %q", p.SchedulerName)
		}
		fw, err := framework.New(ctx, cfg.Registry, p.Plugins, &cluster{s: s})
		if err != nil {
			return nil, fmt.Errorf("scheduler: profile %q: %w", p.SchedulerName, err)
		}
		fw.SetSnapshot(s.snap)
		fw.SetExtenders(s.extenders)
		fw.SetIgnoredResources(ignored)
		pct := p.PercentageOfNodesToScore
		if pct == 0 {
			pct = cfg.PercentageOfNodesToScore
		}
		s.profiles[p.SchedulerName] = &profile{name: p.SchedulerName, fw: fw, percentage: pct}
		if s.fw == nil {
			s.fw = fw
		}
	}
	s.queue = queue.New(queue.Config{
		InitialBackoff: cfg.InitialBackoff,
		MaxBackoff:     cfg.MaxBackoff,
		QueueingHint:   s.queueingHint,
		NewPodInfo:     s.newPodInfo,
	})
	return s, nil
}

// profile is one scheduler profile: a schedulerName and its framework.
type profile struct {
	name       string
	fw         *framework.Framework
	percentage int32
}

// profileFor returns the profile serving pod, nil when none does.
func (s *Scheduler) profileFor(pod *v1.Pod) *profile {
	name := pod.Spec.SchedulerName
	if name == "" {
		name = DefaultSchedulerName
	}
	return s.profiles[name]
}

// queueingHint asks the plugins of the pod's profile whether the event may
// make the pod schedulable.
func (s *Scheduler) queueingHint(qp *queue.QueuedPodInfo, ev framework.ClusterEvent, oldObj, newObj any) bool {
	prof := s.profileFor(qp.Pod)
	if prof == nil {
		return true
	}
	return prof.fw.QueueingHintForPodInfo(qp.UnschedulablePlugins, qp.PodInfo, ev, oldObj, newObj)
}

// newPodInfo builds a pod's facts, taking the priority from its
// PriorityClass when spec.priority is unset.
func (s *Scheduler) newPodInfo(pod *v1.Pod) *framework.PodInfo {
	pi := framework.NewPodInfo(pod)
	if pod.Spec.Priority == nil {
		pi.Priority = s.objs.priority(pod.Spec.PriorityClassName)
	}
	return pi
}

// Framework returns the plugin framework of the scheduler's first
// profile.
func (s *Scheduler) Framework() *framework.Framework { return s.fw }

// ProfileFramework returns the plugin framework of the profile serving
// schedulerName, or nil when the scheduler does not serve that name.
func (s *Scheduler) ProfileFramework(schedulerName string) *framework.Framework {
	if p := s.profiles[schedulerName]; p != nil {
		return p.fw
	}
	return nil
}

// SchedulerNames returns the schedulerNames the scheduler serves, sorted.
func (s *Scheduler) SchedulerNames() []string {
	out := make([]string, 0, len(s.profiles))
	for n := range s.profiles {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Cache returns the scheduler's cache (read it, do not change it).
func (s *Scheduler) Cache() *cache.Cache { return s.cache }

// Queue returns the scheduling queue.
func (s *Scheduler) Queue() *queue.Queue { return s.queue }

// Stats returns the counters.
func (s *Scheduler) Stats() Stats {
	return Stats{
		Scheduled:     s.stats.scheduled.Load(),
		Unschedulable: s.stats.unschedulable.Load(),
		Errors:        s.stats.errors.Load(),
		Preemptions:   s.stats.preempted.Load(),
		BindFailures:  s.stats.bindFailures.Load(),

		ScheduledEvents:        s.stats.eventsWritten.Load(),
		ScheduledEventsDropped: s.stats.eventsDropped.Load(),
	}
}

func (s *Scheduler) responsible(pod *v1.Pod) bool {
	return s.profileFor(pod) != nil
}

// Run starts the informers, waits until they listed everything, then
// schedules until ctx ends. It returns nil when ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer s.queue.Close()
	start := func(res schema.GroupResource, h handler) *informer.Informer {
		if s.st.Registry().ForResource(res) == nil {
			s.log.Warn("resource not served by the store; scheduler runs without it", "resource", res.String())
			return nil
		}
		in := informer.New(s.st, res, s.log)
		in.AddHandler(informer.Handler{OnAdd: h.add, OnUpdate: h.update, OnDelete: h.delete})
		s.informers = append(s.informers, in)
		wg.Add(1)
		go func() { defer wg.Done(); _ = in.Run(ctx) }()
		return in
	}
	wait := func(ins ...*informer.Informer) error {
		for _, in := range ins {
			if in == nil {
				continue
			}
			select {
			case <-in.Synced():
			case <-ctx.Done():
				return nil
			}
		}
		return nil
	}
	// Objects the pods depend on first, then nodes, then pods.
	first := []*informer.Informer{
		start(schema.GroupResource{Group: "scheduling.k8s.io", Resource: "priorityclasses"}, s.objs.priorityHandler()),
		start(schema.GroupResource{Resource: "namespaces"}, s.objs.namespaceHandler(s.queue)),
		start(schema.GroupResource{Group: "policy", Resource: "poddisruptionbudgets"}, s.objs.pdbHandler()),
		start(schema.GroupResource{Resource: "services"}, s.objs.selectorHandler(kindService)),
		start(schema.GroupResource{Resource: "replicationcontrollers"}, s.objs.selectorHandler(kindRC)),
		start(schema.GroupResource{Group: "apps", Resource: "replicasets"}, s.objs.selectorHandler(kindRS)),
		start(schema.GroupResource{Group: "apps", Resource: "statefulsets"}, s.objs.selectorHandler(kindSS)),
	}
	if err := wait(first...); err != nil {
		return err
	}
	nodes := start(schema.GroupResource{Resource: "nodes"}, s.nodeHandler())
	if err := wait(nodes); err != nil {
		return err
	}
	pods := start(schema.GroupResource{Resource: "pods"}, s.podHandler())
	if err := wait(pods); err != nil {
		return err
	}
	s.log.Info("scheduler started", "nodes", s.cache.NodeCount(), "pods", s.cache.PodCount())
	s.startWorkers(ctx, &wg)
	for ctx.Err() == nil {
		s.ScheduleOne(ctx)
	}
	return nil
}

// ScheduleOne pops one pod and runs one scheduling cycle for it. Run calls
// it in a loop; it is exported for tests and tools that drive the
// scheduler step by step.
func (s *Scheduler) ScheduleOne(ctx context.Context) {
	qp, err := s.queue.Pop(ctx)
	if err != nil {
		return
	}
	cycle := s.queue.SchedulingCycle()
	pod := qp.Pod
	prof := s.profileFor(pod)
	if prof == nil || pod.DeletionTimestamp != nil || s.cache.GetPod(pod.UID) != nil {
		s.queue.Done(pod.UID)
		return
	}
	fw := prof.fw
	s.cache.UpdateSnapshot(s.snap)
	state := framework.NewCycleState()
	node, fitErr, st := s.schedulePod(ctx, prof, state, qp.PodInfo)
	if st != nil {
		s.stats.errors.Add(1)
		s.log.Error("scheduling failed", "pod", pod.Namespace+"/"+pod.Name, "err", st.AsError())
		s.failed(ctx, qp, cycle, true, st.Message(), "", nil)
		return
	}
	if fitErr != nil {
		s.stats.unschedulable.Add(1)
		nominated := ""
		if fw.HasPostFilterPlugins() && fitErr.preFilterStatus == nil {
			res, pst := fw.RunPostFilterPlugins(ctx, state, qp.PodInfo, fitErr.statuses)
			if pst.IsSuccess() && res != nil && res.NominatedNodeName != "" {
				nominated = res.NominatedNodeName
				s.stats.preempted.Add(1)
			} else if pst != nil {
				fitErr.postFilterMsg = pst.Message()
			}
		}
		s.failed(ctx, qp, cycle, false, fitErr.Error(), nominated, fitErr.plugins)
		return
	}
	// Assume: the next cycle already sees the pod on the node.
	assumedPod := *pod
	assumedPod.Spec.NodeName = node
	api := *qp.PodInfo
	api.Pod = &assumedPod
	if err := s.cache.AssumePod(&api, node); err != nil {
		s.stats.errors.Add(1)
		s.failed(ctx, qp, cycle, true, err.Error(), "", nil)
		return
	}
	if st := fw.RunReservePluginsReserve(ctx, state, &api, node); !st.IsSuccess() {
		fw.RunReservePluginsUnreserve(ctx, state, &api, node)
		_ = s.cache.ForgetPod(&assumedPod)
		s.failed(ctx, qp, cycle, st.Code() == framework.Error, st.Message(), "", pluginSet(st.Plugin()))
		return
	}
	if st := fw.RunPermitPlugins(ctx, state, &api, node); !st.IsSuccess() && st.Code() != framework.Wait {
		fw.RunReservePluginsUnreserve(ctx, state, &api, node)
		_ = s.cache.ForgetPod(&assumedPod)
		s.failed(ctx, qp, cycle, st.Code() == framework.Error, st.Message(), "", pluginSet(st.Plugin()))
		return
	}
	select {
	case s.bindCh <- &bindTask{fw: fw, qp: qp, pi: &api, node: node, state: state, cycle: cycle}:
	case <-ctx.Done():
		fw.RunReservePluginsUnreserve(ctx, state, &api, node)
		_ = s.cache.ForgetPod(&assumedPod)
		s.queue.Done(pod.UID)
	}
}

func pluginSet(names ...string) map[string]struct{} {
	m := map[string]struct{}{}
	for _, n := range names {
		if n != "" {
			m[n] = struct{}{}
		}
	}
	return m
}

// fitError explains why no node fits.
type fitError struct {
	numNodes        int
	statuses        framework.NodeToStatus
	plugins         map[string]struct{}
	preFilterStatus *framework.Status
	postFilterMsg   string
}

// Error formats the upstream message, e.g. "0/5 nodes are available: 3
// Insufficient cpu, 2 node(s) had untolerated taint {key: value}."
func (f *fitError) Error() string {
	var msg string
	if f.preFilterStatus != nil {
		msg = fmt.Sprintf("0/%d nodes are available: %s.", f.numNodes, f.preFilterStatus.Message())
	} else {
		hist := map[string]int{}
		for _, st := range f.statuses {
			for _, r := range st.Reasons() {
				hist[r]++
			}
		}
		parts := make([]string, 0, len(hist))
		for r, n := range hist {
			parts = append(parts, fmt.Sprintf("%d %s", n, r))
		}
		sort.Strings(parts)
		msg = fmt.Sprintf("0/%d nodes are available: %s.", f.numNodes, strings.Join(parts, ", "))
	}
	if f.postFilterMsg != "" {
		msg += " preemption: " + f.postFilterMsg
	}
	return msg
}

// errNoNodes is the upstream message when the cluster has no nodes.
var errNoNodes = errors.New("no nodes available to schedule pods")

// schedulePod finds the node for a pod: the nominated node if it still
// fits, else the best scored among the first feasible nodes found.
func (s *Scheduler) schedulePod(ctx context.Context, prof *profile, state *framework.CycleState, pi *framework.PodInfo) (string, *fitError, *framework.Status) {
	all := s.snap.List()
	if len(all) == 0 {
		return "", &fitError{numNodes: 0, statuses: framework.NodeToStatus{}, preFilterStatus: framework.NewStatus(framework.UnschedulableAndUnresolvable, errNoNodes.Error())}, nil
	}
	pre, st := prof.fw.RunPreFilterPlugins(ctx, state, pi)
	if !st.IsSuccess() {
		if st.Code() == framework.Error {
			return "", nil, st
		}
		statuses := make(framework.NodeToStatus, len(all))
		for _, ni := range all {
			statuses[ni.Name()] = st
		}
		return "", &fitError{numNodes: len(all), statuses: statuses, plugins: pluginSet(st.Plugin()), preFilterStatus: st}, nil
	}
	// The node nominated by an earlier preemption is tried first.
	if nom := pi.Pod.Status.NominatedNodeName; nom != "" {
		if ni := s.snap.Get(nom); ni != nil && (pre == nil || inSet(pre.NodeNames, nom)) {
			if st, _ := prof.fw.RunFilterWithNominatedPods(ctx, state, pi, ni); st.IsSuccess() {
				ok, _, _, st := s.filterWithExtenders(ctx, pi.Pod, []*framework.NodeInfo{ni}, nil, nil)
				if st != nil {
					return "", nil, st
				}
				if len(ok) == 1 {
					return nom, nil, nil
				}
			}
		}
	}
	candidates := all
	if pre != nil && pre.NodeNames != nil {
		candidates = make([]*framework.NodeInfo, 0, len(pre.NodeNames))
		for _, ni := range all {
			if inSet(pre.NodeNames, ni.Name()) {
				candidates = append(candidates, ni)
			}
		}
	}
	want := NumFeasibleNodesToFind(prof.percentage, len(candidates))
	feasible, statuses, plugins, st := s.findFeasible(ctx, prof.fw, state, pi, candidates, want)
	if st != nil {
		return "", nil, st
	}
	if len(s.extenders) > 0 && len(feasible) > 0 {
		feasible, statuses, plugins, st = s.filterWithExtenders(ctx, pi.Pod, feasible, statuses, plugins)
		if st != nil {
			return "", nil, st
		}
	}
	if len(feasible) == 0 {
		if statuses == nil {
			statuses = framework.NodeToStatus{}
		}
		if pre != nil && pre.NodeNames != nil {
			for _, ni := range all {
				if !inSet(pre.NodeNames, ni.Name()) {
					statuses[ni.Name()] = framework.NewStatus(framework.UnschedulableAndUnresolvable, "node(s) didn't satisfy plugin(s) PreFilter result")
				}
			}
		}
		return "", &fitError{numNodes: len(all), statuses: statuses, plugins: plugins}, nil
	}
	if len(feasible) == 1 {
		return feasible[0].Name(), nil, nil
	}
	if st := prof.fw.RunPreScorePlugins(ctx, state, pi, feasible); !st.IsSuccess() {
		return "", nil, st
	}
	if cap(s.totals) < len(feasible) {
		s.totals = make([]int64, len(feasible))
	}
	totals := s.totals[:len(feasible)]
	if st := prof.fw.RunScorePlugins(ctx, state, pi, feasible, totals); !st.IsSuccess() {
		return "", nil, st
	}
	if len(s.extenders) > 0 {
		s.scoreWithExtenders(ctx, pi.Pod, feasible, totals)
	}
	return s.selectHost(feasible, totals), nil, nil
}

func inSet(m map[string]struct{}, k string) bool {
	_, ok := m[k]
	return ok
}

// selectHost returns the highest scored node, breaking ties uniformly at
// random, as upstream. Upstream samples a reservoir (one random draw per
// tie); counting the ties first and drawing once picks each of them with
// the same probability for one draw per cycle.
func (s *Scheduler) selectHost(nodes []*framework.NodeInfo, totals []int64) string {
	top, ties := totals[0], 1
	for _, t := range totals[1:] {
		switch {
		case t > top:
			top, ties = t, 1
		case t == top:
			ties++
		}
	}
	k := 0
	if ties > 1 {
		k = s.rng.IntN(ties)
	}
	for i, t := range totals {
		if t == top {
			if k == 0 {
				return nodes[i].Name()
			}
			k--
		}
	}
	return nodes[0].Name() // unreachable: top is one of totals
}

// rejection is a node a filter rejected.
type rejection struct {
	node   *framework.NodeInfo
	st     *framework.Status
	plugin string
}

// toStatuses turns rejections into the map PostFilter and the message use.
func toStatuses(rej []rejection) (framework.NodeToStatus, map[string]struct{}) {
	statuses := make(framework.NodeToStatus, len(rej))
	plugins := map[string]struct{}{}
	for _, r := range rej {
		statuses[r.node.Name()] = r.st
		plugins[r.plugin] = struct{}{}
	}
	return statuses, plugins
}

// findFeasible runs the filters from a rotating start until want feasible
// nodes are found or every node was tried. Rejections are collected in a
// buffer reused across cycles; they become a map only when no node fits
// (or when extenders, which may reject the rest, are configured).
func (s *Scheduler) findFeasible(ctx context.Context, fw *framework.Framework, state *framework.CycleState, pi *framework.PodInfo, nodes []*framework.NodeInfo, want int) ([]*framework.NodeInfo, framework.NodeToStatus, map[string]struct{}, *framework.Status) {
	n := len(nodes)
	feasible := s.feasible[:0]
	start := s.nextStart % n
	if !fw.HasFilterPlugins() {
		for i := 0; i < n && len(feasible) < want; i++ {
			feasible = append(feasible, nodes[(start+i)%n])
		}
		s.nextStart = (start + len(feasible)) % n
		s.feasible = feasible
		return feasible, nil, nil, nil
	}
	if s.cfg.Parallelism > 1 && n >= 2*minFeasibleNodesToFind {
		return s.findFeasibleParallel(ctx, fw, state, pi, nodes, want, start)
	}
	rej := s.rejected[:0]
	processed := 0
	// Walk the rotation without a division per node: j wraps to 0 at n.
	for j := start; processed < n && len(feasible) < want; j++ {
		if j == n {
			j = 0
		}
		ni := nodes[j]
		processed++
		st, plugin := fw.RunFilterWithNominatedPods(ctx, state, pi, ni)
		if st.IsSuccess() {
			feasible = append(feasible, ni)
			continue
		}
		if st.Code() == framework.Error {
			return nil, nil, nil, st.WithPlugin(plugin)
		}
		rej = append(rej, rejection{ni, st, plugin})
	}
	s.nextStart = (start + processed) % n
	s.feasible = feasible
	s.rejected = rej[:0]
	if len(feasible) > 0 && len(s.extenders) == 0 {
		clear(rej) // drop references
		return feasible, nil, nil, nil
	}
	statuses, plugins := toStatuses(rej)
	clear(rej)
	return feasible, statuses, plugins, nil
}

// findFeasibleParallel splits the nodes (in rotation order) into chunks
// that workers filter; results are merged in order so the outcome matches
// the sequential search.
func (s *Scheduler) findFeasibleParallel(ctx context.Context, fw *framework.Framework, state *framework.CycleState, pi *framework.PodInfo, nodes []*framework.NodeInfo, want, start int) ([]*framework.NodeInfo, framework.NodeToStatus, map[string]struct{}, *framework.Status) {
	n := len(nodes)
	const chunk = 64
	type result struct {
		ok      []bool
		st      []*framework.Status
		plugins []string
	}
	workers := s.cfg.Parallelism
	chunks := (n + chunk - 1) / chunk
	res := make([]result, chunks)
	var found atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				// Check before taking a chunk so that taken chunks form a
				// prefix of the rotation.
				if found.Load() >= int64(want) {
					return
				}
				c := int(next.Add(1) - 1)
				if c >= chunks {
					return
				}
				lo, hi := c*chunk, min((c+1)*chunk, n)
				r := result{ok: make([]bool, hi-lo), st: make([]*framework.Status, hi-lo), plugins: make([]string, hi-lo)}
				for i := lo; i < hi; i++ {
					ni := nodes[(start+i)%n]
					st, plugin := fw.RunFilterWithNominatedPods(ctx, state, pi, ni)
					if st.IsSuccess() {
						r.ok[i-lo] = true
						found.Add(1)
					} else {
						r.st[i-lo], r.plugins[i-lo] = st, plugin
					}
				}
				res[c] = r
			}
		}()
	}
	wg.Wait()
	feasible := s.feasible[:0]
	rej := s.rejected[:0]
	processed := 0
outer:
	for c := 0; c < chunks; c++ {
		r := res[c]
		if r.ok == nil {
			break
		}
		for j := range r.ok {
			if len(feasible) >= want {
				break outer
			}
			processed++
			ni := nodes[(start+c*chunk+j)%n]
			if r.ok[j] {
				feasible = append(feasible, ni)
				continue
			}
			if r.st[j].Code() == framework.Error {
				return nil, nil, nil, r.st[j].WithPlugin(r.plugins[j])
			}
			rej = append(rej, rejection{ni, r.st[j], r.plugins[j]})
		}
	}
	s.nextStart = (start + processed) % n
	s.feasible = feasible
	s.rejected = rej[:0]
	if len(feasible) > 0 && len(s.extenders) == 0 {
		clear(rej)
		return feasible, nil, nil, nil
	}
	statuses, plugins := toStatuses(rej)
	clear(rej)
	return feasible, statuses, plugins, nil
}

// failed requeues a pod that could not be placed, records why on the pod
// (PodScheduled=False, reason Unschedulable or SchedulerError) with an
// Event, and records a nomination from preemption.
func (s *Scheduler) failed(ctx context.Context, qp *queue.QueuedPodInfo, cycle int64, isError bool, msg, nominated string, plugins map[string]struct{}) {
	qp.UnschedulablePlugins = plugins
	s.queue.AddUnschedulable(qp, cycle, isError)
	pod := qp.Pod
	if nominated != "" {
		s.nom.add(s.newPodInfo(pod), nominated)
	}
	reason := v1.PodReasonUnschedulable
	if isError {
		reason = v1.PodReasonSchedulerError
	}
	s.log.Debug("pod unschedulable", "pod", pod.Namespace+"/"+pod.Name, "reason", msg)
	s.write(ctx, func(ctx context.Context) {
		s.recordFailure(ctx, pod, reason, msg, nominated)
	})
	s.write(ctx, func(ctx context.Context) {
		s.event(ctx, pod, v1.EventTypeWarning, "FailedScheduling", msg)
	})
}

// write hands a store write to the writer goroutine, blocking when it is
// backed up.
func (s *Scheduler) write(ctx context.Context, f func(context.Context)) {
	select {
	case s.writeCh <- f:
	case <-ctx.Done():
	}
}

// writeAsync hands a write to the writer goroutine without blocking the
// informer that calls it; when the writer is backed up the write is
// dropped (it records status only, which the next attempt rewrites).
func (s *Scheduler) writeAsync(f func(context.Context)) {
	select {
	case s.writeCh <- f:
	default:
	}
}

func (s *Scheduler) writer(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-s.writeCh:
			f(ctx)
		}
	}
}

// startWorkers starts the binders and the writer of statuses and events.
func (s *Scheduler) startWorkers(ctx context.Context, wg *sync.WaitGroup) {
	for range s.cfg.Binders {
		wg.Add(1)
		go func() { defer wg.Done(); s.binder(ctx) }()
	}
	wg.Add(2)
	go func() { defer wg.Done(); s.writer(ctx) }()
	go func() { defer wg.Done(); s.eventWriter(ctx) }()
}

// scheduledEvent is a "Scheduled" Event waiting to be written.
type scheduledEvent struct {
	pod  *v1.Pod
	node string
}

// eventWriter writes the queued "Scheduled" events at the configured rate.
func (s *Scheduler) eventWriter(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-s.eventCh:
			if err := s.limiter.Wait(ctx); err != nil {
				return
			}
			msg := fmt.Sprintf("Successfully assigned %s/%s to %s", e.pod.Namespace, e.pod.Name, e.node)
			if s.createEvent(ctx, e.pod, v1.EventTypeNormal, "Scheduled", msg) != "" {
				s.stats.eventsWritten.Add(1)
			}
		}
	}
}

type bindTask struct {
	fw    *framework.Framework
	qp    *queue.QueuedPodInfo
	pi    *framework.PodInfo
	node  string
	state *framework.CycleState
	cycle int64
}

func (s *Scheduler) binder(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case t := <-s.bindCh:
			s.bind(ctx, t)
		}
	}
}

// bind runs the binding cycle: wait for Permit, bind, and on failure undo
// the assumption and requeue the pod.
func (s *Scheduler) bind(ctx context.Context, t *bindTask) {
	pod := t.qp.Pod
	st := t.fw.WaitOnPermit(ctx, pod)
	if st.IsSuccess() {
		if e := s.binderFor(pod); e != nil {
			if err := e.Bind(ctx, t.pi.Pod, t.node); err != nil {
				st = framework.AsStatus(err).WithPlugin(extenderPlugin(e))
			}
		} else {
			st = t.fw.RunBindPlugins(ctx, t.state, t.pi, t.node)
		}
	}
	if !st.IsSuccess() {
		s.stats.bindFailures.Add(1)
		t.fw.RunReservePluginsUnreserve(ctx, t.state, t.pi, t.node)
		if err := s.cache.ForgetPod(t.pi.Pod); err != nil {
			s.log.Debug("forget after failed binding", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		}
		// The freed room may let other pods fit.
		s.queue.MoveOnObjectEvent(framework.ClusterEvent{Resource: framework.AssignedPodResource, ActionType: framework.Delete, Label: "BindingFailed"}, t.pi.Pod, nil)
		if ctx.Err() != nil || apierrors.IsNotFound(st.AsError()) {
			s.queue.Done(pod.UID)
			return
		}
		s.log.Info("binding failed; pod requeued", "pod", pod.Namespace+"/"+pod.Name, "node", t.node, "err", st.AsError())
		s.failed(ctx, t.qp, t.cycle, st.Code() == framework.Error, "Binding rejected: "+st.Message(), "", pluginSet(st.Plugin()))
		return
	}
	s.cache.FinishBinding(t.pi.Pod)
	s.queue.Done(pod.UID)
	s.nom.remove(pod)
	s.stats.scheduled.Add(1)
	if c := podScheduledCondition(pod); t.qp.Attempts > 1 || (c != nil && c.Status != v1.ConditionTrue) {
		// An earlier attempt marked the pod unschedulable: mark it
		// scheduled now, as the binding subresource does upstream.
		s.write(ctx, func(ctx context.Context) { s.recordScheduled(ctx, pod) })
	}
	if !s.cfg.DisableScheduledEvents {
		select {
		case s.eventCh <- scheduledEvent{pod: pod, node: t.node}:
		default: // events are best effort, as upstream's broadcaster
			s.stats.eventsDropped.Add(1)
		}
	}
}
