package scheduler

import (
	"log/slog"
	"time"

	"github.com/tugboatdev/tugboat/scheduler/framework"
	"github.com/tugboatdev/tugboat/scheduler/plugins"
)

// DefaultSchedulerName is the schedulerName of pods that name none.
const DefaultSchedulerName = "default-scheduler"

// Defaults of the "Scheduled" event rate limit (upstream kube-scheduler's
// client QPS and burst) and of the queue of events waiting to be written
// (upstream's broadcaster queue).
const (
	DefaultScheduledEventQPS   = 50
	DefaultScheduledEventBurst = 100
	scheduledEventQueue        = 1000
)

// Config configures a Scheduler. The zero value is the upstream default
// profile.
type Config struct {
	// SchedulerName is the spec.schedulerName this scheduler serves
	// (default "default-scheduler"). Pods naming another scheduler are left
	// alone, so several schedulers can run side by side.
	SchedulerName string
	// Registry holds the plugin factories; nil means plugins.NewRegistry().
	// Add your own factories to it to use your own plugins.
	Registry framework.Registry
	// Plugins are the enabled plugins and their score weights, in order;
	// nil means plugins.DefaultPlugins().
	Plugins []framework.PluginSpec
	// Profiles, when set, are several scheduler profiles served by one
	// scheduler, each with its own schedulerName and plugins, sharing one
	// cache and one queue as upstream; SchedulerName and Plugins are then
	// ignored. Pods naming no profile are left alone.
	Profiles []Profile
	// Extenders are HTTP scheduler extenders shared by every profile, as
	// upstream: they filter and score the nodes the plugins found
	// feasible, may bind pods and may veto preemption victims.
	Extenders []ExtenderConfig
	// PercentageOfNodesToScore bounds how many feasible nodes are looked
	// for before scoring (0 means adaptive as upstream: 50% minus 1% per
	// 125 nodes, at least 5%, and never fewer than 100 nodes).
	PercentageOfNodesToScore int32
	// Parallelism is the number of goroutines that run Filter over the
	// nodes (default 1: on small machines a second worker does not pay).
	Parallelism int
	// Binders is the number of goroutines that write bindings (default 4).
	Binders int
	// InitialBackoff and MaxBackoff bound the retry backoff of pods that
	// failed (defaults 1s and 10s, as upstream).
	InitialBackoff, MaxBackoff time.Duration
	// DisableScheduledEvents stops the "Scheduled" Event per bound pod
	// (FailedScheduling and Preempted events are always written).
	DisableScheduledEvents bool
	// ScheduledEventQPS and ScheduledEventBurst rate-limit the writing of
	// "Scheduled" Events, as upstream's event broadcaster does through its
	// client's rate limit (kube-scheduler's default client: 50 QPS, burst
	// 100): events wait in a queue of 1000 and are dropped when it is full,
	// so a burst of bindings does not turn into as many extra writes.
	// 0 means the defaults (50 and 100); a negative QPS writes every event
	// as fast as the store takes them (still dropping when the queue is
	// full).
	ScheduledEventQPS   float64
	ScheduledEventBurst int
	// Logger receives the scheduler's logs; nil means slog.Default().
	Logger *slog.Logger
	// Seed seeds the tie-breaking among equally scored nodes (0 means a
	// fixed default, for reproducible placement).
	Seed uint64
}

// Profile is one scheduler profile: the pods naming SchedulerName are
// scheduled with Plugins.
type Profile struct {
	// SchedulerName is the spec.schedulerName the profile serves (default
	// "default-scheduler").
	SchedulerName string
	// Plugins are the enabled plugins and their score weights, in order;
	// nil means plugins.DefaultPlugins(). Factories come from
	// Config.Registry.
	Plugins []framework.PluginSpec
	// PercentageOfNodesToScore overrides the Config's value for this
	// profile when not 0.
	PercentageOfNodesToScore int32
}

func (c *Config) defaults() {
	if c.SchedulerName == "" {
		c.SchedulerName = DefaultSchedulerName
	}
	if c.Registry == nil {
		c.Registry = plugins.NewRegistry()
	}
	if c.Plugins == nil {
		c.Plugins = plugins.DefaultPlugins()
	}
	if len(c.Profiles) == 0 {
		c.Profiles = []Profile{{SchedulerName: c.SchedulerName, Plugins: c.Plugins}}
	} else {
		c.Profiles = append([]Profile(nil), c.Profiles...)
		for i := range c.Profiles {
			if c.Profiles[i].SchedulerName == "" {
				c.Profiles[i].SchedulerName = DefaultSchedulerName
			}
			if c.Profiles[i].Plugins == nil {
				c.Profiles[i].Plugins = plugins.DefaultPlugins()
			}
		}
		c.SchedulerName = c.Profiles[0].SchedulerName
	}
	if c.Parallelism <= 0 {
		c.Parallelism = 1
	}
	if c.Binders <= 0 {
		c.Binders = 4
	}
	if c.ScheduledEventQPS == 0 {
		c.ScheduledEventQPS = DefaultScheduledEventQPS
	}
	if c.ScheduledEventBurst <= 0 {
		c.ScheduledEventBurst = DefaultScheduledEventBurst
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// minFeasibleNodesToFind and friends mirror upstream.
const (
	minFeasibleNodesToFind           = 100
	minFeasibleNodesPercentageToFind = 5
)

// NumFeasibleNodesToFind returns how many feasible nodes to look for among
// numAllNodes given percentageOfNodesToScore (0 = adaptive), as upstream.
func NumFeasibleNodesToFind(percentageOfNodesToScore int32, numAllNodes int) int {
	if numAllNodes < minFeasibleNodesToFind {
		return numAllNodes
	}
	adaptive := percentageOfNodesToScore
	if adaptive <= 0 {
		adaptive = 50 - int32(numAllNodes/125)
		if adaptive < minFeasibleNodesPercentageToFind {
			adaptive = minFeasibleNodesPercentageToFind
		}
	}
	if adaptive >= 100 {
		return numAllNodes
	}
	n := numAllNodes * int(adaptive) / 100
	if n < minFeasibleNodesToFind {
		return minFeasibleNodesToFind
	}
	return n
}
