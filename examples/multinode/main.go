// Command multinode runs a cluster of three nodes on one machine, each
// node in its own network namespace, as root:
//
//   - a host bridge joins one veth per node; node i has the address
//     10.251.0.(10+i) on its eth0, its own pod bridge and pod CIDR
//     10.245.i.0/24, and routes to the other nodes' pod CIDRs through
//     their addresses (the host has routes to every pod CIDR too);
//   - the control plane runs in this process: store, API server on the
//     host bridge address (TLS, admin kubeconfig), scheduler, controllers,
//     the cluster DNS and a registry with the demo images;
//   - each node is a process of its own, started inside its namespace: a
//     private containerd, CNI, the node agent (talking to the API server
//     over HTTPS through orchestrator/remote) and the eBPF service proxy
//     on that node's pods' cgroup.
//
// It then spreads a Deployment over the nodes, checks pod-to-pod traffic
// across nodes, Service traffic by DNS name from every node, the pods
// from the host through the routes, the NodePort on every node's address,
// and cordon + drain moving the pods of one node to the others. It prints
// each step; with -exit it stops after them, otherwise it keeps serving
// (kubectl --kubeconfig <data-dir>/admin.kubeconfig get pods -o wide)
// until Ctrl-C. Everything it made (namespaces, veths, bridges, routes,
// containers, cgroups) is removed on exit, also after a failure.
//
//	sudo go run ./examples/multinode
//
// kubectl logs, exec, attach and port-forward work for the pods of every
// node: each node process serves a streaming endpoint on its address,
// port 10250, and the API server proxies to it (orchestrator/cluster's
// NodeStreamHandler and NodeProxy, with mutual TLS; see streams.go).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/tugboatdev/tugboat/netproxy/dns"
	"github.com/tugboatdev/tugboat/orchestrator/apiserver"
	"github.com/tugboatdev/tugboat/orchestrator/cluster"
	"github.com/tugboatdev/tugboat/orchestrator/controllers"
	"github.com/tugboatdev/tugboat/runtime/images"
	"github.com/tugboatdev/tugboat/scheduler"
	"github.com/tugboatdev/tugboat/store"
)

