package nodeproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tugboatdev/tugboat/orchestrator/agent"
	"github.com/tugboatdev/tugboat/orchestrator/remote"
	"github.com/tugboatdev/tugboat/runtime/containerd"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// DefaultMemoryLimit is the soft memory limit of the Go runtime that [Run]
// sets when neither [Config.MemoryLimit] nor the GOMEMLIMIT environment
// variable gives one. With 110 pods a node process's Go runtime holds
// 25–30 MiB without a limit (6–7 MiB of live heap in 13–14 MiB of heap
// spans, freed pages not yet returned, goroutine stacks, GC metadata); at
// this limit the collector keeps it under the limit, and the process's
// RSS drops by about 3 MiB (orchestrator/agent/BENCHMARKS.md, session 4).
// 32 MiB would not bind. It is a soft limit, and the default one follows
// the live heap: [Run] raises it to about what GOGC=100 alone would let
// the process hold (twice the live heap plus [limitHeadroom]) when that
// is more, so a node with more or larger objects is never held at a limit
// its live heap fills, where the collector would run back to back.
const DefaultMemoryLimit = 24 << 20

// limitHeadroom is what a node process holds beside its Go heap (goroutine
// stacks, GC metadata, free pages not yet returned), counted on top of
// twice the live heap when the default limit follows the heap.
const limitHeadroom = 8 << 20

// followEvery is how often the default limit follows the live heap.
const followEvery = 5 * time.Second

// DestroyTimeout bounds the removal of the node's containers, images and
// containerd daemon when [Run] returns (seconds on an idle machine; a
// 2-core machine under a load average above 100 needed more than 2
// minutes for 110 pods).
const DestroyTimeout = 5 * time.Minute

// Config configures a node process.
type Config struct {
	// Kubeconfig is the path of a kubeconfig for the API server; REST,
	// when set, is used instead.
	Kubeconfig string
	REST       *rest.Config
	// DataDir holds the node's state: the containerd adapter's under
	// DataDir/ctr and the agent's (pod volumes, logs) under DataDir/agent,
	// unless Runtime.DataDir or Agent.RootDir say otherwise. Required.
	DataDir string
	// Agent configures the agent. Agent.NodeName is required; Store and
	// Runtime are filled in by Run. Empty RuntimeName and RuntimeVersion
	// become "containerd" and "containerd://private"; an empty Hostname
	// becomes the node name; a nil Log becomes Log with component=agent.
	Agent agent.Config
	// Runtime configures the containerd adapter. NodeIP defaults to
	// Agent.NodeIP, Namespace to the node name, and a nil Logger to Log
	// with component=containerd.
	Runtime containerd.Options
	// MemoryLimit is the Go runtime's soft memory limit in bytes while Run
	// runs (runtime/debug.SetMemoryLimit). 0 means [DefaultMemoryLimit],
	// unless the GOMEMLIMIT environment variable is set, which then wins;
	// a negative value leaves the runtime's limit as it is.
	MemoryLimit int64
	// Log receives the node's logs; nil means slog.Default().
	Log *slog.Logger
}

// Node is what a running node process is made of, for the components
// that run beside the agent.
type Node struct {
	// REST is the API server's client configuration.
	REST *rest.Config
	// Store is the API server's store client.
	Store storeapi.Interface
	// Runtime is the containerd adapter.
	Runtime *containerd.Runtime
	// Agent is the node agent (not yet running when a component starts).
	Agent *agent.Agent
	// Log is the node's logger.
	Log *slog.Logger
}

// Component runs beside the agent until ctx ends, for instance a service
// proxy or the node's streaming endpoint. An error other than
// context.Canceled stops the node.
type Component func(ctx context.Context, n *Node) error

