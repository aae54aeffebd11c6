package controllers

import (
	"fmt"
	"sort"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tugboatdev/tugboat/orchestrator/simnode"
	"github.com/tugboatdev/tugboat/store"
)

func withStatefulSet(c Config) runner { return NewStatefulSet(c) }

func statefulSet(name string, replicas int32) *appsv1.StatefulSet {
	l := map[string]string{"app": name}
	return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: appsv1.StatefulSetSpec{Replicas: &replicas, ServiceName: name, Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l},
				// The container does not mount "data": the store's validation
				// does not yet count volumeClaimTemplates as volumes.
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "db:1"}}}},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}}}}
}

// stsPods lists "name=image" of live pods, sorted.
func (e *env) stsPods(app string) []string {
	var out []string
	for _, p := range e.pods("default", "app="+app) {
		if p.DeletionTimestamp == nil {
			out = append(out, p.Name+"="+p.Spec.Containers[0].Image)
		}
	}
	sort.Strings(out)
	return out
}

func TestStatefulSetOrderedReadyWithClaims(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2, Manual: true}, withStatefulSet)
	mustCreate(e, statefulSet("db", 3))
	for i := range 3 {
		name := fmt.Sprintf("db-%d", i)
		e.waitFor(name+" alone", func() (bool, string) {
			got := e.stsPods("db")
			return len(got) == i+1 && got[i] == name+"=db:1", fmt.Sprint(got)
		})
		if ok, desc := e.settle(func() (bool, string) { got := e.stsPods("db"); return len(got) == i+1, fmt.Sprint(got) }); !ok {
			t.Fatalf("next ordinal before %s is ready: %s", name, desc)
		}
		e.waitFor(name+" bound", func() (bool, string) {
			p, _ := store.Get[*corev1.Pod](e.ctx, e.s, "default", name)
			return p.Spec.NodeName != "", ""
		})
		if err := e.agent.StartPod(e.ctx, "default", name); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := store.Get[*corev1.Pod](e.ctx, e.s, "default", "db-1")
	if p.Spec.Hostname != "db-1" || p.Spec.Subdomain != "db" || p.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "data-db-1" {
		t.Errorf("pod identity: hostname %q subdomain %q volumes %+v", p.Spec.Hostname, p.Spec.Subdomain, p.Spec.Volumes)
	}
	e.waitFor("status", func() (bool, string) {
		s, _ := store.Get[*appsv1.StatefulSet](e.ctx, e.s, "default", "db")
		return s.Status.ReadyReplicas == 3 && s.Status.Replicas == 3 && s.Status.CurrentRevision == s.Status.UpdateRevision, fmt.Sprintf("%+v", s.Status)
	})
	// Scale down: highest ordinal first, claims stay.
	w, err := store.WatchOf[*corev1.Pod](e.ctx, e.s, "default", metav1.ListOptions{})
	_ = w
	if err != nil {
		t.Fatal(err)
	}
	update(e, "default", "db", func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr(int32(1)) })
	e.waitFor("db-2 goes first", func() (bool, string) {
		got := e.stsPods("db")
		return len(got) <= 2 && got[len(got)-1] != "db-2=db:1", fmt.Sprint(got)
	})
	e.waitFor("scaled to 1", func() (bool, string) { got := e.stsPods("db"); return len(got) == 1, fmt.Sprint(got) })
	w.Stop()
	for i := range 3 {
		if _, err := store.Get[*corev1.PersistentVolumeClaim](e.ctx, e.s, "default", fmt.Sprintf("data-db-%d", i)); err != nil {
			t.Errorf("claim %d: %v", i, err)
		}
	}
}