func main() {
	if isNode, err := nodeMain(); isNode {
		if err != nil {
			fmt.Fprintln(os.Stderr, "multinode node:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "multinode:", err)
		os.Exit(1)
	}
}

// options of a run.
type options struct {
	layout      Layout
	serviceCIDR netip.Prefix
	dataDir     string
	exit        bool
	verbose     bool
	// check, when set, runs after the walk-through while the cluster
	// still runs (tests drive kubectl from it).
	check func(ctx context.Context, kubeconfig string) error
}

// run parses args, builds the layout, runs the cluster and the
// walk-through, and removes everything. check, when not nil, runs after
// the walk-through.
func run(ctx context.Context, args []string, out io.Writer, check func(ctx context.Context, kubeconfig string) error) error {
	fs := flag.NewFlagSet("multinode", flag.ContinueOnError)
	o := options{layout: Layout{HostNet: netip.MustParsePrefix("10.251.0.0/24"), PodNet: netip.MustParsePrefix("10.245.0.0/16")}, check: check}
	fs.IntVar(&o.layout.Nodes, "nodes", 3, "number of nodes")
	fs.StringVar(&o.layout.Prefix, "prefix", "tbmn", "prefix of the bridge, namespaces and veths (at most 8 characters)")
	hostNet := fs.String("host-net", "10.251.0.0/24", "subnet of the host bridge")
	podNet := fs.String("pod-net", "10.245.0.0/16", "pod CIDRs: node i gets the i-th /24")
	svc := fs.String("service-cidr", "10.113.0.0/16", "service ClusterIP range")
	fs.StringVar(&o.dataDir, "data-dir", filepath.Join(os.TempDir(), "tugboat-multinode"), "data directory")
	fs.BoolVar(&o.exit, "exit", false, "stop after the walk-through")
	fs.BoolVar(&o.verbose, "v", false, "component logs on stderr (else in <data-dir>/*.log)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.layout.HostNet, err = netip.ParsePrefix(*hostNet); err != nil {
		return err
	}
	if o.layout.PodNet, err = netip.ParsePrefix(*podNet); err != nil {
		return err
	}
	if o.serviceCIDR, err = netip.ParsePrefix(*svc); err != nil {
		return err
	}
	if len(o.layout.Prefix) > 8 || o.layout.Nodes < 1 || o.layout.Nodes > 200 {
		return errors.New("-prefix must have at most 8 characters and -nodes be 1..200")
	}
	if os.Geteuid() != 0 {
		return errors.New("multinode needs root (network namespaces, containerd)")
	}
	if left := o.layout.Leftovers(); len(left) > 0 {
		return fmt.Errorf("already exists: %s (another multinode running, or use another -prefix)", strings.Join(left, ", "))
	}
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(o.dataDir)
	if err := o.layout.Create(ctx); err != nil {
		return err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if rerr := o.layout.Remove(rctx); rerr != nil {
			fmt.Fprintln(out, "cleanup:", rerr)
		}
	}()
	return runCluster(ctx, o, out)
}

// runCluster runs the control plane and the node processes over a
// created layout.
func runCluster(ctx context.Context, o options, out io.Writer) error {
	l := o.layout
	step := func(format string, args ...any) { fmt.Fprintf(out, "==> "+format+"\n", args...) }
	logOut := io.Writer(os.Stderr)
	var cpLog *os.File
	if !o.verbose {
		f, err := os.Create(filepath.Join(o.dataDir, "control-plane.log"))
		if err != nil {
			return err
		}
		defer f.Close()
		cpLog, logOut = f, f
	}
	_ = cpLog
	log := slog.New(slog.NewTextHandler(logOut, nil))
	hostIP := l.HostIP()

	st, err := store.Open(ctx, store.Config{ServiceCIDR: o.serviceCIDR, Logger: log})
	if err != nil {
		return err
	}
	defer st.Close()

	// Demo images in a registry on the host bridge, where every node's
	// containerd client can pull from.
	regLn, err := net.Listen("tcp", netip.AddrPortFrom(hostIP, 5000).String())
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	regSrv := &http.Server{Handler: registry.New(registry.Logger(stdlog(io.Discard))), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = regSrv.Serve(regLn) }()
	defer regSrv.Close()
	regHost := regLn.Addr().String()
	if err := pushImages(ctx, regHost); err != nil {
		return err
	}

	// API server on the host bridge address. Pod logs, exec, attach and
	// port-forward go through a NodeProxy to the streaming endpoint of
	// the pod's node (see streams.go).
	streamers := cluster.NewNodeStreamers()
	api, err := apiserver.New(apiserver.Config{
		Store:    st,
		DataDir:  o.dataDir,
		Hosts:    []string{hostIP.String()},
		Streamer: streamers,
		Logger:   log.With("component", "apiserver"),
	})
	if err != nil {
		return err
	}
	ca, err := newNodeCA()
	if err != nil {
		return err
	}
	certPEM, keyPEM, err := api.PKI().IssueClientCert(streamClientUser, nil)
	if err != nil {
		return err
	}
	clientCert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	nodeProxy := cluster.NewNodeProxy(st, &tls.Config{RootCAs: ca.pool(), Certificates: []tls.Certificate{clientCert}, MinVersion: tls.VersionTLS12}, log.With("component", "node-proxy"))
	defer nodeProxy.Close()
	streamers.SetFallback(nodeProxy)
	apiLn, err := net.Listen("tcp", netip.AddrPortFrom(hostIP, 0).String())
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(o.dataDir, "admin.kubeconfig")
	if err := api.PKI().WriteKubeconfig(kubeconfig, "https://"+apiLn.Addr().String(), apiserver.KubeconfigOptions{}); err != nil {
		apiLn.Close()
		return err
	}

	// Cluster DNS on the host bridge address, as kube-dns.
	dnsIP := tenth(o.serviceCIDR)
	cat := dns.NewCatalog()
	dsrv := dns.NewServer(dns.Config{Domain: "cluster.local", Logger: log.With("component", "dns")}, cat)
	bound, err := dsrv.Start(netip.AddrPortFrom(hostIP, 53).String())
	if err != nil {
		apiLn.Close()
		return fmt.Errorf("dns: %w", err)
	}
	defer dsrv.Close()

	sched, err := scheduler.New(ctx, st, scheduler.Config{Logger: log.With("component", "scheduler")})
	if err != nil {
		apiLn.Close()
		return err
	}
	mgr := controllers.NewManager(controllers.ManagerOptions{
		Store:         st,
		Log:           log.With("component", "controllers"),
		ServiceCIDRs:  []netip.Prefix{o.serviceCIDR},
		NodePortRange: store.DefaultNodePortRange(),
		RootCAPEM:     api.PKI().CAPEM,
	})

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := api.Serve(gctx, apiLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error { return sched.Run(gctx) })
	g.Go(func() error { return mgr.Run(gctx) })
	g.Go(func() error { dns.Sync(gctx, st, cat, log.With("component", "dns"), nil); return nil })
	if _, err := dns.Register(ctx, st, dns.Registration{ClusterIP: dnsIP.String(), Servers: []netip.AddrPort{bound}}); err != nil {
		cancel()
		_ = g.Wait()
		return fmt.Errorf("dns: %w", err)
	}
	step("control plane on %s: API server %s, DNS %s as kube-dns %s, registry %s", l.Bridge(), apiLn.Addr(), bound, dnsIP, regHost)

	// The node processes, each in its namespace.
	var nodes []*exec.Cmd
	defer stopNodes(&nodes, out)
	for i := range l.Nodes {
		logFile := os.Stderr
		if !o.verbose {
			f, err := os.Create(filepath.Join(o.dataDir, l.NodeName(i)+".log"))
			if err != nil {
				cancel()
				_ = g.Wait()
				return err
			}
			defer f.Close()
			logFile = f
		}
		nodeDir := filepath.Join(o.dataDir, l.NodeName(i))
		streamCert, streamKey, err := ca.issue(nodeDir, l.NodeName(i), l.NodeIP(i).AsSlice())
		if err != nil {
			cancel()
			_ = g.Wait()
			return err
		}
		cmd, err := startNode(l.Netns(i), nodeConfig{
			Name:        l.NodeName(i),
			Kubeconfig:  kubeconfig,
			DataDir:     nodeDir,
			StreamCert:  streamCert,
			StreamKey:   streamKey,
			NodeIP:      l.NodeIP(i).String(),
			PodCIDR:     l.PodCIDR(i).String(),
			ServiceCIDR: o.serviceCIDR.String(),
			ClusterDNS:  dnsIP.String(),
			Registry:    regHost,
			Namespace:   fmt.Sprintf("%s-%s", l.Prefix, l.NodeName(i)),
			Verbose:     o.verbose,
		}, logFile)
		if err != nil {
			cancel()
			_ = g.Wait()
			return err
		}
		nodes = append(nodes, cmd)
		step("node %s in netns %s: address %s, pod CIDR %s (pid %d)", l.NodeName(i), l.Netns(i), l.NodeIP(i), l.PodCIDR(i), cmd.Process.Pid)
	}

	g.Go(func() error {
		defer cancel()
		if err := walkThrough(gctx, st, o, regHost, kubeconfig, step); err != nil {
			return err
		}
		if o.check != nil {
			if err := o.check(gctx, kubeconfig); err != nil {
				return err
			}
		}
		step("kubectl --kubeconfig %s get pods -o wide", kubeconfig)
		if !o.exit {
			step("serving; stop with Ctrl-C")
			<-gctx.Done()
		}
		return nil
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// stopNodes sends SIGTERM to the node processes and waits for them to
// remove their pods; a node that takes over two minutes is killed.
func stopNodes(nodes *[]*exec.Cmd, out io.Writer) {
	for _, c := range *nodes {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range *nodes {
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			fmt.Fprintln(out, "node process", c.Process.Pid, "did not stop; killing it")
			_ = c.Process.Kill()
			<-done
		}
	}
}

// tenth returns the tenth address of a range (the DNS Service's).
func tenth(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr()
	for range 10 {
		a = a.Next()
	}
	return a
}

// pushImages pushes the demo web images and busybox to the registry.
func pushImages(ctx context.Context, host string) error {
	push := func(ref string, img v1.Image) error {
		tag, err := name.NewTag(ref, name.Insecure)
		if err != nil {
			return err
		}
		if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		return nil
	}
	web, err := cluster.WebImage("1.0")
	if err != nil {
		return err
	}
	if err := push(host+"/"+cluster.DemoWebRepo+":1.0", web); err != nil {
		return err
	}
	bb, err := images.Busybox()
	if err != nil {
		return err
	}
	return push(host+"/"+cluster.DemoBusyboxRepo+":1.35", bb)
}

// stdlog adapts a writer to the standard logger the registry wants.
func stdlog(w io.Writer) *log.Logger { return log.New(w, "", 0) }

// walkThrough spreads a Deployment over the nodes and checks traffic.
func walkThrough(ctx context.Context, st store.Interface, o options, reg, kubeconfig string, step func(string, ...any)) error {
	l := o.layout
	if err := waitFor(ctx, 3*time.Minute, func() (bool, error) {
		ns, _, err := store.ListOf[*corev1.Node](ctx, st, "", metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		ready := 0
		for _, n := range ns {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready == l.Nodes, nil
	}); err != nil {
		return fmt.Errorf("waiting for %d Ready nodes: %w", l.Nodes, err)
	}
	step("%d nodes Ready", l.Nodes)

	replicas := int32(2 * l.Nodes)
	labels := map[string]string{"app": "web"}
	if _, err := store.Create(ctx, st, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "web", Image: reg + "/demo/web:1.0", Ports: []corev1.ContainerPort{{ContainerPort: 80}}}},
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.ScheduleAnyway,
						LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
					}},
				},
			},
		},
	}); err != nil {
		return err
	}
	if _, err := store.Create(ctx, st, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeNodePort, Selector: labels,
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(80), NodePort: 32700}},
		},
	}); err != nil {
		return err
	}
	pods, err := waitPods(ctx, st, int(replicas), "")
	if err != nil {
		return err
	}
	byNode := map[string][]*corev1.Pod{}
	for _, p := range pods {
		byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
		step("pod %s on %s with IP %s", p.Name, p.Spec.NodeName, p.Status.PodIP)
	}
	if len(byNode) != l.Nodes {
		return fmt.Errorf("pods on %d nodes, want all %d", len(byNode), l.Nodes)
	}
	step("deployment web: %d pods Running, spread over %d nodes", len(pods), len(byNode))

	// kubectl logs and exec, as kubectl does them, for a pod on every
	// node: the API server reaches each node's streaming endpoint.
	for i := range l.Nodes {
		p := byNode[l.NodeName(i)][0]
		logs, out, err := logsAndExec(ctx, kubeconfig, p.Name, "cat", "/www/version")
		if err != nil {
			return fmt.Errorf("logs and exec on %s (node %s): %w", p.Name, p.Spec.NodeName, err)
		}
		if want := "serving http on :80 as " + p.Name; !strings.Contains(logs, want) {
			return fmt.Errorf("logs of %s: %q, want %q", p.Name, logs, want)
		}
		if want := "version=1.0 hostname=" + p.Name; strings.TrimSpace(out) != want {
			return fmt.Errorf("exec cat /www/version in %s: %q, want %q", p.Name, out, want)
		}
		step("logs and exec on %s (node %s): %q, %q", p.Name, p.Spec.NodeName, strings.TrimSpace(lastLine(logs)), strings.TrimSpace(out))
	}

	// The host reaches every pod through its node.
	for _, p := range pods {
		body, err := hostGet(ctx, "http://"+p.Status.PodIP+"/version")
		if err != nil || !strings.Contains(body, "hostname="+p.Name) {
			return fmt.Errorf("host to pod %s at %s: %q, %v", p.Name, p.Status.PodIP, body, err)
		}
	}
	step("host reaches all %d pods by pod IP through the node routes", len(pods))

	// From a client pod on every node (all at once): the pods on the
	// other nodes by pod IP, and the Service by DNS name.
	wants := make([][]string, l.Nodes)
	msgs := make([]string, l.Nodes)
	var clients errgroup.Group
	for i := range l.Nodes {
		node := l.NodeName(i)
		var urls []string
		for other, ps := range byNode {
			if other != node {
				urls = append(urls, "http://"+ps[0].Status.PodIP+"/version")
				wants[i] = append(wants[i], "hostname="+ps[0].Name)
			}
		}
		for range 2 * l.Nodes {
			urls = append(urls, "http://web.default.svc.cluster.local/version")
		}
		clients.Go(func() error {
			var err error
			msgs[i], err = runClient(ctx, st, fmt.Sprintf("client-%d", i), node, reg, urls)
			return err
		})
	}
	if err := clients.Wait(); err != nil {
		return err
	}
	for i := range l.Nodes {
		node, msg, want := l.NodeName(i), msgs[i], wants[i]
		for _, w := range want {
			if !strings.Contains(msg, w) {
				return fmt.Errorf("client on %s: no answer from %s across nodes:\n%s", node, w, msg)
			}
		}
		served := map[string]bool{}
		lines := strings.Split(strings.TrimSpace(msg), "\n")
		for _, line := range lines[len(want):] {
			if !strings.HasPrefix(line, "version=1.0 hostname=web-") {
				return fmt.Errorf("client on %s: Service answer %q", node, line)
			}
			served[strings.TrimPrefix(line, "version=1.0 hostname=")] = true
		}
		remote := 0
		for _, p := range pods {
			if served[p.Name] && p.Spec.NodeName != node {
				remote++
			}
		}
		if remote == 0 {
			return fmt.Errorf("client on %s: the Service answered only from pods on the same node: %v", node, served)
		}
		step("client pod on %s: reached %d pods on other nodes by IP; web.default.svc.cluster.local answered from %d pods, %d of them on other nodes", node, len(want), len(served), remote)
	}

	// The NodePort on every node's address, from the host.
	for i := range l.Nodes {
		url := fmt.Sprintf("http://%s:32700/version", l.NodeIP(i))
		body, err := hostGet(ctx, url)
		if err != nil || !strings.HasPrefix(body, "version=1.0 hostname=web-") {
			return fmt.Errorf("NodePort %s: %q, %v", url, body, err)
		}
	}
	step("NodePort 32700 answers on all %d node addresses", l.Nodes)

	// Cordon and drain the last node: its pods move to the others.
	last := l.NodeName(l.Nodes - 1)
	if l.Nodes > 1 {
		if err := setUnschedulable(ctx, st, last, true); err != nil {
			return err
		}
		for _, p := range byNode[last] {
			if _, err := st.Delete(ctx, podsGR, p.Namespace, p.Name, metav1.DeleteOptions{}); err != nil {
				return err
			}
		}
		pods, err = waitPods(ctx, st, int(replicas), last)
		if err != nil {
			return err
		}
		step("cordoned and drained %s: %d pods Running on the other nodes", last, len(pods))
		if err := setUnschedulable(ctx, st, last, false); err != nil {
			return err
		}
		step("uncordoned %s", last)
	}
	return nil
}

