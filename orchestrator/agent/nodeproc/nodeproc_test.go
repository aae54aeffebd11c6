package nodeproc

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tugboatdev/tugboat/orchestrator/agent"
	"github.com/tugboatdev/tugboat/runtime/containerd"
)

func TestMemoryLimit(t *testing.T) {
	tests := []struct {
		name       string
		configured int64
		env        string
		want       int64
	}{
		{name: "default", want: DefaultMemoryLimit},
		{name: "configured", configured: 64 << 20, want: 64 << 20},
		{name: "configured wins over GOMEMLIMIT", configured: 64 << 20, env: "32MiB", want: 64 << 20},
		{name: "GOMEMLIMIT wins over the default", env: "32MiB", want: 0},
		{name: "GOMEMLIMIT=off", env: "off", want: 0},
		{name: "none", configured: -1, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := memoryLimit(tt.configured, tt.env); got != tt.want {
				t.Errorf("memoryLimit(%d, %q) = %d, want %d", tt.configured, tt.env, got, tt.want)
			}
		})
	}
}

func TestLimitFor(t *testing.T) {
	tests := []struct {
		name       string
		base, live int64
		want       int64
	}{
		{name: "small heap keeps the base", base: 24 << 20, live: 7 << 20, want: 24 << 20},
		{name: "at the edge", base: 24 << 20, live: 8 << 20, want: 24 << 20},
		{name: "large heap gets GOGC=100's room", base: 24 << 20, live: 40 << 20, want: 88 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := limitFor(tt.base, tt.live); got != tt.want {
				t.Errorf("limitFor(%d, %d) = %d, want %d", tt.base, tt.live, got, tt.want)
			}
		})
	}
}

// TestFollowLiveHeap keeps 64 MiB live, far above the default limit, and
// checks that the limit is raised above it (no collector running back to
// back) and that the base is kept again once the heap is gone.
func TestFollowLiveHeap(t *testing.T) {
	prev := debug.SetMemoryLimit(DefaultMemoryLimit)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		followLiveHeap(ctx, DefaultMemoryLimit, 10*time.Millisecond)
	}()
	defer func() { cancel(); <-done }()

	live := make([]byte, 64<<20)
	for i := range live {
		live[i] = byte(i)
	}
	waitLimit := func(ok func(int64) bool) int64 {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			runtime.GC() // the live heap metric is updated by a collection
			if l := debug.SetMemoryLimit(-1); ok(l) || time.Now().After(deadline) {
				return l
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if l := waitLimit(func(l int64) bool { return l >= 2*int64(len(live)) }); l < 2*int64(len(live)) {
		t.Errorf("with %d MiB live the limit is %d MiB, want at least %d MiB", len(live)>>20, l>>20, 2*len(live)>>20)
	}
	runtime.KeepAlive(live)
	live = nil
	if l := waitLimit(func(l int64) bool { return l == DefaultMemoryLimit }); l != DefaultMemoryLimit {
		t.Errorf("with the heap gone the limit is %d MiB, want the base %d MiB", l>>20, DefaultMemoryLimit>>20)
	}
}

func TestDefaults(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	plain := func(string) bool { return true }
	tests := []struct {
		name        string
		cfg         Config
		wantRuntime containerd.Options
		wantAgent   agent.Config
	}{
		{name: "defaults",
			cfg:         Config{DataDir: "/d", Agent: agent.Config{NodeName: "n1", NodeIP: "10.0.0.2"}},
			wantRuntime: containerd.Options{DataDir: "/d/ctr", Namespace: "n1", NodeIP: "10.0.0.2"},
			wantAgent: agent.Config{NodeName: "n1", NodeIP: "10.0.0.2", RootDir: "/d/agent", Hostname: "n1",
				RuntimeName: "containerd", RuntimeVersion: "containerd://private"}},
		{name: "given values stay",
			cfg: Config{DataDir: "/d",
				Runtime: containerd.Options{DataDir: "/c", Namespace: "ns", NodeIP: "10.0.0.3", CgroupParent: "/ns", PlainHTTP: plain},
				Agent: agent.Config{NodeName: "n1", NodeIP: "10.0.0.2", RootDir: "/a", Hostname: "h",
					RuntimeName: "rt", RuntimeVersion: "rt://1", PodCIDR: "10.1.0.0/24"}},
			wantRuntime: containerd.Options{DataDir: "/c", Namespace: "ns", NodeIP: "10.0.0.3", CgroupParent: "/ns", PlainHTTP: plain},
			wantAgent: agent.Config{NodeName: "n1", NodeIP: "10.0.0.2", RootDir: "/a", Hostname: "h",
				RuntimeName: "rt", RuntimeVersion: "rt://1", PodCIDR: "10.1.0.0/24"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ro := runtimeOptions(tt.cfg, log)
			if ro.Logger == nil {
				t.Error("runtime options without a logger")
			}
			if (ro.PlainHTTP == nil) != (tt.wantRuntime.PlainHTTP == nil) {
				t.Error("PlainHTTP not kept")
			}
			if diff := cmp.Diff(tt.wantRuntime, ro, cmpopts.IgnoreFields(containerd.Options{}, "Logger", "PlainHTTP")); diff != "" {
				t.Errorf("runtime options (-want +got):\n%s", diff)
			}
			ac := agentConfig(tt.cfg, log)
			if ac.Log == nil {
				t.Error("agent config without a logger")
			}
			if diff := cmp.Diff(tt.wantAgent, ac, cmpopts.IgnoreFields(agent.Config{}, "Log")); diff != "" {
				t.Errorf("agent config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunRequiresNodeAndDataDir(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []Config{
		{DataDir: "/d", Kubeconfig: "k"},
		{Agent: agent.Config{NodeName: "n"}, Kubeconfig: "k"},
		{Agent: agent.Config{NodeName: "n"}, DataDir: t.TempDir()},
	} {
		if err := Run(ctx, cfg); err == nil {
			t.Errorf("Run(%+v) = nil, want an error", cfg)
		}
	}
}
