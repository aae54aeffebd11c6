// Command simulation runs a whole control plane — store, API server,
// scheduler and controllers — over N simulated nodes
// (orchestrator/simnode: nodes named simulated-0 ... simulated-(N-1), no
// processes, pods Running as soon as they are bound), applies one large
// Deployment and prints how long it took from create to every pod
// scheduled and Running, and the process's memory footprint.
//
//	go run ./examples/simulation -nodes 5000 -replicas 10000
//
// With -serve it keeps running afterwards and prints a kubeconfig, so
// kubectl can look at the simulated cluster (kubectl get nodes, get pods
// -o wide); stop it with Ctrl-C.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/orchestrator/apiserver"
	"github.com/tugboatdev/tugboat/orchestrator/controllers"
	"github.com/tugboatdev/tugboat/orchestrator/simnode"
	"github.com/tugboatdev/tugboat/scheduler"
	"github.com/tugboatdev/tugboat/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "simulation:", err)
		os.Exit(1)
	}
}

// Result holds what a run measured.
type Result struct {
	Nodes, Replicas int
	// Registered is the time until every node was registered and Ready.
	Registered time.Duration
	// Created, Scheduled and Running are measured from the Deployment's
	// creation until every pod existed (controllers), was bound
	// (scheduler), and was Running (node agents).
	Created, Scheduled, Running time.Duration
	// RSS and PeakRSS are the process's resident set size at the end and
	// its peak (VmRSS, VmHWM), in bytes.
	RSS, PeakRSS int64
	// NodesUsed is how many nodes got at least one pod.
	NodesUsed int
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("simulation", flag.ContinueOnError)
	nodes := fs.Int("nodes", 5000, "number of simulated nodes")
	replicas := fs.Int("replicas", 10000, "replicas of the Deployment")
	serve := fs.Bool("serve", false, "keep running afterwards with the API server for kubectl")
	dir := fs.String("data-dir", filepath.Join(os.TempDir(), "tugboat-simulation"), "where the PKI and kubeconfig go")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	res, err := simulate(ctx, *nodes, *replicas, *dir, *serve, out)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "nodes %d registered and Ready in %s\n", res.Nodes, res.Registered.Round(time.Millisecond))
	fmt.Fprintf(out, "deployment of %d replicas: all created after %s, all scheduled after %s, all Running after %s (%.0f pods/s) on %d nodes\n",
		res.Replicas, res.Created.Round(time.Millisecond), res.Scheduled.Round(time.Millisecond), res.Running.Round(time.Millisecond), float64(res.Replicas)/res.Running.Seconds(), res.NodesUsed)
	fmt.Fprintf(out, "footprint: RSS %.1f MiB (peak %.1f MiB)\n", float64(res.RSS)/(1<<20), float64(res.PeakRSS)/(1<<20))
	return nil
}

// simulate runs the control plane and the simulated nodes, applies the
// Deployment and measures. With serve it waits for ctx to end before
// stopping.
func simulate(ctx context.Context, nodes, replicas int, dir string, serve bool, out io.Writer) (Result, error) {
	res := Result{Nodes: nodes, Replicas: replicas}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, err
	}
	st, err := store.Open(ctx, store.Config{Logger: log})
	if err != nil {
		return res, err
	}
	defer st.Close()
	api, err := apiserver.New(apiserver.Config{Store: st, DataDir: dir, Logger: log})
	if err != nil {
		return res, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	kubeconfig := filepath.Join(dir, "admin.kubeconfig")
	if err := api.PKI().WriteKubeconfig(kubeconfig, "https://"+ln.Addr().String(), apiserver.KubeconfigOptions{}); err != nil {
		ln.Close()
		return res, err
	}
	sched, err := scheduler.New(ctx, st, scheduler.Config{Logger: log})
	if err != nil {
		ln.Close()
		return res, err
	}
	mgr := controllers.NewManager(controllers.ManagerOptions{Store: st, Log: log})
	sim := simnode.New(st, simnode.Options{Nodes: nodes, NamePrefix: "simulated", Workers: 16, Log: log})

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := api.Serve(gctx, ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	start := time.Now()
	g.Go(func() error { return sim.Run(gctx) })
	g.Go(func() error { return sched.Run(gctx) })
	g.Go(func() error { return mgr.Run(gctx) })
	g.Go(func() error {
		defer cancel()
		if err := waitFor(gctx, func() (bool, error) {
			ns, _, err := store.ListOf[*corev1.Node](gctx, st, "", metav1.ListOptions{})
			return len(ns) == nodes && allReady(ns), err
		}); err != nil {
			return err
		}
		res.Registered = time.Since(start)
		if err := deploy(gctx, st, replicas, &res); err != nil {
			return err
		}
		res.RSS, res.PeakRSS = rss()
		if serve {
			fmt.Fprintf(out, "serving the simulated cluster; kubectl --kubeconfig %s get nodes; stop with Ctrl-C\n", kubeconfig)
			<-gctx.Done()
		}
		return nil
	})
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return res, err
	}
	if res.Running == 0 {
		return res, errors.New("stopped before the Deployment ran")
	}
	return res, nil
}

func allReady(nodes []*corev1.Node) bool {
	for _, n := range nodes {
		ready := false
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			return false
		}
	}
	return true
}

// deploy creates the Deployment and waits for its pods, watching them.
func deploy(ctx context.Context, st store.Interface, replicas int, res *Result) error {
	labels := map[string]string{"app": "simulated-web"}
	n := int32(replicas)
	start := time.Now()
	if _, err := store.Create(ctx, st, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "simulated-web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &n,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "web", Image: "127.0.0.1:5000/demo/web:1.0",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{}},
				}}},
			},
		},
	}); err != nil {
		return err
	}
	return waitFor(ctx, func() (bool, error) {
		pods, _, err := store.ListOf[*corev1.Pod](ctx, st, "default", metav1.ListOptions{LabelSelector: "app=simulated-web"})
		if err != nil {
			return false, err
		}
		bound, running := 0, 0
		used := map[string]bool{}
		for _, p := range pods {
			if p.Spec.NodeName != "" {
				bound++
				used[p.Spec.NodeName] = true
			}
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		if len(pods) >= replicas && res.Created == 0 {
			res.Created = time.Since(start)
		}
		if bound == replicas && res.Scheduled == 0 {
			res.Scheduled = time.Since(start)
		}
		if running == replicas {
			res.Running = time.Since(start)
			res.NodesUsed = len(used)
			if res.Scheduled == 0 {
				res.Scheduled = res.Running
			}
			return true, nil
		}
		return false, nil
	})
}

// waitFor polls cond until it holds or fails: every 20 ms at first, then
// less often (listing thousands of pods costs the control plane CPU).
func waitFor(ctx context.Context, cond func() (bool, error)) error {
	wait := 20 * time.Millisecond
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
}

// rss reads VmRSS and VmHWM of this process from /proc/self/status.
func rss() (cur, peak int64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb int64
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			fmt.Sscanf(strings.TrimPrefix(line, "VmRSS:"), "%d", &kb)
			cur = kb << 10
		case strings.HasPrefix(line, "VmHWM:"):
			fmt.Sscanf(strings.TrimPrefix(line, "VmHWM:"), "%d", &kb)
			peak = kb << 10
		}
	}
	return cur, peak
}
