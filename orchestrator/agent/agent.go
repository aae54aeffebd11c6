package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/clock"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// Labels the agent puts on sandboxes and containers so that a restarted
// agent finds (re-adopts) what it started.
const (
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelContainerName = "io.kubernetes.container.name"
	// LabelInit marks init containers ("true").
	LabelInit = "tugboat.dev/init-container"
)

// Config configures an [Agent]. NodeName, Store and Runtime are required.
type Config struct {
	// NodeName names the Node the agent registers and serves.
	NodeName string
	// Store is where state lives (the embedded store or the API server's
	// client).
	Store storeapi.Interface
	// Runtime runs the containers.
	Runtime runtime.Runtime
	// RootDir holds pod volumes and container logs (default
	// /var/lib/tugboat/agent).
	RootDir string
	// Labels are added to the Node's labels (kubernetes.io/hostname,
	// kubernetes.io/os and kubernetes.io/arch are always set).
	Labels map[string]string
	// Taints are registered with the Node, each as
	// "<key>=<value>:<effect>" or "<key>:<effect>".
	Taints []string
	// NodeIP is the node's InternalIP; empty means the first non-loopback
	// IPv4 address of the machine (127.0.0.1 when there is none).
	NodeIP string
	// Hostname is the node's Hostname address (default os.Hostname()).
	Hostname string
	// PodCIDR is the node's spec.podCIDR, if any.
	PodCIDR string
	// SystemReserved is subtracted from capacity to give allocatable;
	// nil means cpu 100m, memory 256Mi, ephemeral-storage 1Gi.
	SystemReserved corev1.ResourceList
	// MaxPods is the pods capacity (default 110).
	MaxPods int
	// RuntimeName prefixes container IDs in pod status ("containerd" by
	// default, giving "containerd://<id>").
	RuntimeName string
	// RuntimeVersion is reported as nodeInfo.containerRuntimeVersion
	// (default RuntimeName + "://unknown").
	RuntimeVersion string
	// Version is reported as nodeInfo.kubeletVersion (default
	// [DefaultVersion]).
	Version string
	// StaticPodDir holds static pod manifests (YAML or JSON, one pod per
	// file); empty means none.
	StaticPodDir string
	// ClusterDNS and ClusterDomain configure pods' resolv.conf for
	// dnsPolicy ClusterFirst.
	ClusterDNS    []string
	ClusterDomain string
	// HeartbeatInterval is the Lease renewal period (default 10 s).
	HeartbeatInterval time.Duration
	// StatusInterval is how often node conditions are measured (default
	// 10 s); the status is written when it changed or when a minute passed.
	StatusInterval time.Duration
	// ResyncInterval is how often every pod is synchronised even without
	// changes: configMap/secret/downwardAPI volumes are refreshed then
	// (default 10 s). The pods' resyncs are spread evenly over the
	// interval.
	ResyncInterval time.Duration
	// Measure measures the machine for the node conditions; nil means
	// reading /proc and statfs(RootDir).
	Measure func(ctx context.Context) (Measurements, error)
	// EvictionMemoryAvailable is the memory.available threshold of the
	// MemoryPressure condition and of evictions (default 100Mi).
	EvictionMemoryAvailable int64
	// EvictionHard are hard eviction thresholds as the kubelet's
	// evictionHard: signal (memory.available, nodefs.available,
	// imagefs.available, pid.available) to a quantity ("500Mi", "1000")
	// or a percentage of capacity ("10%"). A crossed threshold sets the
	// node's MemoryPressure, DiskPressure or PIDPressure condition and
	// matching NoSchedule taint, and evicts one pod per status interval.
	// Signals not given take [DefaultEvictionHard]; an entry here wins over
	// EvictionMemoryAvailable.
	EvictionHard map[string]string
	// ImageFSDir is a directory on the runtime's image filesystem, for
	// imagefs.available; empty means the image filesystem is RootDir's.
	ImageFSDir string
	// PodStats measures pods for eviction under disk and PID pressure;
	// nil means sizing each pod's emptyDir volumes and logs under RootDir
	// and asking the runtime (ContainerStats) for its running containers'
	// writable layers and process counts.
	PodStats StatsSource
	// TokenRequester issues the service account tokens of projected
	// serviceAccountToken volume sources; nil means such sources are not
	// written (a Warning event says so).
	TokenRequester TokenRequester
	// Clock drives timers and timestamps; nil means the real clock.
	Clock clock.Clock
	// Log receives the agent's logs; nil means slog.Default().
	Log *slog.Logger
}

// DefaultVersion is the kubeletVersion the agent reports by default.
const DefaultVersion = "v1.32.0-tugboat"

// Agent is the node agent. Create it with [New] and call [Agent.Run].
type Agent struct {
	cfg Config
	s   storeapi.Interface
	rt  runtime.Runtime
	clk clock.Clock
	log *slog.Logger
	rec *controller.Recorder

	nodeIP   string
	hostname string

	thresholds map[string]Threshold
	podStats   StatsSource
	pressure   pressure // from the last measurement, under mu

	// staticKick asks the static pod loop to look again (a mirror pod was
	// deleted).
	staticKick chan struct{}

	mu      sync.Mutex
	workers map[types.UID]*podWorker
	node    *corev1.Node
	wg      sync.WaitGroup
	ctx     context.Context

	statsMu sync.Mutex
	stats   map[string]*runtime.ContainerStats // previous sample per container, for CPU rates
	nodeCPU cpuSample
}

