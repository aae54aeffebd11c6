package nodeproc

import (
	"context"
	"io"
	"log/slog"
	"testing"

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
