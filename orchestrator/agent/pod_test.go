package agent

import (
	"context"
	"io"
	"slices"
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

// scriptByName scripts containers by name.
func scriptByName(m map[string]simulated.Behavior) func(*runtime.PodSandboxConfig, *runtime.ContainerConfig) simulated.Behavior {
	return func(_ *runtime.PodSandboxConfig, c *runtime.ContainerConfig) simulated.Behavior { return m[c.Name] }
}

func TestPodWithInitContainersRunsAndIsReady(t *testing.T) {
	e := newEnv(t, envOpts{script: scriptByName(map[string]simulated.Behavior{
		"init-1": {RunFor: 20 * time.Millisecond}, "init-2": {RunFor: 20 * time.Millisecond},
	})})
	p := simplePod("web", corev1.Container{Name: "app", Image: "app:1", Resources: corev1.ResourceRequirements{
		Limits: corev1.ResourceList{"cpu": resource.MustParse("500m"), "memory": resource.MustParse("64Mi")}}})
	p.Spec.InitContainers = []corev1.Container{{Name: "init-1", Image: "busybox:1"}, {Name: "init-2", Image: "busybox:1"}}
	e.createPod(p)
	got := e.waitPod("default", "web", "Running and Ready", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning && ready(p) })
	if s := PodStatusString(got); s != "Running" {
		t.Errorf("status = %q", s)
	}
	var order []string
	for _, c := range e.rec.all() {
		order = append(order, c.Name)
	}
	if diff := cmp.Diff([]string{"init-1", "init-2", "app"}, order); diff != "" {
		t.Errorf("start order (-want +got):\n%s", diff)
	}
	st := got.Status
	if st.PodIP == "" || !strings.HasPrefix(st.PodIP, "127.10.") || len(st.PodIPs) != 1 || st.HostIP != "127.0.0.1" || st.StartTime == nil {
		t.Errorf("ips/startTime: podIP=%q podIPs=%v hostIP=%q start=%v", st.PodIP, st.PodIPs, st.HostIP, st.StartTime)
	}
	// Init containers without limits make the pod Burstable, as upstream.
	if st.QOSClass != corev1.PodQOSBurstable {
		t.Errorf("qosClass = %s", st.QOSClass)
	}
	conds := map[corev1.PodConditionType]corev1.ConditionStatus{}
	for _, c := range st.Conditions {
		conds[c.Type] = c.Status
		if c.LastTransitionTime.IsZero() {
			t.Errorf("condition %s without lastTransitionTime", c.Type)
		}
	}
	for _, ct := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		if conds[ct] != corev1.ConditionTrue {
			t.Errorf("condition %s = %s", ct, conds[ct])
		}
	}
	for _, cs := range st.InitContainerStatuses {
		if cs.State.Terminated == nil || cs.State.Terminated.Reason != "Completed" || cs.State.Terminated.ExitCode != 0 {
			t.Errorf("init %s state = %+v", cs.Name, cs.State)
		}
	}
	cs := st.ContainerStatuses[0]
	if cs.State.Running == nil || !cs.Ready || cs.Started == nil || !*cs.Started || !strings.HasPrefix(cs.ContainerID, "simulated://") || cs.ImageID == "" {
		t.Errorf("app status = %+v", cs)
	}
	if c := e.rec.last("app"); c.Resources.CPULimitMilli != 500 || c.Resources.MemoryLimitBytes != 64<<20 {
		t.Errorf("resources = %+v", c.Resources)
	}
	for _, reason := range []string{"Pulled", "Created", "Started"} {
		e.waitEvent("web", reason)
	}
}

