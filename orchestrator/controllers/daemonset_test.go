package controllers

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/orchestrator/simnode"
	"github.com/tugboatdev/tugboat/store"
)

func withDaemonSet(c Config) runner { return NewDaemonSet(c) }

func daemonSet(name, image string) *appsv1.DaemonSet {
	l := map[string]string{"app": name}
	return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}}}}}
}

// daemonPods maps node → image of the live pods of a DaemonSet.
func (e *env) daemonPods(name string) map[string]string {
	out := map[string]string{}
	for _, p := range e.pods("default", "app="+name) {
		if p.DeletionTimestamp == nil {
			out[nodeOfDaemonPod(p)] += p.Spec.Containers[0].Image
		}
	}
	return out
}

func TestDaemonSetEveryNodeCordonedNewAndDeleted(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 3}, withDaemonSet)
	update(e, "", "sim-node-2", func(n *corev1.Node) {
		n.Spec.Unschedulable = true
		n.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}}
	})
	mustCreate(e, daemonSet("agent", "agent:1"))
	want := map[string]string{"sim-node-0": "agent:1", "sim-node-1": "agent:1", "sim-node-2": "agent:1"}
	e.waitFor("a pod per node, cordoned included", func() (bool, string) {
		got := e.daemonPods("agent")
		return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprint(got)
	})
	p := e.pods("default", "app=agent")[0]
	if nodeOfDaemonPod(p) == "" || len(p.Spec.Tolerations) < len(daemonTolerations) {
		t.Errorf("daemon pod lacks node affinity or tolerations: %+v %v", p.Spec.Affinity, p.Spec.Tolerations)
	}
	e.waitFor("status", func() (bool, string) {
		ds, _ := store.Get[*appsv1.DaemonSet](e.ctx, e.s, "default", "agent")
		st := ds.Status
		return st.DesiredNumberScheduled == 3 && st.CurrentNumberScheduled == 3 && st.NumberReady == 3 && st.NumberAvailable == 3 && st.UpdatedNumberScheduled == 3, fmt.Sprintf("%+v", st)
	})
	// A new node gets its pod; a deleted node's pod goes.
	mustCreate(e, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "extra"}})
	e.waitFor("pod for the new node", func() (bool, string) { got := e.daemonPods("agent"); return got["extra"] == "agent:1", fmt.Sprint(got) })
	if err := store.Delete[*corev1.Node](e.ctx, e.s, "", "sim-node-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("deleted node's pod removed", func() (bool, string) {
		got := e.daemonPods("agent")
		_, has := got["sim-node-1"]
		return !has, fmt.Sprint(got)
	})
	// A node selector that excludes a node removes its pod.
	update(e, "", "sim-node-0", func(n *corev1.Node) { n.Labels["role"] = "edge" })
	update(e, "default", "agent", func(d *appsv1.DaemonSet) { d.Spec.Template.Spec.NodeSelector = map[string]string{"role": "edge"} })
	e.waitFor("only the edge node", func() (bool, string) {
		got := e.daemonPods("agent")
		return len(got) == 1 && got["sim-node-0"] != "", fmt.Sprint(got)
	})
}

func TestDaemonSetRollingUpdateAndOnDelete(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 3}, withDaemonSet)
	mustCreate(e, daemonSet("agent", "agent:1"))
	e.waitFor("3 pods", func() (bool, string) { got := e.daemonPods("agent"); return len(got) == 3, fmt.Sprint(got) })
	update(e, "default", "agent", func(d *appsv1.DaemonSet) { d.Spec.Template.Spec.Containers[0].Image = "agent:2" })
	e.waitFor("all on agent:2", func() (bool, string) {
		got := e.daemonPods("agent")
		for _, img := range got {
			if img != "agent:2" {
				return false, fmt.Sprint(got)
			}
		}
		return len(got) == 3, fmt.Sprint(got)
	})
	update(e, "default", "agent", func(d *appsv1.DaemonSet) {
		d.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
		d.Spec.Template.Spec.Containers[0].Image = "agent:3"
	})
	if ok, desc := e.settle(func() (bool, string) {
		got := e.daemonPods("agent")
		return got["sim-node-0"] == "agent:2" && got["sim-node-1"] == "agent:2" && got["sim-node-2"] == "agent:2", fmt.Sprint(got)
	}); !ok {
		t.Fatalf("OnDelete replaced pods: %s", desc)
	}
	for _, p := range e.pods("default", "app=agent") {
		if nodeOfDaemonPod(p) == "sim-node-1" {
			if err := store.Delete[*corev1.Pod](e.ctx, e.s, "default", p.Name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.waitFor("deleted pod comes back new", func() (bool, string) {
		got := e.daemonPods("agent")
		return got["sim-node-1"] == "agent:3", fmt.Sprint(got)
	})
	crs, _, _ := store.ListOf[*appsv1.ControllerRevision](e.ctx, e.s, "default", metav1.ListOptions{})
	if len(crs) != 3 {
		t.Errorf("%d controller revisions, want 3", len(crs))
	}
}