// Run runs a node process until ctx ends or the agent or one of the
// components fails: it starts the containerd adapter (and its private
// containerd), connects to the API server, creates the agent, runs it
// and the components, and on the way out removes every container, image,
// the containerd namespace and daemon (within [DestroyTimeout]). Running
// pods are not kept across a return. It returns the first error of the
// agent or a component, context.Canceled excepted.
func Run(ctx context.Context, cfg Config, components ...Component) error {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	if cfg.Agent.NodeName == "" || cfg.DataDir == "" {
		return errors.New("nodeproc: Agent.NodeName and DataDir are required")
	}
	if limit := memoryLimit(cfg.MemoryLimit, os.Getenv("GOMEMLIMIT")); limit > 0 {
		prev := debug.SetMemoryLimit(limit)
		defer debug.SetMemoryLimit(prev)
		if cfg.MemoryLimit == 0 {
			// The default follows the live heap (a configured limit is
			// kept as given).
			fctx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() {
				defer close(done)
				followLiveHeap(fctx, limit, followEvery)
			}()
			defer func() { stop(); <-done }()
		}
	}
	rc := cfg.REST
	if rc == nil {
		if cfg.Kubeconfig == "" {
			return errors.New("nodeproc: Kubeconfig or REST is required")
		}
		var err error
		if rc, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig); err != nil {
			return fmt.Errorf("nodeproc: %w", err)
		}
	}
	st, err := remote.New(rc, remote.Options{})
	if err != nil {
		return fmt.Errorf("nodeproc: %w", err)
	}
	ropts := runtimeOptions(cfg, log)
	rt, err := containerd.New(ctx, ropts)
	if err != nil {
		return fmt.Errorf("nodeproc: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), DestroyTimeout)
		defer cancel()
		if err := rt.Destroy(dctx); err != nil {
			log.Warn("removing the node's containers", "err", err)
		}
	}()
	acfg := agentConfig(cfg, log)
	acfg.Store, acfg.Runtime = st, rt
	a, err := agent.New(acfg)
	if err != nil {
		return fmt.Errorf("nodeproc: %w", err)
	}
	n := &Node{REST: rc, Store: st, Runtime: rt, Agent: a, Log: log}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(components)+1)
	go func() { errc <- a.Run(ctx) }()
	for _, c := range components {
		go func() { errc <- c(ctx, n) }()
	}
	var first error
	for range len(components) + 1 {
		if err := <-errc; err != nil && !errors.Is(err, context.Canceled) && first == nil {
			first = err
			cancel() // one part failed: stop the others too
		}
	}
	return first
}

// memoryLimit is the soft memory limit Run sets: 0 for none.
func memoryLimit(configured int64, env string) int64 {
	switch {
	case configured > 0:
		return configured
	case configured < 0 || env != "":
		return 0
	}
	return DefaultMemoryLimit
}

// limitFor is the soft memory limit for a process whose live heap is live
// bytes: base, or what GOGC=100 alone would let the process hold when that
// is more.
func limitFor(base, live int64) int64 {
	return max(base, 2*live+limitHeadroom)
}

// followLiveHeap sets the Go runtime's soft memory limit to
// limitFor(base, live heap) every period until ctx ends.
func followLiveHeap(ctx context.Context, base int64, every time.Duration) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return // not reported by this Go runtime: keep base
		}
		debug.SetMemoryLimit(limitFor(base, int64(sample[0].Value.Uint64())))
	}
}

// runtimeOptions fills in cfg.Runtime's defaults.
func runtimeOptions(cfg Config, log *slog.Logger) containerd.Options {
	o := cfg.Runtime
	if o.DataDir == "" {
		o.DataDir = filepath.Join(cfg.DataDir, "ctr")
	}
	if o.Namespace == "" {
		o.Namespace = cfg.Agent.NodeName
	}
	if o.NodeIP == "" {
		o.NodeIP = cfg.Agent.NodeIP
	}
	if o.Logger == nil {
		o.Logger = log.With("component", "containerd")
	}
	return o
}

// agentConfig fills in cfg.Agent's defaults (Store and Runtime aside).
func agentConfig(cfg Config, log *slog.Logger) agent.Config {
	a := cfg.Agent
	if a.RootDir == "" {
		a.RootDir = filepath.Join(cfg.DataDir, "agent")
	}
	if a.Hostname == "" {
		a.Hostname = a.NodeName
	}
	if a.RuntimeName == "" {
		a.RuntimeName = "containerd"
	}
	if a.RuntimeVersion == "" {
		a.RuntimeVersion = "containerd://private"
	}
	if a.Log == nil {
		a.Log = log.With("component", "agent")
	}
	return a
}
