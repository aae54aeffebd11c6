package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/store"
)

func ptr[T any](v T) *T { return &v }

func TestLogOptions(t *testing.T) {
	since := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	tests := []struct {
		query   string
		want    *corev1.PodLogOptions
		wantErr bool
	}{
		{"", &corev1.PodLogOptions{}, false},
		{"container=web&follow=true&previous=1&timestamps=true", &corev1.PodLogOptions{Container: "web", Follow: true, Previous: true, Timestamps: true}, false},
		{"tailLines=10&limitBytes=500&sinceSeconds=60", &corev1.PodLogOptions{TailLines: ptr(int64(10)), LimitBytes: ptr(int64(500)), SinceSeconds: ptr(int64(60))}, false},
		{"sinceTime=2026-01-02T03:04:05Z", &corev1.PodLogOptions{SinceTime: &since}, false},
		{"tailLines=x", nil, true},
		{"sinceTime=yesterday", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/v1/namespaces/default/pods/p/log?"+tt.query, nil)
			got, err := logOptions(r)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzLogOptions(f *testing.F) {
	for _, s := range []string{"", "follow=true&tailLines=3", "sinceTime=2026-01-02T03:04:05Z", "limitBytes=-1", "tailLines=%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		r := &http.Request{URL: &url.URL{Path: "/log", RawQuery: q}}
		o, err := logOptions(r)
		if err == nil && o == nil {
			t.Fatal("nil options without error")
		}
	})
}

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name    string
		in      Config
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "no data dir", in: Config{}, wantErr: "DataDir is required"},
		{name: "many real nodes", in: Config{DataDir: "/x", Nodes: 3}, wantErr: "one real node"},
		{name: "long bridge", in: Config{DataDir: "/x", Bridge: "abcdefghijklmnop"}, wantErr: "longer than 15"},
		{name: "defaults", in: Config{DataDir: "/x", NodeName: "n"}, check: func(t *testing.T, c Config) {
			got := []string{c.ServiceCIDR.String(), c.PodCIDR.String(), c.APIAddress, c.RegistryAddress, c.ProxyCgroup, c.Bridge, c.ContainerdNamespace, c.DNSAddress().String(), fmt.Sprint(c.Nodes)}
			want := []string{"10.96.0.0/12", "10.244.0.0/24", "127.0.0.1:6443", "127.0.0.1:5000", "/sys/fs/cgroup/unified/tugboat-tugboat", "tugboat0", "tugboat", "10.96.0.10", "1"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("defaults (-want +got):\n%s", diff)
			}
		}},
		{name: "simulated", in: Config{DataDir: "/x", Simulated: true, Nodes: 5, ServiceCIDR: netip.MustParsePrefix("10.100.0.7/16")}, check: func(t *testing.T, c Config) {
			if c.Nodes != 5 || c.DNSAddress().String() != "10.100.0.10" {
				t.Errorf("nodes %d, dns %s", c.Nodes, c.DNSAddress())
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.withDefaults()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, got)
		})
	}
}

func TestNthSubnet(t *testing.T) {
	tests := []struct {
		p    string
		i    int
		want string
	}{
		{"10.244.0.0/24", 0, "10.244.0.0/24"},
		{"10.244.0.0/24", 1, "10.244.1.0/24"},
		{"10.244.0.0/24", 256, "10.245.0.0/24"},
		{"10.244.0.0/26", 5, "10.244.1.64/26"},
	}
	for _, tt := range tests {
		if got := nthSubnet(netip.MustParsePrefix(tt.p), tt.i).String(); got != tt.want {
			t.Errorf("nthSubnet(%s, %d) = %s, want %s", tt.p, tt.i, got, tt.want)
		}
	}
}

// recordingStreamer is a test double of the agent's PodStreamer that
// records calls; it stands in for a node in the HTTP adapter's tests.
type recordingStreamer struct {
	logs    string
	logErr  error
	gotNS   string
	gotPod  string
	gotCont string
	gotOpts *corev1.PodLogOptions
}

