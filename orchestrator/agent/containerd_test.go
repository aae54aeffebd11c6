package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/clock"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/containerd"
	"github.com/tugboatdev/tugboat/runtime/containerd/containerdtest"
	"github.com/tugboatdev/tugboat/runtime/images"
	"github.com/tugboatdev/tugboat/store"
)

const busyboxRef = containerdtest.BusyboxRef

// newContainerdEnv runs an agent over a private containerd (its own data
// directory and namespace, see containerdtest.New) with busybox imported;
// everything is destroyed at the end of the test.
func newContainerdEnv(t testing.TB) *testEnv {
	return newContainerdEnvWith(t, 500*time.Millisecond, time.Second)
}

// newContainerdEnvWith sets the agent's resync and status intervals.
func newContainerdEnvWith(t testing.TB, resync, status time.Duration) *testEnv {
	t.Helper()
	containerdtest.Need(t)
	dir := containerdtest.TempDir(t)
	// Volumes mounted in pod directories go once the runtime is destroyed
	// (cleanups run last registered first).
	t.Cleanup(func() {
		p := filepath.Join(dir, "agent", "pods")
		entries, _ := os.ReadDir(p)
		for _, en := range entries {
			_ = cleanupPodDir(filepath.Join(p, en.Name()))
		}
	})
	rt := containerdtest.New(t, containerd.Options{DataDir: filepath.Join(dir, "rt"), Namespace: "tbagent-" + randHex(4), NodeIP: "127.0.0.1", Logger: quietLog()})
	ctx, cancel := context.WithCancel(context.Background())
	s, err := store.Open(ctx, store.Config{Logger: quietLog()})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	e := &testEnv{t: t, ctx: ctx, s: s, rec: &recorded{}, cancel: cancel}
	e.cfg = Config{NodeName: testNode, Store: s, Runtime: rt, RootDir: filepath.Join(dir, "agent"), NodeIP: "127.0.0.1",
		Log: quietLog(), ResyncInterval: resync, StatusInterval: status, TokenRequester: &testIssuer{clk: clock.RealClock{}}}
	// The agent stops before containerdtest destroys the runtime.
	t.Cleanup(func() {
		e.stop()
		s.Close()
	})
	e.start()
	return e
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func bb(name string, cmd ...string) corev1.Container {
	return corev1.Container{Name: name, Image: busyboxRef, ImagePullPolicy: corev1.PullNever, Command: cmd}
}

func (e *testEnv) execIn(pod, container string, cmd ...string) (string, int) {
	e.t.Helper()
	var out bytes.Buffer
	code, err := e.agent.Exec(e.ctx, "default", pod, container, runtime.ExecOptions{Cmd: cmd, Stdout: &out, Stderr: &out})
	if err != nil {
		e.t.Fatalf("exec %v: %v", cmd, err)
	}
	return out.String(), code
}

// TestContainerd runs the main lifecycle paths on real containers.
func TestContainerd(t *testing.T) {
	e := newContainerdEnv(t)
	mustCreate(t, e, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cfg"}, Data: map[string]string{"greeting": "hello", "file.txt": "v1"}})

	t.Run("InitEnvAndVolumes", func(t *testing.T) {
		p := simplePod("life", bb("app", "sh", "-c", "echo $(GREETING) from $(POD_NAME); exec sleep 3600"))
		p.Spec.InitContainers = []corev1.Container{bb("init", "sh", "-c", "echo init-done > /work/marker")}
		p.Spec.InitContainers[0].VolumeMounts = []corev1.VolumeMount{{Name: "work", MountPath: "/work"}}
		p.Spec.Containers[0].Env = []corev1.EnvVar{
			{Name: "GREETING", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "greeting"}}},
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "work", MountPath: "/work"}, {Name: "cfg", MountPath: "/etc/cfg"}, {Name: "mem", MountPath: "/mem"}}
		p.Spec.Volumes = []corev1.Volume{
			{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
			{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: ptr(resource.MustParse("4Mi"))}}},
		}
		e.createPod(p)
		e.waitPod("default", "life", "Running and Ready", func(p *corev1.Pod) bool { return ready(p) && PodStatusString(p) == "Running" })
		if out, _ := e.execIn("life", "app", "cat", "/work/marker"); out != "init-done\n" {
			t.Errorf("marker = %q", out)
		}
		if out, _ := e.execIn("life", "app", "sh", "-c", "echo $GREETING"); out != "hello\n" {
			t.Errorf("GREETING = %q", out)
		}
		if out, _ := e.execIn("life", "app", "cat", "/etc/cfg/file.txt"); out != "v1" {
			t.Errorf("file.txt = %q", out)
		}
		if out, _ := e.execIn("life", "app", "sh", "-c", "grep ' /mem ' /proc/mounts"); !strings.Contains(out, "tmpfs") || !strings.Contains(out, "size=4096k") {
			t.Errorf("/mem mount: %q", out)
		}
		var logs bytes.Buffer
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) && logs.String() != "hello from life\n" {
			logs.Reset()
			_ = e.agent.Logs(e.ctx, "default", "life", "app", nil, &logs)
			time.Sleep(20 * time.Millisecond)
		}
		if logs.String() != "hello from life\n" {
			t.Errorf("logs = %q", logs.String())
		}
		cm, _ := store.Get[*corev1.ConfigMap](e.ctx, e.s, "default", "cfg")
		cm.Data["file.txt"] = "v2"
		if _, err := store.Update(e.ctx, e.s, cm); err != nil {
			t.Fatal(err)
		}
		deadline = time.Now().Add(10 * time.Second)
		for {
			out, _ := e.execIn("life", "app", "cat", "/etc/cfg/file.txt")
			if out == "v2" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("configMap update not seen in the container: %q", out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("SidecarTokenAndFSGroup", func(t *testing.T) {
		always := corev1.ContainerRestartPolicyAlways
		p := simplePod("sidejob", bb("job", "sh", "-c", "cat /tokens/token > /data/job-saw-token; sleep 1"))
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr(int64(1000)), FSGroup: ptr(int64(2000))}
		side := bb("side", "sh", "-c", "touch /data/side-up; exec sleep 3600")
		side.RestartPolicy = &always
		side.StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-f", "/data/side-up"}}},
			PeriodSeconds: 1, FailureThreshold: 30}
		check := bb("check", "sh", "-c", "test -f /data/side-up && stat -c '%g %a' /data > /data/owner && stat -L -c '%g %a' /cfg/file.txt >> /data/owner && "+
			"touch /data/new && stat -c '%u %g' /data/new >> /data/owner && id -G > /data/groups")
		mounts := []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "cfg", MountPath: "/cfg"}, {Name: "tokens", MountPath: "/tokens"}}
		side.VolumeMounts, check.VolumeMounts, p.Spec.Containers[0].VolumeMounts = mounts, mounts, mounts
		p.Spec.InitContainers = []corev1.Container{side, check}
		p.Spec.Volumes = []corev1.Volume{
			{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
			{Name: "tokens", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "test", ExpirationSeconds: ptr(int64(600)), Path: "token"}}}}}},
		}
		e.createPod(p)
		running := e.waitPod("default", "sidejob", "Running", func(p *corev1.Pod) bool { return PodStatusString(p) == "Running" })
		if cs := initStatus(running, "side"); cs == nil || cs.State.Running == nil {
			t.Errorf("sidecar while the job runs: %+v", cs)
		}
		// The volumes belong to the fsGroup (a new file inherits it through
		// the setgid directory) and the process has it as a supplemental
		// group.
		if out, _ := e.execIn("sidejob", "side", "cat", "/data/owner"); out != "2000 2777\n2000 644\n1000 2000\n" {
			t.Errorf("volume group and modes seen in the container: %q", out)
		}
		if out, _ := e.execIn("sidejob", "side", "cat", "/data/groups"); !slices.Contains(strings.Fields(out), "2000") {
			t.Errorf("groups of the container's process: %q, want 2000 among them", out)
		}
		done := e.waitPod("default", "sidejob", "Succeeded with the sidecar stopped", func(p *corev1.Pod) bool {
			cs := initStatus(p, "side")
			return p.Status.Phase == corev1.PodSucceeded && cs != nil && cs.State.Terminated != nil
		})
		if s := PodStatusString(done); s != "Completed" {
			t.Errorf("status %s", s)
		}
		data := filepath.Join(e.agent.podDir(done.UID), "volumes", "empty-dir", "data")
		if b, err := os.ReadFile(filepath.Join(data, "job-saw-token")); err != nil || !strings.HasPrefix(string(b), "token-") {
			t.Errorf("token seen by the job: %q, %v", b, err)
		}
	})

	t.Run("RestartAndPreviousLogs", func(t *testing.T) {
		p := simplePod("crash", bb("app", "sh", "-c", "echo attempt; exit 3"))
		p.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		e.createPod(p)
		got := e.waitPod("default", "crash", "a restart", func(p *corev1.Pod) bool {
			return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1 && p.Status.ContainerStatuses[0].LastTerminationState.Terminated != nil
		})
		if lt := got.Status.ContainerStatuses[0].LastTerminationState.Terminated; lt.ExitCode != 3 || lt.Reason != "Error" {
			t.Errorf("lastState = %+v", lt)
		}
		var prev bytes.Buffer
		if err := e.agent.Logs(e.ctx, "default", "crash", "", &corev1.PodLogOptions{Previous: true}, &prev); err != nil || prev.String() != "attempt\n" {
			t.Errorf("logs --previous = %q, %v", prev.String(), err)
		}
	})

	t.Run("LivenessFailureRestarts", func(t *testing.T) {
		p := simplePod("unhealthy", bb("app", "sleep", "3600"))
		p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-f", "/tmp/healthy"}}},
			PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1}
		e.createPod(p)
		got := e.waitPod("default", "unhealthy", "a liveness restart", func(p *corev1.Pod) bool {
			return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1
		})
		// sleep as PID 1 ignores SIGTERM: it is killed after the grace period.
		if lt := got.Status.ContainerStatuses[0].LastTerminationState.Terminated; lt == nil || lt.ExitCode != 137 {
			t.Errorf("lastState = %+v", got.Status.ContainerStatuses[0].LastTerminationState)
		}
		if ev := e.events("unhealthy", "Killing"); len(ev) == 0 || !strings.Contains(ev[0], "failed liveness probe") {
			t.Errorf("Killing events %q", ev)
		}
	})

	t.Run("GraceThenKill", func(t *testing.T) {
		hostDir := t.TempDir()
		p := simplePod("grace", bb("app", "sleep", "3600"))
		p.Spec.TerminationGracePeriodSeconds = ptr(int64(3))
		p.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo bye > /host/prestop"}}}}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "host", MountPath: "/host"}}
		p.Spec.Volumes = []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir}}}}
		e.createPod(p)
		e.waitStatus("default", "grace", "Running")
		start := time.Now()
		if err := store.Delete[*corev1.Pod](e.ctx, e.s, "default", "grace", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitStatus("default", "grace", "Terminating")
		e.waitGone("default", "grace")
		if took := time.Since(start); took < 2500*time.Millisecond {
			t.Errorf("pod left after %s, before its 3 s grace period", took)
		}
		if b, err := os.ReadFile(filepath.Join(hostDir, "prestop")); err != nil || string(b) != "bye\n" {
			t.Errorf("preStop hook output %q, %v", b, err)
		}
	})

	t.Run("TerminationMessage", func(t *testing.T) {
		p := simplePod("msg", bb("app", "sh", "-c", "echo oops > /dev/termination-log; exit 1"))
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		e.createPod(p)
		got := e.waitPod("default", "msg", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		if term := got.Status.ContainerStatuses[0].State.Terminated; term == nil || term.Message != "oops\n" || PodStatusString(got) != "Error" {
			t.Errorf("terminated = %+v, status %s", term, PodStatusString(got))
		}
	})

	t.Run("OOMKilled", func(t *testing.T) {
		p := simplePod("oom", bb("app", "sh", "-c", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived"))
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"memory": resource.MustParse("16Mi")}
		e.createPod(p)
		got := e.waitStatus("default", "oom", "OOMKilled")
		if term := got.Status.ContainerStatuses[0].State.Terminated; got.Status.Phase != corev1.PodFailed || term.ExitCode != 137 {
			t.Errorf("phase %s, terminated %+v", got.Status.Phase, term)
		}
	})

	t.Run("HTTPAndTCPProbes", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		script := fmt.Sprintf("mkdir -p /tmp/www && echo ok > /tmp/www/index.html && exec httpd -f -p 127.0.0.1:%d -h /tmp/www", port)
		p := simplePod("web", bb("httpd", "sh", "-c", script))
		p.Spec.HostNetwork = true // probes reach the pod at the node's 127.0.0.1
		p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/index.html", Port: intstr.FromInt(port)}},
			PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3}
		p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(port)}},
			InitialDelaySeconds: 1, PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3}
		e.createPod(p)
		e.waitPod("default", "web", "Ready", ready)
		time.Sleep(2 * time.Second)
		got, _ := store.Get[*corev1.Pod](e.ctx, e.s, "default", "web")
		if cs := got.Status.ContainerStatuses[0]; cs.RestartCount != 0 || !cs.Ready {
			t.Errorf("status %+v", cs)
		}
		if err := store.Delete[*corev1.Pod](e.ctx, e.s, "default", "web", metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(2))}); err != nil {
			t.Fatal(err)
		}
		e.waitGone("default", "web")
	})

	t.Run("AgentRestartReadopts", func(t *testing.T) {
		before, _ := store.Get[*corev1.Pod](e.ctx, e.s, "default", "life")
		e.stop()
		e.start()
		cur, _ := store.Get[*corev1.Pod](e.ctx, e.s, "default", "life")
		cur.Labels["touched"] = "yes"
		if _, err := store.Update(e.ctx, e.s, cur); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		after := e.waitPod("default", "life", "Ready", ready)
		if a, b := after.Status.ContainerStatuses[0], before.Status.ContainerStatuses[0]; a.ContainerID != b.ContainerID || a.RestartCount != b.RestartCount {
			t.Errorf("container %s/%d before the restart, %s/%d after", b.ContainerID, b.RestartCount, a.ContainerID, a.RestartCount)
		}
		if out, _ := e.execIn("life", "app", "cat", "/work/marker"); out != "init-done\n" {
			t.Errorf("marker after agent restart = %q", out)
		}
		var logs bytes.Buffer
		if err := e.agent.Logs(e.ctx, "default", "life", "app", nil, &logs); err != nil || logs.String() != "hello from life\n" {
			t.Errorf("logs after agent restart = %q, %v", logs.String(), err)
		}
	})

	t.Run("ImagePullWithSecret", func(t *testing.T) {
		reg, err := images.StartRegistry("puller", "s3cret")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { reg.Close() })
		img, err := images.Busybox()
		if err != nil {
			t.Fatal(err)
		}
		ref := reg.Host + "/private/busybox:1"
		if err := reg.Push(e.ctx, ref, img, remote.WithAuth(&authn.Basic{Username: "puller", Password: "s3cret"})); err != nil {
			t.Fatal(err)
		}
		c := corev1.Container{Name: "app", Image: ref, ImagePullPolicy: corev1.PullAlways, Command: []string{"sleep", "3600"}}
		e.createPod(simplePod("nocreds", c))
		e.waitPod("default", "nocreds", "a pull failure", func(p *corev1.Pod) bool {
			s := PodStatusString(p)
			return s == "ErrImagePull" || s == "ImagePullBackOff"
		})
		cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.Host, base64.StdEncoding.EncodeToString([]byte("puller:s3cret")))
		mustCreate(t, e, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(cfg)}})
		p := simplePod("withcreds", c)
		p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
		e.createPod(p)
		e.waitPod("default", "withcreds", "Running", func(p *corev1.Pod) bool { return PodStatusString(p) == "Running" && ready(p) })
		for _, name := range []string{"nocreds", "withcreds"} {
			if err := store.Delete[*corev1.Pod](e.ctx, e.s, "default", name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}); err != nil {
				t.Fatal(err)
			}
			e.waitGone("default", name)
		}
	})

	// Last: it evicts every running pod of the node.
	t.Run("DiskPressureEviction", func(t *testing.T) {
		victim := simplePod("victim", bb("app", "sh", "-c", "head -c 1048576 /dev/zero > /scratch/blob; exec sleep 3600"))
		victim.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}
		victim.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		created := e.createPod(victim)
		e.waitStatus("default", "victim", "Running")
		// The 1 MiB the container wrote is measured on the node.
		deadline := time.Now().Add(20 * time.Second)
		for {
			st, err := e.agent.podStats.PodStats(e.ctx, created)
			if err == nil && st.EphemeralStorageBytes >= 1<<20 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pod's ephemeral storage measured at %d bytes (%v), want at least 1 MiB", st.EphemeralStorageBytes, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		e.stop()
		e.cfg.EvictionHard = map[string]string{"nodefs.available": "100%"} // always crossed
		e.start()
		got := e.waitPod("default", "victim", "Evicted", func(p *corev1.Pod) bool { return p.Status.Reason == "Evicted" })
		if got.Status.Phase != corev1.PodFailed || !strings.Contains(got.Status.Message, "ephemeral-storage") {
			t.Errorf("evicted pod %s %q", got.Status.Phase, got.Status.Message)
		}
		id := strings.TrimPrefix(got.Status.ContainerStatuses[0].ContainerID, "containerd://")
		deadline = time.Now().Add(20 * time.Second)
		for {
			st, err := e.agent.rt.ContainerStatus(e.ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if st.State == runtime.ContainerExited {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("evicted pod's container still %s", st.State)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if c, tn := nodeState(t, e, corev1.NodeDiskPressure, corev1.TaintNodeDiskPressure); !c || !tn {
			t.Errorf("DiskPressure %v, taint %v", c, tn)
		}
	})
}
