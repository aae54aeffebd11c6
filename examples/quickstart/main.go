// Command quickstart is the smallest program that composes a Kubernetes
// cluster from tugboat's packages, one component at a time: the store,
// the API server (TLS on loopback, an admin kubeconfig for kubectl), the
// scheduler, the controller manager and one node agent. The agent runs
// on the simulated runtime, so the program needs neither root nor
// containerd; swap in runtime/containerd (see orchestrator/cluster) for
// real containers.
//
// It then walks through the seeds' first Deployment through the Go API
// (create, scale, roll to a new image), printing each step, and keeps
// serving so that kubectl can look around:
//
//	go run ./examples/quickstart
//	kubectl --kubeconfig /tmp/tugboat-quickstart/admin.kubeconfig get pods -o wide
//
// Stop it with Ctrl-C; -exit stops after the walk-through instead.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/orchestrator/agent"
	"github.com/tugboatdev/tugboat/orchestrator/apiserver"
	"github.com/tugboatdev/tugboat/orchestrator/controllers"
	"github.com/tugboatdev/tugboat/runtime/simulated"
	"github.com/tugboatdev/tugboat/scheduler"
	"github.com/tugboatdev/tugboat/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// run builds the cluster, walks through the Deployment and serves until
// ctx ends (or at once with -exit).
func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	dir := fs.String("data-dir", filepath.Join(os.TempDir(), "tugboat-quickstart"), "where the PKI and the kubeconfig go")
	exit := fs.Bool("exit", false, "stop after the walk-through")
	verbose := fs.Bool("v", false, "show the components' logs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logOut := io.Discard
	if *verbose {
		logOut = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(logOut, nil))
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}

	// 1. The store: all cluster state, in memory here (Dir "" ); give it a
	//    directory to make it durable.
	serviceCIDR := netip.MustParsePrefix("10.96.0.0/12")
	st, err := store.Open(ctx, store.Config{ServiceCIDR: serviceCIDR, Logger: log})
	if err != nil {
		return err
	}
	defer st.Close()

	// 2. The API server over the store, on a free loopback port, with a
	//    kubeconfig for kubectl.
	api, err := apiserver.New(apiserver.Config{Store: st, DataDir: *dir, Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(*dir, "admin.kubeconfig")
	if err := api.PKI().WriteKubeconfig(kubeconfig, "https://"+ln.Addr().String(), apiserver.KubeconfigOptions{}); err != nil {
		return err
	}

	// 3. The scheduler, 4. the controllers, 5. one node agent: each reads
	//    and writes state only through store.Interface.
	sched, err := scheduler.New(ctx, st, scheduler.Config{Logger: log})
	if err != nil {
		return err
	}
	mgr := controllers.NewManager(controllers.ManagerOptions{
		Store:            st,
		Log:              log,
		ServiceAllocator: controllers.NewServiceAllocator(serviceCIDR, 0, 0),
	})
	node, err := agent.New(agent.Config{
		NodeName:       "node-1",
		Store:          st,
		Runtime:        simulated.New(simulated.Options{PodCIDR: netip.MustParsePrefix("10.244.0.0/24"), NodeIP: "10.244.0.1"}),
		RootDir:        filepath.Join(*dir, "node-1"),
		NodeIP:         "10.244.0.1",
		PodCIDR:        "10.244.0.0/24",
		RuntimeName:    "simulated",
		RuntimeVersion: "simulated://1",
		Log:            log,
	})
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := api.Serve(gctx, ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error { return sched.Run(gctx) })
	g.Go(func() error { return mgr.Run(gctx) })
	g.Go(func() error { return node.Run(gctx) })
	g.Go(func() error {
		defer cancel()
		if err := walkThrough(gctx, st, out, kubeconfig); err != nil {
			return err
		}
		if !*exit {
			fmt.Fprintln(out, "serving; stop with Ctrl-C")
			<-gctx.Done()
		}
		return nil
	})
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// walkThrough is the seeds' first Deployment through the Go API.
func walkThrough(ctx context.Context, st store.Interface, out io.Writer, kubeconfig string) error {
	step := func(format string, args ...any) { fmt.Fprintf(out, "==> "+format+"\n", args...) }
	if err := waitFor(ctx, func() (bool, error) {
		n, err := store.Get[*corev1.Node](ctx, st, "", "node-1")
		if err != nil {
			return false, nil
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		return err
	}
	step("cluster ready: node node-1 (simulated runtime)")
	fmt.Fprintf(out, "kubeconfig: %s\ntry: kubectl --kubeconfig %s get pods -o wide\n", kubeconfig, kubeconfig)

	labels := map[string]string{"app": "nginx"}
	replicas := int32(3)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "nginx-deployment", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "nginx", Image: "nginx:1.14.2",
					Ports: []corev1.ContainerPort{{ContainerPort: 80}},
				}}},
			},
		},
	}
	if _, err := store.Create(ctx, st, dep); err != nil {
		return err
	}
	step("created deployment nginx-deployment (3 replicas of nginx:1.14.2)")
	if err := waitRunning(ctx, st, 3, "nginx:1.14.2", out); err != nil {
		return err
	}

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "nginx-service"},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeNodePort,
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "nginx-port", Port: 80, NodePort: 32600}},
		},
	}
	if _, err := store.Create(ctx, st, svc); err != nil {
		return err
	}
	if err := waitFor(ctx, func() (bool, error) {
		s, err := store.Get[*corev1.Service](ctx, st, "default", "nginx-service")
		if err != nil || s.Spec.ClusterIP == "" {
			return false, err
		}
		step("created service nginx-service: ClusterIP %s, NodePort 32600", s.Spec.ClusterIP)
		return true, nil
	}); err != nil {
		return err
	}

	if err := edit(ctx, st, func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(int32(4)) }); err != nil {
		return err
	}
	step("scaled to 4 replicas")
	if err := waitRunning(ctx, st, 4, "nginx:1.14.2", out); err != nil {
		return err
	}

	if err := edit(ctx, st, func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:1.16.1" }); err != nil {
		return err
	}
	step("set image nginx=nginx:1.16.1 (rolling update)")
	if err := waitRunning(ctx, st, 4, "nginx:1.16.1", out); err != nil {
		return err
	}
	step("rolled out: 4 pods run nginx:1.16.1")
	return nil
}

