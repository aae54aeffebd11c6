package cluster_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/orchestrator/agent"
	"github.com/tugboatdev/tugboat/orchestrator/cluster"
	"github.com/tugboatdev/tugboat/orchestrator/controllers"
	"github.com/tugboatdev/tugboat/runtime/simulated"
	"github.com/tugboatdev/tugboat/scheduler"
	"github.com/tugboatdev/tugboat/store"
)

// Tutorial step 1: open a store. All cluster state lives in it; every
// component reads and writes through store.Interface. Dir "" keeps it in
// memory; a directory makes it durable.
func Example_step1OpenAStore() {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()

	for _, env := range []string{"prod", "qa", "dev"} {
		_, err := store.Create(ctx, st, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-" + env, Labels: map[string]string{"env": env}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.25"}}},
		})
		if err != nil {
			fmt.Println(err)
			return
		}
	}
	pods, _, err := store.ListOf[*corev1.Pod](ctx, st, "default", metav1.ListOptions{LabelSelector: "env in (prod,qa)"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range pods {
		fmt.Println(p.Name, p.Status.QOSClass)
	}
	// Output:
	// web-prod BestEffort
	// web-qa BestEffort
}

// Tutorial step 2: the scheduler places pods on nodes. A Node object is
// all it needs to see; it binds the pod (spec.nodeName).
func Example_step2ScheduleAPod() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, _ := store.Open(ctx, store.Config{Logger: log})
	defer st.Close()

	_, _ = store.Create(ctx, st, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{"cpu": resource.MustParse("4"), "memory": resource.MustParse("8Gi"), "pods": resource.MustParse("110")},
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	})
	sched, err := scheduler.New(ctx, st, scheduler.Config{Logger: log})
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() { _ = sched.Run(ctx) }()

	_, _ = store.Create(ctx, st, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.25"}}},
	})
	for {
		p, _ := store.Get[*corev1.Pod](ctx, st, "default", "web")
		if p.Spec.NodeName != "" {
			fmt.Println("web bound to", p.Spec.NodeName)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Output:
	// web bound to node-1
}

// Tutorial step 3: compose a control plane by hand — store, scheduler,
// controller manager — and one node agent (here on the simulated runtime;
// runtime/containerd runs real containers). A Deployment then becomes a
// ReplicaSet, pods, bindings and running containers, each step done by a
// different component reading and writing the store.
func Example_step3ComposeAControlPlane() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir, _ := os.MkdirTemp("", "tugboat-tutorial")
	defer os.RemoveAll(dir)

	st, _ := store.Open(ctx, store.Config{Logger: log})
	defer st.Close()
	sched, _ := scheduler.New(ctx, st, scheduler.Config{Logger: log})
	mgr := controllers.NewManager(controllers.ManagerOptions{Store: st, Log: log})
	node, err := agent.New(agent.Config{
		NodeName:    "node-1",
		Store:       st,
		Runtime:     simulated.New(simulated.Options{PodCIDR: netip.MustParsePrefix("10.244.0.0/24"), NodeIP: "10.244.0.1"}),
		RootDir:     filepath.Join(dir, "node-1"),
		NodeIP:      "10.244.0.1",
		RuntimeName: "simulated",
		Log:         log,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return sched.Run(gctx) })
	g.Go(func() error { return mgr.Run(gctx) })
	g.Go(func() error { return node.Run(gctx) })

	labels := map[string]string{"app": "nginx"}
	replicas := int32(3)
	_, _ = store.Create(ctx, st, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "nginx-deployment"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.14.2"}}},
			},
		},
	})
	for {
		pods, _, _ := store.ListOf[*corev1.Pod](ctx, st, "default", metav1.ListOptions{LabelSelector: "app=nginx"})
		running := 0
		for _, p := range pods {
			if p.Status.Phase == corev1.PodRunning && p.Spec.NodeName == "node-1" {
				running++
			}
		}
		if running == 3 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	rs, _, _ := store.ListOf[*appsv1.ReplicaSet](ctx, st, "default", metav1.ListOptions{LabelSelector: "app=nginx"})
	fmt.Println("replicasets:", len(rs))
	fmt.Println("pods running on node-1: 3")
	cancel()
	_ = g.Wait()
	// Output:
	// replicasets: 1
	// pods running on node-1: 3
}

// Tutorial step 4: run a whole cluster on this machine as root — durable
// store, API server with a kubeconfig for kubectl, scheduler,
// controllers, a node agent on a private containerd, the eBPF service
// proxy, cluster DNS and a registry with demo images. This is what
// examples/cluster runs; drive it with
// kubectl --kubeconfig <DataDir>/admin.kubeconfig.
//
// The eBPF proxy serves the pods' cgroup by default; set ProxyCgroup to
// cluster.CgroupV2Root to serve every process of the machine, as a real
// node's kube-proxy does.
func Example_step4RunACluster() {
	c, err := cluster.New(cluster.Config{DataDir: "/var/lib/tugboat"})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		<-c.Ready()
		fmt.Println("ready; kubectl --kubeconfig", c.KubeconfigPath(), "get nodes")
	}()
	if err := c.Run(ctx); err != nil {
		fmt.Println(err)
	}
	// Pods keep running after Run returns; a later Run over the same
	// DataDir re-adopts them, cluster.Purge removes everything.
}
