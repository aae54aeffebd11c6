package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/utils/clock"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// Back-off figures of the kubelet: container restarts and image pulls wait
// 10 s, doubling up to 5 min; a container that ran 10 min resets it.
const (
	backoffInitial = 10 * time.Second
	backoffMax     = 5 * time.Minute
	backoffReset   = 10 * time.Minute
	// minimumGracePeriod is the shortest time a container gets between
	// SIGTERM and SIGKILL, as upstream.
	minimumGracePeriod = 2 * time.Second
)

type backoffEntry struct {
	delay time.Duration
	last  time.Time
}

type waitingInfo struct {
	reason, message string
}

// podWorker runs one pod. Its goroutine owns everything but the fields
// under mu.
type podWorker struct {
	a      *Agent
	uid    types.UID
	static bool

	// The worker holds no goroutine while idle: a kick or its timer
	// starts one that syncs the pod (again while kicks arrived meanwhile)
	// and ends after arming the timer for the next sync. One sync runs at
	// a time; smu orders them. Fields under smu:
	smu      sync.Mutex
	ctx      context.Context
	stopCtx  func() bool // unregisters the kick on ctx's end
	running  bool        // a goroutine is syncing
	pending  bool        // kicked while syncing (or before start)
	finished bool
	timerGen uint64 // invalidates an armed timer
	timer    func() // stops the armed timer

	mu          sync.Mutex
	pod         *corev1.Pod
	gone        bool
	resyncDue   bool
	evictMsg    string
	evicted     bool // the eviction requested by evictMsg is done
	sandboxID   string
	killing     map[string]string // container ID -> reason
	mirrorName  string            // static pods: the mirror pod's namespace/name
	podIP       string
	forceStatus bool // write the status even if unchanged (a new mirror pod)

	volumes      map[string]*volume
	backoff      map[string]*backoffEntry
	imageBackoff map[string]*backoffEntry
	waiting      map[string]waitingInfo
	termMsgs     map[string]string
	probes       map[string]*containerProbes
	tokens       map[string]*cachedToken // volume/path -> projected service account token
	lastStatus   *corev1.PodStatus
	warned       map[string]bool
	terminated   bool
	admitted     bool // passed the node's admission
	listFailures int  // consecutive failures to list the pod's containers
	actions      int  // runtime calls that change containers, to know when to list again
}

func newPodWorker(a *Agent, p *corev1.Pod, static bool) *podWorker {
	return &podWorker{a: a, uid: p.UID, static: static, pod: p,
		killing: map[string]string{}, volumes: map[string]*volume{}, backoff: map[string]*backoffEntry{},
		imageBackoff: map[string]*backoffEntry{}, waiting: map[string]waitingInfo{}, termMsgs: map[string]string{},
		probes: map[string]*containerProbes{}, warned: map[string]bool{}, tokens: map[string]*cachedToken{}}
}

func (w *podWorker) setPod(p *corev1.Pod) {
	w.mu.Lock()
	w.pod = p.DeepCopy()
	w.mu.Unlock()
	w.kickNow()
}

func (w *podWorker) setGone() {
	w.mu.Lock()
	w.gone = true
	w.mu.Unlock()
	w.kickNow()
}

func (w *podWorker) resync() {
	w.mu.Lock()
	w.resyncDue = true
	w.mu.Unlock()
	w.kickNow()
}

func (w *podWorker) evict(msg string) {
	w.mu.Lock()
	w.evictMsg = msg
	w.mu.Unlock()
	w.kickNow()
}

// evictionState reports whether the pod was asked to leave the node
// (requested) and whether it has (done).
func (w *podWorker) evictionState() (requested, done bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.evictMsg != "", w.evicted
}

func (w *podWorker) requestKill(containerID, reason string) {
	w.mu.Lock()
	w.killing[containerID] = reason
	w.mu.Unlock()
	w.kickNow()
}

// kickNow makes the worker sync the pod now, or right after the sync
// under way.
func (w *podWorker) kickNow() {
	w.smu.Lock()
	switch {
	case w.finished:
		w.smu.Unlock()
	case w.running || w.ctx == nil:
		w.pending = true
		w.smu.Unlock()
	default:
		w.running, w.pending = true, false
		stop := w.disarmLocked()
		w.smu.Unlock()
		stop()
		go w.step()
	}
}

func (w *podWorker) ownsSandbox(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return id != "" && id == w.sandboxID
}

func (w *podWorker) currentPod() *corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod.DeepCopy()
}

func (w *podWorker) currentSandbox() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sandboxID
}

// start starts the worker: it syncs the pod now and whenever kicked or
// due, until the pod is finished or ctx ends. The caller has added one to
// the agent's wait group, which the worker releases when it finishes.
func (w *podWorker) start(ctx context.Context) {
	w.smu.Lock()
	w.ctx = ctx
	w.stopCtx = context.AfterFunc(ctx, w.kickNow)
	w.smu.Unlock()
	w.kickNow()
}

// step runs syncs until none is pending, then arms the timer for the
// next one, or finishes the worker.
func (w *podWorker) step() {
	ctx := w.ctx // set before the first step, never changed
	for {
		var next time.Duration
		done := ctx.Err() != nil
		if !done {
			next, done = w.sync(ctx)
			done = done || ctx.Err() != nil
		}
		if done {
			w.retire()
			return
		}
		if next <= 0 || next > w.a.cfg.ResyncInterval {
			next = w.a.cfg.ResyncInterval
		}
		w.smu.Lock()
		if w.pending {
			w.pending = false
			w.smu.Unlock()
			continue
		}
		w.running = false
		w.timerGen++
		gen := w.timerGen
		w.smu.Unlock()
		// The timer is armed outside smu: a fake clock runs its callback
		// under its own lock.
		stop := afterFunc(w.a.clk, next, func() { w.due(gen) })
		w.smu.Lock()
		if w.timerGen == gen && !w.finished {
			w.timer, stop = stop, nil
		}
		w.smu.Unlock()
		if stop != nil {
			stop() // kicked meanwhile: a newer step runs
		}
		return
	}
}

