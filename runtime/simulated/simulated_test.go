package simulated_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/simulated"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newRuntime(t *testing.T, script func(*runtime.PodSandboxConfig, *runtime.ContainerConfig) simulated.Behavior) (*simulated.Runtime, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(t0)
	r := simulated.New(simulated.Options{Clock: clk, Script: script, Images: []string{"app:1"},
		PullError: func(ref string) error {
			if strings.Contains(ref, "missing") {
				return errors.New("manifest unknown")
			}
			return nil
		}})
	t.Cleanup(func() { r.Close() })
	return r, clk
}

func runPod(t *testing.T, r runtime.Runtime, name string) (string, string) {
	t.Helper()
	ctx := context.Background()
	sb, err := r.RunPodSandbox(ctx, &runtime.PodSandboxConfig{Name: name, Namespace: "default", UID: "uid-" + name})
	if err != nil {
		t.Fatal(err)
	}
	id, err := r.CreateContainer(ctx, sb, &runtime.ContainerConfig{Name: "c", Image: "app:1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	return sb, id
}

func TestScriptedExits(t *testing.T) {
	tests := []struct {
		name     string
		behavior simulated.Behavior
		want     runtime.ContainerStatus
	}{
		{name: "completes", behavior: simulated.Behavior{RunFor: 5 * time.Second},
			want: runtime.ContainerStatus{State: runtime.ContainerExited, Reason: runtime.ReasonCompleted, FinishedAt: t0.Add(5 * time.Second)}},
		{name: "fails", behavior: simulated.Behavior{RunFor: time.Second, ExitCode: 3},
			want: runtime.ContainerStatus{State: runtime.ContainerExited, ExitCode: 3, Reason: runtime.ReasonError, FinishedAt: t0.Add(time.Second)}},
		{name: "oom", behavior: simulated.Behavior{RunFor: 2 * time.Second, OOMKill: true},
			want: runtime.ContainerStatus{State: runtime.ContainerExited, ExitCode: 137, Reason: runtime.ReasonOOMKilled, FinishedAt: t0.Add(2 * time.Second)}},
		{name: "forever", behavior: simulated.Behavior{},
			want: runtime.ContainerStatus{State: runtime.ContainerRunning}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, clk := newRuntime(t, func(*runtime.PodSandboxConfig, *runtime.ContainerConfig) simulated.Behavior { return tt.behavior })
			_, id := runPod(t, r, tt.name)
			clk.Step(10 * time.Second)
			got, err := r.ContainerStatus(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			opts := cmpopts.IgnoreFields(runtime.ContainerStatus{}, "ID", "SandboxID", "Name", "Image", "ImageRef", "CreatedAt", "StartedAt", "LogPath")
			if diff := cmp.Diff(tt.want, *got, opts); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadinessProbeByExec(t *testing.T) {
	r, clk := newRuntime(t, func(*runtime.PodSandboxConfig, *runtime.ContainerConfig) simulated.Behavior {
		return simulated.Behavior{ReadyAfter: 3 * time.Second}
	})
	_, id := runPod(t, r, "p")
	probe := func() int {
		code, err := r.Exec(context.Background(), id, runtime.ExecOptions{Cmd: []string{"true"}})
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	if got := probe(); got != 1 {
		t.Errorf("probe before ReadyAfter = %d, want 1", got)
	}
	clk.Step(3 * time.Second)
	if got := probe(); got != 0 {
		t.Errorf("probe after ReadyAfter = %d, want 0", got)
	}
}

func TestStopGraceThenKill(t *testing.T) {
	r, clk := newRuntime(t, func(_ *runtime.PodSandboxConfig, c *runtime.ContainerConfig) simulated.Behavior {
		return simulated.Behavior{IgnoreSIGTERM: true}
	})
	_, id := runPod(t, r, "p")
	done := make(chan error)
	go func() { done <- r.StopContainer(context.Background(), id, 30*time.Second) }()
	for !clk.HasWaiters() {
		time.Sleep(time.Millisecond)
	}
	st, _ := r.ContainerStatus(context.Background(), id)
	if st.State != runtime.ContainerRunning {
		t.Fatalf("state during grace = %s, want Running", st.State)
	}
	clk.Step(30 * time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, _ = r.ContainerStatus(context.Background(), id)
	if st.State != runtime.ContainerExited || st.ExitCode != 137 || !st.FinishedAt.Equal(t0.Add(30*time.Second)) {
		t.Errorf("after grace: %+v, want exited 137 at +30s", st)
	}
}

func TestEventsAndRemoval(t *testing.T) {
	r, clk := newRuntime(t, func(*runtime.PodSandboxConfig, *runtime.ContainerConfig) simulated.Behavior {
		return simulated.Behavior{RunFor: time.Second, OOMKill: true}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := r.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sb, id := runPod(t, r, "p")
	clk.Step(time.Second)
	if err := r.RemovePodSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	var got []runtime.EventType
	for ev := range events {
		if ev.ContainerID != id {
			t.Errorf("event for %q, want %q", ev.ContainerID, id)
		}
		got = append(got, ev.Type)
		if ev.Type == runtime.EventRemoved {
			break
		}
	}
	want := []runtime.EventType{runtime.EventCreated, runtime.EventStarted, runtime.EventOOM, runtime.EventExited, runtime.EventRemoved}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if _, err := r.ContainerStatus(ctx, id); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("status after removal: %v, want ErrNotFound", err)
	}
	if list, _ := r.ListPodSandboxes(ctx); len(list) != 0 {
		t.Errorf("sandboxes left: %v", list)
	}
}

func TestImagesAndLogs(t *testing.T) {
	r, _ := newRuntime(t, func(*runtime.PodSandboxConfig, *runtime.ContainerConfig) simulated.Behavior {
		return simulated.Behavior{Output: []string{"a", "b", "c"}}
	})
	ctx := context.Background()
	if _, err := r.PullImage(ctx, "missing:1", nil); !errors.Is(err, runtime.ErrImagePull) || !strings.Contains(err.Error(), "manifest unknown") {
		t.Errorf("pull of missing image: %v", err)
	}
	if _, err := r.PullImage(ctx, "web:2", nil); err != nil {
		t.Fatal(err)
	}
	imgs, _ := r.ImportImage(ctx, strings.NewReader("db:3\n"))
	if len(imgs) != 1 || imgs[0].RepoTags[0] != "db:3" {
		t.Errorf("import: %+v", imgs)
	}
	list, _ := r.ListImages(ctx)
	var tags []string
	for _, im := range list {
		tags = append(tags, im.RepoTags...)
	}
	if diff := cmp.Diff([]string{"app:1", "db:3", "web:2"}, tags); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}
	if err := r.RemoveImage(ctx, "web:2"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ImageStatus(ctx, "web:2"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("removed image status: %v", err)
	}
	_, id := runPod(t, r, "p")
	var out bytes.Buffer
	if err := r.ContainerLogs(ctx, id, runtime.LogOptions{TailLines: 2, Timestamps: true}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%[1]s b\n%[1]s c\n", t0.Format(time.RFC3339Nano))
	if out.String() != want {
		t.Errorf("logs = %q, want %q", out.String(), want)
	}
}

func TestPodIPsAndListing(t *testing.T) {
	r, _ := newRuntime(t, nil)
	ctx := context.Background()
	a, _ := runPod(t, r, "a")
	b, _ := runPod(t, r, "b")
	h, _ := r.RunPodSandbox(ctx, &runtime.PodSandboxConfig{Name: "h", HostNetwork: true})
	var ips []string
	for _, id := range []string{a, b, h} {
		s, err := r.PodSandboxStatus(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		ips = append(ips, s.IP)
	}
	if diff := cmp.Diff([]string{"10.244.0.2", "10.244.0.3", "192.0.2.1"}, ips); diff != "" {
		t.Errorf("IPs (-want +got):\n%s", diff)
	}
	cs, _ := r.ListContainers(ctx, runtime.ContainerFilter{SandboxID: b})
	if len(cs) != 1 || cs[0].SandboxID != b {
		t.Errorf("containers of b: %+v", cs)
	}
	if err := r.StopPodSandbox(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateContainer(ctx, a, &runtime.ContainerConfig{Name: "x", Image: "app:1"}); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("create in stopped sandbox: %v, want ErrInvalid", err)
	}
	running, _ := r.ListContainers(ctx, runtime.ContainerFilter{State: runtime.ContainerRunning})
	if len(running) != 1 {
		t.Errorf("running containers = %d, want 1", len(running))
	}
}

func TestIPsAreReused(t *testing.T) {
	r, _ := newRuntime(t, nil)
	ctx := context.Background()
	a, _ := runPod(t, r, "a")
	sa, _ := r.PodSandboxStatus(ctx, a)
	if err := r.RemovePodSandbox(ctx, a); err != nil {
		t.Fatal(err)
	}
	b, _ := runPod(t, r, "b")
	sb, _ := r.PodSandboxStatus(ctx, b)
	if sa.IP != sb.IP {
		t.Errorf("IP of a removed pod not reused: %s then %s", sa.IP, sb.IP)
	}
}

// BenchmarkSimulatedPodStart measures a simulated pod's sandbox + container
// start, the cost a scale simulation pays per pod.
func BenchmarkSimulatedPodStart(b *testing.B) {
	r := simulated.New(simulated.Options{Images: []string{"app:1"}})
	defer r.Close()
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		sb, err := r.RunPodSandbox(ctx, &runtime.PodSandboxConfig{Name: fmt.Sprint(i)})
		if err != nil {
			b.Fatal(err)
		}
		id, err := r.CreateContainer(ctx, sb, &runtime.ContainerConfig{Name: "c", Image: "app:1"})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.StartContainer(ctx, id); err != nil {
			b.Fatal(err)
		}
		if err := r.RemovePodSandbox(ctx, sb); err != nil {
			b.Fatal(err)
		}
	}
}