func TestInitContainerStatuses(t *testing.T) {
	e := newEnv(t, envOpts{script: scriptByName(map[string]simulated.Behavior{
		"slow": {RunFor: time.Hour}, "bad": {RunFor: 10 * time.Millisecond, ExitCode: 2},
	})})
	// A running first init container: Init:0/2.
	p := simplePod("slow-init")
	p.Spec.InitContainers = []corev1.Container{{Name: "slow", Image: "busybox:1"}, {Name: "other", Image: "busybox:1"}}
	e.createPod(p)
	got := e.waitStatus("default", "slow-init", "Init:0/2")
	if got.Status.Phase != corev1.PodPending || got.Status.ContainerStatuses[0].State.Waiting.Reason != "PodInitializing" {
		t.Errorf("phase %s, app %+v", got.Status.Phase, got.Status.ContainerStatuses[0].State)
	}
	// A failing init container with restartPolicy Never: Init:Error, Failed.
	p = simplePod("bad-init")
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	p.Spec.InitContainers = []corev1.Container{{Name: "bad", Image: "busybox:1"}}
	e.createPod(p)
	got = e.waitStatus("default", "bad-init", "Init:Error")
	got = e.waitPod("default", "bad-init", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if ex := got.Status.InitContainerStatuses[0].State.Terminated; ex == nil || ex.ExitCode != 2 {
		t.Errorf("init state = %+v", got.Status.InitContainerStatuses[0].State)
	}
	// With restartPolicy Always it loops: Init:CrashLoopBackOff.
	p = simplePod("loop-init")
	p.Spec.InitContainers = []corev1.Container{{Name: "bad", Image: "busybox:1"}}
	e.createPod(p)
	got = e.waitStatus("default", "loop-init", "Init:CrashLoopBackOff")
	ics := got.Status.InitContainerStatuses[0]
	if ics.RestartCount != 1 || ics.LastTerminationState.Terminated == nil || ics.LastTerminationState.Terminated.ExitCode != 2 {
		t.Errorf("init status = %+v", ics)
	}
	if !strings.HasPrefix(ics.State.Waiting.Message, "back-off 10s restarting failed container=bad pod=loop-init_default(") {
		t.Errorf("message = %q", ics.State.Waiting.Message)
	}
}

func TestRestartPolicies(t *testing.T) {
	e := newEnv(t, envOpts{script: func(_ *runtime.PodSandboxConfig, c *runtime.ContainerConfig) simulated.Behavior {
		switch c.Name {
		case "ok":
			return simulated.Behavior{RunFor: 10 * time.Millisecond}
		case "fail":
			return simulated.Behavior{RunFor: 10 * time.Millisecond, ExitCode: 3}
		case "oom":
			return simulated.Behavior{RunFor: 10 * time.Millisecond, OOMKill: true}
		}
		return simulated.Behavior{}
	}})
	for _, tc := range []struct {
		name      string
		policy    corev1.RestartPolicy
		container string
		status    string
		phase     corev1.PodPhase
	}{
		{"never-ok", corev1.RestartPolicyNever, "ok", "Completed", corev1.PodSucceeded},
		{"never-fail", corev1.RestartPolicyNever, "fail", "Error", corev1.PodFailed},
		{"onfailure-ok", corev1.RestartPolicyOnFailure, "ok", "Completed", corev1.PodSucceeded},
		{"never-oom", corev1.RestartPolicyNever, "oom", "OOMKilled", corev1.PodFailed},
		{"onfailure-fail", corev1.RestartPolicyOnFailure, "fail", "CrashLoopBackOff", corev1.PodRunning},
		{"always-ok", corev1.RestartPolicyAlways, "ok", "CrashLoopBackOff", corev1.PodRunning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := simplePod(tc.name, corev1.Container{Name: tc.container, Image: "app:1"})
			p.Spec.RestartPolicy = tc.policy
			e.createPod(p)
			got := e.waitPod("default", tc.name, tc.status+"/"+string(tc.phase), func(p *corev1.Pod) bool {
				return PodStatusString(p) == tc.status && p.Status.Phase == tc.phase
			})
			cs := got.Status.ContainerStatuses[0]
			if tc.status == "CrashLoopBackOff" && (cs.RestartCount != 1 || cs.LastTerminationState.Terminated == nil) {
				t.Errorf("status %+v", cs)
			}
			if tc.phase == corev1.PodSucceeded || tc.phase == corev1.PodFailed {
				if ready(got) {
					t.Error("finished pod is Ready")
				}
				for _, c := range got.Status.Conditions {
					if c.Type == corev1.PodReady && c.Reason != "PodCompleted" {
						t.Errorf("Ready reason = %q", c.Reason)
					}
				}
			}
		})
	}
}

func TestImagePullErrors(t *testing.T) {
	e := newEnv(t, envOpts{pullErr: func(ref string) error {
		if ref == "missing:1" {
			return errNoSuchImage
		}
		return nil
	}})
	p := simplePod("pull", corev1.Container{Name: "app", Image: "missing:1", ImagePullPolicy: corev1.PullIfNotPresent})
	seen := e.watchStatuses("pull")
	e.createPod(p)
	got := e.waitStatus("default", "pull", "ImagePullBackOff")
	if got.Status.Phase != corev1.PodPending {
		t.Errorf("phase %s", got.Status.Phase)
	}
	if s := seen(); !slices.Contains(s, "ErrImagePull") {
		t.Errorf("statuses seen %v, want ErrImagePull among them", s)
	}
	e.waitEvent("pull", "Failed")
	e.waitEvent("pull", "BackOff")
	// Never with an absent image.
	p = simplePod("never", corev1.Container{Name: "app", Image: "absent:1", ImagePullPolicy: corev1.PullNever})
	e.createPod(p)
	e.waitStatus("default", "never", "ErrImageNeverPull")
	// Always pulls even when present: a pull that works runs the pod.
	p = simplePod("always", corev1.Container{Name: "app", Image: "fresh:2", ImagePullPolicy: corev1.PullAlways})
	e.createPod(p)
	e.waitStatus("default", "always", "Running")
	e.waitEvent("always", "Pulling")
}