// due starts the sync the timer of generation gen was armed for, unless
// a kick overtook it.
func (w *podWorker) due(gen uint64) {
	w.smu.Lock()
	if w.timerGen != gen || w.running || w.finished {
		w.smu.Unlock()
		return
	}
	w.running = true
	w.timer = nil
	w.smu.Unlock()
	go w.step()
}

// disarmLocked invalidates the worker's armed timer, if any, and returns
// the function that stops it, to be called after w.smu is released (a
// no-op when none was armed). w.smu must be held.
func (w *podWorker) disarmLocked() (stop func()) {
	w.timerGen++
	stop, w.timer = w.timer, nil
	if stop == nil {
		stop = func() {}
	}
	return stop
}

// retire ends the worker for good.
func (w *podWorker) retire() {
	w.smu.Lock()
	w.finished = true
	w.running = false
	stop := w.disarmLocked()
	w.smu.Unlock()
	stop()
	w.stopCtx()
	w.stopProbes()
	w.a.workerDone(w)
	w.a.wg.Done()
}

// afterFunc calls f after d on clk, in a goroutine of its own, and
// returns the function that cancels it. A clock without AfterFunc costs
// a waiting goroutine.
func afterFunc(clk clock.Clock, d time.Duration, f func()) func() {
	if c, ok := clk.(clock.WithDelayedExecution); ok {
		t := c.AfterFunc(d, f)
		return func() { t.Stop() }
	}
	t := clk.NewTimer(d)
	cancel := make(chan struct{})
	go func() {
		select {
		case <-t.C():
			f()
		case <-cancel:
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { t.Stop(); close(cancel) }) }
}

func (w *podWorker) event(pod *corev1.Pod, typ, reason, format string, args ...any) {
	w.a.rec.Eventf(w.eventTarget(pod), typ, reason, format, args...)
}

// eventTarget is the object events are about: the mirror pod for static
// pods.
func (w *podWorker) eventTarget(pod *corev1.Pod) *corev1.Pod {
	if !w.static {
		return pod
	}
	w.mu.Lock()
	mirror := w.mirrorName
	w.mu.Unlock()
	p := pod.DeepCopy()
	if ns, name, ok := strings.Cut(mirror, "/"); ok {
		p.Namespace, p.Name = ns, name
	}
	return p
}

// sync moves the pod one step towards its desired state and reports when
// to look again and whether the worker is finished.
func (w *podWorker) sync(ctx context.Context) (time.Duration, bool) {
	w.mu.Lock()
	pod, gone, evictMsg, refresh := w.pod.DeepCopy(), w.gone, w.evictMsg, w.resyncDue
	w.resyncDue = false
	w.mu.Unlock()
	if gone || pod.DeletionTimestamp != nil {
		return w.terminate(ctx, pod, gone), true
	}
	if w.lastStatus != nil && (w.lastStatus.Phase == corev1.PodSucceeded || w.lastStatus.Phase == corev1.PodFailed) && pod.Status.Phase != w.lastStatus.Phase {
		// The watch has not delivered our own terminal status yet.
		pod.Status.Phase = w.lastStatus.Phase
	}
	if w.terminated || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		// A finished pod keeps its containers (for logs) but runs none;
		// its sidecars are stopped gracefully, in reverse order.
		grace := time.Duration(0)
		if hasRunningSidecar(ctx, pod, w) {
			grace = w.gracePeriod(pod, nil)
		}
		w.stopAll(ctx, pod, grace)
		if !w.terminated {
			// Exit details can settle after the exit is first seen (an OOM
			// kill is known once the runtime has read the cgroup): keep
			// the container statuses current, never the phase.
			if pc, err := w.listContainers(ctx); err == nil {
				if st := w.computeStatus(ctx, pod, pc, true); st.Phase == pod.Status.Phase {
					w.writeStatus(ctx, pod, st)
				}
			}
		}
		return 0, false
	}
	if evictMsg != "" {
		w.finish(ctx, pod, "Evicted", evictMsg)
		w.event(pod, corev1.EventTypeWarning, "Evicted", "%s", evictMsg)
		w.mu.Lock()
		w.evicted = true
		w.mu.Unlock()
		return 0, false
	}
	if !w.admitted {
		// A pod new to the node is admitted against the node's pressure
		// conditions; a pod that already started here (re-adopted) is not
		// looked at again.
		if msg := w.a.admissionRejection(pod, w.static); msg != "" && pod.Status.StartTime == nil {
			// As the kubelet's rejection: only the phase, reason and
			// message; no container ever ran.
			w.event(pod, corev1.EventTypeWarning, "Evicted", "%s", msg)
			w.writeStatus(ctx, pod, &corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted", Message: msg,
				QOSClass: storeapi.QOSClass(&pod.Spec), Conditions: pod.Status.Conditions})
			w.terminated = true
			return 0, false
		}
		w.admitted = true
	}
	w.warnUnsupported(pod)
	var next time.Duration
	if d := pod.Spec.ActiveDeadlineSeconds; d != nil && pod.Status.StartTime != nil {
		left := pod.Status.StartTime.Add(time.Duration(*d) * time.Second).Sub(w.a.clk.Now())
		if left <= 0 {
			msg := fmt.Sprintf("Pod was active on the node longer than the specified deadline")
			w.event(pod, corev1.EventTypeNormal, "DeadlineExceeded", "%s", msg)
			w.finish(ctx, pod, "DeadlineExceeded", msg)
			return 0, false
		}
		next = left
	}
	if due := w.tokenRefreshDue(); !due.IsZero() {
		// Projected service account tokens are renewed when due.
		if left := due.Sub(w.a.clk.Now()); left <= 0 {
			refresh = true
		} else {
			next = minDur(next, left)
		}
	}
	if err := w.prepareVolumes(ctx, pod, refresh); err != nil {
		w.event(pod, corev1.EventTypeWarning, "FailedMount", "%s", err.Error())
		w.writeStatus(ctx, pod, w.computeStatus(ctx, pod, nil, false))
		return minDur(next, 5*time.Second), false
	}
	if err := w.ensureSandbox(ctx, pod); err != nil {
		if le := (*runtimeListError)(nil); errors.As(err, &le) && w.runtimeUnreachable(ctx, pod, err) {
			return minDur(next, time.Second), false
		}
		w.event(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
		w.writeStatus(ctx, pod, w.computeStatus(ctx, pod, nil, false))
		return minDur(next, 5*time.Second), false
	}
	ctrs, err := w.listContainers(ctx)
	if err != nil {
		w.runtimeUnreachable(ctx, pod, err)
		return minDur(next, time.Second), false
	}
	w.listFailures = 0
	before := w.actions
	wake := w.reconcile(ctx, pod, ctrs)
	next = minDur(next, wake)
	if w.actions != before {
		// Containers were created or stopped: look again.
		if ctrs, err = w.listContainers(ctx); err != nil {
			return minDur(next, time.Second), false
		}
	}
	w.manageProbes(ctx, pod, ctrs)
	w.writeStatus(ctx, pod, w.computeStatus(ctx, pod, ctrs, true))
	w.gcContainers(ctx, ctrs)
	return next, false
}