func TestStatefulSetParallelAndPartitionedUpdate(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2}, withStatefulSet)
	s := statefulSet("web", 3)
	s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
	s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr(int32(1))}}
	mustCreate(e, s)
	e.waitFor("3 ready", func() (bool, string) {
		s, _ := store.Get[*appsv1.StatefulSet](e.ctx, e.s, "default", "web")
		return s.Status.ReadyReplicas == 3, fmt.Sprintf("%+v", s.Status)
	})
	update(e, "default", "web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "db:2" })
	want := []string{"web-0=db:1", "web-1=db:2", "web-2=db:2"}
	e.waitFor("ordinals ≥ 1 updated", func() (bool, string) {
		got := e.stsPods("web")
		return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprint(got)
	})
	if ok, desc := e.settle(func() (bool, string) {
		got := e.stsPods("web")
		return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprint(got)
	}); !ok {
		t.Fatalf("partition not honoured: %s", desc)
	}
	update(e, "default", "web", func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.RollingUpdate.Partition = ptr(int32(0)) })
	e.waitFor("all updated", func() (bool, string) {
		got := e.stsPods("web")
		return fmt.Sprint(got) == "[web-0=db:2 web-1=db:2 web-2=db:2]", fmt.Sprint(got)
	})
	e.waitFor("current revision", func() (bool, string) {
		s, _ := store.Get[*appsv1.StatefulSet](e.ctx, e.s, "default", "web")
		return s.Status.CurrentRevision == s.Status.UpdateRevision && s.Status.UpdatedReplicas == 3, fmt.Sprintf("%+v", s.Status)
	})
}

func (e *env) startSts(name string) {
	e.t.Helper()
	e.waitFor(name+" bound", func() (bool, string) {
		p, err := store.Get[*corev1.Pod](e.ctx, e.s, "default", name)
		if err != nil {
			return false, err.Error()
		}
		return p.Spec.NodeName != "" && p.DeletionTimestamp == nil, p.Spec.NodeName
	})
	if err := e.agent.StartPod(e.ctx, "default", name); err != nil {
		e.t.Fatal(err)
	}
}

// OrderedReady waits for each pod to be available (ready for
// minReadySeconds) before creating the next.
func TestStatefulSetMinReadySeconds(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2, Manual: true}, withStatefulSet)
	s := statefulSet("db", 2)
	s.Spec.MinReadySeconds = 30
	mustCreate(e, s)
	e.startSts("db-0")
	e.waitFor("db-0 ready", func() (bool, string) {
		s, _ := store.Get[*appsv1.StatefulSet](e.ctx, e.s, "default", "db")
		return s.Status.ReadyReplicas == 1 && s.Status.AvailableReplicas == 0, fmt.Sprintf("%+v", s.Status)
	})
	if ok, desc := e.settle(func() (bool, string) { got := e.stsPods("db"); return len(got) == 1, fmt.Sprint(got) }); !ok {
		t.Fatalf("db-1 made before db-0 was available: %s", desc)
	}
	e.clk.Step(30 * time.Second)
	e.waitFor("db-1 after minReadySeconds", func() (bool, string) { got := e.stsPods("db"); return len(got) == 2, fmt.Sprint(got) })
	e.waitFor("db-0 available", func() (bool, string) {
		s, _ := store.Get[*appsv1.StatefulSet](e.ctx, e.s, "default", "db")
		return s.Status.AvailableReplicas == 1, fmt.Sprintf("%+v", s.Status)
	})
}

