package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tugboatdev/tugboat/orchestrator/simnode"
	"github.com/tugboatdev/tugboat/store"
)

const brokenImage = "registry.invalid/broken:1"

func TestDeploymentCreateRollsOut(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 3}, withReplicaSet, withDeployment)
	d := deployment("web", 5, "nginx:1.25")
	d.Annotations = map[string]string{AnnotationChangeCause: "first"}
	mustCreate(e, d)
	got := e.waitRolledOut("web")
	if got.Annotations[AnnotationRevision] != "1" {
		t.Errorf("deployment revision = %q, want 1", got.Annotations[AnnotationRevision])
	}
	want := appsv1.DeploymentStatus{ObservedGeneration: got.Generation, Replicas: 5, UpdatedReplicas: 5, ReadyReplicas: 5, AvailableReplicas: 5}
	st := got.Status
	st.Conditions = nil
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	av := getDeployCond(&got.Status, appsv1.DeploymentAvailable)
	pr := getDeployCond(&got.Status, appsv1.DeploymentProgressing)
	if av == nil || av.Status != corev1.ConditionTrue || av.Reason != ReasonMinimumAvailable {
		t.Errorf("Available condition = %+v", av)
	}
	e.waitFor("Progressing=True NewReplicaSetAvailable", func() (bool, string) {
		got = e.getDeploy("web")
		pr = getDeployCond(&got.Status, appsv1.DeploymentProgressing)
		return pr != nil && pr.Status == corev1.ConditionTrue && pr.Reason == ReasonNewRSAvailable, describeDeploy(got)
	})
	rss := e.replicaSets(got)
	if len(rss) != 1 {
		t.Fatalf("replicasets: %s", describeRSs(rss))
	}
	rs := rss[0]
	hash := rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	if hash == "" || rs.Name != "web-"+hash || rs.Spec.Selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] != hash {
		t.Errorf("replicaset %s labels %v selector %v: want name web-<pod-template-hash>", rs.Name, rs.Labels, rs.Spec.Selector)
	}
	if rs.Annotations[AnnotationChangeCause] != "first" || rs.Annotations[AnnotationRevision] != "1" {
		t.Errorf("replicaset annotations = %v", rs.Annotations)
	}
	pods := e.pods("default", "app=web,pod-template-hash="+hash)
	if len(pods) != 5 {
		t.Fatalf("%d pods, want 5", len(pods))
	}
	for _, p := range pods {
		if ref := metav1.GetControllerOf(p); ref == nil || ref.UID != rs.UID {
			t.Errorf("pod %s controller = %v, want replicaset %s", p.Name, ref, rs.Name)
		}
	}
}

// TestDeploymentProportionalScaling is the seeds' example: 10 replicas,
// maxSurge 3, maxUnavailable 2, a rollout to a broken image, then a scale
// to 15 while it is stuck: the old ReplicaSet goes 8 → 11, the new 5 → 7.
func TestDeploymentProportionalScaling(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 3, BrokenImages: []string{brokenImage}}, withReplicaSet, withDeployment)
	mustCreate(e, rolling(deployment("web", 10, "nginx:1.25"), intstr.FromInt32(3), intstr.FromInt32(2)))
	d := e.waitRolledOut("web")
	update(e, "default", "web", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = brokenImage })
	sizes := func() (bool, string, []int32) {
		rss := e.replicaSets(d)
		var n []int32
		for _, rs := range rss {
			n = append(n, *rs.Spec.Replicas)
		}
		return len(n) == 2, describeRSs(rss), n
	}
	e.waitFor("rollout stuck at old 8 / new 5", func() (bool, string) {
		ok, desc, n := sizes()
		return ok && n[0] == 8 && n[1] == 5, desc
	})
	if ok, desc := e.settle(func() (bool, string) { ok, desc, n := sizes(); return ok && n[0] == 8 && n[1] == 5, desc }); !ok {
		t.Fatalf("stuck rollout moved: %s", desc)
	}
	update(e, "default", "web", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(int32(15)) })
	e.waitFor("old 11 / new 7", func() (bool, string) {
		ok, desc, n := sizes()
		return ok && n[0] == 11 && n[1] == 7, desc
	})
	if ok, desc := e.settle(func() (bool, string) { ok, desc, n := sizes(); return ok && n[0] == 11 && n[1] == 7, desc }); !ok {
		t.Fatalf("after scaling: %s", desc)
	}
}

