// Command quickstart is the Kubernetes quick start as a Go program, on
// real containers. It embeds a whole cluster in one process through
// orchestrator/cluster, which composes tugboat's packages: the store, the
// API server (TLS on loopback, an admin kubeconfig for kubectl), the
// scheduler, the controllers, a node agent on a private containerd with a
// pod bridge (CNI), the eBPF service proxy, the cluster DNS and a registry
// on loopback holding the demo images. (orchestrator/cluster's Examples
// show the same composition package by package.)
//
// It then walks through the seeds' first Deployment with the Go API,
// printing each step:
//
//  1. create the nginx-style Deployment (3 replicas of the demo web
//     image, which answers /version with its version and pod name) and
//     the NodePort Service nginx-service (port 80, NodePort 32600);
//  2. reach it through the ClusterIP and the NodePort (127.0.0.1 and the
//     node's address);
//  3. scale it to 4 replicas;
//  4. roll it to web:2.0 and reach the new version through the ClusterIP.
//
// It needs root (containerd, network, eBPF):
//
//	sudo go run ./examples/quickstart
//
// and keeps serving after the walk-through so that kubectl can look
// around (the kubeconfig path is printed), until Ctrl-C; -exit stops after
// the walk-through. On the way out, also after a failure or Ctrl-C, it
// removes everything it made: containers, the containerd namespace and
// daemon, the pod bridge, routes, cgroups and its data directory.
//
// The service proxy serves only the processes of the pods' cgroup
// /sys/fs/cgroup/unified/tugboat-<name>, never the whole machine: to reach
// the ClusterIP and NodePort, the program runs its HTTP client as a child
// process of itself placed in a cgroup under that one. -simulated runs
// the walk-through without root on simulated nodes instead (no
// containers, so no traffic).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/tugboatdev/tugboat/netproxy"
	"github.com/tugboatdev/tugboat/orchestrator/cluster"
	"github.com/tugboatdev/tugboat/store"
)