// New validates cfg and returns an agent. Nothing runs before [Agent.Run].
func New(cfg Config) (*Agent, error) {
	if cfg.NodeName == "" || cfg.Store == nil || cfg.Runtime == nil {
		return nil, errors.New("agent: NodeName, Store and Runtime are required")
	}
	if cfg.RootDir == "" {
		cfg.RootDir = "/var/lib/tugboat/agent"
	}
	if cfg.MaxPods <= 0 {
		cfg.MaxPods = 110
	}
	if cfg.RuntimeName == "" {
		cfg.RuntimeName = "containerd"
	}
	if cfg.RuntimeVersion == "" {
		cfg.RuntimeVersion = cfg.RuntimeName + "://unknown"
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = "cluster.local"
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 10 * time.Second
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = 10 * time.Second
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = 10 * time.Second
	}
	thresholds, err := evictionThresholds(&cfg)
	if err != nil {
		return nil, err
	}
	if q := thresholds[SignalMemoryAvailable].Quantity; cfg.EvictionMemoryAvailable <= 0 && q != nil {
		cfg.EvictionMemoryAvailable = q.Value()
	}
	for _, t := range cfg.Taints {
		if _, err := ParseTaint(t); err != nil {
			return nil, err
		}
	}
	a := &Agent{cfg: cfg, s: cfg.Store, rt: cfg.Runtime, clk: cfg.Clock, log: cfg.Log,
		workers: map[types.UID]*podWorker{}, stats: map[string]*runtime.ContainerStats{},
		staticKick: make(chan struct{}, 1), thresholds: thresholds, podStats: cfg.PodStats}
	if a.podStats == nil {
		a.podStats = dirStats{a}
	}
	if a.clk == nil {
		a.clk = clock.RealClock{}
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.log = a.log.With("node", cfg.NodeName)
	a.rec = controller.NewRecorder(cfg.Store, "kubelet", a.clk, a.log)
	a.nodeIP = cfg.NodeIP
	if a.nodeIP == "" {
		a.nodeIP = detectNodeIP()
	}
	a.hostname = cfg.Hostname
	if a.hostname == "" {
		if h, err := os.Hostname(); err == nil {
			a.hostname = h
		} else {
			a.hostname = cfg.NodeName
		}
	}
	return a, nil
}

// NodeName returns the name of the agent's node.
func (a *Agent) NodeName() string { return a.cfg.NodeName }

// Run registers the node and runs pods until ctx ends. Running containers
// are left running when it returns, so that a new agent re-adopts them.
func (a *Agent) Run(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Join(a.cfg.RootDir, "pods"), 0o750); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	a.mu.Lock()
	a.ctx = ctx
	a.mu.Unlock()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.rec.Run(ctx) })
	if err := a.registerNode(ctx); err != nil {
		return err
	}
	g.Go(func() error { return a.leaseLoop(ctx) })
	g.Go(func() error { return a.statusLoop(ctx) })
	g.Go(func() error { return a.eventsLoop(ctx) })
	g.Go(func() error { return a.resyncLoop(ctx) })
	podsSynced := make(chan struct{})
	g.Go(func() error { return a.podsLoop(ctx, podsSynced) })
	if a.cfg.StaticPodDir != "" {
		g.Go(func() error { return a.staticLoop(ctx) })
	}
	g.Go(func() error {
		select {
		case <-podsSynced:
		case <-ctx.Done():
			return nil
		}
		return a.gcLoop(ctx)
	})
	err := g.Wait()
	a.wg.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// podsLoop lists and watches the pods bound to the node and feeds the pod
// workers.
func (a *Agent) podsLoop(ctx context.Context, synced chan struct{}) error {
	opts := metav1.ListOptions{FieldSelector: "spec.nodeName=" + a.cfg.NodeName}
	once := sync.Once{}
	for ctx.Err() == nil {
		pods, rv, err := storeapi.ListOf[*corev1.Pod](ctx, a.s, "", opts)
		if err != nil {
			a.log.Warn("listing pods", "err", err)
			if !sleepCtx(ctx, a.clk, time.Second) {
				return nil
			}
			continue
		}
		seen := map[types.UID]bool{}
		for _, p := range pods {
			if isMirrorPod(p) {
				continue
			}
			seen[p.UID] = true
			a.podUpdated(p)
		}
		a.mu.Lock()
		for uid, w := range a.workers {
			if !seen[uid] && !w.static {
				w.setGone()
			}
		}
		a.mu.Unlock()
		once.Do(func() { close(synced) })
		wo := opts
		wo.ResourceVersion = rv
		wo.AllowWatchBookmarks = true
		w, err := storeapi.WatchOf[*corev1.Pod](ctx, a.s, "", wo)
		if err != nil {
			a.log.Warn("watching pods", "err", err)
			continue
		}
		a.consumePods(ctx, w)
		w.Stop()
	}
	return nil
}

