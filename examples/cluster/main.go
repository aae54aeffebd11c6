// Command cluster runs a whole single-machine Kubernetes cluster in one
// process: store, API server, scheduler, controllers, a node agent on
// containerd, service proxy, cluster DNS and a registry with demo images.
// Drive it with kubectl through the kubeconfig it prints.
//
//	sudo go run ./examples/cluster --data-dir /var/lib/tugboat
//	kubectl --kubeconfig /var/lib/tugboat/admin.kubeconfig get nodes
//
// With --nodes N --simulated it runs N simulated nodes instead (no
// containers), to explore scale. It stops on SIGINT or SIGTERM, leaving
// pods running for the next start over the same data directory; --purge
// removes everything instead.
//
// # Reaching Services from the host
//
// The eBPF service proxy rewrites connections to ClusterIPs and NodePorts
// for the processes of one cgroup v2 directory, which it prints at start.
// By default that is the pods' parent cgroup,
// /sys/fs/cgroup/unified/tugboat-<namespace>: pods reach Services, and so
// does any host process moved into it (or into a child cgroup of it):
//
//	echo $$ > /sys/fs/cgroup/unified/tugboat-tugboat/cgroup.procs   # this shell
//	wget -qO- http://<ClusterIP>/
//
// On a machine that is a real node (nothing else shares it), serve every
// process of the host instead, as kube-proxy and Cilium do:
//
//	sudo go run ./examples/cluster --data-dir /var/lib/tugboat --proxy-cgroup /sys/fs/cgroup/unified
//
// The default stays with the pods' cgroup because on a shared machine the
// root cgroup would rewrite other users' connections to addresses in the
// service range. Either way the service range gets a blackhole route, so
// a packet to a ClusterIP never leaves the machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tugboatdev/tugboat/netproxy"
	"github.com/tugboatdev/tugboat/orchestrator/cluster"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		cfg       cluster.Config
		svcCIDR   = flag.String("service-cidr", cluster.DefaultServiceCIDR, "service ClusterIP range (gets a blackhole route)")
		podCIDR   = flag.String("pod-cidr", cluster.DefaultPodCIDR, "the node's pod range")
		proxyMode = flag.String("proxy-mode", "", "service proxy: ebpf, userspace or empty for automatic")
		purge     = flag.Bool("purge", false, "on stop, remove every pod, container, image, route, bridge and the data directory")
		verbose   = flag.Bool("v", false, "log at debug level")
		startedAt = time.Now()
	)
	flag.StringVar(&cfg.DataDir, "data-dir", "/var/lib/tugboat", "data directory (store, PKI, kubeconfig, containerd)")
	flag.StringVar(&cfg.ContainerdSocket, "containerd-socket", "", "socket of an existing containerd (default: a private containerd under --data-dir)")
	flag.StringVar(&cfg.ContainerdNamespace, "containerd-namespace", cluster.DefaultContainerdNamespace, "containerd namespace (and pods' cgroup tugboat-<namespace>)")
	flag.IntVar(&cfg.Nodes, "nodes", 1, "number of simulated nodes (with --simulated)")
	flag.BoolVar(&cfg.Simulated, "simulated", false, "run simulated nodes instead of a real node on containerd")
	flag.StringVar(&cfg.NodeName, "node-name", "", "node name (default: host name)")
	flag.StringVar(&cfg.APIAddress, "api-address", cluster.DefaultAPIAddress, "API server address (loopback)")
	flag.StringVar(&cfg.RegistryAddress, "registry-address", cluster.DefaultRegistryAddress, "demo image registry address (loopback), or off")
	flag.StringVar(&cfg.Bridge, "bridge", cluster.DefaultBridge, "Linux bridge of the pod network")
	flag.StringVar(&cfg.ProxyCgroup, "proxy-cgroup", "", "cgroup v2 directory the eBPF proxy serves (default: the pods' cgroup "+cluster.CgroupV2Root+"/tugboat-<namespace>; "+cluster.CgroupV2Root+" serves the whole machine)")
	flag.Parse()

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	var err error
	if cfg.ServiceCIDR, err = netip.ParsePrefix(*svcCIDR); err != nil {
		return fmt.Errorf("--service-cidr: %w", err)
	}
	if cfg.PodCIDR, err = netip.ParsePrefix(*podCIDR); err != nil {
		return fmt.Errorf("--pod-cidr: %w", err)
	}
	cfg.ProxyMode = netproxy.Mode(*proxyMode)

	c, err := cluster.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case err := <-done:
		return err
	case <-c.Ready():
	}
	for _, line := range c.Started() {
		fmt.Println("started:", line)
	}
	fmt.Println("kubeconfig:", c.KubeconfigPath())
	if !cfg.Simulated {
		fmt.Println("proxy mode:", c.ProxyMode())
		if c.ProxyMode() == netproxy.ModeEBPF {
			fmt.Println("proxy cgroup:", c.ProxyCgroup(), "(processes in it reach Services; join with: echo $$ >", c.ProxyCgroup()+"/cgroup.procs)")
		}
	}
	fmt.Printf("ready in %s: kubectl --kubeconfig %s get nodes\n", time.Since(startedAt).Round(time.Millisecond), c.KubeconfigPath())

	err = <-done
	fmt.Println("stopped")
	if *purge {
		pctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if perr := cluster.Purge(pctx, c.Config()); perr != nil {
			err = errors.Join(err, perr)
		} else {
			fmt.Println("purged")
		}
	}
	return err
}
