package controllers

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/utils/clock"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// Runner is a started controller.
type Runner interface {
	Run(ctx context.Context) error
}

// Constructor builds one controller from a [Config].
type Constructor func(Config) Runner

// Constructors returns the controllers a [Manager] can run, by name.
func Constructors() map[string]Constructor {
	return map[string]Constructor{
		"replicaset":             func(c Config) Runner { return NewReplicaSet(c) },
		"deployment":             func(c Config) Runner { return NewDeployment(c) },
		"statefulset":            func(c Config) Runner { return NewStatefulSet(c) },
		"daemonset":              func(c Config) Runner { return NewDaemonSet(c) },
		"job":                    func(c Config) Runner { return NewJob(c) },
		"cronjob":                func(c Config) Runner { return NewCronJob(c) },
		"endpoints":              func(c Config) Runner { return NewEndpoints(c) },
		"serviceaccount":         func(c Config) Runner { return NewServiceAccount(c) },
		"nodelifecycle":          func(c Config) Runner { return NewNodeLifecycle(c) },
		"disruption":             func(c Config) Runner { return NewDisruption(c) },
		"service-repair":         func(c Config) Runner { return NewServiceRepair(c) },
		"persistentvolume":       func(c Config) Runner { return NewPersistentVolume(c, c.LocalPathDir) },
		"root-ca-cert-publisher": func(c Config) Runner { return NewRootCAPublisher(c, c.RootCAPEM) },
		"horizontalpodautoscaler": func(c Config) Runner {
			return NewHPA(c, c.Metrics)
		},
	}
}

// ManagerOptions configures a [Manager].
type ManagerOptions struct {
	// Store is the state interface (embedded store or API client).
	Store storeapi.Interface
	// Controllers names the controllers to run; nil means all of
	// [Constructors].
	Controllers []string
	// Clock drives every controller; nil means the real clock.
	Clock clock.Clock
	// Log receives logs; nil means slog.Default().
	Log *slog.Logger
	// Workers per controller (default 4).
	Workers int
	// LeaderElection makes the manager run its controllers only while it
	// holds the kube-system/tugboat-controller-manager Lease.
	LeaderElection bool
	// Identity names this manager in the Lease (default the host name).
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod tune leader election
	// (defaults 15 s, 10 s, 2 s, as kube-controller-manager).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// ServiceCIDRs and NodePortRange are the store's Service ranges, which
	// the service-repair controller checks Services against.
	ServiceCIDRs  []netip.Prefix
	NodePortRange storeapi.PortRange
	// Metrics feeds the HorizontalPodAutoscaler.
	Metrics MetricsSource
	// LocalPathDir is where local-path volumes are made.
	LocalPathDir string
	// RootCAPEM is the CA bundle published as kube-root-ca.crt.
	RootCAPEM []byte
	// Location is the time zone of CronJobs without spec.timeZone (nil: time.Local).
	Location *time.Location
}

// Manager starts a set of controllers over one shared informer factory,
// optionally only while it is the elected leader.
type Manager struct {
	opts ManagerOptions
}

// NewManager returns a manager; call Run.
func NewManager(opts ManagerOptions) *Manager {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Identity == "" {
		h, _ := os.Hostname()
		opts.Identity = fmt.Sprintf("%s_%d", h, os.Getpid())
	}
	if opts.Controllers == nil {
		for name := range Constructors() {
			opts.Controllers = append(opts.Controllers, name)
		}
		sort.Strings(opts.Controllers)
	}
	return &Manager{opts: opts}
}

// Run runs the controllers until ctx ends (or leadership is lost, with
// leader election on).
func (m *Manager) Run(ctx context.Context) error {
	if !m.opts.LeaderElection {
		return m.runControllers(ctx)
	}
	le := &controller.LeaderElector{Store: m.opts.Store, Identity: m.opts.Identity, Clock: m.opts.Clock, Log: m.opts.Log,
		LeaseDuration: m.opts.LeaseDuration, RenewDeadline: m.opts.RenewDeadline, RetryPeriod: m.opts.RetryPeriod}
	return le.Run(ctx, m.runControllers)
}

func (m *Manager) runControllers(ctx context.Context) error {
	cons := Constructors()
	cfg := Config{Store: m.opts.Store, Informers: controller.NewFactory(m.opts.Store, m.opts.Log), Clock: m.opts.Clock,
		Log: m.opts.Log, Workers: m.opts.Workers, ServiceCIDRs: m.opts.ServiceCIDRs, NodePortRange: m.opts.NodePortRange,
		Metrics: m.opts.Metrics, LocalPathDir: m.opts.LocalPathDir, RootCAPEM: m.opts.RootCAPEM, Location: m.opts.Location}
	var runners []Runner
	for _, name := range m.opts.Controllers {
		mk, ok := cons[name]
		if !ok {
			return fmt.Errorf("controllers: unknown controller %q", name)
		}
		runners = append(runners, mk(cfg))
	}
	g, gctx := errgroup.WithContext(ctx)
	cfg.Informers.Start(gctx, g)
	if err := cfg.Informers.WaitForSync(gctx); err != nil {
		return err
	}
	m.opts.Log.Info("controllers started", "controllers", m.opts.Controllers)
	for _, r := range runners {
		g.Go(func() error { return r.Run(gctx) })
	}
	return g.Wait()
}
