package agent

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/simulated"
	"github.com/tugboatdev/tugboat/store"
)

const testNode = "node-a"

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// recorded collects the container configs the simulated runtime saw.
type recorded struct {
	mu   sync.Mutex
	cfgs []runtime.ContainerConfig
}

func (r *recorded) add(c *runtime.ContainerConfig) {
	r.mu.Lock()
	r.cfgs = append(r.cfgs, *c)
	r.mu.Unlock()
}

func (r *recorded) all() []runtime.ContainerConfig {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]runtime.ContainerConfig(nil), r.cfgs...)
}

func (r *recorded) last(name string) *runtime.ContainerConfig {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.cfgs) - 1; i >= 0; i-- {
		if r.cfgs[i].Name == name {
			c := r.cfgs[i]
			return &c
		}
	}
	return nil
}

type envOpts struct {
	clock   clock.WithDelayedExecution
	script  func(sb *runtime.PodSandboxConfig, c *runtime.ContainerConfig) simulated.Behavior
	exec    func(id string, cmd []string, out io.Writer) int32
	pullErr func(ref string) error
	cfg     func(*Config)
	noRun   bool
}

type testEnv struct {
	t      testing.TB
	ctx    context.Context
	s      *store.Store
	rt     *simulated.Runtime
	agent  *Agent
	rec    *recorded
	cancel context.CancelFunc
	done   chan error
	cfg    Config
}

// newEnv starts a store, a simulated runtime (pod IPs on loopback, so
// probes never leave the machine) and an agent.
func newEnv(t testing.TB, o envOpts) *testEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := store.Open(ctx, store.Config{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorded{}
	rt := simulated.New(simulated.Options{Clock: o.clock, Images: []string{"busybox:1", "app:1"},
		PodCIDR: netip.MustParsePrefix("127.10.0.0/16"), NodeIP: "127.0.0.1", Exec: o.exec, PullError: o.pullErr,
		Script: func(sb *runtime.PodSandboxConfig, c *runtime.ContainerConfig) simulated.Behavior {
			rec.add(c)
			if o.script != nil {
				return o.script(sb, c)
			}
			return simulated.Behavior{}
		}})
	cfg := Config{NodeName: testNode, Store: s, Runtime: rt, RootDir: t.TempDir(), NodeIP: "127.0.0.1", Hostname: "node-a.test",
		RuntimeName: "simulated", PodCIDR: "10.244.1.0/24", Labels: map[string]string{"zone": "z1"},
		Taints: []string{"dedicated=db:NoSchedule"}, Log: quietLog(),
		Measure: func(context.Context) (Measurements, error) {
			return Measurements{CPUs: 4, MemoryTotal: 8 << 30, MemoryAvailable: 6 << 30, DiskTotal: 100 << 30, DiskAvailable: 50 << 30, PIDsInUse: 300, PIDMax: 32768}, nil
		},
		ResyncInterval: 200 * time.Millisecond, StatusInterval: 100 * time.Millisecond}
	if o.clock != nil {
		cfg.Clock = o.clock
		cfg.ResyncInterval = 0
		cfg.StatusInterval = 0
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	e := &testEnv{t: t, ctx: ctx, s: s, rt: rt, rec: rec, cancel: cancel, cfg: cfg}
	t.Cleanup(func() {
		e.stop()
		// Remove what the pods left (tmpfs mounts) before TempDir cleanup.
		if e.agent != nil {
			for _, p := range e.pods() {
				_ = cleanupPodDir(e.agent.podDir(p.UID))
			}
		}
		s.Close()
		rt.Close()
	})
	if !o.noRun {
		e.start()
	}
	return e
}

func (e *testEnv) start() {
	e.t.Helper()
	a, err := New(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.agent = a
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	e.done = done
	e.cancel = cancel
}

// stop stops the agent (its containers keep running).
func (e *testEnv) stop() {
	if e.cancel != nil {
		e.cancel()
	}
	if e.done != nil {
		if err := <-e.done; err != nil {
			e.t.Errorf("agent Run: %v", err)
		}
		e.done = nil
	}
}

func (e *testEnv) pods() []*corev1.Pod {
	ps, _, _ := store.ListOf[*corev1.Pod](context.Background(), e.s, "", metav1.ListOptions{})
	return ps
}

// createPod creates a pod bound to the test node.
func (e *testEnv) createPod(p *corev1.Pod) *corev1.Pod {
	e.t.Helper()
	if p.Namespace == "" {
		p.Namespace = "default"
	}
	if p.Spec.NodeName == "" {
		p.Spec.NodeName = testNode
	}
	out, err := store.Create(e.ctx, e.s, p)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// waitPod waits until cond holds for the pod and returns it.
func (e *testEnv) waitPod(ns, name string, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last *corev1.Pod
	for time.Now().Before(deadline) {
		p, err := store.Get[*corev1.Pod](context.Background(), e.s, ns, name)
		if err == nil {
			last = p
			if cond(p) {
				return p
			}
		} else if !apierrors.IsNotFound(err) {
			e.t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if last != nil {
		e.t.Fatalf("pod %s/%s: timed out waiting for %s; status %s: %+v", ns, name, what, PodStatusString(last), last.Status)
	}
	e.t.Fatalf("pod %s/%s: timed out waiting for %s; pod not found", ns, name, what)
	return nil
}

func (e *testEnv) waitStatus(ns, name, status string) *corev1.Pod {
	e.t.Helper()
	return e.waitPod(ns, name, "status "+status, func(p *corev1.Pod) bool { return PodStatusString(p) == status })
}

func (e *testEnv) waitGone(ns, name string) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := store.Get[*corev1.Pod](context.Background(), e.s, ns, name); apierrors.IsNotFound(err) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("pod %s/%s still exists", ns, name)
}

// events returns the messages of the events about an object with reason.
func (e *testEnv) events(name, reason string) []string {
	evs, _, _ := store.ListOf[*corev1.Event](context.Background(), e.s, "", metav1.ListOptions{})
	var out []string
	for _, ev := range evs {
		if ev.InvolvedObject.Name == name && ev.Reason == reason {
			out = append(out, ev.Message)
		}
	}
	return out
}

func (e *testEnv) waitEvent(name, reason string) []string {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if evs := e.events(name, reason); len(evs) > 0 {
			return evs
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("no %s event about %s", reason, name)
	return nil
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }

func simplePod(name string, containers ...corev1.Container) *corev1.Pod {
	if len(containers) == 0 {
		containers = []corev1.Container{{Name: "app", Image: "app:1"}}
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{Containers: containers, TerminationGracePeriodSeconds: ptr(int64(0))}}
}

// watchStatuses records every kubectl STATUS a pod goes through (and the
// waiting messages) from now on.
func (e *testEnv) watchStatuses(name string) func() []string {
	e.t.Helper()
	w, err := store.WatchOf[*corev1.Pod](e.ctx, e.s, "", metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		e.t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	go func() {
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok {
				mu.Lock()
				if s := PodStatusString(p); len(seen) == 0 || seen[len(seen)-1] != s {
					seen = append(seen, s)
				}
				mu.Unlock()
			}
		}
	}()
	e.t.Cleanup(w.Stop)
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}