// edit updates the Deployment, retrying on conflicts.
func edit(ctx context.Context, st store.Interface, f func(*appsv1.Deployment)) error {
	for {
		d, err := store.Get[*appsv1.Deployment](ctx, st, "default", "nginx-deployment")
		if err != nil {
			return err
		}
		d = d.DeepCopy()
		f(d)
		_, err = store.Update(ctx, st, d)
		if err == nil || !apierrors.IsConflict(err) {
			return err
		}
	}
}

// waitRunning waits until exactly n pods of the Deployment run image and
// prints them.
func waitRunning(ctx context.Context, st store.Interface, n int, image string, out io.Writer) error {
	var lines []string
	err := waitFor(ctx, func() (bool, error) {
		pods, _, err := store.ListOf[*corev1.Pod](ctx, st, "default", metav1.ListOptions{LabelSelector: "app=nginx"})
		if err != nil {
			return false, err
		}
		lines = lines[:0]
		for _, p := range pods {
			if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || p.Spec.Containers[0].Image != image {
				return false, nil
			}
			lines = append(lines, fmt.Sprintf("    %-40s %-8s %-12s %s", p.Name, p.Status.Phase, p.Status.PodIP, p.Spec.NodeName))
		}
		return len(pods) == n, nil
	})
	if err != nil {
		return err
	}
	for _, l := range lines {
		fmt.Fprintln(out, l)
	}
	return nil
}

// waitFor polls cond until it holds, fails, or a minute passes.
func waitFor(ctx context.Context, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func ptr[T any](v T) *T { return &v }
