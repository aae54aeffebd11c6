// Command nodeagent runs the node agent alone, as a node process of
// examples/multinode does without its service proxy, pod network and
// streaming endpoint: [nodeproc.Run] with a private containerd supervised
// by runtime/containerd, and the agent reaching the API server over HTTPS
// through orchestrator/remote. It exists to measure the agent's
// own memory (BenchmarkAgentAlone110PodsContainerd builds and starts it)
// and serves net/http/pprof on a loopback port for that purpose.
//
// Usage:
//
//	nodeagent -kubeconfig admin.kubeconfig -node node-1 -data-dir /tmp/n1 \
//	    -namespace n1 [-images-dir dir] [-debug-addr-file file] [-memory-limit bytes]
//
// On SIGTERM or SIGINT it stops the agent and removes every container,
// image, the containerd namespace and daemon and its data directory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	goruntime "runtime"
	"syscall"
	"time"

	"github.com/tugboatdev/tugboat/orchestrator/agent"
	"github.com/tugboatdev/tugboat/orchestrator/agent/nodeproc"
	"github.com/tugboatdev/tugboat/runtime/containerd"
)

// config is the command line.
type config struct {
	kubeconfig, node, dataDir, namespace, imagesDir, debugAddrFile string
	resync, status                                                 time.Duration
	verbose                                                        bool
	memProfileRate                                                 int
	memoryLimit                                                    int64
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("nodeagent", flag.ContinueOnError)
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig of the API server (required)")
	fs.StringVar(&c.node, "node", "", "node name (required)")
	fs.StringVar(&c.dataDir, "data-dir", "", "state directory: containerd, pod volumes and logs (required)")
	fs.StringVar(&c.namespace, "namespace", "nodeagent", "containerd namespace and pods' cgroup name")
	fs.StringVar(&c.imagesDir, "images-dir", "", "image archives (*.tar) to import at start")
	fs.StringVar(&c.debugAddrFile, "debug-addr-file", "", "write the loopback address of the pprof server to this file")
	fs.DurationVar(&c.resync, "resync", 10*time.Second, "agent resync interval")
	fs.DurationVar(&c.status, "status", 10*time.Second, "agent node status interval")
	fs.BoolVar(&c.verbose, "v", false, "debug logs")
	fs.Int64Var(&c.memoryLimit, "memory-limit", 0, "soft memory limit of the Go runtime in bytes (0: GOMEMLIMIT if set, else nodeproc.DefaultMemoryLimit; negative: none)")
	fs.IntVar(&c.memProfileRate, "memprofilerate", 0, "runtime.MemProfileRate for the heap profile (0: Go's default; 1: every allocation)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.kubeconfig == "" || c.node == "" || c.dataDir == "" {
		return c, errors.New("nodeagent: -kubeconfig, -node and -data-dir are required")
	}
	return c, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run runs the node until ctx ends, then removes what it made.
func run(ctx context.Context, cfg config) error {
	level := slog.LevelWarn
	if cfg.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("node", cfg.node)
	if cfg.memProfileRate > 0 {
		goruntime.MemProfileRate = cfg.memProfileRate
	}
	if cfg.debugAddrFile != "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("nodeagent: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		if err := os.WriteFile(cfg.debugAddrFile, []byte(ln.Addr().String()), 0o600); err != nil {
			return fmt.Errorf("nodeagent: %w", err)
		}
	}
	return nodeproc.Run(ctx, nodeproc.Config{
		Kubeconfig: cfg.kubeconfig,
		DataDir:    cfg.dataDir,
		Runtime: containerd.Options{
			Namespace: cfg.namespace,
			ImagesDir: cfg.imagesDir,
		},
		Agent: agent.Config{
			NodeName:       cfg.node,
			NodeIP:         "127.0.0.1",
			ResyncInterval: cfg.resync,
			StatusInterval: cfg.status,
		},
		MemoryLimit: cfg.memoryLimit,
		Log:         log,
	})
}
