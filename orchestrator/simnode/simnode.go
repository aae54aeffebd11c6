package simnode

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store"
)

// Options configures an [Agent].
type Options struct {
	// Nodes is the number of simulated nodes (default 3), named
	// NamePrefix-0 ... NamePrefix-(Nodes-1).
	Nodes int
	// NamePrefix prefixes node names (default "sim-node").
	NamePrefix string
	// Manual leaves bound pods Pending until StartPod is called; by default
	// a bound pod starts (Running and Ready) at once.
	Manual bool
	// BrokenImages are images that never start: pods using them stay
	// Pending with their containers waiting in ErrImagePull.
	BrokenImages []string
	// TestBinder turns on the round-robin test binder: it assigns every
	// unscheduled pod to a simulated node (honouring a required
	// metadata.name node affinity, as DaemonSet pods carry). It stands in
	// for the real scheduler in controller tests.
	TestBinder bool
	// DualStack gives every pod an IPv6 address (fd00:10:<node>::<n>)
	// besides its IPv4 one, in status.podIPs.
	DualStack bool
	// HeartbeatInterval is how often node Leases are renewed (default 10 s).
	HeartbeatInterval time.Duration
	// Clock drives timestamps and heartbeats; nil means the real clock.
	Clock clock.Clock
	// Workers is the number of concurrent pod updates (default 4).
	Workers int
	// Log receives the agent's logs.
	Log *slog.Logger
}

// Agent is a simulated node agent: it registers simulated Nodes, renews
// their Leases and moves the pods bound to them through their lifecycle
// (Pending → Running/Ready → Succeeded/Failed, graceful deletion finished
// at once), on its own or on command. No processes run.
type Agent struct {
	s    store.Interface
	opts Options
	clk  clock.Clock
	log  *slog.Logger

	pods  *controller.Informer
	nodes []string
	ctrl  *controller.Controller

	hbMu    sync.Mutex
	mu      sync.Mutex
	rr      int
	ipSeq   map[string]int
	silent  map[string]bool
	broken  map[string]bool
	started map[string]bool
}

// New returns an agent over s. Call Run.
func New(s store.Interface, opts Options) *Agent {
	if opts.Nodes <= 0 {
		opts.Nodes = 3
	}
	if opts.NamePrefix == "" {
		opts.NamePrefix = "sim-node"
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = 10 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	a := &Agent{s: s, opts: opts, clk: opts.Clock, log: opts.Log.With("component", "simnode"),
		ipSeq: map[string]int{}, silent: map[string]bool{}, broken: map[string]bool{}, started: map[string]bool{}}
	for _, img := range opts.BrokenImages {
		a.broken[img] = true
	}
	for i := range opts.Nodes {
		a.nodes = append(a.nodes, fmt.Sprintf("%s-%d", opts.NamePrefix, i))
	}
	a.pods = controller.NewInformer(s, schema.GroupResource{Resource: "pods"}, a.log)
	a.pods.AddIndex("node", func(o runtime.Object) []string { return []string{o.(*corev1.Pod).Spec.NodeName} })
	a.ctrl = controller.New("simnode", controller.ReconcilerFunc(a.reconcile), opts.Workers, opts.Clock, a.log)
	a.pods.AddHandler(controller.Handler{
		OnAdd:    a.ctrl.EnqueueObject,
		OnUpdate: func(_, o runtime.Object) { a.ctrl.EnqueueObject(o) },
	})
	return a
}

// NodeNames returns the names of the simulated nodes.
func (a *Agent) NodeNames() []string { return append([]string(nil), a.nodes...) }

// Run registers the nodes and runs the agent until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.RegisterNodes(ctx); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.pods.Run(gctx) })
	g.Go(func() error { return a.ctrl.Run(gctx) })
	g.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-a.clk.After(a.opts.HeartbeatInterval):
				if err := a.Heartbeat(gctx); err != nil && gctx.Err() == nil {
					a.log.Debug("heartbeat failed", "err", err)
				}
			}
		}
	})
	return g.Wait()
}