// hasRunningSidecar reports whether a sidecar of the pod still runs.
func hasRunningSidecar(ctx context.Context, pod *corev1.Pod, w *podWorker) bool {
	has := false
	for i := range pod.Spec.InitContainers {
		has = has || isSidecar(&pod.Spec.InitContainers[i])
	}
	if !has {
		return false
	}
	pc, err := w.listContainers(ctx)
	if err != nil {
		return false
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if l := pc.latest(c.Name); isSidecar(c) && l != nil && l.State != runtime.ContainerExited {
			return true
		}
	}
	return false
}

// runtimeListError is a failure of the runtime to report its sandboxes:
// the runtime cannot tell the pod's state (as opposed to failing to create
// a sandbox).
type runtimeListError struct{ err error }

func (e *runtimeListError) Error() string { return e.err.Error() }
func (e *runtimeListError) Unwrap() error { return e.err }

// unknownAfterFailures is how many syncs in a row the runtime may fail to
// report a running pod before its phase becomes Unknown.
const unknownAfterFailures = 3

// runtimeUnreachable handles a failure of the runtime to report a pod that
// was running (before an agent restart too): after a few failures in a row
// its phase becomes Unknown and it is no longer Ready, as upstream's pod
// phase documentation describes ("the state of the Pod could not be
// obtained"). It reports whether the pod was such a pod; the worker then
// retries without touching anything.
func (w *podWorker) runtimeUnreachable(ctx context.Context, pod *corev1.Pod, err error) bool {
	prev := &pod.Status
	if w.lastStatus != nil {
		prev = w.lastStatus
	}
	if prev.Phase != corev1.PodRunning && prev.Phase != corev1.PodUnknown {
		return false
	}
	w.listFailures++
	if w.listFailures < unknownAfterFailures || prev.Phase == corev1.PodUnknown {
		return true
	}
	w.a.log.Warn("runtime cannot report the pod; phase Unknown", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	st := prev.DeepCopy()
	st.Phase = corev1.PodUnknown
	now := metav1.NewTime(w.a.clk.Now())
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if (c.Type == corev1.PodReady || c.Type == corev1.ContainersReady) && c.Status == corev1.ConditionTrue {
			c.Status, c.Reason, c.LastTransitionTime = corev1.ConditionFalse, "PodStatusUnknown", now
			c.Message = "the container runtime cannot report the pod's state: " + err.Error()
		}
	}
	for i := range st.ContainerStatuses {
		st.ContainerStatuses[i].Ready = false
	}
	for i := range st.InitContainerStatuses {
		st.InitContainerStatuses[i].Ready = false
	}
	w.stopProbes()
	w.writeStatus(ctx, pod, st)
	return true
}

func minDur(a, b time.Duration) time.Duration {
	if a <= 0 {
		return b
	}
	if b <= 0 || a < b {
		return a
	}
	return b
}

// ensureSandbox finds (re-adopts) or creates the pod's sandbox.
func (w *podWorker) ensureSandbox(ctx context.Context, pod *corev1.Pod) error {
	if id := w.currentSandbox(); id != "" {
		sb, err := w.a.rt.PodSandboxStatus(ctx, id)
		if err == nil && sb.State == runtime.SandboxReady {
			w.setPodIP(sb.IP)
			return nil
		}
	}
	sbs, err := w.a.rt.ListPodSandboxes(ctx)
	if err != nil {
		return &runtimeListError{err}
	}
	var found *runtime.PodSandbox
	attempt := uint32(0)
	for _, sb := range sbs {
		if sb.Config.Labels[LabelPodUID] != string(w.uid) {
			continue
		}
		if sb.Config.Attempt >= attempt {
			attempt = sb.Config.Attempt + 1
		}
		if sb.State == runtime.SandboxReady && (found == nil || sb.CreatedAt.After(found.CreatedAt)) {
			found = sb
		}
	}
	if found == nil {
		cfg := w.sandboxConfig(pod, attempt)
		id, err := w.a.rt.RunPodSandbox(ctx, cfg)
		if err != nil {
			return err
		}
		if found, err = w.a.rt.PodSandboxStatus(ctx, id); err != nil {
			return err
		}
	}
	w.mu.Lock()
	w.sandboxID = found.ID
	w.podIP = found.IP
	w.mu.Unlock()
	return nil
}

