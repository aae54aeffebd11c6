package store_test

import (
	"context"
	"runtime/debug"
	"testing"

	"github.com/tugboatdev/tugboat/store"
)

// gcPercent reads the process's GOGC setting.
func gcPercent() int {
	v := debug.SetGCPercent(100)
	debug.SetGCPercent(v)
	return v
}

// TestConfigGCSettings checks that Config.GCPercent and MemoryLimit are in
// force while the store is open and that Close restores what they
// replaced; zero values leave the process's settings alone.
func TestConfigGCSettings(t *testing.T) {
	prevPercent, prevLimit := gcPercent(), debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	})
	for _, tc := range []struct {
		name        string
		cfg         store.Config
		wantPercent int
		wantLimit   int64
	}{
		{"unset", store.Config{}, prevPercent, prevLimit},
		{"set", store.Config{GCPercent: 321, MemoryLimit: 3 << 30}, 321, 3 << 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Logger = quietLogs
			s, err := store.Open(context.Background(), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := gcPercent(); got != tc.wantPercent {
				t.Errorf("GOGC while open: %d, want %d", got, tc.wantPercent)
			}
			if got := debug.SetMemoryLimit(-1); got != tc.wantLimit {
				t.Errorf("memory limit while open: %d, want %d", got, tc.wantLimit)
			}
			s.Close()
			s.Close() // a second Close restores nothing more
			if got := gcPercent(); got != prevPercent {
				t.Errorf("GOGC after Close: %d, want %d", got, prevPercent)
			}
			if got := debug.SetMemoryLimit(-1); got != prevLimit {
				t.Errorf("memory limit after Close: %d, want %d", got, prevLimit)
			}
		})
	}
}