func main() {
	if isClient, err := clientMain(); isClient {
		if err != nil {
			fmt.Fprintln(os.Stderr, "quickstart client:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// nodePort is the seeds' NodePort.
const nodePort = 32600

// run builds the cluster, walks through the Deployment, serves until ctx
// ends (or at once with -exit) and removes everything.
func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	dir := fs.String("data-dir", "", "data directory, removed on exit (default: a new directory under $TMPDIR)")
	exit := fs.Bool("exit", false, "stop after the walk-through")
	simulated := fs.Bool("simulated", false, "simulated nodes: no root, no containers, no traffic")
	verbose := fs.Bool("v", false, "show the components' logs")
	name := fs.String("name", "quickstart", "names the containerd namespace, the cgroup tugboat-<name> and the bridge")
	podCIDR := fs.String("pod-cidr", "10.242.0.0/24", "the node's pod range")
	serviceCIDR := fs.String("service-cidr", "10.112.0.0/16", "the Service ClusterIP range")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logOut := io.Discard
	if *verbose {
		logOut = os.Stderr
	}
	cfg := cluster.Config{
		DataDir:             *dir,
		Simulated:           *simulated,
		NodeName:            "node-1",
		ContainerdNamespace: *name,
		Bridge:              bridgeName(*name),
		APIAddress:          "127.0.0.1:0",
		RegistryAddress:     "127.0.0.1:0",
		ProxyMode:           netproxy.ModeEBPF,
		Logger:              slog.New(slog.NewTextHandler(logOut, nil)),
	}
	var err error
	if cfg.PodCIDR, err = netip.ParsePrefix(*podCIDR); err != nil {
		return err
	}
	if cfg.ServiceCIDR, err = netip.ParsePrefix(*serviceCIDR); err != nil {
		return err
	}
	if *simulated {
		cfg.RegistryAddress = "off"
	} else if os.Geteuid() != 0 {
		return errors.New("the quickstart runs real containers and needs root (sudo), or use -simulated")
	}
	if cfg.DataDir == "" {
		// Short: containerd's socket lives under it.
		if cfg.DataDir, err = os.MkdirTemp("", "tbqs"); err != nil {
			return err
		}
	}

	// Everything the cluster made goes away on return, whatever happens.
	defer func() {
		pctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := cluster.Purge(pctx, cfg); err != nil {
			fmt.Fprintln(out, "cleanup:", err)
		}
		fmt.Fprintln(out, "==> removed the cluster and", cfg.DataDir)
	}()

	c, err := cluster.New(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(ctx) }()
	// The cluster stops (containers keep running until the purge) once
	// the walk-through is over or failed.
	stopCluster := func() error {
		cancel()
		return <-runErr
	}
	select {
	case <-c.Ready():
	case err := <-runErr:
		if err == nil {
			err = ctx.Err()
		}
		return fmt.Errorf("starting the cluster: %w", err)
	}
	if err := walkThrough(ctx, c, out); err != nil {
		_ = stopCluster()
		return err
	}
	if !*exit {
		fmt.Fprintln(out, "==> serving; stop with Ctrl-C")
		select {
		case <-ctx.Done():
		case err := <-runErr:
			return err
		}
	}
	return stopCluster()
}

// bridgeName derives the pod bridge's name (at most 15 characters).
func bridgeName(name string) string {
	b := "tb-" + name
	if len(b) > 15 {
		b = b[:15]
	}
	return b
}

// walkThrough is the seeds' first Deployment through the Go API.
func walkThrough(ctx context.Context, c *cluster.Cluster, out io.Writer) error {
	step := func(format string, args ...any) { fmt.Fprintf(out, "==> "+format+"\n", args...) }
	cfg := c.Config()
	st := c.Store()
	if cfg.Simulated {
		step("cluster ready: node simulated-0 (simulated runtime)")
	} else {
		step("cluster ready: node %s on containerd, node IP %s, service proxy %s on cgroup %s", cfg.NodeName, c.NodeIP(), c.ProxyMode(), c.ProxyCgroup())
	}
	fmt.Fprintf(out, "kubeconfig: %s\ntry: kubectl --kubeconfig %s get pods -o wide\n", c.KubeconfigPath(), c.KubeconfigPath())

	// The demo web image, in the cluster's registry on loopback (the
	// nginx of the seeds' manifests).
	image := func(version string) string {
		if cfg.Simulated {
			return cluster.DemoWebRepo + ":" + version
		}
		return c.RegistryHost() + "/" + cluster.DemoWebRepo + ":" + version
	}

	// 1. The Deployment and the NodePort Service.
	labels := map[string]string{"app": "nginx"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "nginx-deployment", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "nginx", Image: image("1.0"),
					Ports: []corev1.ContainerPort{{ContainerPort: 80}},
				}}},
			},
		},
	}
	if _, err := store.Create(ctx, st, dep); err != nil {
		return err
	}
	step("created deployment nginx-deployment (3 replicas of %s)", image("1.0"))
	if err := waitRunning(ctx, st, 3, image("1.0"), out); err != nil {
		return err
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "nginx-service", Labels: labels},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeNodePort,
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "nginx-port", Port: 80, TargetPort: intstr.FromInt32(80), NodePort: nodePort}},
		},
	}
	if _, err := store.Create(ctx, st, svc); err != nil {
		return err
	}
	var clusterIP string
	if err := waitFor(ctx, func() (bool, error) {
		s, err := store.Get[*corev1.Service](ctx, st, "default", "nginx-service")
		if err != nil {
			return false, err
		}
		clusterIP = s.Spec.ClusterIP
		return clusterIP != "", nil
	}); err != nil {
		return err
	}
	step("created service nginx-service: ClusterIP %s, NodePort %d", clusterIP, nodePort)

	// 2. Reach it through the ClusterIP and the NodePort.
	urls := []string{
		"http://" + clusterIP + "/version",
		fmt.Sprintf("http://127.0.0.1:%d/version", nodePort),
		fmt.Sprintf("http://%s:%d/version", c.NodeIP(), nodePort),
	}
	if err := reach(ctx, c, urls, "version=1.0", step); err != nil {
		return err
	}

	// 3. Scale.
	if err := edit(ctx, st, func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(int32(4)) }); err != nil {
		return err
	}
	step("scaled to 4 replicas")
	if err := waitRunning(ctx, st, 4, image("1.0"), out); err != nil {
		return err
	}

	// 4. Roll to a new image.
	if err := edit(ctx, st, func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = image("2.0") }); err != nil {
		return err
	}
	step("set image nginx=%s (rolling update)", image("2.0"))
	if err := waitRunning(ctx, st, 4, image("2.0"), out); err != nil {
		return err
	}
	step("rolled out: 4 pods run %s", image("2.0"))
	return reach(ctx, c, urls[:1], "version=2.0", step)
}