func (w *podWorker) sandboxConfig(pod *corev1.Pod, attempt uint32) *runtime.PodSandboxConfig {
	cfg := &runtime.PodSandboxConfig{Name: pod.Name, Namespace: pod.Namespace, UID: string(w.uid), Attempt: attempt,
		Hostname: pod.Name, HostNetwork: pod.Spec.HostNetwork,
		Labels:       map[string]string{LabelPodUID: string(w.uid), LabelPodName: pod.Name, LabelPodNamespace: pod.Namespace},
		LogDirectory: filepath.Join(w.a.podDir(w.uid), "logs")}
	if pod.Spec.Hostname != "" {
		cfg.Hostname = pod.Spec.Hostname
	}
	if pod.Spec.HostNetwork {
		cfg.Hostname = ""
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				cfg.PortMappings = append(cfg.PortMappings, runtime.PortMapping{Protocol: runtime.Protocol(p.Protocol), ContainerPort: p.ContainerPort, HostPort: p.HostPort, HostIP: p.HostIP})
			}
		}
	}
	for _, h := range pod.Spec.HostAliases {
		cfg.HostAliases = append(cfg.HostAliases, runtime.HostAlias{IP: h.IP, Hostnames: h.Hostnames})
	}
	cfg.DNS = w.dnsConfig(pod)
	cfg.ShareProcessNamespace = pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace
	cfg.HostPID, cfg.HostIPC = pod.Spec.HostPID, pod.Spec.HostIPC
	cfg.QOSClass = runtime.QOSClass(storeapi.QOSClass(&pod.Spec))
	cfg.Resources = podResources(pod)
	return cfg
}

// podResources are the pod-level cgroup's limits, as the kubelet sets
// them: the pod's requests as CPU weight, and a CPU or memory limit only
// when every container declares one (the effective pod limit: the sum
// over the app containers and sidecars, or the largest init container's
// if that is more).
func podResources(pod *corev1.Pod) runtime.Resources {
	req := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	lim := resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{})
	r := runtime.Resources{CPURequestMilli: req.Cpu().MilliValue()}
	if allLimit(pod, corev1.ResourceCPU) {
		r.CPULimitMilli = lim.Cpu().MilliValue()
	}
	if allLimit(pod, corev1.ResourceMemory) {
		r.MemoryLimitBytes = lim.Memory().Value()
	}
	return r
}

// allLimit reports whether every container of pod has a limit on res.
func allLimit(pod *corev1.Pod, res corev1.ResourceName) bool {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			if _, ok := c.Resources.Limits[res]; !ok {
				return false
			}
		}
	}
	return true
}

// seccompProfile and appArmorProfile translate a security context's
// profile choice for the runtime (nil: not set).
func seccompProfile(p *corev1.SeccompProfile) runtime.SecurityProfile {
	if p == nil {
		return runtime.SecurityProfile{}
	}
	out := runtime.SecurityProfile{Type: runtime.ProfileType(p.Type)}
	if p.LocalhostProfile != nil {
		out.LocalhostProfile = *p.LocalhostProfile
	}
	return out
}

func appArmorProfile(p *corev1.AppArmorProfile) runtime.SecurityProfile {
	if p == nil {
		return runtime.SecurityProfile{}
	}
	out := runtime.SecurityProfile{Type: runtime.ProfileType(p.Type)}
	if p.LocalhostProfile != nil {
		out.LocalhostProfile = *p.LocalhostProfile
	}
	return out
}

// dnsConfig applies the pod's dnsPolicy and dnsConfig.
func (w *podWorker) dnsConfig(pod *corev1.Pod) runtime.DNSConfig {
	var d runtime.DNSConfig
	policy := pod.Spec.DNSPolicy
	if policy == corev1.DNSClusterFirstWithHostNet && !pod.Spec.HostNetwork {
		policy = corev1.DNSClusterFirst
	}
	if (policy == corev1.DNSClusterFirst && !pod.Spec.HostNetwork) || policy == corev1.DNSClusterFirstWithHostNet {
		if len(w.a.cfg.ClusterDNS) > 0 {
			dom := w.a.cfg.ClusterDomain
			d.Servers = append(d.Servers, w.a.cfg.ClusterDNS...)
			d.Searches = []string{pod.Namespace + ".svc." + dom, "svc." + dom, dom}
			d.Options = []string{"ndots:5"}
		}
	}
	if c := pod.Spec.DNSConfig; c != nil {
		if policy == corev1.DNSNone {
			d = runtime.DNSConfig{}
		}
		d.Servers = append(d.Servers, c.Nameservers...)
		d.Searches = append(d.Searches, c.Searches...)
		for _, o := range c.Options {
			if o.Value != nil {
				d.Options = append(d.Options, o.Name+":"+*o.Value)
			} else {
				d.Options = append(d.Options, o.Name)
			}
		}
	}
	return d
}

// podContainers are the runtime's containers of the pod by container
// name, newest attempt first.
type podContainers map[string][]*runtime.ContainerStatus

func (pc podContainers) latest(name string) *runtime.ContainerStatus {
	if l := pc[name]; len(l) > 0 {
		return l[0]
	}
	return nil
}

func (pc podContainers) previous(name string) *runtime.ContainerStatus {
	if l := pc[name]; len(l) > 1 {
		return l[1]
	}
	return nil
}

func (w *podWorker) listContainers(ctx context.Context) (podContainers, error) {
	// The sandbox filter is served by the runtime's index (containerd
	// filters by label server-side); the pod UID label filter keeps it
	// exact.
	list, err := w.a.rt.ListContainers(ctx, runtime.ContainerFilter{SandboxID: w.currentSandbox(), Labels: map[string]string{LabelPodUID: string(w.uid)}})
	if err != nil {
		return nil, err
	}
	pc := podContainers{}
	for _, c := range list {
		n := c.Labels[LabelContainerName]
		pc[n] = append(pc[n], c)
	}
	for _, l := range pc {
		sort.Slice(l, func(i, j int) bool {
			if l[i].Attempt != l[j].Attempt {
				return l[i].Attempt > l[j].Attempt
			}
			return l[i].CreatedAt.After(l[j].CreatedAt)
		})
	}
	return pc, nil
}

// gcContainers removes all but the two newest attempts of each container
// (the newest and the previous one, for `kubectl logs --previous`).
func (w *podWorker) gcContainers(ctx context.Context, pc podContainers) {
	for _, l := range pc {
		for _, c := range l[min(len(l), 2):] {
			if c.State == runtime.ContainerExited {
				_ = w.a.rt.RemoveContainer(ctx, c.ID)
				delete(w.termMsgs, c.ID)
			}
		}
	}
}