func TestDeploymentRollingUpdateRollbackAndHistory(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 3}, withReplicaSet, withDeployment)
	d := deployment("web", 4, "nginx:1.25")
	d.Spec.RevisionHistoryLimit = ptr(int32(2))
	d.Annotations = map[string]string{AnnotationChangeCause: "v1"}
	mustCreate(e, d)
	e.waitRolledOut("web")
	for i, img := range []string{"nginx:1.26", "nginx:1.27", "nginx:1.28"} {
		update(e, "default", "web", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Image = img
			d.Annotations[AnnotationChangeCause] = "to " + img
		})
		got := e.waitRolledOut("web")
		e.waitFor("revision bump", func() (bool, string) {
			got = e.getDeploy("web")
			return got.Annotations[AnnotationRevision] == fmt.Sprint(i+2), got.Annotations[AnnotationRevision]
		})
	}
	d = e.getDeploy("web")
	// revisionHistoryLimit 2: revision 1 is gone, 2 and 3 are kept as old.
	e.waitFor("history trimmed to 2 old replicasets", func() (bool, string) {
		rss := e.replicaSets(d)
		return len(rss) == 3, describeRSs(rss)
	})
	revs := map[string]*appsv1.ReplicaSet{}
	for _, rs := range e.replicaSets(d) {
		revs[rs.Annotations[AnnotationRevision]] = rs
		if rs.Annotations[AnnotationRevision] != "4" && (*rs.Spec.Replicas != 0 || rs.Status.Replicas != 0) {
			t.Errorf("old replicaset %s not scaled down", rs.Name)
		}
	}
	if revs["2"] == nil || revs["2"].Annotations[AnnotationChangeCause] != "to nginx:1.26" {
		t.Fatalf("revision 2 missing or without change-cause: %s", describeRSs(e.replicaSets(d)))
	}
	// kubectl rollout undo --to-revision=2: client-side, it copies that
	// ReplicaSet's template (without pod-template-hash) and annotations
	// into the Deployment.
	target := revs["2"]
	update(e, "default", "web", func(d *appsv1.Deployment) {
		tmpl := target.Spec.Template.DeepCopy()
		delete(tmpl.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
		d.Spec.Template = *tmpl
		for k, v := range target.Annotations {
			if !skipCopyAnnotations[k] {
				d.Annotations[k] = v
			}
		}
	})
	e.waitRolledOut("web")
	e.waitFor("rollback made revision 2 current as revision 5", func() (bool, string) {
		rs, err := store.Get[*appsv1.ReplicaSet](e.ctx, e.s, "default", target.Name)
		if err != nil {
			return false, err.Error()
		}
		got := e.getDeploy("web")
		return rs.Annotations[AnnotationRevision] == "5" && rs.Annotations[AnnotationRevisionHistory] == "2" &&
				got.Annotations[AnnotationRevision] == "5" && *rs.Spec.Replicas == 4,
			fmt.Sprintf("rs annotations %v; deployment revision %s", rs.Annotations, got.Annotations[AnnotationRevision])
	})
	for _, p := range e.pods("default", "app=web") {
		if img := p.Spec.Containers[0].Image; img != "nginx:1.26" && p.DeletionTimestamp == nil {
			t.Errorf("pod %s runs %s after rollback", p.Name, img)
		}
	}
}

// TestDeploymentRollover: an update during a rollout scales the previous
// new ReplicaSet (whose pods are not available) down at once.
func TestDeploymentRollover(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 3, BrokenImages: []string{brokenImage, brokenImage + "b"}}, withReplicaSet, withDeployment)
	d := mustCreate(e, rolling(deployment("web", 10, "nginx:1.25"), intstr.FromInt32(3), intstr.FromInt32(2)))
	e.waitRolledOut("web")
	update(e, "default", "web", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = brokenImage })
	e.waitFor("stuck at 8/5", func() (bool, string) {
		rss := e.replicaSets(d)
		return len(rss) == 2 && *rss[0].Spec.Replicas == 8 && *rss[1].Spec.Replicas == 5, describeRSs(rss)
	})
	update(e, "default", "web", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:1.26" })
	e.waitFor("intermediate replicaset scaled to 0", func() (bool, string) {
		rss := e.replicaSets(d)
		return len(rss) == 3 && *rss[1].Spec.Replicas == 0, describeRSs(rss)
	})
	got := e.waitRolledOut("web")
	if got.Annotations[AnnotationRevision] != "3" {
		t.Errorf("revision = %s, want 3", got.Annotations[AnnotationRevision])
	}
}

func TestDeploymentPauseResume(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 3}, withReplicaSet, withDeployment)
	d := mustCreate(e, deployment("web", 3, "nginx:1.25"))
	e.waitRolledOut("web")
	update(e, "default", "web", func(d *appsv1.Deployment) { d.Spec.Paused = true })
	e.waitFor("Progressing=Unknown DeploymentPaused", func() (bool, string) {
		got := e.getDeploy("web")
		c := getDeployCond(&got.Status, appsv1.DeploymentProgressing)
		return c != nil && c.Status == corev1.ConditionUnknown && c.Reason == ReasonPaused, describeDeploy(got)
	})
	update(e, "default", "web", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:1.26" })
	update(e, "default", "web", func(d *appsv1.Deployment) { d.Spec.Template.Labels["tier"] = "front" })
	update(e, "default", "web", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(int32(5)) })
	e.waitFor("scaled while paused", func() (bool, string) {
		rss := e.replicaSets(d)
		return len(rss) == 1 && *rss[0].Spec.Replicas == 5, describeRSs(rss)
	})
	if ok, desc := e.settle(func() (bool, string) {
		rss := e.replicaSets(d)
		got := e.getDeploy("web")
		return len(rss) == 1 && got.Annotations[AnnotationRevision] == "1", describeRSs(rss)
	}); !ok {
		t.Fatalf("new revision while paused: %s", desc)
	}
	update(e, "default", "web", func(d *appsv1.Deployment) { d.Spec.Paused = false })
	got := e.waitRolledOut("web")
	rss := e.replicaSets(d)
	e.waitFor("one new revision with every paused change", func() (bool, string) {
		rss = e.replicaSets(d)
		got = e.getDeploy("web")
		return len(rss) == 2 && got.Annotations[AnnotationRevision] == "2" && *rss[0].Spec.Replicas == 0, describeRSs(rss)
	})
	tmpl := rss[1].Spec.Template
	if tmpl.Spec.Containers[0].Image != "nginx:1.26" || tmpl.Labels["tier"] != "front" || *rss[1].Spec.Replicas != 5 {
		t.Errorf("new replicaset %s template %v replicas %d", rss[1].Name, tmpl.Labels, *rss[1].Spec.Replicas)
	}
}

