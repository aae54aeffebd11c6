package agent

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/simulated"
)

func execProbe(period int32, cmd ...string) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}},
		PeriodSeconds: period, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1}
}

func TestLivenessFailureRestarts(t *testing.T) {
	e := newEnv(t, envOpts{exec: func(_ string, cmd []string, out io.Writer) int32 {
		io.WriteString(out, "unhealthy")
		return 1
	}})
	p := simplePod("live", corev1.Container{Name: "app", Image: "app:1", LivenessProbe: execProbe(1, "check")})
	e.createPod(p)
	got := e.waitPod("default", "live", "a restart", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1
	})
	if lt := got.Status.ContainerStatuses[0].LastTerminationState.Terminated; lt == nil || lt.ExitCode != 143 {
		t.Errorf("lastState = %+v", got.Status.ContainerStatuses[0].LastTerminationState)
	}
	msgs := e.waitEvent("live", "Killing")
	if !strings.Contains(msgs[0], "Container app failed liveness probe, will be restarted") {
		t.Errorf("Killing = %q", msgs)
	}
	if msgs := e.waitEvent("live", "Unhealthy"); !strings.Contains(msgs[0], "Liveness probe failed: unhealthy") {
		t.Errorf("Unhealthy = %q", msgs)
	}
	// restartPolicy Never: the container stays terminated.
	p = simplePod("live-never", corev1.Container{Name: "app", Image: "app:1", LivenessProbe: execProbe(1, "check")})
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	e.createPod(p)
	got = e.waitPod("default", "live-never", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if got.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("restartCount = %d", got.Status.ContainerStatuses[0].RestartCount)
	}
}

func TestReadinessGatesReady(t *testing.T) {
	e := newEnv(t, envOpts{script: func(*runtime.PodSandboxConfig, *runtime.ContainerConfig) simulated.Behavior {
		return simulated.Behavior{ReadyAfter: 1500 * time.Millisecond}
	}})
	p := simplePod("ready", corev1.Container{Name: "app", Image: "app:1", ReadinessProbe: execProbe(1, "check")})
	e.createPod(p)
	running := e.waitStatus("default", "ready", "Running")
	notReadyFirst := !ready(running)
	e.waitPod("default", "ready", "Ready", ready)
	if !notReadyFirst {
		t.Error("pod was Ready before its readiness probe passed")
	}
}

func TestStartupProbeHoldsOthers(t *testing.T) {
	var mu sync.Mutex
	var first time.Time
	livenessBeforeStart := 0
	started := false
	e := newEnv(t, envOpts{exec: func(_ string, cmd []string, _ io.Writer) int32 {
		mu.Lock()
		defer mu.Unlock()
		switch cmd[0] {
		case "startup":
			if first.IsZero() {
				first = time.Now()
			}
			if time.Since(first) > 1500*time.Millisecond {
				started = true
				return 0
			}
			return 1
		case "live":
			if !started {
				livenessBeforeStart++
			}
		}
		return 0
	}})
	sp := execProbe(1, "startup")
	sp.FailureThreshold = 10
	p := simplePod("startup", corev1.Container{Name: "app", Image: "app:1", StartupProbe: sp, LivenessProbe: execProbe(1, "live"), ReadinessProbe: execProbe(1, "live")})
	e.createPod(p)
	got := e.waitStatus("default", "startup", "Running")
	if cs := got.Status.ContainerStatuses[0]; *cs.Started || cs.Ready {
		t.Errorf("started=%v ready=%v before the startup probe passed", *cs.Started, cs.Ready)
	}
	got = e.waitPod("default", "startup", "Ready", ready)
	if !*got.Status.ContainerStatuses[0].Started {
		t.Error("not started")
	}
	mu.Lock()
	defer mu.Unlock()
	if livenessBeforeStart != 0 {
		t.Errorf("liveness/readiness ran %d times before the startup probe passed", livenessBeforeStart)
	}
}

// TestNetworkProbes probes servers on the loopback address: tcpSocket,
// httpGet (2xx and 3xx succeed, 5xx fails) and grpc health.
func TestNetworkProbes(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Probe") != "yes" {
			http.Error(w, "header missing", http.StatusBadRequest)
			return
		}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/redir", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://192.0.2.1/", http.StatusFound)
	})
	mux.HandleFunc("/bad", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "bad", http.StatusInternalServerError) })
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	_, hport, _ := net.SplitHostPort(hs.Listener.Addr().String())

	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hsrv := health.NewServer()
	hsrv.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hsrv)
	go gs.Serve(gl)
	t.Cleanup(gs.Stop)
	gport := gl.Addr().(*net.TCPAddr).Port

	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	port := func(s string) intstr.IntOrString { return intstr.Parse(s) }
	httpProbe := func(path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Host: "127.0.0.1", Path: path, Port: port(hport),
			HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "yes"}}}}, PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1}
	}
	tcpProbe := func(p int) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Host: "127.0.0.1", Port: intstr.FromInt(p)}},
			PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1}
	}
	grpcProbe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(gport)}}, PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1}

	e := newEnv(t, envOpts{})
	good := simplePod("good",
		corev1.Container{Name: "tcp", Image: "app:1", ReadinessProbe: tcpProbe(gport)},
		corev1.Container{Name: "http", Image: "app:1", ReadinessProbe: httpProbe("/ok")},
		corev1.Container{Name: "redirect", Image: "app:1", ReadinessProbe: httpProbe("/redir")},
		corev1.Container{Name: "grpc", Image: "app:1", ReadinessProbe: grpcProbe},
	)
	good.Spec.HostNetwork = true // the grpc probe goes to the pod IP: the node's 127.0.0.1
	e.createPod(good)
	e.waitPod("default", "good", "Ready", ready)

	bad := simplePod("bad",
		corev1.Container{Name: "http", Image: "app:1", ReadinessProbe: httpProbe("/bad")},
		corev1.Container{Name: "tcp", Image: "app:1", ReadinessProbe: tcpProbe(closedPort)},
	)
	e.createPod(bad)
	deadline := time.Now().Add(10 * time.Second)
	var sawHTTP, sawTCP bool
	for time.Now().Before(deadline) && !(sawHTTP && sawTCP) {
		for _, m := range e.events("bad", "Unhealthy") {
			sawHTTP = sawHTTP || strings.Contains(m, "Readiness probe failed: HTTP probe failed with statuscode: 500")
			sawTCP = sawTCP || strings.Contains(m, "Readiness probe failed: dial tcp")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !sawHTTP || !sawTCP {
		t.Errorf("Unhealthy events: %q", e.events("bad", "Unhealthy"))
	}
	p := e.waitStatus("default", "bad", "Running")
	if ready(p) {
		t.Error("pod with failing readiness probes is Ready")
	}
}