// rollingUpdate.maxUnavailable lets several ordinals be replaced at once.
func TestStatefulSetMaxUnavailable(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2, Manual: true}, withStatefulSet)
	s := statefulSet("web", 5)
	s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
	mu := intstr.FromString("50%") // of 5, rounded down: 2
	s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{MaxUnavailable: &mu}}
	mustCreate(e, s)
	for i := range 5 {
		e.startSts(fmt.Sprintf("web-%d", i))
	}
	e.waitFor("5 ready", func() (bool, string) {
		s, _ := store.Get[*appsv1.StatefulSet](e.ctx, e.s, "default", "web")
		return s.Status.ReadyReplicas == 5, fmt.Sprintf("%+v", s.Status)
	})
	update(e, "default", "web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "db:2" })
	want := "[web-0=db:1 web-1=db:1 web-2=db:1 web-3=db:2 web-4=db:2]"
	e.waitFor("two highest replaced together", func() (bool, string) { got := e.stsPods("web"); return fmt.Sprint(got) == want, fmt.Sprint(got) })
	if ok, desc := e.settle(func() (bool, string) { got := e.stsPods("web"); return fmt.Sprint(got) == want, fmt.Sprint(got) }); !ok {
		t.Fatalf("more than 2 unavailable: %s", desc)
	}
	e.startSts("web-4")
	want = "[web-0=db:1 web-1=db:1 web-2=db:2 web-3=db:2 web-4=db:2]"
	e.waitFor("one more as one comes back", func() (bool, string) { got := e.stsPods("web"); return fmt.Sprint(got) == want, fmt.Sprint(got) })
	for _, n := range []string{"web-3", "web-2"} {
		e.startSts(n)
	}
	e.waitFor("all replaced", func() (bool, string) {
		for _, n := range []string{"web-1", "web-0"} {
			if p, err := store.Get[*corev1.Pod](e.ctx, e.s, "default", n); err == nil && p.Spec.Containers[0].Image == "db:2" &&
				p.Spec.NodeName != "" && p.Status.Phase == corev1.PodPending {
				_ = e.agent.StartPod(e.ctx, "default", n)
			}
		}
		got := e.stsPods("web")
		return fmt.Sprint(got) == "[web-0=db:2 web-1=db:2 web-2=db:2 web-3=db:2 web-4=db:2]", fmt.Sprint(got)
	})
}

func (e *env) claimNames() []string {
	pvcs, _, err := store.ListOf[*corev1.PersistentVolumeClaim](e.ctx, e.s, "default", metav1.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, c := range pvcs {
		if c.DeletionTimestamp == nil {
			out = append(out, c.Name)
		}
	}
	sort.Strings(out)
	return out
}

func TestStatefulSetClaimRetentionPolicy(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		whenDeleted, whenScale appsv1.PersistentVolumeClaimRetentionPolicyType
		afterScale, afterDel   string
	}{
		{"retain retain", appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
			"[data-db-0 data-db-1 data-db-2]", "[data-db-0 data-db-1 data-db-2]"},
		{"scaled delete", appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
			"[data-db-0]", "[data-db-0]"},
		{"deleted delete", appsv1.DeletePersistentVolumeClaimRetentionPolicyType, appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
			"[data-db-0 data-db-1 data-db-2]", "[]"},
		{"both delete", appsv1.DeletePersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
			"[data-db-0]", "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, simnode.Options{Nodes: 2}, withStatefulSet)
			s := statefulSet("db", 3)
			s.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: tc.whenDeleted, WhenScaled: tc.whenScale}
			mustCreate(e, s)
			e.waitFor("3 ready", func() (bool, string) {
				s, _ := store.Get[*appsv1.StatefulSet](e.ctx, e.s, "default", "db")
				return s.Status.ReadyReplicas == 3, fmt.Sprintf("%+v", s.Status)
			})
			update(e, "default", "db", func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr(int32(1)) })
			e.waitFor("scaled to 1", func() (bool, string) {
				got, claims := e.stsPods("db"), e.claimNames()
				return len(got) == 1 && fmt.Sprint(claims) == tc.afterScale, fmt.Sprint(got, claims)
			})
			if ok, desc := e.settle(func() (bool, string) { c := e.claimNames(); return fmt.Sprint(c) == tc.afterScale, fmt.Sprint(c) }); !ok {
				t.Fatalf("claims after scale-down: %s, want %s", desc, tc.afterScale)
			}
			bg := metav1.DeletePropagationBackground
			if err := store.Delete[*appsv1.StatefulSet](e.ctx, e.s, "default", "db", metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
				t.Fatal(err)
			}
			e.waitFor("set's pods gone", func() (bool, string) {
				got, claims := e.stsPods("db"), e.claimNames()
				return len(got) == 0 && fmt.Sprint(claims) == tc.afterDel, fmt.Sprint(got, claims)
			})
			if ok, desc := e.settle(func() (bool, string) { c := e.claimNames(); return fmt.Sprint(c) == tc.afterDel, fmt.Sprint(c) }); !ok {
				t.Fatalf("claims after set deletion: %s, want %s", desc, tc.afterDel)
			}
		})
	}
}
