package simnode

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/tugboatdev/tugboat/store"
)

func start(t *testing.T, opts Options) (context.Context, *store.Store, *Agent, *testingclock.FakeClock) {
	t.Helper()
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := store.Open(ctx, store.Config{Now: clk.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	opts.Clock, opts.Log = clk, log
	a := New(s, opts)
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	if err := a.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		s.Close()
	})
	return ctx, s, a, clk
}

func waitPod(t *testing.T, ctx context.Context, s *store.Store, name string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := store.Get[*corev1.Pod](ctx, s, "default", name)
		if err == nil && cond(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s: condition not reached; last %v %v", name, err, p)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func pod(name, image string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: image}}}}
}

func TestAgentRegistersNodesAndLeases(t *testing.T) {
	ctx, s, a, _ := start(t, Options{Nodes: 3})
	for _, n := range a.NodeNames() {
		node, err := store.Get[*corev1.Node](ctx, s, "", n)
		if err != nil {
			t.Fatal(err)
		}
		if node.Labels["tugboat.dev/simulated"] != "true" || node.Status.Conditions[0].Status != corev1.ConditionTrue {
			t.Errorf("node %s: %v %v", n, node.Labels, node.Status.Conditions)
		}
		if _, err := store.Get[*coordinationv1.Lease](ctx, s, corev1.NamespaceNodeLease, n); err != nil {
			t.Errorf("lease %s: %v", n, err)
		}
	}
}

func TestAgentLifecycle(t *testing.T) {
	ctx, s, a, _ := start(t, Options{Nodes: 2, TestBinder: true, BrokenImages: []string{"bad:1"}})
	for _, name := range []string{"a", "b", "c"} {
		if _, err := store.Create(ctx, s, pod(name, "good:1")); err != nil {
			t.Fatal(err)
		}
	}
	nodes := map[string]int{}
	for _, name := range []string{"a", "b", "c"} {
		p := waitPod(t, ctx, s, name, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
		nodes[p.Spec.NodeName]++
		if p.Status.PodIP == "" || len(p.Status.Conditions) == 0 {
			t.Errorf("pod %s status %+v", name, p.Status)
		}
	}
	if fmt.Sprint(nodes) != "map[sim-node-0:2 sim-node-1:1]" {
		t.Errorf("round-robin placement %v", nodes)
	}
	if _, err := store.Create(ctx, s, pod("broken", "bad:1")); err != nil {
		t.Fatal(err)
	}
	waitPod(t, ctx, s, "broken", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Waiting != nil &&
			p.Status.ContainerStatuses[0].State.Waiting.Reason == "ErrImagePull" && p.Status.Phase == corev1.PodPending
	})
	if err := a.Succeed(ctx, "default", "a"); err != nil {
		t.Fatal(err)
	}
	waitPod(t, ctx, s, "a", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if err := a.Fail(ctx, "default", "b"); err != nil {
		t.Fatal(err)
	}
	waitPod(t, ctx, s, "b", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	// Graceful deletion is finished by the agent.
	if err := store.Delete[*corev1.Pod](ctx, s, "default", "c", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := store.Get[*corev1.Pod](ctx, s, "default", "c")
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("graceful deletion not finished")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestAgentManualAndPinnedNode(t *testing.T) {
	ctx, s, a, _ := start(t, Options{Nodes: 3, Manual: true, TestBinder: true})
	p := pod("pinned", "x")
	p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"sim-node-2"}}}}}}}}
	if _, err := store.Create(ctx, s, p); err != nil {
		t.Fatal(err)
	}
	got := waitPod(t, ctx, s, "pinned", func(p *corev1.Pod) bool { return p.Spec.NodeName != "" })
	if got.Spec.NodeName != "sim-node-2" {
		t.Fatalf("bound to %s, want sim-node-2", got.Spec.NodeName)
	}
	time.Sleep(20 * time.Millisecond)
	if got, _ := store.Get[*corev1.Pod](ctx, s, "default", "pinned"); got.Status.Phase != corev1.PodPending {
		t.Fatalf("manual mode started the pod: %s", got.Status.Phase)
	}
	if err := a.StartPod(ctx, "default", "pinned"); err != nil {
		t.Fatal(err)
	}
	waitPod(t, ctx, s, "pinned", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if err := a.SetReady(ctx, "default", "pinned", false); err != nil {
		t.Fatal(err)
	}
	waitPod(t, ctx, s, "pinned", func(p *corev1.Pod) bool {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady {
				return c.Status == corev1.ConditionFalse
			}
		}
		return false
	})
	if pods := a.PodsOn("sim-node-2"); len(pods) != 1 || pods[0] != "default/pinned" {
		t.Errorf("PodsOn = %v", pods)
	}
}