type testErr string

func (e testErr) Error() string { return string(e) }

const errNoSuchImage = testErr("no such image")

func TestGracefulDeletion(t *testing.T) {
	var mu sync.Mutex
	var hooks []string
	e := newEnv(t, envOpts{exec: func(_ string, cmd []string, _ io.Writer) int32 {
		mu.Lock()
		hooks = append(hooks, strings.Join(cmd, " "))
		mu.Unlock()
		return 0
	}})
	p := simplePod("graceful", corev1.Container{Name: "app", Image: "app:1", Lifecycle: &corev1.Lifecycle{
		PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"post", "start"}}},
		PreStop:   &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"pre", "stop"}}},
	}})
	p.Spec.TerminationGracePeriodSeconds = ptr(int64(30))
	created := e.createPod(p)
	e.waitStatus("default", "graceful", "Running")
	if err := store.Delete[*corev1.Pod](context.Background(), e.s, "default", "graceful", metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(5))}); err != nil {
		t.Fatal(err)
	}
	e.waitGone("default", "graceful")
	// The containers were stopped before the pod left the API.
	ctrs, _ := e.rt.ListContainers(context.Background(), runtime.ContainerFilter{State: runtime.ContainerRunning})
	if len(ctrs) != 0 {
		t.Errorf("%d containers still running after the pod left the API", len(ctrs))
	}
	mu.Lock()
	if diff := cmp.Diff([]string{"post start", "pre stop"}, hooks); diff != "" {
		t.Errorf("hooks (-want +got):\n%s", diff)
	}
	mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := 0
		sbs, _ := e.rt.ListPodSandboxes(context.Background())
		for _, sb := range sbs {
			if sb.Config.UID == string(created.UID) {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("sandbox left behind")
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.waitEvent("graceful", "Killing")
}

func TestActiveDeadlineSeconds(t *testing.T) {
	e := newEnv(t, envOpts{})
	p := simplePod("deadline")
	p.Spec.ActiveDeadlineSeconds = ptr(int64(1))
	e.createPod(p)
	got := e.waitPod("default", "deadline", "DeadlineExceeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if got.Status.Reason != "DeadlineExceeded" || !strings.Contains(got.Status.Message, "deadline") {
		t.Errorf("reason %q message %q", got.Status.Reason, got.Status.Message)
	}
	if got.Status.ContainerStatuses[0].State.Terminated == nil {
		t.Errorf("container not terminated: %+v", got.Status.ContainerStatuses[0].State)
	}
}

func TestUnsupportedFieldsAreReported(t *testing.T) {
	e := newEnv(t, envOpts{})
	p := simplePod("claims")
	p.Spec.ResourceClaims = []corev1.PodResourceClaim{{Name: "gpu", ResourceClaimName: ptr("gpu-claim")}}
	e.createPod(p)
	msgs := e.waitEvent("claims", "UnsupportedFields")
	if !strings.Contains(msgs[0], "resourceClaims") {
		t.Errorf("event = %q", msgs[0])
	}
}

func TestImageUpdateReplacesContainer(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.createPod(simplePod("upd"))
	before := e.waitStatus("default", "upd", "Running")
	p, _ := store.Get[*corev1.Pod](e.ctx, e.s, "default", "upd")
	p.Spec.Containers[0].Image = "busybox:1"
	if _, err := store.Update(e.ctx, e.s, p); err != nil {
		t.Fatal(err)
	}
	got := e.waitPod("default", "upd", "the new image running", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses[0]
		return cs.Image == "busybox:1" && cs.State.Running != nil && cs.ContainerID != before.Status.ContainerStatuses[0].ContainerID
	})
	if cs := got.Status.ContainerStatuses[0]; cs.RestartCount != 1 || cs.LastTerminationState.Terminated == nil {
		t.Errorf("status %+v", cs)
	}
	if c := e.rec.last("app"); c.Image != "busybox:1" {
		t.Errorf("last container image %q", c.Image)
	}
}
