package simulated_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/simulated"
)

// TestContainerStats checks the scripted usage ContainerStats reports:
// CPU from the rate and the running time, memory, writable layer and
// process count as given (at least one process).
func TestContainerStats(t *testing.T) {
	tests := []struct {
		name     string
		behavior simulated.Behavior
		want     runtime.ContainerStats
	}{
		{name: "defaults", want: runtime.ContainerStats{Processes: 1}},
		{name: "scripted",
			behavior: simulated.Behavior{CPUMilli: 500, MemoryBytes: 64 << 20, WritableLayerBytes: 10 << 20, Processes: 7},
			want: runtime.ContainerStats{CPUUsageNanoSeconds: uint64(2 * time.Second / 2), MemoryUsageBytes: 64 << 20,
				MemoryWorkingSetBytes: 64 << 20, WritableLayerBytes: 10 << 20, Processes: 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, clk := newRuntime(t, func(*runtime.PodSandboxConfig, *runtime.ContainerConfig) simulated.Behavior { return tt.behavior })
			_, id := runPod(t, r, "stats")
			clk.Step(2 * time.Second)
			got, err := r.ContainerStats(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.ContainerID = id
			if diff := cmp.Diff(tt.want, *got, cmpopts.IgnoreFields(runtime.ContainerStats{}, "Timestamp")); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
		})
	}
}
