package agent

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/simulated"
	"github.com/tugboatdev/tugboat/store"
)

func TestTerminationMessages(t *testing.T) {
	e := newEnv(t, envOpts{script: func(_ *runtime.PodSandboxConfig, c *runtime.ContainerConfig) simulated.Behavior {
		switch c.Name {
		case "file":
			// The "process" writes its termination log through the mount.
			for _, m := range c.Mounts {
				if m.ContainerPath == "/tmp/why" {
					_ = os.WriteFile(m.HostPath, []byte("disk full"), 0o644)
				}
			}
			return simulated.Behavior{RunFor: 10 * time.Millisecond, ExitCode: 1}
		case "logs":
			return simulated.Behavior{RunFor: 10 * time.Millisecond, ExitCode: 2, Output: []string{"starting", "panic: boom"}}
		}
		return simulated.Behavior{}
	}})
	p := simplePod("msgs",
		corev1.Container{Name: "file", Image: "app:1", TerminationMessagePath: "/tmp/why"},
		corev1.Container{Name: "logs", Image: "app:1", TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError},
	)
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	e.createPod(p)
	got := e.waitPod("default", "msgs", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	msgs := map[string]string{}
	for _, cs := range got.Status.ContainerStatuses {
		msgs[cs.Name] = cs.State.Terminated.Message
	}
	if diff := cmp.Diff(map[string]string{"file": "disk full", "logs": "starting\npanic: boom\n"}, msgs); diff != "" {
		t.Errorf("termination messages (-want +got):\n%s", diff)
	}
}

func TestStaticPods(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, envOpts{cfg: func(c *Config) { c.StaticPodDir = dir }})
	manifest := `apiVersion: v1
kind: Pod
metadata:
  name: etcd
  namespace: kube-system
  labels: {tier: control-plane}
spec:
  containers:
  - name: etcd
    image: app:1
`
	if err := os.WriteFile(filepath.Join(dir, "etcd.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	name := "etcd-" + testNode
	got := e.waitPod("kube-system", name, "mirror pod Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning && ready(p) })
	if got.Annotations[AnnotationConfigSource] != "file" || got.Annotations[AnnotationConfigMirror] == "" || got.Spec.NodeName != testNode {
		t.Errorf("mirror pod metadata %v node %q", got.Annotations, got.Spec.NodeName)
	}
	if len(got.OwnerReferences) != 1 || got.OwnerReferences[0].Kind != "Node" {
		t.Errorf("ownerReferences %v", got.OwnerReferences)
	}
	// Deleting the mirror pod does not stop the static pod: it comes back.
	if err := store.Delete[*corev1.Pod](e.ctx, e.s, "kube-system", name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}); err != nil {
		t.Fatal(err)
	}
	e.waitPod("kube-system", name, "mirror pod back", func(p *corev1.Pod) bool { return p.UID != got.UID && p.Status.Phase == corev1.PodRunning })
	if n := len(e.rec.all()); n != 1 {
		t.Errorf("static pod container created %d times", n)
	}
	// Removing the manifest stops the pod and removes the mirror.
	if err := os.Remove(filepath.Join(dir, "etcd.yaml")); err != nil {
		t.Fatal(err)
	}
	e.waitGone("kube-system", name)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		sbs, _ := e.rt.ListPodSandboxes(context.Background())
		if len(sbs) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Error("static pod sandbox left after its manifest was removed")
}

func TestAgentRestartReadopts(t *testing.T) {
	e := newEnv(t, envOpts{script: func(_ *runtime.PodSandboxConfig, c *runtime.ContainerConfig) simulated.Behavior {
		if c.Name == "flaky" && c.Attempt == 0 {
			return simulated.Behavior{RunFor: 10 * time.Millisecond, ExitCode: 1, Output: []string{"first attempt"}}
		}
		return simulated.Behavior{Output: []string{"attempt " + string(rune('0'+c.Attempt))}}
	}})
	p := simplePod("keep", corev1.Container{Name: "flaky", Image: "app:1"}, corev1.Container{Name: "steady", Image: "app:1"})
	e.createPod(p)
	before := e.waitPod("default", "keep", "Running with a restart", func(p *corev1.Pod) bool {
		return ready(p) && p.Status.ContainerStatuses[0].RestartCount == 1
	})
	creations := len(e.rec.all())
	e.stop()
	e.start()
	// Touch the pod so the new agent syncs it at least once more.
	cur, _ := store.Get[*corev1.Pod](e.ctx, e.s, "default", "keep")
	cur.Labels["touched"] = "yes"
	if _, err := store.Update(e.ctx, e.s, cur); err != nil {
		t.Fatal(err)
	}
	e.waitPod("default", "keep", "synced by the new agent", func(p *corev1.Pod) bool { return ready(p) && p.Labels["touched"] == "yes" })
	time.Sleep(300 * time.Millisecond)
	after, _ := store.Get[*corev1.Pod](e.ctx, e.s, "default", "keep")
	if n := len(e.rec.all()); n != creations {
		t.Errorf("new agent created %d containers", n-creations)
	}
	for i, cs := range after.Status.ContainerStatuses {
		if cs.ContainerID != before.Status.ContainerStatuses[i].ContainerID || cs.RestartCount != before.Status.ContainerStatuses[i].RestartCount {
			t.Errorf("container %s: %s/%d before, %s/%d after", cs.Name, before.Status.ContainerStatuses[i].ContainerID,
				before.Status.ContainerStatuses[i].RestartCount, cs.ContainerID, cs.RestartCount)
		}
	}
	sbs, _ := e.rt.ListPodSandboxes(context.Background())
	if len(sbs) != 1 {
		t.Errorf("%d sandboxes", len(sbs))
	}
	// The previous attempt's log is still there.
	var buf bytes.Buffer
	if err := e.agent.Logs(e.ctx, "default", "keep", "flaky", &corev1.PodLogOptions{Previous: true}, &buf); err != nil || buf.String() != "first attempt\n" {
		t.Errorf("logs --previous = %q, %v", buf.String(), err)
	}
}

func TestStreamer(t *testing.T) {
	var mu sync.Mutex
	var execs [][]string
	e := newEnv(t, envOpts{
		script: func(*runtime.PodSandboxConfig, *runtime.ContainerConfig) simulated.Behavior {
			return simulated.Behavior{Output: []string{"line 1", "line 2", "line 3"}}
		},
		exec: func(_ string, cmd []string, out io.Writer) int32 {
			mu.Lock()
			execs = append(execs, cmd)
			mu.Unlock()
			out.Write([]byte("hi\n"))
			return 7
		},
	})
	e.createPod(simplePod("one"))
	e.createPod(simplePod("two", corev1.Container{Name: "a", Image: "app:1"}, corev1.Container{Name: "b", Image: "app:1"}))
	e.waitStatus("default", "one", "Running")
	e.waitStatus("default", "two", "Running")
	var buf bytes.Buffer
	tail := int64(2)
	if err := e.agent.Logs(e.ctx, "default", "one", "", &corev1.PodLogOptions{TailLines: &tail}, &buf); err != nil || buf.String() != "line 2\nline 3\n" {
		t.Errorf("logs --tail=2 = %q, %v", buf.String(), err)
	}
	buf.Reset()
	if err := e.agent.Logs(e.ctx, "default", "two", "", nil, &buf); err == nil || !strings.Contains(err.Error(), "a container name must be specified for pod two, choose one of: [a b]") {
		t.Errorf("logs without container on a two-container pod: %v", err)
	}
	if err := e.agent.Logs(e.ctx, "default", "one", "", &corev1.PodLogOptions{Previous: true}, &buf); err == nil || !strings.Contains(err.Error(), "previous terminated container") {
		t.Errorf("logs --previous without a restart: %v", err)
	}
	var out bytes.Buffer
	code, err := e.agent.Exec(e.ctx, "default", "two", "b", runtime.ExecOptions{Cmd: []string{"echo", "hi"}, Stdout: &out})
	if err != nil || code != 7 || out.String() != "hi\n" {
		t.Errorf("exec = %d %q %v", code, out.String(), err)
	}
	if _, err := e.agent.Exec(e.ctx, "default", "absent", "", runtime.ExecOptions{Cmd: []string{"true"}}); err == nil {
		t.Error("exec into an unknown pod worked")
	}
	if err := e.agent.PortForward(e.ctx, "default", "one", 80, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("port-forward on the simulated runtime: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, envOpts{script: func(*runtime.PodSandboxConfig, *runtime.ContainerConfig) simulated.Behavior {
		return simulated.Behavior{CPUMilli: 250, MemoryBytes: 48 << 20}
	}})
	e.createPod(simplePod("busy"))
	e.waitStatus("default", "busy", "Running")
	time.Sleep(200 * time.Millisecond)
	u, err := e.agent.PodMetrics(e.ctx, "default", "busy")
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Containers) != 1 || u.Containers[0].MemoryWorkingSetBytes != 48<<20 {
		t.Fatalf("usage %+v", u)
	}
	if c := u.Containers[0].CPUNanoCores; c < 200_000_000 || c > 300_000_000 {
		t.Errorf("cpu = %d nanocores, want about 250m", c)
	}
	n, err := e.agent.NodeMetrics(e.ctx)
	if err != nil || n.Name != testNode || n.MemoryWorkingSetBytes != 2<<30 || n.Window <= 0 {
		t.Errorf("NodeMetrics = %+v, %v", n, err)
	}
	all, err := e.agent.ListPodMetrics(e.ctx)
	if err != nil || len(all) != 1 || all[0].Name != "busy" {
		t.Errorf("ListPodMetrics = %+v, %v", all, err)
	}
}

