package storeapi

import (
	"log/slog"
	"net/netip"
	"time"
)

// Config configures the embedded store, [github.com/tugboatdev/tugboat/store.Store].
type Config struct {
	// Dir is the data directory for the durable log and snapshots. Empty
	// means in-memory: nothing survives the process.
	Dir string
	// Registry lists the kinds served; nil means [DefaultRegistry].
	Registry *Registry
	// ServiceCIDR is the range Service clusterIPs must fall in
	// (default 10.96.0.0/12).
	ServiceCIDR netip.Prefix
	// SecondaryServiceCIDR is an optional range of the other IP family,
	// for dual-stack Services (ipFamilyPolicy PreferDualStack or
	// RequireDualStack, or ipFamilies naming it), e.g. fd00:10:96::/108.
	SecondaryServiceCIDR netip.Prefix
	// NodePortRange is the range NodePorts are allocated from (default
	// 30000-32767, as upstream).
	NodePortRange PortRange
	// WatchWindow is how many events are kept for watchers to resume from
	// (default 50,000). Older resourceVersions get 410 Expired.
	WatchWindow int
	// SnapshotEvery is how many log entries trigger a snapshot and log
	// compaction (default 50,000).
	SnapshotEvery int
	// BookmarkInterval is how often watchers that allow bookmarks get one
	// (default 1 minute, as upstream).
	BookmarkInterval time.Duration
	// EventTTL is how long core/v1 Events are kept after they were last
	// written (default 1 hour, as the API server's --event-ttl).
	EventTTL time.Duration
	// Logger receives the store's logs; nil means slog.Default().
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time

	// GCPercent, when positive, sets the Go garbage collector's target
	// percentage for the whole process (runtime/debug.SetGCPercent, the
	// GOGC setting) from Open until Close, which restores the value it
	// replaced. Zero leaves the process's setting alone. The store keeps
	// every object in memory and allocates a few KiB of short-lived
	// garbage per write; with the default 100 the collector marks the
	// whole (pointer-rich) state each time as much garbage has been made,
	// which costs about a third of the CPU of a write-heavy store. A
	// process whose memory is mostly the store can trade memory for CPU:
	// 400 means the heap may grow to five times the live state between
	// collections, and cuts the collector's share roughly to a quarter.
	// Pair it with MemoryLimit so that the larger heap stays bounded.
	// See BENCHMARKS.md for measurements.
	GCPercent int
	// MemoryLimit, when positive, sets the process's soft memory limit in
	// bytes (runtime/debug.SetMemoryLimit, the GOMEMLIMIT setting) from
	// Open until Close, which restores the value it replaced: near the
	// limit the collector runs as often as needed whatever GCPercent
	// says. Zero leaves the process's setting alone.
	MemoryLimit int64
}