func shouldRestart(policy corev1.RestartPolicy, exitCode int32) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	}
	return true
}

// reconcile kills containers that must go, starts or restarts containers
// that must run, and returns when to look again.
func (w *podWorker) reconcile(ctx context.Context, pod *corev1.Pod, pc podContainers) time.Duration {
	w.mu.Lock()
	kills := w.killing
	w.killing = map[string]string{}
	w.mu.Unlock()
	if len(kills) > 0 {
		w.actions++
		var wg sync.WaitGroup
		for id, reason := range kills {
			spec, st := w.specOf(pod, pc, id)
			if spec == nil || st.State != runtime.ContainerRunning {
				continue
			}
			w.event(pod, corev1.EventTypeNormal, "Killing", "Container %s %s, will be restarted", spec.Name, reason)
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.killContainer(ctx, pod, spec, st.ID, w.gracePeriod(pod, spec))
			}()
		}
		wg.Wait()
		var err error
		if pc, err = w.listContainers(ctx); err != nil {
			return time.Second
		}
	}
	policy := pod.Spec.RestartPolicy
	// Once an app container exists the pod has initialized: regular init
	// containers are not looked at again and sidecars no longer hold
	// anything up.
	initialized := mainStarted(pod, pc)
	mainDone := mainContainersDone(pod, pc)
	var next time.Duration
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		latest := pc.latest(c.Name)
		if isSidecar(c) {
			// A sidecar (restartPolicy Always) starts in order, lets the
			// next init container start once it has started (startupProbe
			// passed), keeps running and is restarted whenever it exits,
			// whatever the pod's restartPolicy, until the app containers
			// are done.
			switch {
			case mainDone:
				continue
			case latest == nil:
				d := w.startContainer(ctx, pod, c, 0, true)
				if !initialized {
					w.kickNow() // look again at once: the next one may start
					return d
				}
				next = minDur(next, d)
			case latest.State == runtime.ContainerExited:
				d := w.restart(ctx, pod, c, latest, true)
				if !initialized {
					return d
				}
				next = minDur(next, d)
			case latest.State == runtime.ContainerRunning:
				if started, _ := w.probeState(latest.ID, c); !started && !initialized {
					return next // the startup probe's success wakes the worker
				}
			default:
				if !initialized {
					return next
				}
			}
			continue
		}
		if initialized {
			continue
		}
		switch {
		case latest == nil:
			return w.startContainer(ctx, pod, c, 0, true)
		case latest.State != runtime.ContainerExited:
			return 0
		case latest.ExitCode == 0:
			continue
		case policy == corev1.RestartPolicyNever:
			return 0
		default:
			return w.restart(ctx, pod, c, latest, true)
		}
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		latest := pc.latest(c.Name)
		switch {
		case latest == nil:
			next = minDur(next, w.startContainer(ctx, pod, c, 0, false))
		case latest.State == runtime.ContainerRunning && specImage(latest) != c.Image:
			// The image was updated (the one mutable container field):
			// replace the container, without back-off.
			w.event(pod, corev1.EventTypeNormal, "Killing", "Container %s definition changed, will be restarted", c.Name)
			w.actions++
			w.killContainer(ctx, pod, c, latest.ID, w.gracePeriod(pod, c))
			next = minDur(next, w.startContainer(ctx, pod, c, latest.Attempt+1, false))
		case latest.State == runtime.ContainerExited && shouldRestart(policy, latest.ExitCode):
			next = minDur(next, w.restart(ctx, pod, c, latest, false))
		case latest.State == runtime.ContainerExited:
			delete(w.waiting, c.Name)
		}
	}
	return next
}

// isSidecar reports whether an init container is a sidecar: an init
// container with restartPolicy Always.
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// mainStarted reports whether any app container of the pod was created:
// the pod got past its init containers.
func mainStarted(pod *corev1.Pod, pc podContainers) bool {
	for i := range pod.Spec.Containers {
		if pc.latest(pod.Spec.Containers[i].Name) != nil {
			return true
		}
	}
	return false
}

// mainContainersDone reports whether every app container has exited for
// good under the pod's restartPolicy (never under Always): the pod is
// finishing and its sidecars are to be stopped, not restarted.
func mainContainersDone(pod *corev1.Pod, pc podContainers) bool {
	if pod.Spec.RestartPolicy == corev1.RestartPolicyAlways || pod.Spec.RestartPolicy == "" || len(pod.Spec.Containers) == 0 {
		return false
	}
	for i := range pod.Spec.Containers {
		l := pc.latest(pod.Spec.Containers[i].Name)
		if l == nil || l.State != runtime.ContainerExited || shouldRestart(pod.Spec.RestartPolicy, l.ExitCode) {
			return false
		}
	}
	return true
}

func (w *podWorker) specOf(pod *corev1.Pod, pc podContainers, id string) (*corev1.Container, *runtime.ContainerStatus) {
	for name, l := range pc {
		for _, st := range l {
			if st.ID != id {
				continue
			}
			for i := range pod.Spec.Containers {
				if pod.Spec.Containers[i].Name == name {
					return &pod.Spec.Containers[i], st
				}
			}
			for i := range pod.Spec.InitContainers {
				if pod.Spec.InitContainers[i].Name == name {
					return &pod.Spec.InitContainers[i], st
				}
			}
		}
	}
	return nil, nil
}

// restart restarts an exited container unless it is in crash-loop
// back-off, in which case it reports when the back-off ends.
func (w *podWorker) restart(ctx context.Context, pod *corev1.Pod, c *corev1.Container, latest *runtime.ContainerStatus, isInit bool) time.Duration {
	now := w.a.clk.Now()
	e := w.backoff[c.Name]
	if e != nil && latest.FinishedAt.Sub(latest.StartedAt) >= backoffReset {
		delete(w.backoff, c.Name)
		e = nil
	}
	if e != nil {
		if left := latest.FinishedAt.Add(e.delay).Sub(now); left > 0 {
			msg := fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", e.delay, c.Name, pod.Name, pod.Namespace, w.uid)
			if w.waiting[c.Name].reason != "CrashLoopBackOff" {
				w.event(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)", c.Name, pod.Name, pod.Namespace, w.uid)
			}
			w.waiting[c.Name] = waitingInfo{"CrashLoopBackOff", msg}
			return left
		}
		e.delay = min(2*e.delay, backoffMax)
	} else {
		e = &backoffEntry{delay: backoffInitial}
		w.backoff[c.Name] = e
	}
	e.last = now
	return w.startContainer(ctx, pod, c, latest.Attempt+1, isInit)
}

