package controllers

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/orchestrator/simnode"
	"github.com/tugboatdev/tugboat/store"
)

// env is a store, a set of controllers and a simulated node agent, all on a
// fake clock.
type env struct {
	t     testing.TB
	ctx   context.Context
	s     *store.Store
	clk   *testingclock.FakeClock
	cfg   Config
	agent *simnode.Agent
	g     *errgroup.Group
}

type runner interface {
	Run(ctx context.Context) error
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newEnv starts a store, the simulated agent (with the test binder) and the
// controllers mk builds.
func newEnv(t testing.TB, agentOpts simnode.Options, mk ...func(Config) runner) *env {
	t.Helper()
	return newEnvWithStore(t, store.Config{}, agentOpts, mk...)
}

// newEnvWithStore is newEnv with a store configuration (its clock and
// logger are set here).
func newEnvWithStore(t testing.TB, scfg store.Config, agentOpts simnode.Options, mk ...func(Config) runner) *env {
	t.Helper()
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	ctx, cancel := context.WithCancel(context.Background())
	scfg.Now, scfg.Logger = clk.Now, quietLog()
	s, err := store.Open(ctx, scfg)
	if err != nil {
		t.Fatal(err)
	}
	log := quietLog()
	// DEBUGLOG=1 go test ... shows the controllers' debug logs.
	if os.Getenv("DEBUGLOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	// Location is fixed so CronJob tests do not depend on the machine's zone.
	cfg := Config{Store: s, Informers: controller.NewFactory(s, log), Clock: clk, Log: log, Location: time.UTC}
	agentOpts.Clock = clk
	agentOpts.TestBinder = true
	agentOpts.Log = log
	e := &env{t: t, ctx: ctx, s: s, clk: clk, cfg: cfg, agent: simnode.New(s, agentOpts)}
	if err := e.agent.RegisterNodes(ctx); err != nil {
		t.Fatal(err)
	}
	g, gctx := errgroup.WithContext(ctx)
	e.g = g
	var rs []runner
	for _, m := range mk {
		rs = append(rs, m(cfg))
	}
	cfg.Informers.Start(gctx, g)
	for _, r := range rs {
		g.Go(func() error { return r.Run(gctx) })
	}
	g.Go(func() error { return e.agent.Run(gctx) })
	if err := cfg.Informers.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := g.Wait(); err != nil {
			t.Errorf("controllers: %v", err)
		}
		s.Close()
	})
	return e
}

func withReplicaSet(c Config) runner { return NewReplicaSet(c) }
func withDeployment(c Config) runner { return NewDeployment(c) }

// waitFor polls cond until it holds (30 s real-time limit), then reports
// the last state.
func (e *env) waitFor(what string, cond func() (bool, string)) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		var ok bool
		ok, last = cond()
		if ok {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.t.Fatalf("timed out waiting for %s; last state: %s", what, last)
}

// settle waits until cond has held for a while, to check that something
// does NOT happen (no further scaling) after a state is reached.
func (e *env) settle(cond func() (bool, string)) (bool, string) {
	var ok bool
	var last string
	for range 20 {
		ok, last = cond()
		if !ok {
			return false, last
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true, last
}

func deployment(name string, replicas int32, image string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

func rolling(d *appsv1.Deployment, surge, unavail intstr.IntOrString) *appsv1.Deployment {
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavail}}
	return d
}

func mustCreate[T runtime.Object](e *env, obj T) T {
	e.t.Helper()
	got, err := store.Create(e.ctx, e.s, obj)
	if err != nil {
		e.t.Fatalf("create: %v", err)
	}
	return got
}

// update applies fn to the current object with conflict retries.
func update[T runtime.Object](e *env, namespace, name string, fn func(T)) T {
	e.t.Helper()
	for {
		cur, err := store.Get[T](e.ctx, e.s, namespace, name)
		if err != nil {
			e.t.Fatalf("get %s: %v", name, err)
		}
		cur = cur.DeepCopyObject().(T)
		fn(cur)
		got, err := store.Update(e.ctx, e.s, cur)
		if err == nil {
			return got
		}
		if !apierrors.IsConflict(err) {
			e.t.Fatalf("update %s: %v", name, err)
		}
	}
}

// rsState describes a Deployment's ReplicaSets as "name:spec/avail" sorted by revision.
func (e *env) replicaSets(d *appsv1.Deployment) []*appsv1.ReplicaSet {
	rss, _, err := store.ListOf[*appsv1.ReplicaSet](e.ctx, e.s, d.Namespace, metav1.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*appsv1.ReplicaSet
	for _, rs := range rss {
		if ref := metav1.GetControllerOf(rs); ref != nil && ref.UID == d.UID {
			out = append(out, rs)
		}
	}
	sortRSsOldestFirst(out)
	return out
}

func describeRSs(rss []*appsv1.ReplicaSet) string {
	s := ""
	for _, rs := range rss {
		s += fmt.Sprintf("[%s rev=%s spec=%d status=%d avail=%d] ", rs.Name, rs.Annotations[AnnotationRevision], *rs.Spec.Replicas, rs.Status.Replicas, rs.Status.AvailableReplicas)
	}
	return s
}

func (e *env) getDeploy(name string) *appsv1.Deployment {
	d, err := store.Get[*appsv1.Deployment](e.ctx, e.s, "default", name)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func describeDeploy(d *appsv1.Deployment) string {
	st := d.Status
	s := fmt.Sprintf("gen=%d obs=%d replicas=%d updated=%d ready=%d avail=%d unavail=%d conds:", d.Generation, st.ObservedGeneration, st.Replicas, st.UpdatedReplicas, st.ReadyReplicas, st.AvailableReplicas, st.UnavailableReplicas)
	for _, c := range st.Conditions {
		s += fmt.Sprintf(" %s=%s(%s)", c.Type, c.Status, c.Reason)
	}
	return s
}

// rolledOut reports what `kubectl rollout status` waits for.
func rolledOut(d *appsv1.Deployment) bool {
	st := d.Status
	return st.ObservedGeneration >= d.Generation && st.UpdatedReplicas == *d.Spec.Replicas && st.Replicas == st.UpdatedReplicas && st.AvailableReplicas == st.UpdatedReplicas
}

func (e *env) waitRolledOut(name string) *appsv1.Deployment {
	e.t.Helper()
	var d *appsv1.Deployment
	e.waitFor("deployment "+name+" rolled out", func() (bool, string) {
		d = e.getDeploy(name)
		return rolledOut(d), describeDeploy(d) + " " + describeRSs(e.replicaSets(d))
	})
	return d
}

func (e *env) pods(namespace string, sel string) []*corev1.Pod {
	ps, _, err := store.ListOf[*corev1.Pod](e.ctx, e.s, namespace, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		e.t.Fatal(err)
	}
	return ps
}