func TestEvictionUnderMemoryPressure(t *testing.T) {
	var mu sync.Mutex
	low := false
	var st *store.Store
	e := newEnv(t, envOpts{cfg: func(c *Config) {
		st = c.Store.(*store.Store)
		c.Measure = func(ctx context.Context) (Measurements, error) {
			mu.Lock()
			avail := int64(4 << 30)
			if low {
				avail = 10 << 20
			}
			mu.Unlock()
			// The pressure ends once the first victim is gone.
			if p, err := store.Get[*corev1.Pod](ctx, st, "default", "besteffort"); err == nil && p.Status.Phase == corev1.PodFailed {
				avail = 4 << 30
			}
			return Measurements{CPUs: 2, MemoryTotal: 8 << 30, MemoryAvailable: avail, DiskTotal: 1 << 40, DiskAvailable: 1 << 39, PIDsInUse: 10, PIDMax: 1 << 20}, nil
		}
	}})
	guaranteed := simplePod("guaranteed", corev1.Container{Name: "app", Image: "app:1", Resources: corev1.ResourceRequirements{
		Limits: corev1.ResourceList{"cpu": mustQ("100m"), "memory": mustQ("64Mi")}}})
	e.createPod(guaranteed)
	e.createPod(simplePod("besteffort"))
	e.waitStatus("default", "guaranteed", "Running")
	e.waitStatus("default", "besteffort", "Running")
	mu.Lock()
	low = true
	mu.Unlock()
	got := e.waitPod("default", "besteffort", "Evicted", func(p *corev1.Pod) bool { return p.Status.Reason == "Evicted" })
	if got.Status.Phase != corev1.PodFailed || PodStatusString(got) == "Running" {
		t.Errorf("evicted pod: phase %s status %s", got.Status.Phase, PodStatusString(got))
	}
	time.Sleep(300 * time.Millisecond)
	if p, _ := store.Get[*corev1.Pod](e.ctx, e.s, "default", "guaranteed"); p.Status.Phase != corev1.PodRunning {
		t.Errorf("guaranteed pod %s", p.Status.Phase)
	}
}

func mustQ(s string) resource.Quantity { return resource.MustParse(s) }
