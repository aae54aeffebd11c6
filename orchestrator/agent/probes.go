package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tugboatdev/tugboat/runtime"
)

type probeKind string

const (
	liveness  probeKind = "Liveness"
	readiness probeKind = "Readiness"
	startup   probeKind = "Startup"
)

// containerProbes holds the probe results of one running container.
type containerProbes struct {
	cancel context.CancelFunc

	mu      sync.Mutex
	started bool // startup probe passed (or none)
	ready   bool // readiness probe passing (or none)
}

// probeState reports whether a running container has started and is ready.
func (w *podWorker) probeState(id string, c *corev1.Container) (started, ready bool) {
	w.mu.Lock()
	cp := w.probes[id]
	w.mu.Unlock()
	if cp == nil {
		return c.StartupProbe == nil, c.StartupProbe == nil && c.ReadinessProbe == nil
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.started, cp.started && cp.ready
}

// manageProbes starts probe loops for running containers and stops those
// of containers that are gone.
func (w *podWorker) manageProbes(ctx context.Context, pod *corev1.Pod, pc podContainers) {
	live := map[string]bool{}
	probed := make([]*corev1.Container, 0, len(pod.Spec.Containers)+len(pod.Spec.InitContainers))
	for i := range pod.Spec.InitContainers {
		if isSidecar(&pod.Spec.InitContainers[i]) {
			probed = append(probed, &pod.Spec.InitContainers[i])
		}
	}
	for i := range pod.Spec.Containers {
		probed = append(probed, &pod.Spec.Containers[i])
	}
	for _, c := range probed {
		st := pc.latest(c.Name)
		if st == nil || st.State != runtime.ContainerRunning {
			continue
		}
		live[st.ID] = true
		w.mu.Lock()
		_, have := w.probes[st.ID]
		w.mu.Unlock()
		if have {
			continue
		}
		pctx, cancel := context.WithCancel(ctx)
		cp := &containerProbes{cancel: cancel, started: c.StartupProbe == nil, ready: c.ReadinessProbe == nil}
		w.mu.Lock()
		w.probes[st.ID] = cp
		w.mu.Unlock()
		for _, k := range []struct {
			kind  probeKind
			probe *corev1.Probe
		}{{startup, c.StartupProbe}, {liveness, c.LivenessProbe}, {readiness, c.ReadinessProbe}} {
			if k.probe == nil {
				continue
			}
			go w.probeLoop(pctx, pod, c.DeepCopy(), st.ID, st.StartedAt, k.kind, k.probe.DeepCopy(), cp)
		}
	}
	w.mu.Lock()
	for id, cp := range w.probes {
		if !live[id] {
			cp.cancel()
			delete(w.probes, id)
		}
	}
	w.mu.Unlock()
}

func (w *podWorker) stopProbes() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, cp := range w.probes {
		cp.cancel()
		delete(w.probes, id)
	}
}

// probeLoop runs one probe of one container until ctx ends.
func (w *podWorker) probeLoop(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, startedAt time.Time, kind probeKind, p *corev1.Probe, cp *containerProbes) {
	period := time.Duration(max(p.PeriodSeconds, 1)) * time.Second
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	success, failure := max(p.SuccessThreshold, 1), max(p.FailureThreshold, 1)
	if delay := startedAt.Add(time.Duration(p.InitialDelaySeconds) * time.Second).Sub(w.a.clk.Now()); delay > 0 {
		if !sleepCtx(ctx, w.a.clk, delay) {
			return
		}
	}
	var okRun, failRun int32
	for {
		cp.mu.Lock()
		started := cp.started
		cp.mu.Unlock()
		if kind == startup && started {
			return
		}
		if kind == startup || started {
			pctx, cancel := context.WithTimeout(ctx, timeout)
			msg, err := w.runProbe(pctx, pod, c, id, p.ProbeHandler, timeout)
			cancel()
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				okRun, failRun = okRun+1, 0
			} else {
				okRun, failRun = 0, failRun+1
				w.event(pod, corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %s", kind, msg)
			}
			changed := false
			cp.mu.Lock()
			switch kind {
			case startup:
				if okRun >= 1 && !cp.started {
					cp.started, changed = true, true
				}
			case readiness:
				if okRun >= success && !cp.ready {
					cp.ready, changed = true, true
				} else if failRun >= failure && cp.ready {
					cp.ready, changed = false, true
				}
			}
			cp.mu.Unlock()
			if changed {
				w.kickNow()
			}
			if failRun >= failure && (kind == liveness || kind == startup) {
				what := "failed liveness probe"
				if kind == startup {
					what = "failed startup probe"
				}
				w.requestKill(id, what)
				return
			}
		}
		if !sleepCtx(ctx, w.a.clk, period) {
			return
		}
	}
}