func TestHeartbeatRenewsLeaseAndSilence(t *testing.T) {
	ctx, s, a, clk := start(t, Options{Nodes: 2})
	l0, _ := store.Get[*coordinationv1.Lease](ctx, s, corev1.NamespaceNodeLease, "sim-node-0")
	a.Silence("sim-node-0", true)
	clk.Step(10 * time.Second)
	if err := a.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	l0b, _ := store.Get[*coordinationv1.Lease](ctx, s, corev1.NamespaceNodeLease, "sim-node-0")
	l1, _ := store.Get[*coordinationv1.Lease](ctx, s, corev1.NamespaceNodeLease, "sim-node-1")
	if !l0b.Spec.RenewTime.Equal(l0.Spec.RenewTime) {
		t.Error("silenced node renewed its lease")
	}
	if !l1.Spec.RenewTime.Time.Equal(clk.Now()) {
		t.Errorf("lease renewed at %v, want %v", l1.Spec.RenewTime, clk.Now())
	}
}

func TestAgentExitCodeConditionsAndDualStack(t *testing.T) {
	ctx, s, a, _ := start(t, Options{Nodes: 1, TestBinder: true, DualStack: true})
	for _, name := range []string{"x", "y"} {
		if _, err := store.Create(ctx, s, pod(name, "good:1")); err != nil {
			t.Fatal(err)
		}
	}
	p := waitPod(t, ctx, s, "x", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if len(p.Status.PodIPs) != 2 || p.Status.PodIPs[1].IP != podIPv6(p.Status.PodIP) || podIPv6(p.Status.PodIP) == "" {
		t.Errorf("dual-stack pod IPs %v", p.Status.PodIPs)
	}
	waitPod(t, ctx, s, "y", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if err := a.SetCondition(ctx, "default", "x", corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "EvictionByEvictionAPI"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Exit(ctx, "default", "x", 42); err != nil {
		t.Fatal(err)
	}
	waitPod(t, ctx, s, "x", func(p *corev1.Pod) bool {
		has := false
		for _, c := range p.Status.Conditions {
			has = has || (c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue)
		}
		return has && p.Status.Phase == corev1.PodFailed && p.Status.ContainerStatuses[0].State.Terminated != nil &&
			p.Status.ContainerStatuses[0].State.Terminated.ExitCode == 42
	})
	// A deleted pod held by a finalizer is stopped (phase Failed) and
	// stays until the finalizer goes.
	up, err := store.Get[*corev1.Pod](ctx, s, "default", "y")
	if err != nil {
		t.Fatal(err)
	}
	up = up.DeepCopy()
	up.Finalizers = []string{"example.com/hold"}
	if _, err := store.Update(ctx, s, up); err != nil {
		t.Fatal(err)
	}
	if err := store.Delete[*corev1.Pod](ctx, s, "default", "y", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	p = waitPod(t, ctx, s, "y", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if p.DeletionTimestamp == nil || p.Status.ContainerStatuses[0].State.Terminated.ExitCode != 137 {
		t.Errorf("stopped pod: %+v", p.Status)
	}
	for {
		cur, err := store.Get[*corev1.Pod](ctx, s, "default", "y")
		if err != nil {
			t.Fatal(err)
		}
		cur = cur.DeepCopy()
		cur.Finalizers = nil
		if _, err = store.Update(ctx, s, cur); err == nil {
			break
		} else if !apierrors.IsConflict(err) {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := store.Get[*corev1.Pod](ctx, s, "default", "y"); apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pod not deleted after its finalizer went")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A running pod's claim waiting for a filesystem resize is finished by
// ResizeFileSystems (online expansion).
func TestAgentResizeFileSystems(t *testing.T) {
	ctx, s, a, _ := start(t, Options{Nodes: 1, TestBinder: true})
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	if _, err := store.Create(ctx, s, claim); err != nil {
		t.Fatal(err)
	}
	p := pod("user", "good:1")
	p.Spec.Volumes = []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
	if _, err := store.Create(ctx, s, p); err != nil {
		t.Fatal(err)
	}
	waitPod(t, ctx, s, "user", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	c, err := store.Get[*corev1.PersistentVolumeClaim](ctx, s, "default", "data")
	if err != nil {
		t.Fatal(err)
	}
	c = c.DeepCopy()
	c.Status.Phase = corev1.ClaimBound
	c.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
	c.Status.AllocatedResources = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")}
	c.Status.AllocatedResourceStatuses = map[corev1.ResourceName]corev1.ClaimResourceStatus{corev1.ResourceStorage: corev1.PersistentVolumeClaimNodeResizePending}
	c.Status.Conditions = []corev1.PersistentVolumeClaimCondition{{Type: corev1.PersistentVolumeClaimFileSystemResizePending, Status: corev1.ConditionTrue}}
	if _, err := store.UpdateStatus(ctx, s, c); err != nil {
		t.Fatal(err)
	}
	if err := a.ResizeFileSystems(ctx); err != nil {
		t.Fatal(err)
	}
	c, err = store.Get[*corev1.PersistentVolumeClaim](ctx, s, "default", "data")
	if err != nil {
		t.Fatal(err)
	}
	got := c.Status.Capacity[corev1.ResourceStorage]
	if got.String() != "5Gi" || len(c.Status.Conditions) != 0 || c.Status.AllocatedResourceStatuses != nil {
		t.Errorf("after resize: %+v", c.Status)
	}
}