func (r *recordingStreamer) Logs(_ context.Context, ns, pod, container string, opts *corev1.PodLogOptions, out io.Writer) error {
	r.gotNS, r.gotPod, r.gotCont, r.gotOpts = ns, pod, container, opts
	if r.logErr != nil {
		return r.logErr
	}
	_, err := io.WriteString(out, r.logs)
	return err
}
func (r *recordingStreamer) Exec(context.Context, string, string, string, runtime.ExecOptions) (int, error) {
	return 0, errors.New("not used")
}
func (r *recordingStreamer) Attach(context.Context, string, string, string, runtime.AttachOptions) error {
	return errors.New("not used")
}
func (r *recordingStreamer) PortForward(context.Context, string, string, int32, io.ReadWriter) error {
	return errors.New("not used")
}

func TestNodeStreamersHTTP(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "p1"}, Spec: corev1.PodSpec{NodeName: "n1"}}
	unscheduled := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "p2"}}
	elsewhere := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "p3"}, Spec: corev1.PodSpec{NodeName: "n9"}}
	tests := []struct {
		name     string
		pod      *corev1.Pod
		sub      string
		query    string
		header   http.Header
		logErr   error
		wantCode int
		wantBody string
	}{
		{name: "log", pod: pod, sub: "log", query: "container=c&tailLines=2", wantCode: 200, wantBody: "line1\nline2\n"},
		{name: "log not found", pod: pod, sub: "log", logErr: fmt.Errorf("gone: %w", runtime.ErrNotFound), wantCode: 404, wantBody: `"reason":"NotFound"`},
		{name: "log invalid", pod: pod, sub: "log", logErr: fmt.Errorf("choose: %w", runtime.ErrInvalid), wantCode: 400, wantBody: "choose"},
		{name: "bad tailLines", pod: pod, sub: "log", query: "tailLines=x", wantCode: 400, wantBody: "tailLines"},
		{name: "unscheduled", pod: unscheduled, sub: "log", wantCode: 400, wantBody: "not scheduled"},
		{name: "other node", pod: elsewhere, sub: "exec", wantCode: 503, wantBody: "n9"},
		{name: "websocket port-forward without ports", pod: pod, sub: "portforward", header: http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}}, wantCode: 400, wantBody: `\"port\" is required`},
		{name: "websocket port-forward bad ports", pod: pod, sub: "portforward", query: "ports=80,x", header: http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}}, wantCode: 400, wantBody: `unable to parse \"80,x\" as a port`},
		{name: "exec without streams", pod: pod, sub: "exec", query: "command=ls", wantCode: 400, wantBody: "at least 1"},
		{name: "exec without command", pod: pod, sub: "exec", query: "stdout=true", wantCode: 400, wantBody: "command"},
		{name: "unknown", pod: pod, sub: "proxy", wantCode: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := &recordingStreamer{logs: "line1\nline2\n", logErr: tt.logErr}
			ns := NewNodeStreamers()
			ns.Add("n1", rs)
			r := httptest.NewRequest("GET", "/api/v1/namespaces/ns1/pods/"+tt.pod.Name+"/"+tt.sub+"?"+tt.query, nil)
			for k, v := range tt.header {
				r.Header[k] = v
			}
			w := httptest.NewRecorder()
			ns.ServePod(w, r, tt.pod, tt.sub)
			if w.Code != tt.wantCode || !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Fatalf("got %d %q, want %d containing %q", w.Code, w.Body.String(), tt.wantCode, tt.wantBody)
			}
			if tt.name == "log" {
				want := []string{"ns1", "p1", "c", "2"}
				got := []string{rs.gotNS, rs.gotPod, rs.gotCont, fmt.Sprint(*rs.gotOpts.TailLines)}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("agent call (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestSimulatedRestart runs a simulated cluster, drives it with kubectl,
// stops it and checks that a restart over the same DataDir serves the same
// objects.
func TestSimulatedRestart(t *testing.T) {
	testenv.NeedCommand(t, kubectlPath)
	dir := t.TempDir()
	cfg := Config{DataDir: dir, Simulated: true, Nodes: 3, APIAddress: "127.0.0.1:0", RegistryAddress: "off",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	tc := &testCluster{t: t, cfg: cfg}
	t.Cleanup(tc.purgeAll)
	tc.start(t.Context())
	out := tc.mustKubectl("", "get", "nodes")
	for i := range 3 {
		if !strings.Contains(out, fmt.Sprintf("simulated-%d", i)) {
			t.Fatalf("node simulated-%d missing:\n%s", i, out)
		}
	}
	tc.mustKubectl("", "create", "deployment", "web", "--image=127.0.0.1:5000/demo/web:1.0", "--replicas=3")
	tc.mustKubectl("", "label", "deployment", "web", "app=nginx", "--overwrite")
	// Pods of `kubectl create deployment` carry app=web.
	waitFor(t, 60*time.Second, func() (bool, string) {
		pods, _, err := store.ListOf[*corev1.Pod](t.Context(), tc.c.Store(), "default", metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, p := range pods {
			if p.Status.Phase == corev1.PodRunning && p.Spec.NodeName != "" {
				n++
			}
		}
		return n == 3, fmt.Sprintf("%d of %d running", n, len(pods))
	})
	// Usage is sampled by the agents: poll until every pod has a sample.
	tc.eventually(30*time.Second, func(out string) bool { return strings.Count(out, "simulated-") == 3 }, "top", "node")
	tc.eventually(30*time.Second, func(out string) bool { return strings.Count(out, "web-") == 3 }, "top", "pod", "-l", "app=web")
	if _, err := tc.kubectl("", "get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nope"); err == nil || !strings.Contains(err.Error(), "NotFound") {
		t.Errorf("metrics of a missing pod: %v, want NotFound", err)
	}
	before := tc.mustKubectl("", "get", "pods", "-o", "jsonpath={range .items[*]}{.metadata.name} {.metadata.uid} {.spec.nodeName}{\"\\n\"}{end}")
	tc.stop()
	tc.start(t.Context())
	after := tc.mustKubectl("", "get", "pods", "-o", "jsonpath={range .items[*]}{.metadata.name} {.metadata.uid} {.spec.nodeName}{\"\\n\"}{end}")
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("pods across restart (-before +after):\n%s", diff)
	}
	if out := tc.mustKubectl("", "get", "deployment", "web", "-o", "jsonpath={.metadata.labels.app}"); out != "nginx" {
		t.Errorf("deployment label after restart = %q", out)
	}
}

func waitFor(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %s", timeout, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRunStartFailure checks that a start-up failure (the API address is
// taken) returns an error and releases everything: a second Run over the
// same DataDir starts.
func TestRunStartFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	cfg := Config{DataDir: dir, Simulated: true, APIAddress: ln.Addr().String(), RegistryAddress: "off", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := c.Run(ctx); err == nil || !strings.Contains(err.Error(), "apiserver") {
		t.Fatalf("Run with a taken API address: %v, want an apiserver error", err)
	}
	cfg.APIAddress = "127.0.0.1:0"
	tc := &testCluster{t: t, cfg: cfg}
	tc.start(ctx)
	tc.stop()
}

// eventually runs kubectl until ok accepts its output, failing the test
// after timeout with the last output or error.
func (tc *testCluster) eventually(timeout time.Duration, ok func(string) bool, args ...string) string {
	tc.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, err := tc.kubectl("", args...)
		if err == nil && ok(out) {
			tc.t.Logf("$ kubectl %s\n%s", strings.Join(args, " "), out)
			return out
		}
		if time.Now().After(deadline) {
			tc.t.Fatalf("kubectl %s: not as expected within %s: %v\n%s", strings.Join(args, " "), timeout, err, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
