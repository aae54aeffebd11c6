package scheduler

import (
	"log/slog"
	"time"

	"github.com/tugboatdev/tugboat/scheduler/framework"
	"github.com/tugboatdev/tugboat/scheduler/plugins"
)

// DefaultSchedulerName is the schedulerName of pods that name none.
const DefaultSchedulerName = "default-scheduler"

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
	// Logger receives the scheduler's logs; nil means slog.Default().
	Logger *slog.Logger
	// Seed seeds the tie-breaking among equally scored nodes (0 means a
	// fixed default, for reproducible placement).
	Seed uint64
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
	if c.Parallelism <= 0 {
		c.Parallelism = 1
	}
	if c.Binders <= 0 {
		c.Binders = 4
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