func (a *Agent) consumePods(ctx context.Context, w watch.Interface) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.ResultChan():
			if !ok {
				return
			}
			p, isPod := ev.Object.(*corev1.Pod)
			switch {
			case ev.Type == watch.Error:
				if st, ok := ev.Object.(*metav1.Status); ok {
					a.log.Debug("pod watch error", "err", apierrors.FromObject(st))
				}
				return
			case !isPod:
			case isMirrorPod(p):
				if ev.Type == watch.Deleted || p.DeletionTimestamp != nil {
					select {
					case a.staticKick <- struct{}{}:
					default:
					}
				}
			case ev.Type == watch.Deleted:
				a.mu.Lock()
				if wk := a.workers[p.UID]; wk != nil {
					wk.setGone()
				}
				a.mu.Unlock()
			case ev.Type == watch.Added || ev.Type == watch.Modified:
				a.podUpdated(p)
			}
		}
	}
}

// podUpdated hands the newest version of a pod to its worker, starting one
// when needed.
func (a *Agent) podUpdated(p *corev1.Pod) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if w := a.workers[p.UID]; w != nil {
		w.setPod(p)
		return
	}
	if a.ctx == nil || a.ctx.Err() != nil {
		return
	}
	w := newPodWorker(a, p.DeepCopy(), false)
	a.workers[p.UID] = w
	a.wg.Add(1)
	w.start(a.ctx)
}

func (a *Agent) workerDone(w *podWorker) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.workers[w.uid] == w {
		delete(a.workers, w.uid)
	}
}

// eventsLoop turns runtime container events into pod worker wake-ups.
func (a *Agent) eventsLoop(ctx context.Context) error {
	for ctx.Err() == nil {
		ch, err := a.rt.Events(ctx)
		if err != nil {
			if !sleepCtx(ctx, a.clk, time.Second) {
				return nil
			}
			continue
		}
		for ev := range ch {
			a.mu.Lock()
			for _, w := range a.workers {
				if w.ownsSandbox(ev.SandboxID) {
					w.kickNow()
				}
			}
			a.mu.Unlock()
		}
		if !sleepCtx(ctx, a.clk, 100*time.Millisecond) {
			return nil
		}
	}
	return nil
}

// resyncLoop resyncs every pod worker once per ResyncInterval, in
// resyncSlots batches spread evenly over the interval (the kubelet jitters
// its per-pod resyncs likewise): a node's pods do not all list their
// containers, write their status and hold a goroutine at the same moment,
// and a batch still shares the wake-ups and round trips of its syncs.
func (a *Agent) resyncLoop(ctx context.Context) error {
	var round []*podWorker
	wait, batch := a.cfg.ResyncInterval, 1
	for {
		if len(round) == 0 {
			a.mu.Lock()
			for _, w := range a.workers {
				round = append(round, w)
			}
			a.mu.Unlock()
			slots := min(max(len(round), 1), resyncSlots)
			wait = a.cfg.ResyncInterval / time.Duration(slots)
			batch = (len(round) + slots - 1) / slots
		}
		if !sleepCtx(ctx, a.clk, wait) {
			return nil
		}
		n := min(batch, len(round))
		for _, w := range round[:n] {
			w.resync()
		}
		round = round[n:]
	}
}

// resyncSlots is how many batches a resync round has at most.
const resyncSlots = 10

// gcLoop removes sandboxes of pods the node no longer runs (deleted while
// the agent was down).
func (a *Agent) gcLoop(ctx context.Context) error {
	for {
		a.collectOrphans(ctx)
		if !sleepCtx(ctx, a.clk, time.Minute) {
			return nil
		}
	}
}

func (a *Agent) collectOrphans(ctx context.Context) {
	sbs, err := a.rt.ListPodSandboxes(ctx)
	if err != nil {
		return
	}
	for _, sb := range sbs {
		uid := types.UID(sb.Config.Labels[LabelPodUID])
		if uid == "" {
			continue
		}
		a.mu.Lock()
		_, known := a.workers[uid]
		a.mu.Unlock()
		if known {
			continue
		}
		if a.clk.Since(sb.CreatedAt) < 30*time.Second {
			continue // a static pod or a pod whose worker is just starting
		}
		a.log.Info("removing orphaned sandbox", "sandbox", sb.ID, "pod", sb.Config.Namespace+"/"+sb.Config.Name)
		_ = a.rt.StopPodSandbox(ctx, sb.ID)
		_ = a.rt.RemovePodSandbox(ctx, sb.ID)
		_ = cleanupPodDir(a.podDir(uid))
	}
}

func (a *Agent) podDir(uid types.UID) string {
	return filepath.Join(a.cfg.RootDir, "pods", string(uid))
}

// sleepCtx waits d on the clock; false when ctx ended first.
func sleepCtx(ctx context.Context, clk clock.Clock, d time.Duration) bool {
	t := clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}
