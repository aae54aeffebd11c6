package store

import (
	"log/slog"
	"net/netip"
	"time"
)

// Config configures a [Store].
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
}