// startContainer pulls the image, creates and starts one container and runs
// its postStart hook. Failures leave a waiting reason for the status.
func (w *podWorker) startContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, attempt uint32, isInit bool) time.Duration {
	if wait, reason, msg := w.ensureImage(ctx, pod, c); reason != "" {
		w.waiting[c.Name] = waitingInfo{reason, msg}
		return wait
	}
	cfg, err := w.containerConfig(ctx, pod, c, attempt, isInit)
	if err != nil {
		w.waiting[c.Name] = waitingInfo{"CreateContainerConfigError", err.Error()}
		w.event(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return 5 * time.Second
	}
	sandbox := w.currentSandbox()
	w.actions++
	id, err := w.a.rt.CreateContainer(ctx, sandbox, cfg)
	if err != nil {
		w.waiting[c.Name] = waitingInfo{"CreateContainerError", err.Error()}
		w.event(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return 5 * time.Second
	}
	w.event(pod, corev1.EventTypeNormal, "Created", "Created container %s", c.Name)
	if err := w.a.rt.StartContainer(ctx, id); err != nil {
		w.waiting[c.Name] = waitingInfo{"RunContainerError", err.Error()}
		w.event(pod, corev1.EventTypeWarning, "Failed", "Error: failed to start container %q: %v", c.Name, err)
		_ = w.a.rt.RemoveContainer(ctx, id)
		return 5 * time.Second
	}
	delete(w.waiting, c.Name)
	w.event(pod, corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
	if c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
		if msg, err := w.runHandler(ctx, pod, c, id, c.Lifecycle.PostStart, w.gracePeriod(pod, c)); err != nil {
			w.event(pod, corev1.EventTypeWarning, "FailedPostStartHook", "%s", msg)
			w.killContainer(ctx, pod, c, id, w.gracePeriod(pod, c))
		}
	}
	return 0
}

// ensureImage applies the imagePullPolicy. It returns a waiting reason
// (ErrImagePull, ImagePullBackOff, ErrImageNeverPull) when the image is not
// there.
func (w *podWorker) ensureImage(ctx context.Context, pod *corev1.Pod, c *corev1.Container) (time.Duration, string, string) {
	present := false
	if _, err := w.a.rt.ImageStatus(ctx, c.Image); err == nil {
		present = true
	}
	policy := c.ImagePullPolicy
	if policy == "" {
		policy = corev1.PullIfNotPresent
	}
	switch {
	case policy == corev1.PullNever && !present:
		msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
		w.event(pod, corev1.EventTypeWarning, "ErrImageNeverPull", "%s", msg)
		return 10 * time.Second, "ErrImageNeverPull", msg
	case policy == corev1.PullNever || (present && policy == corev1.PullIfNotPresent):
		w.event(pod, corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine", c.Image)
		delete(w.imageBackoff, c.Image)
		return 0, "", ""
	}
	now := w.a.clk.Now()
	if e := w.imageBackoff[c.Image]; e != nil {
		if left := e.last.Add(e.delay).Sub(now); left > 0 {
			w.event(pod, corev1.EventTypeNormal, "BackOff", "Back-off pulling image %q", c.Image)
			return left, "ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q", c.Image)
		}
	}
	w.event(pod, corev1.EventTypeNormal, "Pulling", "Pulling image %q", c.Image)
	start := w.a.clk.Now()
	if _, err := w.a.rt.PullImage(ctx, c.Image, w.pullAuth(ctx, pod, c.Image)); err != nil {
		e := w.imageBackoff[c.Image]
		if e == nil {
			e = &backoffEntry{delay: backoffInitial}
			w.imageBackoff[c.Image] = e
		} else {
			e.delay = min(2*e.delay, backoffMax)
		}
		e.last = w.a.clk.Now()
		msg := fmt.Sprintf("Failed to pull image %q: %v", c.Image, err)
		w.event(pod, corev1.EventTypeWarning, "Failed", "%s", msg)
		w.event(pod, corev1.EventTypeWarning, "Failed", "Error: ErrImagePull")
		return e.delay, "ErrImagePull", msg
	}
	delete(w.imageBackoff, c.Image)
	w.event(pod, corev1.EventTypeNormal, "Pulled", "Successfully pulled image %q in %s", c.Image, w.a.clk.Since(start).Round(time.Millisecond))
	return 0, "", ""
}

// containerConfig builds the runtime's description of a container.
func (w *podWorker) containerConfig(ctx context.Context, pod *corev1.Pod, c *corev1.Container, attempt uint32, isInit bool) (*runtime.ContainerConfig, error) {
	env, err := w.buildEnv(ctx, pod, c)
	if err != nil {
		return nil, err
	}
	envMap := make(map[string]string, len(env))
	for _, e := range env {
		envMap[e.Name] = e.Value
	}
	mapping := func(name string) (string, bool) { v, ok := envMap[name]; return v, ok }
	cfg := &runtime.ContainerConfig{Name: c.Name, Attempt: attempt, Image: c.Image, Env: env,
		WorkingDir: c.WorkingDir, Stdin: c.Stdin, TTY: c.TTY,
		Labels:      map[string]string{LabelPodUID: string(w.uid), LabelPodName: pod.Name, LabelPodNamespace: pod.Namespace, LabelContainerName: c.Name},
		Annotations: map[string]string{annotationImage: c.Image}}
	if isInit {
		cfg.Labels[LabelInit] = "true"
	}
	for _, s := range c.Command {
		cfg.Command = append(cfg.Command, Expand(s, mapping))
	}
	for _, s := range c.Args {
		cfg.Args = append(cfg.Args, Expand(s, mapping))
	}
	if cfg.Mounts, err = w.mounts(pod, c, attempt, mapping); err != nil {
		return nil, err
	}
	cfg.Resources = runtime.Resources{
		CPULimitMilli:    c.Resources.Limits.Cpu().MilliValue(),
		CPURequestMilli:  c.Resources.Requests.Cpu().MilliValue(),
		MemoryLimitBytes: c.Resources.Limits.Memory().Value(),
	}
	if sc := pod.Spec.SecurityContext; sc != nil {
		cfg.Security.RunAsUser, cfg.Security.RunAsGroup = sc.RunAsUser, sc.RunAsGroup
		cfg.Security.SupplementalGroups = supplementalGroups(pod)
		cfg.Security.SELinuxLabel = seLinuxLabel(sc.SELinuxOptions)
		cfg.Security.Seccomp = seccompProfile(sc.SeccompProfile)
		cfg.Security.AppArmor = appArmorProfile(sc.AppArmorProfile)
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.SeccompProfile != nil {
			cfg.Security.Seccomp = seccompProfile(sc.SeccompProfile)
		}
		if sc.AppArmorProfile != nil {
			cfg.Security.AppArmor = appArmorProfile(sc.AppArmorProfile)
		}
		if l := seLinuxLabel(sc.SELinuxOptions); l != "" {
			cfg.Security.SELinuxLabel = l
		}
		if sc.RunAsUser != nil {
			cfg.Security.RunAsUser = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			cfg.Security.RunAsGroup = sc.RunAsGroup
		}
		if sc.Privileged != nil {
			cfg.Security.Privileged = *sc.Privileged
		}
		if sc.ReadOnlyRootFilesystem != nil {
			cfg.Security.ReadOnlyRootFilesystem = *sc.ReadOnlyRootFilesystem
		}
		if sc.Capabilities != nil {
			for _, cp := range sc.Capabilities.Add {
				cfg.Security.AddCapabilities = append(cfg.Security.AddCapabilities, string(cp))
			}
			for _, cp := range sc.Capabilities.Drop {
				cfg.Security.DropCapabilities = append(cfg.Security.DropCapabilities, string(cp))
			}
		}
	}
	return cfg, nil
}

// gracePeriod is the time a container gets between SIGTERM and SIGKILL:
// the pod's deletionGracePeriodSeconds when it is being deleted, else its
// terminationGracePeriodSeconds; never less than 2 s.
func (w *podWorker) gracePeriod(pod *corev1.Pod, _ *corev1.Container) time.Duration {
	g := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		g = *pod.Spec.TerminationGracePeriodSeconds
	}
	if pod.DeletionGracePeriodSeconds != nil {
		g = *pod.DeletionGracePeriodSeconds
	}
	return max(time.Duration(g)*time.Second, minimumGracePeriod)
}

// killContainer runs the preStop hook and stops the container within
// grace.
func (w *podWorker) killContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, grace time.Duration) {
	start := w.a.clk.Now()
	if c != nil && c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		if msg, err := w.runHandler(ctx, pod, c, id, c.Lifecycle.PreStop, grace); err != nil {
			w.event(pod, corev1.EventTypeWarning, "FailedPreStopHook", "%s", msg)
		}
	}
	left := max(grace-w.a.clk.Since(start), minimumGracePeriod)
	if err := w.a.rt.StopContainer(ctx, id, left); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		w.a.log.Warn("stopping container", "container", id, "err", err)
	}
}