// WaitForSync blocks until the agent's pod cache is loaded.
func (a *Agent) WaitForSync(ctx context.Context) error {
	select {
	case <-a.pods.Synced():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RegisterNodes creates the simulated Nodes (Ready) and their Leases; nodes
// that exist already are left as they are.
func (a *Agent) RegisterNodes(ctx context.Context) error {
	for i, name := range a.nodes {
		n := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
				corev1.LabelHostname: name, corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64",
				"tugboat.dev/simulated": "true",
			}},
			Status: corev1.NodeStatus{
				Capacity:    resources(),
				Allocatable: resources(),
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
					Message: "simulated node agent is posting ready status", LastHeartbeatTime: metav1.NewTime(a.clk.Now()), LastTransitionTime: metav1.NewTime(a.clk.Now())}},
				Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("192.0.2.%d", i%250+1)},
					{Type: corev1.NodeHostName, Address: name}},
				NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.33.0-tugboat-simulated", OperatingSystem: "linux", Architecture: "amd64",
					ContainerRuntimeVersion: "simulated://0"},
			},
		}
		if _, err := store.Create(ctx, a.s, n); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("simnode: register node %s: %w", name, err)
		}
	}
	return a.Heartbeat(ctx)
}

func resources() corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"),
		corev1.ResourcePods: resource.MustParse("110")}
}

// Silence stops (or with false restarts) the heartbeats of node, to
// simulate a node that lost its network.
func (a *Agent) Silence(node string, silent bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.silent[node] = silent
}

// Heartbeat renews the Lease in kube-node-lease of every node not silenced.
func (a *Agent) Heartbeat(ctx context.Context) error {
	a.hbMu.Lock()
	defer a.hbMu.Unlock()
	now := metav1.NewMicroTime(a.clk.Now())
	secs := int32(40)
	for _, name := range a.nodes {
		a.mu.Lock()
		silent := a.silent[name]
		a.mu.Unlock()
		if silent {
			continue
		}
		l, err := store.Get[*coordinationv1.Lease](ctx, a.s, corev1.NamespaceNodeLease, name)
		if apierrors.IsNotFound(err) {
			holder := name
			_, err = store.Create(ctx, a.s, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Namespace: corev1.NamespaceNodeLease, Name: name},
				Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, RenewTime: &now},
			})
		} else if err == nil {
			l = l.DeepCopy()
			l.Spec.RenewTime = &now
			_, err = store.Update(ctx, a.s, l)
		}
		if err != nil {
			return fmt.Errorf("simnode: heartbeat %s: %w", name, err)
		}
		if err := a.postReady(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// postReady sets the node's Ready condition back to True when something
// (the node lifecycle controller) changed it, as a kubelet's status update does.
func (a *Agent) postReady(ctx context.Context, name string) error {
	n, err := store.Get[*corev1.Node](ctx, a.s, "", name)
	if err != nil {
		return fmt.Errorf("simnode: heartbeat %s: %w", name, err)
	}
	now := metav1.NewTime(a.clk.Now())
	for i, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		if c.Status == corev1.ConditionTrue {
			return nil
		}
		up := n.DeepCopy()
		up.Status.Conditions[i] = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "simulated node agent is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now}
		if _, err := store.UpdateStatus(ctx, a.s, up); err != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("simnode: post ready %s: %w", name, err)
		}
	}
	return nil
}

func (a *Agent) ours(node string) bool {
	for _, n := range a.nodes {
		if n == node {
			return true
		}
	}
	return false
}

func (a *Agent) reconcile(ctx context.Context, key string) (controller.Result, error) {
	ns, name := controller.SplitKey(key)
	o, ok := a.pods.Get(ns, name)
	if !ok {
		return controller.Result{}, nil
	}
	pod := o.(*corev1.Pod)
	if pod.Spec.NodeName == "" {
		if a.opts.TestBinder && pod.DeletionTimestamp == nil {
			return controller.Result{}, a.bind(ctx, pod)
		}
		return controller.Result{}, nil
	}
	if !a.ours(pod.Spec.NodeName) {
		return controller.Result{}, nil
	}
	if pod.DeletionTimestamp != nil {
		if len(pod.Finalizers) > 0 && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
			// The pod outlives its containers until its finalizers go:
			// like the kubelet, record that it was stopped (phase Failed)
			// before the final delete.
			if err := a.stopped(ctx, pod); err != nil {
				return controller.Result{}, err
			}
		}
		zero := int64(0)
		err := store.Delete[*corev1.Pod](ctx, a.s, ns, name, metav1.DeleteOptions{GracePeriodSeconds: &zero,
			Preconditions: &metav1.Preconditions{UID: &pod.UID}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			err = nil
		}
		return controller.Result{}, err
	}
	if pod.Status.Phase != corev1.PodPending || a.opts.Manual {
		return controller.Result{}, nil
	}
	for _, c := range pod.Spec.Containers {
		if a.broken[c.Image] {
			return controller.Result{}, a.setWaiting(ctx, pod, "ErrImagePull")
		}
	}
	return controller.Result{}, a.start(ctx, pod)
}

