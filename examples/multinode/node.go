package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/tugboatdev/tugboat/netproxy"
	"github.com/tugboatdev/tugboat/orchestrator/agent"
	"github.com/tugboatdev/tugboat/orchestrator/agent/nodeproc"
	"github.com/tugboatdev/tugboat/orchestrator/cluster"
	"github.com/tugboatdev/tugboat/runtime/cni"
	"github.com/tugboatdev/tugboat/runtime/containerd"
)

// nodeEnv carries a node's configuration (JSON) to the node process.
const nodeEnv = "TUGBOAT_MULTINODE_NODE"

// nodeConfig configures one node process. It runs inside the node's
// network namespace and reaches the control plane over the host bridge.
type nodeConfig struct {
	Name        string
	Kubeconfig  string
	DataDir     string
	NodeIP      string
	PodCIDR     string
	ServiceCIDR string
	ClusterDNS  string
	// Registry is host:port of the image registry (plain HTTP).
	Registry string
	// Namespace is the containerd namespace and the pods' cgroup name.
	Namespace string
	// StreamCert and StreamKey are the serving certificate of the node's
	// streaming endpoint (logs, exec, attach, port-forward) on
	// NodeIP:10250.
	StreamCert, StreamKey string
	Verbose               bool
}

// cgroup is the pods' parent cgroup (v2 path), which the node's eBPF
// proxy serves.
func (c nodeConfig) cgroup() string { return filepath.Join(cgroupV2Root, c.Namespace) }

const cgroupV2Root = "/sys/fs/cgroup/unified"

// startNode starts a node process in its network namespace with nsenter
// (which, unlike ip netns exec, keeps /sys and the cgroup mounts). It
// receives SIGTERM when this process dies.
func startNode(netns string, cfg nodeConfig, logFile *os.File) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("nsenter", "--net=/run/netns/"+netns, "--", exe)
	cmd.Env = append(os.Environ(), nodeEnv+"="+string(b))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("multinode: starting %s: %w", cfg.Name, err)
	}
	return cmd, nil
}

// nodeMain runs a node process if this process is one: it reports
// whether it was, and the error the node stopped with.
func nodeMain() (bool, error) {
	v := os.Getenv(nodeEnv)
	if v == "" {
		return false, nil
	}
	var cfg nodeConfig
	if err := json.Unmarshal([]byte(v), &cfg); err != nil {
		return true, fmt.Errorf("multinode node: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return true, runNode(ctx, cfg)
}

// runNode runs one node until ctx ends: a private containerd, the pod
// bridge and CNI, the node agent against the API server, the node's
// streaming endpoint and the eBPF service proxy on the pods' cgroup
// (nodeproc.Run with the last two beside the agent). On the way out it
// removes every pod, container, image, the containerd namespace and
// daemon, the pod network and the cgroup.
func runNode(ctx context.Context, cfg nodeConfig) error {
	level := slog.LevelInfo
	if cfg.Verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("node", cfg.Name)
	podCIDR := netip.MustParsePrefix(cfg.PodCIDR)
	svcCIDR := netip.MustParsePrefix(cfg.ServiceCIDR)
	netw, err := cni.New(cni.Config{
		Name:    cfg.Namespace,
		Bridge:  "cni0",
		PodCIDR: podCIDR,
		IPAMDir: filepath.Join(cfg.DataDir, "cni"),
	})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.cgroup(), 0o755); err != nil {
		return err
	}
	// Runs after nodeproc.Run removed the containers.
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), nodeproc.DestroyTimeout)
		defer cancel()
		if err := netw.Destroy(dctx); err != nil {
			log.Warn("removing the pod network", "err", err)
		}
		if err := os.Remove(cfg.cgroup()); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Warn("removing the pods' cgroup", "err", err)
		}
	}()
	registry := cfg.Registry
	return nodeproc.Run(ctx, nodeproc.Config{
		Kubeconfig: cfg.Kubeconfig,
		DataDir:    cfg.DataDir,
		Runtime: containerd.Options{
			Namespace:    cfg.Namespace,
			Network:      netw,
			CgroupParent: "/" + cfg.Namespace,
			PlainHTTP:    func(host string) bool { return host == registry },
		},
		Agent: agent.Config{
			NodeName:      cfg.Name,
			NodeIP:        cfg.NodeIP,
			PodCIDR:       cfg.PodCIDR,
			ClusterDNS:    []string{cfg.ClusterDNS},
			ClusterDomain: "cluster.local",
		},
		Log: log,
	}, func(ctx context.Context, n *nodeproc.Node) error {
		// The streaming endpoint the API server proxies kubectl logs,
		// exec, attach and port-forward to (the kubelet's port).
		tlsCfg, err := streamServerTLS(cfg.StreamCert, cfg.StreamKey, n.REST.TLSClientConfig.CAData)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(cfg.NodeIP, strconv.Itoa(nodeStreamPort)))
		if err != nil {
			return fmt.Errorf("stream endpoint: %w", err)
		}
		srv := &http.Server{
			Handler:           cluster.NodeStreamHandler(n.Store, cfg.Name, n.Agent),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
			TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){}, // HTTP/1.1 only
		}
		go func() { _ = srv.Serve(tls.NewListener(ln, tlsCfg)) }()
		defer srv.Close()

		px, err := netproxy.New(ctx, netproxy.Config{
			Mode:               netproxy.ModeEBPF,
			Cgroup:             cfg.cgroup(),
			ServiceCIDR:        svcCIDR,
			NodeName:           cfg.Name,
			NodeIPs:            []netip.Addr{netip.MustParseAddr(cfg.NodeIP)},
			ExternalInterfaces: []string{"eth0"},
			Logger:             log.With("component", "netproxy"),
		})
		if err != nil {
			return err
		}
		defer px.Close()
		log.Info("node running", "ip", cfg.NodeIP, "podCIDR", cfg.PodCIDR, "proxyCgroup", cfg.cgroup(), "streams", ln.Addr())
		return px.Run(ctx, n.Store)
	})
}
