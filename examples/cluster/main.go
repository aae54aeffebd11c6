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
// The cluster is a real node: its eBPF service proxy serves the host's own
// processes, as kube-proxy and Cilium do. By default it attaches to the
// root of the cgroup v2 hierarchy, /sys/fs/cgroup/unified, and says so at
// start ("proxy cgroup: /sys/fs/cgroup/unified ..."), so any shell on the
// machine reaches ClusterIPs and NodePorts:
//
//	wget -qO- http://<ClusterIP>/
//	wget -qO- http://127.0.0.1:<NodePort>/
//
// --proxy-cgroup <dir> narrows it to the processes of one cgroup v2
// directory, for example on a machine shared with others the pods' parent
// cgroup, which the cluster makes; a host shell then joins it to reach
// Services:
//
//	sudo go run ./examples/cluster --data-dir /var/lib/tugboat --proxy-cgroup /sys/fs/cgroup/unified/tugboat-tugboat
//	echo $$ > /sys/fs/cgroup/unified/tugboat-tugboat/cgroup.procs
//
// The programs hang on links that the process holds (nothing is pinned):
// they are detached when it stops on SIGINT or SIGTERM and when it is
// killed (kill -9), and a restart attaches them afresh. The service range
// gets a blackhole route, so a packet to a ClusterIP never leaves the
// machine, even while no program is attached. The tests of this program
// never use the default: each passes a cgroup it made itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tugboatdev/tugboat/netproxy"
	"github.com/tugboatdev/tugboat/orchestrator/cluster"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

// options are the parsed command line.
type options struct {
	cfg     cluster.Config
	purge   bool
	verbose bool
}

// parseFlags parses the command line into a cluster configuration; usage
// and errors go to out.
func parseFlags(args []string, out io.Writer) (*options, error) {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		o         options
		cfg       = &o.cfg
		svcCIDR   = fs.String("service-cidr", cluster.DefaultServiceCIDR, "service ClusterIP range (gets a blackhole route)")
		podCIDR   = fs.String("pod-cidr", cluster.DefaultPodCIDR, "the node's pod range")
		proxyMode = fs.String("proxy-mode", "", "service proxy: ebpf, userspace or empty for automatic")
	)
	fs.BoolVar(&o.purge, "purge", false, "on stop, remove every pod, container, image, route, bridge and the data directory")
	fs.BoolVar(&o.verbose, "v", false, "log at debug level")
	fs.StringVar(&cfg.DataDir, "data-dir", "/var/lib/tugboat", "data directory (store, PKI, kubeconfig, containerd)")
	fs.StringVar(&cfg.ContainerdSocket, "containerd-socket", "", "socket of an existing containerd (default: a private containerd under --data-dir)")
	fs.StringVar(&cfg.ContainerdNamespace, "containerd-namespace", cluster.DefaultContainerdNamespace, "containerd namespace (and pods' cgroup tugboat-<namespace>)")
	fs.IntVar(&cfg.Nodes, "nodes", 1, "number of simulated nodes (with --simulated)")
	fs.BoolVar(&cfg.Simulated, "simulated", false, "run simulated nodes instead of a real node on containerd")
	fs.StringVar(&cfg.NodeName, "node-name", "", "node name (default: host name)")
	fs.StringVar(&cfg.APIAddress, "api-address", cluster.DefaultAPIAddress, "API server address (loopback)")
	fs.StringVar(&cfg.RegistryAddress, "registry-address", cluster.DefaultRegistryAddress, "demo image registry address (loopback), or off")
	fs.StringVar(&cfg.Bridge, "bridge", cluster.DefaultBridge, "Linux bridge of the pod network")
	fs.StringVar(&cfg.ProxyCgroup, "proxy-cgroup", cluster.CgroupV2Root,
		"cgroup v2 directory whose processes the eBPF proxy serves; the default, the cgroup v2 root, serves every process of the machine "+
			"as kube-proxy does; a directory under it (such as the pods' cgroup "+cluster.CgroupV2Root+"/tugboat-<namespace>) narrows it")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if cfg.ServiceCIDR, err = netip.ParsePrefix(*svcCIDR); err != nil {
		return nil, fmt.Errorf("--service-cidr: %w", err)
	}
	if cfg.PodCIDR, err = netip.ParsePrefix(*podCIDR); err != nil {
		return nil, fmt.Errorf("--pod-cidr: %w", err)
	}
	cfg.ProxyMode = netproxy.Mode(*proxyMode)
	return &o, nil
}

// proxyCgroupLine is what the binary prints about the cgroup the eBPF
// proxy attached to.
func proxyCgroupLine(cgroup string) string {
	if filepath.Clean(cgroup) == cluster.CgroupV2Root {
		return "proxy cgroup: " + cgroup + " (the cgroup v2 root: every process of this machine reaches Services)"
	}
	return "proxy cgroup: " + cgroup + " (processes in it reach Services; join with: echo $$ > " + filepath.Join(cgroup, "cgroup.procs") + ")"
}

func run(args []string) error {
	startedAt := time.Now()
	o, err := parseFlags(args, os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg := o.cfg
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

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
			fmt.Println(proxyCgroupLine(c.ProxyCgroup()))
		}
	}
	fmt.Printf("ready in %s: kubectl --kubeconfig %s get nodes\n", time.Since(startedAt).Round(time.Millisecond), c.KubeconfigPath())

	// On SIGINT or SIGTERM Run returns after closing everything it
	// started; the eBPF programs are attached through links held by this
	// process's file descriptors (not pinned), so they are detached then,
	// and also when the process is killed (kill -9): a restart attaches
	// afresh and never finds programs of an earlier run.
	err = <-done
	fmt.Println("stopped")
	if o.purge {
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