// runClient runs a busybox pod on node that fetches urls in order and
// returns what it wrote to its termination message (one line per URL).
func runClient(ctx context.Context, st store.Interface, podName, node, reg string, urls []string) (string, error) {
	script := `for u in $URLS; do wget -q -O - "$u" || echo "FAILED $u"; done > /dev/termination-log`
	if _, err := store.Create(ctx, st, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: podName},
		Spec: corev1.PodSpec{
			NodeName:      node,
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "client", Image: reg + "/demo/busybox:1.35",
				Command: []string{"sh", "-c", script},
				Env:     []corev1.EnvVar{{Name: "URLS", Value: strings.Join(urls, " ")}},
			}},
		},
	}); err != nil {
		return "", err
	}
	var msg string
	err := waitFor(ctx, 2*time.Minute, func() (bool, error) {
		p, err := store.Get[*corev1.Pod](ctx, st, "default", podName)
		if err != nil {
			return false, err
		}
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			return false, nil
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Terminated != nil {
				msg = cs.State.Terminated.Message
			}
		}
		return true, nil
	})
	if err != nil {
		return "", fmt.Errorf("client pod %s on %s: %w", podName, node, err)
	}
	if strings.Contains(msg, "FAILED") {
		return msg, fmt.Errorf("client pod %s on %s:\n%s", podName, node, msg)
	}
	return msg, nil
}

