package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/tugboatdev/tugboat/orchestrator/simnode"
	"github.com/tugboatdev/tugboat/store"
)

func (e *env) leaseHolder() string {
	l, err := store.Get[*coordinationv1.Lease](e.ctx, e.s, "kube-system", "tugboat-controller-manager")
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func TestManagerLeaderElectionHandsOver(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2})
	run := func(id string) (context.CancelFunc, chan error) {
		ctx, cancel := context.WithCancel(e.ctx)
		done := make(chan error, 1)
		m := NewManager(ManagerOptions{Store: e.s, Clock: e.clk, Log: quietLog(), LeaderElection: true, Identity: id,
			Controllers: []string{"replicaset", "deployment"}})
		go func() { done <- m.Run(ctx) }()
		return cancel, done
	}
	stop1, done1 := run("first")
	e.waitFor("first leads", func() (bool, string) { return e.leaseHolder() == "first", e.leaseHolder() })
	stop2, done2 := run("second")
	defer func() { stop2(); <-done2 }()
	mustCreate(e, deployment("one", 2, "nginx"))
	e.waitRolledOut("one")
	if h := e.leaseHolder(); h != "first" {
		t.Fatalf("holder %q while first runs", h)
	}
	stop1()
	if err := <-done1; err != nil {
		t.Fatal(err)
	}
	// second retries every 2 s of its clock and takes the released lease.
	e.waitFor("second leads", func() (bool, string) {
		e.clk.Step(2 * time.Second)
		return e.leaseHolder() == "second", e.leaseHolder()
	})
	mustCreate(e, deployment("two", 2, "nginx"))
	e.waitRolledOut("two")
}

func TestNamespaceDeletionWithRunningControllers(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2}, withReplicaSet, withDeployment, withEndpoints, withServiceAccount)
	mustCreate(e, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}})
	d := deployment("web", 3, "nginx")
	d.Namespace = "team"
	mustCreate(e, d)
	e.waitFor("running in team", func() (bool, string) {
		got, _ := store.Get[*appsv1.Deployment](e.ctx, e.s, "team", "web")
		return got.Status.AvailableReplicas == 3, describeDeploy(got)
	})
	if err := store.Delete[*corev1.Namespace](e.ctx, e.s, "", "team", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("namespace and contents gone", func() (bool, string) {
		_, err := store.Get[*corev1.Namespace](e.ctx, e.s, "", "team")
		ps, _, _ := store.ListOf[*corev1.Pod](e.ctx, e.s, "team", metav1.ListOptions{})
		return apierrors.IsNotFound(err) && len(ps) == 0, fmt.Sprint(err, len(ps))
	})
}

func FuzzTemplateHashIsALabelValue(f *testing.F) {
	f.Add("nginx:1.25", "web", int32(0))
	f.Add("", "", int32(-1))
	f.Fuzz(func(t *testing.T, image, label string, collisions int32) {
		tmpl := &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": label}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}}}
		h := templateHash(tmpl, &collisions)
		if errs := validation.IsValidLabelValue(h); len(errs) > 0 || h == "" {
			t.Fatalf("hash %q: %v", h, errs)
		}
		if h != templateHash(tmpl.DeepCopy(), &collisions) {
			t.Fatal("hash not stable")
		}
		// The hash label itself does not change the hash.
		withLabel := tmpl.DeepCopy()
		withLabel.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = h
		if templateHash(withLabel, &collisions) != h || !equalIgnoreHash(withLabel, tmpl) {
			t.Fatal("pod-template-hash label changes the hash")
		}
	})
}

func FuzzStatefulSetOrdinal(f *testing.F) {
	f.Add("web", "web-3")
	f.Add("web", "web--1")
	f.Add("a-b", "a-b-007")
	f.Fuzz(func(t *testing.T, set, pod string) {
		s := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: set}}
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: pod}}
		o := ordinalOf(s, p)
		if o >= 0 && fmt.Sprintf("%s-%d", set, o) != pod {
			t.Fatalf("ordinal %d of %q in set %q does not round-trip", o, pod, set)
		}
		p.Name = fmt.Sprintf("%s-%d", set, 12)
		if ordinalOf(s, p) != 12 {
			t.Fatalf("ordinal of %s", p.Name)
		}
	})
}

func FuzzFormatIndexes(f *testing.F) {
	f.Add([]byte{0, 1, 2, 5})
	f.Fuzz(func(t *testing.T, raw []byte) {
		seen := map[int]bool{}
		var idx []int
		for _, b := range raw {
			if !seen[int(b)] {
				seen[int(b)] = true
				idx = append(idx, int(b))
			}
		}
		out := formatIndexes(append([]int(nil), idx...))
		// Parse it back.
		got := map[int]bool{}
		if out != "" {
			for _, part := range splitComma(out) {
				var a, b int
				if n, _ := fmt.Sscanf(part, "%d-%d", &a, &b); n == 2 {
					if b <= a {
						t.Fatalf("bad range %q in %q", part, out)
					}
					for i := a; i <= b; i++ {
						got[i] = true
					}
				} else if _, err := fmt.Sscanf(part, "%d", &a); err == nil {
					got[a] = true
				} else {
					t.Fatalf("unparseable %q in %q", part, out)
				}
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(seen) {
			t.Fatalf("%v formatted as %q", idx, out)
		}
	})
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}