// stopAll stops every running container of the pod (grace 0: at once, else
// the given grace): the app and regular init containers together, then the
// sidecars one by one in reverse order with what is left of the grace
// period (at least the 2 s minimum each), as upstream since v1.29.
func (w *podWorker) stopAll(ctx context.Context, pod *corev1.Pod, grace time.Duration) {
	pc, err := w.listContainers(ctx)
	if err != nil {
		return
	}
	start := w.a.clk.Now()
	sidecars := map[string]bool{}
	for i := range pod.Spec.InitContainers {
		if isSidecar(&pod.Spec.InitContainers[i]) {
			sidecars[pod.Spec.InitContainers[i].Name] = true
		}
	}
	w.stopContainers(ctx, pod, pc, grace, func(name string) bool { return !sidecars[name] })
	for i := len(pod.Spec.InitContainers) - 1; i >= 0; i-- {
		name := pod.Spec.InitContainers[i].Name
		if !sidecars[name] {
			continue
		}
		left := grace
		if grace > 0 {
			left = max(grace-w.a.clk.Since(start), minimumGracePeriod)
		}
		w.stopContainers(ctx, pod, pc, left, func(n string) bool { return n == name })
	}
	w.stopProbes()
}

// stopContainers stops, in parallel, the running containers whose name
// passes pick.
func (w *podWorker) stopContainers(ctx context.Context, pod *corev1.Pod, pc podContainers, grace time.Duration, pick func(string) bool) {
	var wg sync.WaitGroup
	for name, l := range pc {
		if !pick(name) {
			continue
		}
		for _, st := range l {
			if st.State == runtime.ContainerExited {
				continue
			}
			spec := containerSpec(pod, name)
			if grace > 0 {
				w.event(pod, corev1.EventTypeNormal, "Killing", "Stopping container %s", name)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if grace > 0 {
					w.killContainer(ctx, pod, spec, st.ID, grace)
				} else {
					_ = w.a.rt.StopContainer(ctx, st.ID, 0)
				}
			}()
		}
	}
	wg.Wait()
}