// runProbe runs one probe handler; err is nil on success.
func (w *podWorker) runProbe(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, h corev1.ProbeHandler, timeout time.Duration) (string, error) {
	switch {
	case h.Exec != nil:
		var out bytes.Buffer
		code, err := w.a.rt.Exec(ctx, id, runtime.ExecOptions{Cmd: h.Exec.Command, Stdout: &out, Stderr: &out})
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Sprintf("command %q timed out", strings.Join(h.Exec.Command, " ")), ctx.Err()
			}
			return err.Error(), err
		}
		if code != 0 {
			return strings.TrimSpace(out.String()), fmt.Errorf("exit code %d", code)
		}
		return "", nil
	case h.TCPSocket != nil:
		host := w.probeHost(h.TCPSocket.Host)
		port, err := resolvePort(h.TCPSocket.Port, c)
		if err != nil {
			return err.Error(), err
		}
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		d := net.Dialer{Timeout: timeout}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Sprintf("dial tcp %s: %v", addr, err), err
		}
		conn.Close()
		return "", nil
	case h.HTTPGet != nil:
		return w.httpProbe(ctx, c, h.HTTPGet, timeout)
	case h.GRPC != nil:
		addr := net.JoinHostPort(w.probeHost(""), strconv.Itoa(int(h.GRPC.Port)))
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err.Error(), err
		}
		defer conn.Close()
		svc := ""
		if h.GRPC.Service != nil {
			svc = *h.GRPC.Service
		}
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			return fmt.Sprintf("failed to connect service %q within %s: %v", addr, timeout, err), err
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			err := fmt.Errorf("service unhealthy (responded with %q)", resp.GetStatus())
			return err.Error(), err
		}
		return "", nil
	}
	return "", nil
}

func (w *podWorker) probeHost(host string) string {
	if host != "" {
		return host
	}
	if w.getPodIP() != "" {
		return w.getPodIP()
	}
	return w.a.nodeIP
}

// resolvePort resolves a numeric or named container port.
func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("couldn't find port %q in container %s", p.StrVal, c.Name)
}

// httpProbe GETs the probe's URL: 200-399 is success. Redirects are not
// followed (a 3xx is itself a success).
func (w *podWorker) httpProbe(ctx context.Context, c *corev1.Container, g *corev1.HTTPGetAction, timeout time.Duration) (string, error) {
	port, err := resolvePort(g.Port, c)
	if err != nil {
		return err.Error(), err
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if path == "" {
		path = "/"
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(w.probeHost(g.Host), strconv.Itoa(port))}
	full := u.String() + path
	if !strings.HasPrefix(path, "/") {
		full = u.String() + "/" + path
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, full, nil)
	if err != nil {
		return err.Error(), err
	}
	req.Header.Set("User-Agent", "kube-probe/1.32")
	req.Header.Set("Accept", "*/*")
	for _, h := range g.HTTPHeaders {
		if strings.EqualFold(h.Name, "host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	client := &http.Client{Timeout: timeout,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true, Proxy: nil}, //nolint:gosec // probes do not verify, as upstream
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Sprintf("Get %q: %v", full, err), err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 10<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return "", nil
	}
	err = fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	_ = body
	return err.Error(), err
}

// runHandler runs a lifecycle hook (exec or httpGet; sleep waits) within
// timeout.
func (w *podWorker) runHandler(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, h *corev1.LifecycleHandler, timeout time.Duration) (string, error) {
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case h.Exec != nil:
		var out bytes.Buffer
		code, err := w.a.rt.Exec(hctx, id, runtime.ExecOptions{Cmd: h.Exec.Command, Stdout: &out, Stderr: &out})
		if err == nil && code != 0 {
			err = fmt.Errorf("command '%s' exited with %d: %s", strings.Join(h.Exec.Command, " "), code, out.String())
		}
		if err != nil {
			return fmt.Sprintf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %v", h.Exec.Command, c.Name, pod.Name+"_"+pod.Namespace+"("+string(pod.UID)+")", err), err
		}
		return "", nil
	case h.HTTPGet != nil:
		msg, err := w.httpProbe(hctx, c, h.HTTPGet, timeout)
		if err != nil {
			return fmt.Sprintf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %s", h.HTTPGet.Path, c.Name, pod.Name, msg), err
		}
		return "", nil
	case h.Sleep != nil:
		sleepCtx(hctx, w.a.clk, time.Duration(h.Sleep.Seconds)*time.Second)
		return "", nil
	case h.TCPSocket != nil:
		return "", nil // deprecated and a no-op upstream
	}
	return "", nil
}