func TestDeploymentProgressDeadline(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 3, BrokenImages: []string{brokenImage}}, withReplicaSet, withDeployment)
	d := deployment("web", 2, brokenImage)
	d.Spec.ProgressDeadlineSeconds = ptr(int32(60))
	mustCreate(e, d)
	e.waitFor("pods created", func() (bool, string) {
		got := e.getDeploy("web")
		return got.Status.Replicas == 2 && got.Status.UnavailableReplicas == 2, describeDeploy(got)
	})
	time.Sleep(20 * time.Millisecond)
	e.clk.Step(61 * time.Second)
	e.waitFor("Progressing=False ProgressDeadlineExceeded", func() (bool, string) {
		got := e.getDeploy("web")
		c := getDeployCond(&got.Status, appsv1.DeploymentProgressing)
		return c != nil && c.Status == corev1.ConditionFalse && c.Reason == ReasonTimedOut &&
			strings.Contains(c.Message, "has timed out progressing"), describeDeploy(got)
	})
}

func TestDeploymentRecreate(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2}, withReplicaSet, withDeployment)
	d := deployment("db", 3, "postgres:15")
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	d = mustCreate(e, d)
	e.waitRolledOut("db")
	// Watch pods: no pod of the new template may exist while an old one does.
	w, err := store.WatchOf[*corev1.Pod](e.ctx, e.s, "default", metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	update(e, "default", "db", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "postgres:16" })
	e.waitRolledOut("db")
	e.waitFor("revision 2", func() (bool, string) {
		got := e.getDeploy("db")
		return got.Annotations[AnnotationRevision] == "2", describeRSs(e.replicaSets(d))
	})
	live := map[string]string{}
	for {
		select {
		case ev := <-w.ResultChan():
			p := ev.Object.(*corev1.Pod)
			if ev.Type == "DELETED" {
				delete(live, p.Name)
			} else {
				live[p.Name] = p.Spec.Containers[0].Image
			}
			olds, news := 0, 0
			for _, img := range live {
				if img == "postgres:15" {
					olds++
				} else {
					news++
				}
			}
			if olds > 0 && news > 0 {
				t.Fatalf("old and new pods at once: %v", live)
			}
			continue
		case <-time.After(100 * time.Millisecond):
		}
		break
	}
}

func TestFencepostsAndProportions(t *testing.T) {
	tests := []struct {
		replicas             int32
		surge, unavail       intstr.IntOrString
		wantSurge, wantUnavl int32
	}{
		{10, intstr.FromString("25%"), intstr.FromString("25%"), 3, 2},
		{4, intstr.FromString("25%"), intstr.FromString("25%"), 1, 1},
		{1, intstr.FromString("25%"), intstr.FromString("25%"), 1, 0},
		{10, intstr.FromInt32(0), intstr.FromInt32(0), 0, 1},
		{3, intstr.FromInt32(3), intstr.FromInt32(5), 3, 3},
	}
	for _, tt := range tests {
		d := rolling(deployment("x", tt.replicas, "i"), tt.surge, tt.unavail)
		if s, u := maxSurge(d), maxUnavailable(d); s != tt.wantSurge || u != tt.wantUnavl {
			t.Errorf("replicas %d surge %v unavailable %v: got %d/%d, want %d/%d", tt.replicas, tt.surge.String(), tt.unavail.String(), s, u, tt.wantSurge, tt.wantUnavl)
		}
	}
}

func TestDeploymentMinReadySeconds(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2}, withReplicaSet, withDeployment)
	d := deployment("web", 2, "nginx")
	d.Spec.MinReadySeconds = 30
	mustCreate(e, d)
	e.waitFor("ready but not available", func() (bool, string) {
		got := e.getDeploy("web")
		return got.Status.ReadyReplicas == 2 && got.Status.AvailableReplicas == 0, describeDeploy(got)
	})
	av := getDeployCond(&e.getDeploy("web").Status, appsv1.DeploymentAvailable)
	if av == nil || av.Status != corev1.ConditionFalse || av.Reason != ReasonMinimumUnavailable {
		t.Errorf("Available condition %+v", av)
	}
	e.clk.Step(31 * time.Second)
	e.waitRolledOut("web")
}