// requiredNode returns the node a pod's required node affinity pins it to
// through a metadata.name field selector, or "".
func requiredNode(pod *corev1.Pod) string {
	aff := pod.Spec.Affinity
	if aff == nil || aff.NodeAffinity == nil || aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return ""
	}
	for _, t := range aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, f := range t.MatchFields {
			if f.Key == "metadata.name" && f.Operator == corev1.NodeSelectorOpIn && len(f.Values) == 1 {
				return f.Values[0]
			}
		}
	}
	return ""
}

// bind is the round-robin test binder: it is no scheduler (no resources,
// taints or affinity beyond a pinned node name), only a stand-in for tests.
func (a *Agent) bind(ctx context.Context, pod *corev1.Pod) error {
	node := requiredNode(pod)
	if node == "" {
		a.mu.Lock()
		node = a.nodes[a.rr%len(a.nodes)]
		a.rr++
		a.mu.Unlock()
	} else if !a.ours(node) {
		return nil
	}
	up := pod.DeepCopy()
	up.Spec.NodeName = node
	_, err := store.Update(ctx, a.s, up)
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func (a *Agent) podIP(node string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	idx := 0
	for i, n := range a.nodes {
		if n == node {
			idx = i
		}
	}
	a.ipSeq[node]++
	n := a.ipSeq[node]
	return fmt.Sprintf("10.%d.%d.%d", 200+idx/250, idx%250, n%250+1)
}

// podIPv6 derives a pod's IPv6 address from its IPv4 one: 10.a.b.c →
// fd00:10:a:b::c (a unique local address, never routed off the machine).
func podIPv6(v4 string) string {
	var a, b, c, d int
	if _, err := fmt.Sscanf(v4, "%d.%d.%d.%d", &a, &b, &c, &d); err != nil {
		return ""
	}
	return fmt.Sprintf("fd00:%x:%x:%x::%x", a, b, c, d)
}

func (a *Agent) setWaiting(ctx context.Context, pod *corev1.Pod, reason string) error {
	if len(pod.Status.ContainerStatuses) > 0 && pod.Status.ContainerStatuses[0].State.Waiting != nil &&
		pod.Status.ContainerStatuses[0].State.Waiting.Reason == reason {
		return nil
	}
	up := pod.DeepCopy()
	up.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		up.Status.ContainerStatuses = append(up.Status.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "simulated: image " + c.Image + " cannot be pulled"}}})
	}
	now := metav1.NewTime(a.clk.Now())
	up.Status.StartTime = &now
	up.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", LastTransitionTime: now},
	}
	return a.writeStatus(ctx, up)
}

func (a *Agent) writeStatus(ctx context.Context, pod *corev1.Pod) error {
	_, err := store.UpdateStatus(ctx, a.s, pod)
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func (a *Agent) start(ctx context.Context, pod *corev1.Pod) error {
	up := pod.DeepCopy()
	now := metav1.NewTime(a.clk.Now())
	up.Status.Phase = corev1.PodRunning
	up.Status.StartTime = &now
	up.Status.PodIP = a.podIP(pod.Spec.NodeName)
	up.Status.PodIPs = []corev1.PodIP{{IP: up.Status.PodIP}}
	if a.opts.DualStack {
		up.Status.PodIPs = append(up.Status.PodIPs, corev1.PodIP{IP: podIPv6(up.Status.PodIP)})
	}
	up.Status.HostIP = ""
	up.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		up.Status.ContainerStatuses = append(up.Status.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image,
			ImageID: "simulated://" + c.Image, ContainerID: "simulated://" + string(pod.UID) + "/" + c.Name, Ready: true, Started: ptr(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}})
	}
	up.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	if err := a.writeStatus(ctx, up); err != nil {
		return err
	}
	// Mounting a claim finishes a pending filesystem resize.
	return a.resizeFor(ctx, up)
}

