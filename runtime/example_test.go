package runtime_test

import (
	"context"
	"fmt"
	"os"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/simulated"
)

// Example shows the whole life of a pod through the Runtime interface, here
// on the simulated runtime with a fake clock (the containerd runtime in
// runtime/containerd is used the same way, see its examples).
func Example() {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var rt runtime.Runtime = simulated.New(simulated.Options{
		Clock: clk,
		Script: func(_ *runtime.PodSandboxConfig, c *runtime.ContainerConfig) simulated.Behavior {
			return simulated.Behavior{RunFor: 10 * time.Second, ExitCode: 0, Output: []string{"hello from " + c.Name}}
		},
	})
	defer rt.Close()

	if _, err := rt.PullImage(ctx, "busybox:stable", nil); err != nil {
		fmt.Println(err)
		return
	}
	sandboxID, err := rt.RunPodSandbox(ctx, &runtime.PodSandboxConfig{Name: "web", Namespace: "default", UID: "1234"})
	if err != nil {
		fmt.Println(err)
		return
	}
	sb, _ := rt.PodSandboxStatus(ctx, sandboxID)
	fmt.Println("pod IP:", sb.IP)

	id, err := rt.CreateContainer(ctx, sandboxID, &runtime.ContainerConfig{
		Name: "main", Image: "busybox:stable", Command: []string{"sh", "-c", "echo hello from main"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := rt.StartContainer(ctx, id); err != nil {
		fmt.Println(err)
		return
	}
	st, _ := rt.ContainerStatus(ctx, id)
	fmt.Println("state:", st.State)

	clk.Step(10 * time.Second) // the scripted run time passes
	st, _ = rt.ContainerStatus(ctx, id)
	fmt.Println("state:", st.State, "exit code:", st.ExitCode, "reason:", st.Reason)

	_ = rt.ContainerLogs(ctx, id, runtime.LogOptions{TailLines: -1}, os.Stdout, os.Stderr)

	if err := rt.StopPodSandbox(ctx, sandboxID); err != nil {
		fmt.Println(err)
	}
	if err := rt.RemovePodSandbox(ctx, sandboxID); err != nil {
		fmt.Println(err)
	}
	left, _ := rt.ListContainers(ctx, runtime.ContainerFilter{})
	fmt.Println("containers left:", len(left))
	// Output:
	// pod IP: 10.244.0.2
	// state: Running
	// state: Exited exit code: 0 reason: Completed
	// hello from main
	// containers left: 0
}

// ExampleResolveCommand shows how command and args combine with an image's
// ENTRYPOINT and CMD.
func ExampleResolveCommand() {
	entrypoint, cmd := []string{"/docker-entrypoint.sh"}, []string{"nginx", "-g", "daemon off;"}
	fmt.Println(runtime.ResolveCommand(entrypoint, cmd, nil, nil))
	fmt.Println(runtime.ResolveCommand(entrypoint, cmd, nil, []string{"nginx", "-T"}))
	fmt.Println(runtime.ResolveCommand(entrypoint, cmd, []string{"sh", "-c"}, []string{"echo hi"}))
	fmt.Println(runtime.ResolveCommand(entrypoint, cmd, []string{"sleep"}, nil))
	// Output:
	// [/docker-entrypoint.sh nginx -g daemon off;]
	// [/docker-entrypoint.sh nginx -T]
	// [sh -c echo hi]
	// [sleep]
}