func containerSpec(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

// finish stops the pod for good and marks it Failed with reason.
func (w *podWorker) finish(ctx context.Context, pod *corev1.Pod, reason, message string) {
	w.stopAll(ctx, pod, w.gracePeriod(pod, nil))
	pc, _ := w.listContainers(ctx)
	st := w.computeStatus(ctx, pod, pc, true)
	st.Phase, st.Reason, st.Message = corev1.PodFailed, reason, message
	w.terminalConditions(st)
	w.writeStatus(ctx, pod, st)
	w.terminated = true
}

// terminate runs the graceful termination of a deleted pod, then removes
// it from the node and from the store.
func (w *podWorker) terminate(ctx context.Context, pod *corev1.Pod, gone bool) time.Duration {
	grace := w.gracePeriod(pod, nil)
	w.stopAll(ctx, pod, grace)
	if !gone {
		pc, _ := w.listContainers(ctx)
		st := w.computeStatus(ctx, pod, pc, true)
		if st.Phase != corev1.PodSucceeded && st.Phase != corev1.PodFailed {
			st.Phase = corev1.PodSucceeded
			for _, cs := range st.ContainerStatuses {
				if t := cs.State.Terminated; t == nil || t.ExitCode != 0 {
					st.Phase = corev1.PodFailed
				}
			}
		}
		w.terminalConditions(st)
		w.writeStatus(ctx, pod, st)
	}
	if sb := w.currentSandbox(); sb != "" {
		_ = w.a.rt.StopPodSandbox(ctx, sb)
	}
	if !gone && !w.static {
		zero := int64(0)
		uid := w.uid
		err := storeapi.Delete[*corev1.Pod](ctx, w.a.s, pod.Namespace, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			w.a.log.Warn("deleting pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		}
	}
	if w.static {
		w.deleteMirror(ctx)
	}
	sbs, _ := w.a.rt.ListPodSandboxes(ctx)
	for _, sb := range sbs {
		if sb.Config.Labels[LabelPodUID] == string(w.uid) {
			_ = w.a.rt.RemovePodSandbox(ctx, sb.ID)
		}
	}
	if err := cleanupPodDir(w.a.podDir(w.uid)); err != nil {
		w.a.log.Warn("removing pod directory", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
	w.a.forgetStats(w.uid)
	return 0
}

// terminalConditions sets the conditions of a finished pod.
func (w *podWorker) terminalConditions(st *corev1.PodStatus) {
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if (c.Type == corev1.PodReady || c.Type == corev1.ContainersReady) && c.Status == corev1.ConditionTrue {
			c.Status, c.Reason, c.Message = corev1.ConditionFalse, "PodCompleted", ""
			c.LastTransitionTime = metav1.NewTime(w.a.clk.Now())
		}
	}
	for i := range st.ContainerStatuses {
		st.ContainerStatuses[i].Ready = false
		if st.ContainerStatuses[i].State.Running != nil {
			f := false
			st.ContainerStatuses[i].Started = &f
		}
	}
}

// writeStatus writes the pod's status when it changed.
func (w *podWorker) writeStatus(ctx context.Context, pod *corev1.Pod, st *corev1.PodStatus) {
	w.mu.Lock()
	force := w.forceStatus
	w.forceStatus = false
	w.mu.Unlock()
	if !force && w.lastStatus != nil && statusEqual(w.lastStatus, st) {
		return
	}
	ns, name := pod.Namespace, pod.Name
	if w.static {
		w.mu.Lock()
		mirror := w.mirrorName
		w.mu.Unlock()
		var ok bool
		if ns, name, ok = strings.Cut(mirror, "/"); !ok {
			w.lastStatus = st
			return
		}
	}
	for attempt := 0; attempt < 5; attempt++ {
		cur, err := storeapi.Get[*corev1.Pod](ctx, w.a.s, ns, name)
		if err != nil {
			return
		}
		if !w.static && cur.UID != w.uid {
			return
		}
		if cur.Status.Phase == corev1.PodSucceeded || cur.Status.Phase == corev1.PodFailed {
			if st.Phase != cur.Status.Phase {
				return // a finished pod never goes back
			}
		}
		// Keep conditions others own (PodScheduled, readiness gates).
		for _, c := range cur.Status.Conditions {
			if !ownedCondition(c.Type) && findCondition(st.Conditions, c.Type) == nil {
				st.Conditions = append(st.Conditions, c)
			}
		}
		cur.Status = *st.DeepCopy()
		if _, err = storeapi.UpdateStatus(ctx, w.a.s, cur); err == nil {
			w.lastStatus = st
			return
		}
		if !apierrors.IsConflict(err) {
			if ctx.Err() == nil && !apierrors.IsNotFound(err) {
				w.a.log.Warn("writing pod status", "pod", ns+"/"+name, "err", err)
			}
			return
		}
	}
}

func ownedCondition(t corev1.PodConditionType) bool {
	switch t {
	case corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady, podReadyToStartContainers:
		return true
	}
	return false
}

func findCondition(cs []corev1.PodCondition, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range cs {
		if cs[i].Type == t {
			return &cs[i]
		}
	}
	return nil
}

func cleanupPodDir(dir string) error {
	unmountUnder(dir)
	if err := os.RemoveAll(dir); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

func (w *podWorker) setPodIP(ip string) {
	w.mu.Lock()
	w.podIP = ip
	w.mu.Unlock()
}

func (w *podWorker) getPodIP() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.podIP
}

// warnUnsupported records a Warning event, once per pod, for fields the
// agent accepts but does not implement, so that they are never silently
// ignored.
func (w *podWorker) warnUnsupported(pod *corev1.Pod) {
	if w.warned["fields"] {
		return
	}
	w.warned["fields"] = true
	var fields []string
	if len(pod.Spec.EphemeralContainers) > 0 {
		fields = append(fields, "ephemeralContainers")
	}
	if len(pod.Spec.ResourceClaims) > 0 {
		fields = append(fields, "resourceClaims")
	}
	if len(fields) > 0 {
		w.event(pod, corev1.EventTypeWarning, "UnsupportedFields", "this node does not implement: %s", strings.Join(fields, ", "))
	}
}

// annotationImage keeps the image as the pod spec names it, whatever
// normalisation the runtime applies to its own Image field.
const annotationImage = "tugboat.dev/spec-image"

func specImage(st *runtime.ContainerStatus) string {
	if v, ok := st.Annotations[annotationImage]; ok {
		return v
	}
	return st.Image
}