func ptr[T any](v T) *T { return &v }

func (a *Agent) getPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	p, err := store.Get[*corev1.Pod](ctx, a.s, namespace, name)
	if err != nil {
		return nil, fmt.Errorf("simnode: %w", err)
	}
	if p.Spec.NodeName == "" || !a.ours(p.Spec.NodeName) {
		return nil, fmt.Errorf("simnode: pod %s/%s is not bound to a simulated node", namespace, name)
	}
	return p, nil
}

// StartPod makes a bound pod Running with every container ready. A
// conflict with a concurrent write of the pod (a controller's) is retried
// on the pod as it now is, as a kubelet's status update is.
func (a *Agent) StartPod(ctx context.Context, namespace, name string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := a.getPod(ctx, namespace, name)
		if err != nil {
			return err
		}
		return a.start(ctx, p)
	})
}

// SetReady sets a running pod's Ready and ContainersReady conditions.
func (a *Agent) SetReady(ctx context.Context, namespace, name string, ready bool) error {
	p, err := a.getPod(ctx, namespace, name)
	if err != nil {
		return err
	}
	up := p.DeepCopy()
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	now := metav1.NewTime(a.clk.Now())
	set := func(t corev1.PodConditionType) {
		for i := range up.Status.Conditions {
			if up.Status.Conditions[i].Type == t {
				if up.Status.Conditions[i].Status != st {
					up.Status.Conditions[i].Status = st
					up.Status.Conditions[i].LastTransitionTime = now
				}
				return
			}
		}
		up.Status.Conditions = append(up.Status.Conditions, corev1.PodCondition{Type: t, Status: st, LastTransitionTime: now})
	}
	set(corev1.ContainersReady)
	set(corev1.PodReady)
	for i := range up.Status.ContainerStatuses {
		up.Status.ContainerStatuses[i].Ready = ready
	}
	return a.writeStatus(ctx, up)
}

// Succeed ends a bound pod with exit code 0 (phase Succeeded).
func (a *Agent) Succeed(ctx context.Context, namespace, name string) error {
	return a.finish(ctx, namespace, name, 0)
}

// Fail ends a bound pod with exit code 1 (phase Failed, or with
// restartPolicy OnFailure/Always a restart counted in restartCount).
func (a *Agent) Fail(ctx context.Context, namespace, name string) error {
	return a.finish(ctx, namespace, name, 1)
}

func (a *Agent) finish(ctx context.Context, namespace, name string, code int32) error {
	p, err := a.getPod(ctx, namespace, name)
	if err != nil {
		return err
	}
	up := p.DeepCopy()
	now := metav1.NewTime(a.clk.Now())
	if code != 0 && p.Spec.RestartPolicy != corev1.RestartPolicyNever {
		for i := range up.Status.ContainerStatuses {
			cs := &up.Status.ContainerStatuses[i]
			cs.RestartCount++
			cs.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: "Error", FinishedAt: now}}
		}
		return a.writeStatus(ctx, up)
	}
	phase, reason := corev1.PodSucceeded, "Completed"
	if code != 0 {
		phase, reason = corev1.PodFailed, "Error"
	}
	up.Status.Phase = phase
	if up.Status.StartTime == nil {
		up.Status.StartTime = &now
	}
	up.Status.ContainerStatuses = nil
	for _, c := range p.Spec.Containers {
		up.Status.ContainerStatuses = append(up.Status.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, FinishedAt: now}}})
	}
	for i := range up.Status.Conditions {
		if t := up.Status.Conditions[i].Type; t == corev1.PodReady || t == corev1.ContainersReady {
			up.Status.Conditions[i].Status = corev1.ConditionFalse
			up.Status.Conditions[i].Reason = "PodCompleted"
			up.Status.Conditions[i].LastTransitionTime = now
		}
	}
	return a.writeStatus(ctx, up)
}