// reach fetches each URL from a process in the proxy's cgroup until it
// answers with a body starting with want, and prints the answers.
func reach(ctx context.Context, c *cluster.Cluster, urls []string, want string, step func(string, ...any)) error {
	if c.Config().Simulated {
		step("simulated nodes run no containers: skipping the requests to %s", strings.Join(urls, ", "))
		return nil
	}
	cg := filepath.Join(c.ProxyCgroup(), "quickstart-client")
	if err := os.MkdirAll(cg, 0o755); err != nil {
		return fmt.Errorf("client cgroup: %w", err)
	}
	defer os.Remove(cg)
	for _, url := range urls {
		var body string
		err := waitFor(ctx, func() (bool, error) {
			b, err := getFromCgroup(ctx, cg, url)
			body = b
			return err == nil && strings.HasPrefix(b, want), nil
		})
		if err != nil {
			return fmt.Errorf("GET %s: last answer %q: %w", url, body, err)
		}
		step("GET %s: %s", url, strings.TrimSpace(body))
	}
	return nil
}

// clientEnv tells a child process of this program to be its HTTP client:
// fetch the URL and print the body.
const clientEnv = "TUGBOAT_QUICKSTART_GET"

// getFromCgroup runs this program as a child in cgroupDir (where the
// eBPF service proxy translates its connections) to fetch url.
func getFromCgroup(ctx context.Context, cgroupDir, url string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	f, err := os.Open(cgroupDir)
	if err != nil {
		return "", err
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), clientEnv+"="+url)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return string(b), fmt.Errorf("%w: %s", err, stderr.String())
	}
	return string(b), nil
}

// clientMain is the HTTP client child: it reports whether this process
// is one, and its error.
func clientMain() (bool, error) {
	url := os.Getenv(clientEnv)
	if url == "" {
		return false, nil
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return true, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	_, err = io.Copy(os.Stdout, resp.Body)
	return true, err
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
// are ready, and prints them.
func waitRunning(ctx context.Context, st store.Interface, n int, image string, out io.Writer) error {
	var lines []string
	err := waitFor(ctx, func() (bool, error) {
		pods, _, err := store.ListOf[*corev1.Pod](ctx, st, "default", metav1.ListOptions{LabelSelector: "app=nginx"})
		if err != nil {
			return false, err
		}
		lines = lines[:0]
		for _, p := range pods {
			if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || p.Spec.Containers[0].Image != image || !ready(p) {
				return false, nil
			}
			lines = append(lines, fmt.Sprintf("    %-40s %-8s %-12s %s", p.Name, p.Status.Phase, p.Status.PodIP, p.Spec.NodeName))
		}
		return len(pods) == n, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %d pods of %s: %w", n, image, err)
	}
	for _, l := range lines {
		fmt.Fprintln(out, l)
	}
	return nil
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitFor polls cond until it holds, fails, or two minutes pass.
func waitFor(ctx context.Context, cond func() (bool, error)) error {
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) { return cond() })
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("waiting: %w", err)
	}
	return err
}

func ptr[T any](v T) *T { return &v }
