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
	e.waitFor("sim-node-0 Ready=Unknown with unreachable taints", func() (bool, string) {
		n, _ := store.Get[*corev1.Node](e.ctx, e.s, "", "sim-node-0")
		c := nodeReady(n)
		ne, ns := false, false
		for _, t := range n.Spec.Taints {
			if t.Key == corev1.TaintNodeUnreachable {
				ne = ne || t.Effect == corev1.TaintEffectNoExecute
				ns = ns || t.Effect == corev1.TaintEffectNoSchedule
			}
		}
		return c != nil && c.Status == corev1.ConditionUnknown && ne && ns, fmt.Sprint(n.Status.Conditions, n.Spec.Taints)
	})
	if n, _ := store.Get[*corev1.Node](e.ctx, e.s, "", "sim-node-1"); nodeReady(n).Status != corev1.ConditionTrue || len(n.Spec.Taints) != 0 {
		t.Fatalf("healthy node changed: %v %v", n.Status.Conditions, n.Spec.Taints)
	}
	e.advance(70 * time.Second)
	e.waitFor("60 s toleration ran out", func() (bool, string) { return e.evicted("sixty"), "" })
	if e.evicted("plain") || e.evicted("forever") {
		t.Fatal("evicted before the default 300 s")
	}
	e.advance(250 * time.Second) // the taint came at about 50 s
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
	mustCreate(e, podOn("tolerant", "sim-node-0", corev1.Toleration{Key: "maintenance", Operator: corev1.TolerationOpEqual, Value: "yes", Effect: corev1.TaintEffectNoExecute}))
	update(e, "", "sim-node-0", func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "maintenance", Value: "yes", Effect: corev1.TaintEffectNoExecute})
	})
	e.waitFor("victim evicted", func() (bool, string) { return e.evicted("victim"), "" })
	if ok, _ := e.settle(func() (bool, string) { return !e.evicted("tolerant"), "" }); !ok {
		t.Fatal("tolerating pod evicted")
	}
}
