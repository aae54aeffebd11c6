package controllers

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/orchestrator/simnode"
	"github.com/tugboatdev/tugboat/store"
)

func withNodeLifecycle(c Config) runner { return NewNodeLifecycle(c) }

func podOn(name, node string, tols ...corev1.Toleration) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.PodSpec{NodeName: node, Tolerations: tols, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
}

// evicted reports whether a pod was deleted or marked for deletion.
func (e *env) evicted(name string) bool {
	p, err := store.Get[*corev1.Pod](e.ctx, e.s, "default", name)
	return apierrors.IsNotFound(err) || (err == nil && p.DeletionTimestamp != nil)
}

// advance steps the fake clock in 10 s heartbeat periods.
func (e *env) advance(d time.Duration) {
	for d > 0 {
		step := min(d, 10*time.Second)
		e.clk.Step(step)
		if err := e.agent.Heartbeat(e.ctx); err != nil {
			e.t.Fatal(err)
		}
		d -= step
	}
}

// advanceTo steps the fake clock (with heartbeats) to at.
func (e *env) advanceTo(at time.Time) {
	if d := at.Sub(e.clk.Now()); d > 0 {
		e.advance(d)
	}
}

// stepUntil steps the fake clock a second (with heartbeats) per poll
// until cond holds, for at most 60 s of fake time.
func (e *env) stepUntil(what string, cond func() (bool, string)) {
	e.t.Helper()
	steps := 0
	e.waitFor(what, func() (bool, string) {
		ok, desc := cond()
		if !ok && steps < 60 {
			steps++
			e.advance(time.Second)
		}
		return ok, desc
	})
}

func TestNodeLifecycleUnreachableAndEviction(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2}, withNodeLifecycle)
	sixty := int64(60)
	mustCreate(e, podOn("plain", "sim-node-0"))
	mustCreate(e, podOn("sixty", "sim-node-0", corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
		Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &sixty}))
	mustCreate(e, podOn("forever", "sim-node-0", corev1.Toleration{Operator: corev1.TolerationOpExists}))
	mustCreate(e, podOn("other-node", "sim-node-1"))
	e.agent.Silence("sim-node-0", true)
	e.advance(50 * time.Second)
	// The NoExecute taint comes one monitor period after the node is
	// marked: step the clock until it is there.
	var tainted time.Time
	e.stepUntil("sim-node-0 Ready=Unknown with unreachable taints", func() (bool, string) {
		n, _ := store.Get[*corev1.Node](e.ctx, e.s, "", "sim-node-0")
		c := nodeReady(n)
		ne, ns := false, false
		for _, t := range n.Spec.Taints {
			if t.Key == corev1.TaintNodeUnreachable {
				if t.Effect == corev1.TaintEffectNoExecute && t.TimeAdded != nil {
					ne, tainted = true, t.TimeAdded.Time
				}
				ns = ns || t.Effect == corev1.TaintEffectNoSchedule
			}
		}
		return c != nil && c.Status == corev1.ConditionUnknown && ne && ns, fmt.Sprint(n.Status.Conditions, n.Spec.Taints)
	})
	if n, _ := store.Get[*corev1.Node](e.ctx, e.s, "", "sim-node-1"); nodeReady(n).Status != corev1.ConditionTrue || len(n.Spec.Taints) != 0 {
		t.Fatalf("healthy node changed: %v %v", n.Status.Conditions, n.Spec.Taints)
	}
	e.advanceTo(tainted.Add(61 * time.Second))
	e.waitFor("60 s toleration ran out", func() (bool, string) { return e.evicted("sixty"), "" })
	if e.evicted("plain") || e.evicted("forever") {
		t.Fatal("evicted before the default 300 s")
	}
	e.advanceTo(tainted.Add(301 * time.Second))
	e.waitFor("default 300 s toleration ran out", func() (bool, string) { return e.evicted("plain"), "" })
	if e.evicted("forever") || e.evicted("other-node") {
		t.Fatal("tolerating pod or pod on healthy node evicted")
	}
	// The node comes back: taints go.
	e.agent.Silence("sim-node-0", false)
	e.advance(10 * time.Second)
	e.waitFor("taints removed", func() (bool, string) {
		n, _ := store.Get[*corev1.Node](e.ctx, e.s, "", "sim-node-0")
		return len(n.Spec.Taints) == 0 && nodeReady(n).Status == corev1.ConditionTrue, fmt.Sprint(n.Spec.Taints)
	})
}