// stopped records that a deleted pod's containers were killed: phase
// Failed, exit code 137.
func (a *Agent) stopped(ctx context.Context, pod *corev1.Pod) error {
	up := pod.DeepCopy()
	now := metav1.NewTime(a.clk.Now())
	up.Status.Phase = corev1.PodFailed
	up.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		up.Status.ContainerStatuses = append(up.Status.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Error", FinishedAt: now}}})
	}
	for i := range up.Status.Conditions {
		if t := up.Status.Conditions[i].Type; t == corev1.PodReady || t == corev1.ContainersReady {
			up.Status.Conditions[i].Status = corev1.ConditionFalse
			up.Status.Conditions[i].Reason = "PodCompleted"
			up.Status.Conditions[i].LastTransitionTime = now
		}
	}
	return a.writeStatus(ctx, up)
}

// Exit ends a bound pod's containers with exit code code: 0 is Succeed;
// any other code fails the pod (phase Failed) or, with restartPolicy
// OnFailure/Always, counts a restart.
func (a *Agent) Exit(ctx context.Context, namespace, name string, code int32) error {
	return a.finish(ctx, namespace, name, code)
}

// SetCondition sets (adds or replaces) a condition of a bound pod, as the
// kubelet or a controller would, for instance DisruptionTarget.
func (a *Agent) SetCondition(ctx context.Context, namespace, name string, cond corev1.PodCondition) error {
	p, err := a.getPod(ctx, namespace, name)
	if err != nil {
		return err
	}
	up := p.DeepCopy()
	if cond.LastTransitionTime.IsZero() {
		cond.LastTransitionTime = metav1.NewTime(a.clk.Now())
	}
	for i := range up.Status.Conditions {
		if up.Status.Conditions[i].Type == cond.Type {
			up.Status.Conditions[i] = cond
			return a.writeStatus(ctx, up)
		}
	}
	up.Status.Conditions = append(up.Status.Conditions, cond)
	return a.writeStatus(ctx, up)
}

// ResizeFileSystems finishes, as a kubelet's volume manager does, the
// resize of every claim that a running pod on a simulated node mounts and
// that waits with FileSystemResizePending: the claim's capacity becomes
// its allocated size and the condition goes.
func (a *Agent) ResizeFileSystems(ctx context.Context) error {
	for _, o := range a.pods.List("", nil) {
		p := o.(*corev1.Pod)
		if !a.ours(p.Spec.NodeName) || p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		if err := a.resizeFor(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

func (a *Agent) resizeFor(ctx context.Context, p *corev1.Pod) error {
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		pvc, err := store.Get[*corev1.PersistentVolumeClaim](ctx, a.s, p.Namespace, v.PersistentVolumeClaim.ClaimName)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("simnode: %w", err)
		}
		pending := false
		var keep []corev1.PersistentVolumeClaimCondition
		for _, c := range pvc.Status.Conditions {
			if c.Type == corev1.PersistentVolumeClaimFileSystemResizePending && c.Status == corev1.ConditionTrue {
				pending = true
				continue
			}
			keep = append(keep, c)
		}
		alloc, ok := pvc.Status.AllocatedResources[corev1.ResourceStorage]
		if !pending || !ok {
			continue
		}
		up := pvc.DeepCopy()
		up.Status.Conditions = keep
		up.Status.Capacity = up.Status.Capacity.DeepCopy()
		if up.Status.Capacity == nil {
			up.Status.Capacity = corev1.ResourceList{}
		}
		up.Status.Capacity[corev1.ResourceStorage] = alloc
		up.Status.AllocatedResourceStatuses = nil
		if _, err := store.UpdateStatus(ctx, a.s, up); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("simnode: finish resize of %s/%s: %w", pvc.Namespace, pvc.Name, err)
		}
	}
	return nil
}

// PodsOn returns the names (namespace/name) of the pods bound to node, sorted.
func (a *Agent) PodsOn(node string) []string {
	var out []string
	for _, o := range a.pods.ByIndex("node", node) {
		out = append(out, controller.KeyOf(o))
	}
	return out
}
