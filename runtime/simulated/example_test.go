package simulated_test

import (
	"context"
	"fmt"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/simulated"
)

// Example scripts a crash-looping container and a slow-starting one.
func Example() {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	rt := simulated.New(simulated.Options{
		Clock:  clk,
		Images: []string{"app:1"},
		Script: func(_ *runtime.PodSandboxConfig, c *runtime.ContainerConfig) simulated.Behavior {
			if c.Name == "crasher" {
				return simulated.Behavior{RunFor: 2 * time.Second, ExitCode: 1}
			}
			return simulated.Behavior{ReadyAfter: 5 * time.Second}
		},
	})
	defer rt.Close()

	sb, _ := rt.RunPodSandbox(ctx, &runtime.PodSandboxConfig{Name: "p"})
	crasher, _ := rt.CreateContainer(ctx, sb, &runtime.ContainerConfig{Name: "crasher", Image: "app:1"})
	slow, _ := rt.CreateContainer(ctx, sb, &runtime.ContainerConfig{Name: "slow", Image: "app:1"})
	_ = rt.StartContainer(ctx, crasher)
	_ = rt.StartContainer(ctx, slow)

	probe, _ := rt.Exec(ctx, slow, runtime.ExecOptions{Cmd: []string{"cat", "/ready"}})
	fmt.Println("probe at 0s:", probe)
	clk.Step(5 * time.Second)
	probe, _ = rt.Exec(ctx, slow, runtime.ExecOptions{Cmd: []string{"cat", "/ready"}})
	fmt.Println("probe at 5s:", probe)
	st, _ := rt.ContainerStatus(ctx, crasher)
	fmt.Println("crasher:", st.State, st.ExitCode, st.Reason)
	// Output:
	// probe at 0s: 1
	// probe at 5s: 0
	// crasher: Exited 1 Error
}
