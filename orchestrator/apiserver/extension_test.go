package apiserver

import (
	"fmt"
	"net/http"
	"regexp"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// fakeAgent stands in for the node agent behind the two extension points.
type fakeAgent struct{}

func (fakeAgent) ServePod(w http.ResponseWriter, r *http.Request, pod *corev1.Pod, sub string) {
	if sub != "log" {
		http.Error(w, "not supported by the fake", http.StatusNotImplemented)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "log of %s/%s container=%s node=%s\n", pod.Namespace, pod.Name, r.URL.Query().Get("container"), pod.Spec.NodeName)
}

func (fakeAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	now := time.Now().UTC().Format(time.RFC3339)
	switch r.URL.Path {
	case "/apis/metrics.k8s.io/v1beta1/nodes":
		fmt.Fprintf(w, `{"kind":"NodeMetricsList","apiVersion":"metrics.k8s.io/v1beta1","metadata":{},"items":[{"metadata":{"name":"node-1"},"timestamp":%q,"window":"10s","usage":{"cpu":"250m","memory":"512Mi"}}]}`, now)
	default:
		http.NotFound(w, r)
	}
}

func TestExtensionPoints(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.Streamer = fakeAgent{}; c.Metrics = fakeAgent{} })
	ts.mustKubectl(t, "", "run", "p", "--image=busybox")
	out := ts.mustKubectl(t, "", "logs", "p", "-c", "p")
	if want := "log of default/p container=p node=\n"; out != want {
		t.Errorf("kubectl logs = %q, want %q", out, want)
	}
	node := `{"apiVersion":"v1","kind":"Node","metadata":{"name":"node-1"},"status":{"capacity":{"cpu":"2","memory":"4Gi"},"allocatable":{"cpu":"2","memory":"4Gi"}}}`
	ts.mustKubectl(t, node, "create", "-f", "-")
	contains(t, ts.mustKubectl(t, "", "api-resources", "--api-group=metrics.k8s.io"), "NodeMetrics", "PodMetrics")
	out = ts.mustKubectl(t, "", "top", "node")
	if !regexp.MustCompile(`node-1\s+250m\s+12%\s+512Mi\s+12%`).MatchString(out) {
		t.Errorf("kubectl top node:\n%s", out)
	}
}

func TestPodStreamWithoutAgent(t *testing.T) {
	ts := startServer(t)
	ts.mustKubectl(t, "", "run", "p", "--image=busybox")
	out, err := ts.kubectl(t, "", "logs", "p")
	if err == nil || !regexp.MustCompile(`ServiceUnavailable|no node agent streamer`).MatchString(out) {
		t.Errorf("logs without an agent: %v %s", err, out)
	}
}
