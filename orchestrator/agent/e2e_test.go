package agent

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/orchestrator/apiserver"
)

// The agent plugs into both API server extension points.
var (
	_ apiserver.PodStreamer     = (*Nodes)(nil)
	_ apiserver.MetricsProvider = (*Nodes)(nil)
)

// TestKubectlThroughAPIServer drives a real container with unmodified
// kubectl through the API server: logs, exec (with an exit code), top and
// port-forward (to a server on the pod's own loopback).
func TestKubectlThroughAPIServer(t *testing.T) {
	testenv.NeedCommand(t, "kubectl")
	e := newContainerdEnv(t)
	var nodes Nodes
	nodes.Add(e.agent)
	dir := t.TempDir()
	srv, err := apiserver.New(apiserver.Config{Store: e.s, DataDir: dir, Streamer: &nodes, Metrics: &nodes, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := srv.PKI().WriteKubeconfig(kubeconfig, "https://"+ln.Addr().String(), apiserver.KubeconfigOptions{}); err != nil {
		t.Fatal(err)
	}
	kubectl := func(args ...string) (string, error) {
		cctx, ccancel := context.WithTimeout(ctx, 60*time.Second)
		defer ccancel()
		out, err := exec.CommandContext(cctx, "kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...).CombinedOutput()
		return string(out), err
	}

	script := "echo started; mkdir -p /tmp/www; echo hello > /tmp/www/index.html; exec httpd -f -p 127.0.0.1:8080 -h /tmp/www"
	e.createPod(simplePod("web", bb("web", "sh", "-c", script)))
	e.waitPod("default", "web", "Ready", ready)

	if out, err := kubectl("logs", "web"); err != nil || out != "started\n" {
		t.Errorf("kubectl logs = %q, %v", out, err)
	}
	if out, err := kubectl("exec", "web", "--", "cat", "/tmp/www/index.html"); err != nil || out != "hello\n" {
		t.Errorf("kubectl exec = %q, %v", out, err)
	}
	out, err := kubectl("exec", "web", "--", "sh", "-c", "echo failing >&2; exit 3")
	var exitErr *exec.ExitError
	if !strings.Contains(out, "failing") || !strings.Contains(out, "command terminated with exit code 3") || !errorAs(err, &exitErr) {
		t.Errorf("kubectl exec exit 3 = %q, %v", out, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err = kubectl("top", "pod", "web", "--no-headers")
		if err == nil && regexp.MustCompile(`^web\s+\d+m\s+\d+Mi`).MatchString(out) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("kubectl top pod = %q, %v", out, err)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}

	// kubectl port-forward: a local port on 127.0.0.1 to the pod's 8080.
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	pf := exec.CommandContext(pctx, "kubectl", "--kubeconfig", kubeconfig, "port-forward", "pod/web", "--address", "127.0.0.1", "0:8080")
	stdout, _ := pf.StdoutPipe()
	pf.Stderr = io.Discard
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pcancel(); _ = pf.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	m := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 8080`).FindStringSubmatch(line)
	if err != nil || m == nil {
		t.Fatalf("port-forward said %q, %v", line, err)
	}
	resp, err := http.Get("http://127.0.0.1:" + m[1] + "/index.html")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello\n" {
		t.Errorf("through port-forward: %d %q", resp.StatusCode, body)
	}
}

func errorAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}