var (
	podsGR  = corev1.SchemeGroupVersion.WithResource("pods").GroupResource()
	nodesGR = corev1.SchemeGroupVersion.WithResource("nodes").GroupResource()
)

// setUnschedulable cordons or uncordons a node.
func setUnschedulable(ctx context.Context, st store.Interface, node string, on bool) error {
	patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, on)
	_, err := st.Patch(ctx, nodesGR, "", node, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{})
	return err
}

// waitPods waits for n Running, ready pods of app=web with IPs, none on
// avoid, and returns them sorted by name.
func waitPods(ctx context.Context, st store.Interface, n int, avoid string) ([]*corev1.Pod, error) {
	var got []*corev1.Pod
	err := waitFor(ctx, 3*time.Minute, func() (bool, error) {
		pods, _, err := store.ListOf[*corev1.Pod](ctx, st, "default", metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		got = got[:0]
		for _, p := range pods {
			if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" || p.Spec.NodeName == avoid || !ready(p) {
				return false, nil
			}
			got = append(got, p)
		}
		return len(got) == n, nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for %d running web pods: %w", n, err)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Name < got[j].Name })
	return got, nil
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// hostGet fetches url from this process (the host), retrying briefly
// while routes and proxies settle.
func hostGet(ctx context.Context, url string) (string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	var last error
	for range 20 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return "", err
		}
		resp, err := client.Do(req)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return string(b), nil
			}
			err = fmt.Errorf("status %s, %v", resp.Status, rerr)
		}
		last = err
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return "", last
}

// waitFor polls cond until it holds, fails or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(context.Context) (bool, error) { return cond() })
}

// logsAndExec reads the log of pod's container and runs cmd in it
// through the API server, as kubectl logs and kubectl exec do (exec over
// a websocket with the v5.channel.k8s.io protocol, falling back to SPDY).
func logsAndExec(ctx context.Context, kubeconfig, pod string, cmd ...string) (logs, out string, err error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return "", "", err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return "", "", err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	b, err := cs.CoreV1().Pods("default").GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		return "", "", fmt.Errorf("logs: %w", err)
	}
	req := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Command: cmd, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(rc, "GET", req.URL().String())
	if err != nil {
		return "", "", err
	}
	spdy, err := remotecommand.NewSPDYExecutor(rc, "POST", req.URL())
	if err != nil {
		return "", "", err
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return "", "", err
	}
	var stdout, stderr strings.Builder
	if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}); err != nil {
		return "", "", fmt.Errorf("exec: %w (stderr %q)", err, stderr.String())
	}
	return string(b), stdout.String(), nil
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