func TestNodeLifecycleManualNoExecuteEvictsAtOnce(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 1, Manual: true}, withNodeLifecycle)
	mustCreate(e, podOn("victim", "sim-node-0"))
	held := podOn("held", "sim-node-0")
	held.Finalizers = []string{"example.com/hold"}
	mustCreate(e, held)
	mustCreate(e, podOn("tolerant", "sim-node-0", corev1.Toleration{Key: "maintenance", Operator: corev1.TolerationOpEqual, Value: "yes", Effect: corev1.TaintEffectNoExecute}))
	update(e, "", "sim-node-0", func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "maintenance", Value: "yes", Effect: corev1.TaintEffectNoExecute})
	})
	e.waitFor("victim evicted", func() (bool, string) { return e.evicted("victim"), "" })
	// The pod, held by a finalizer here, carries the reason.
	e.waitFor("DisruptionTarget condition", func() (bool, string) {
		p, err := store.Get[*corev1.Pod](e.ctx, e.s, "default", "held")
		if err != nil {
			return false, err.Error()
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue && c.Reason == "DeletionByTaintManager" {
				return p.DeletionTimestamp != nil, ""
			}
		}
		return false, fmt.Sprint(p.Status.Conditions)
	})
	update(e, "default", "held", func(p *corev1.Pod) { p.Finalizers = nil })
	if ok, _ := e.settle(func() (bool, string) { return !e.evicted("tolerant"), "" }); !ok {
		t.Fatal("tolerating pod evicted")
	}
}

// noExecuteTainted lists the nodes carrying an unreachable NoExecute taint,
// and counts those with the NoSchedule one.
func (e *env) unreachableTaints() (noExecute []string, noSchedule int) {
	nodes, _, err := store.ListOf[*corev1.Node](e.ctx, e.s, "", metav1.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, n := range nodes {
		for _, t := range n.Spec.Taints {
			if t.Key == corev1.TaintNodeUnreachable {
				if t.Effect == corev1.TaintEffectNoExecute {
					noExecute = append(noExecute, n.Name)
				} else {
					noSchedule++
				}
			}
		}
	}
	return noExecute, noSchedule
}

func TestNodeLifecycleRateLimitedEviction(t *testing.T) {
	type step struct {
		after time.Duration // since the first NoExecute taint (or since marking when none comes)
		want  int
	}
	for _, tc := range []struct {
		name   string
		nodes  int
		silent int
		large  int // LargeClusterSizeThreshold
		steps  []step
	}{
		{"normal zone: 0.1 nodes/s", 5, 2, 50, []step{{0, 1}, {5 * time.Second, 1}, {15 * time.Second, 2}}},
		{"partial disruption, small zone: none", 4, 3, 50, []step{{30 * time.Second, 0}, {400 * time.Second, 0}}},
		{"partial disruption, large zone: secondary 0.01 nodes/s", 4, 3, 3, []step{{0, 1}, {50 * time.Second, 1}, {110 * time.Second, 2}}},
		{"every zone fully disrupted: none", 2, 2, 50, []step{{30 * time.Second, 0}, {400 * time.Second, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, simnode.Options{Nodes: tc.nodes}, func(c Config) runner {
				r := NewNodeLifecycle(c)
				r.LargeClusterSizeThreshold = tc.large
				return r
			})
			mustCreate(e, podOn("victim", "sim-node-0"))
			for i := range tc.silent {
				e.agent.Silence(fmt.Sprintf("sim-node-%d", i), true)
			}
			e.advance(50 * time.Second)
			e.waitFor("silent nodes marked, NoSchedule taints", func() (bool, string) {
				_, ns := e.unreachableTaints()
				return ns == tc.silent, fmt.Sprint(ns)
			})
			start := e.clk.Now()
			if tc.steps[0].want > 0 {
				e.stepUntil("first NoExecute taint", func() (bool, string) {
					ne, _ := e.unreachableTaints()
					return len(ne) > 0, fmt.Sprint(ne)
				})
				start = e.clk.Now()
			}
			for _, st := range tc.steps {
				e.advanceTo(start.Add(st.after))
				e.waitFor(fmt.Sprintf("%d nodes with NoExecute", st.want), func() (bool, string) {
					ne, _ := e.unreachableTaints()
					return len(ne) == st.want, fmt.Sprint(ne)
				})
				if ok, desc := e.settle(func() (bool, string) {
					ne, _ := e.unreachableTaints()
					return len(ne) == st.want, fmt.Sprint(ne)
				}); !ok {
					t.Fatalf("NoExecute taints beyond the rate: %s", desc)
				}
			}
			if tc.steps[len(tc.steps)-1].want == 0 && e.evicted("victim") {
				t.Error("pod evicted although evictions are off")
			}
		})
	}
}

func TestZoneLimiter(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := &zoneLimiter{tokens: 1}
	var got []string
	for _, at := range []time.Duration{0, time.Second, 9 * time.Second, 10 * time.Second, 30 * time.Second, 31 * time.Second} {
		ok, wait := l.take(0.1, start.Add(at))
		got = append(got, fmt.Sprintf("%v:%v/%v", at, ok, wait.Round(time.Second)))
	}
	want := "[0s:true/0s 1s:false/9s 9s:false/1s 10s:true/0s 30s:true/0s 31s:false/9s]"
	if fmt.Sprint(got) != want {
		t.Errorf("got %v, want %s", got, want)
	}
}
