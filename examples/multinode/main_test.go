package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	deadlock "github.com/sasha-s/go-deadlock"

	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/netproxy"
)

// TestMain lets the test binary serve as a node process (the example
// re-executes itself inside each node's network namespace). It turns off
// go-cni's lock checker, which -race builds enable and which on this Go
// version sees every goroutine as goroutine 0, so two concurrent pod
// set-ups look like a recursive lock and exit the process.
func TestMain(m *testing.M) {
	deadlock.Opts.Disable = true
	if isNode, err := nodeMain(); isNode {
		if err != nil {
			fmt.Fprintln(os.Stderr, "node:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestMultinode runs three nodes in their own network namespaces and
// checks the walk-through: pods spread over every node, pod-to-pod and
// Service traffic across nodes, the NodePort on each node, drain moving
// pods; then that nothing is left on the machine.
func TestMultinode(t *testing.T) {
	testenv.NeedRoot(t)
	for _, c := range []string{"nsenter", "ip", "containerd", "runc", "/usr/lib/cni/bridge", "/bin/busybox", kubectlPath} {
		testenv.NeedCommand(t, c)
	}
	_, err := os.Stat(filepath.Join(cgroupV2Root, "cgroup.procs"))
	testenv.Need(t, err == nil, "cgroup v2 mounted at "+cgroupV2Root)
	testenv.Need(t, netproxy.EBPFAvailable(netproxy.Config{Cgroup: cgroupV2Root, ServiceCIDR: netip.MustParsePrefix("10.114.0.0/16")}) == nil, "the eBPF service proxy")

	prefix := fmt.Sprintf("tbt%04x", os.Getpid()&0xffff)
	dir := filepath.Join(t.TempDir(), "mn")
	l := Layout{Prefix: prefix, Nodes: 3, HostNet: netip.MustParsePrefix("10.252.0.0/24"), PodNet: netip.MustParsePrefix("10.246.0.0/16")}
	t.Cleanup(func() {
		// Only after a crash of run itself is anything left here.
		_ = l.Remove(context.Background())
	})
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	var out bytes.Buffer
	var kubectlOut []string
	err = run(ctx, []string{"-exit", "-prefix", prefix, "-nodes", "3",
		"-host-net", "10.252.0.0/24", "-pod-net", "10.246.0.0/16", "-service-cidr", "10.114.0.0/16", "-data-dir", dir}, &out,
		func(ctx context.Context, kubeconfig string) error {
			var err error
			kubectlOut, err = kubectlStreams(ctx, kubeconfig)
			return err
		})
	t.Log(out.String())
	if err != nil {
		for i := range 3 {
			if b, rerr := os.ReadFile(filepath.Join(dir, fmt.Sprintf("node-%d.log", i))); rerr == nil {
				t.Logf("node-%d log:\n%s", i, tail(string(b), 40))
			}
		}
		t.Fatalf("run: %v", err)
	}
	t.Logf("kubectl on node-1:\n%s", strings.Join(kubectlOut, "\n"))
	for _, want := range []string{
		"==> 3 nodes Ready",
		"==> logs and exec on web-",
		"(node node-0)",
		"(node node-1)",
		"(node node-2)",
		"spread over 3 nodes",
		"host reaches all 6 pods",
		"==> client pod on node-0: reached 2 pods on other nodes by IP",
		"==> client pod on node-2: reached 2 pods on other nodes by IP",
		"NodePort 32700 answers on all 3 node addresses",
		"cordoned and drained node-2: 6 pods Running on the other nodes",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output misses %q", want)
		}
	}
	if left := l.Leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	for i := range 3 {
		cg := filepath.Join(cgroupV2Root, fmt.Sprintf("%s-node-%d", prefix, i))
		if _, err := os.Stat(cg); err == nil {
			t.Errorf("cgroup %s left behind", cg)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("data directory %s left behind", dir)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(dir)) {
			t.Errorf("process left running: %s", strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

const kubectlPath = "/usr/bin/kubectl"

// kubectlStreams runs the machine's kubectl against a pod on node-1 (not
// the first node): logs, exec (with a non-zero exit code) and
// port-forward. It returns what kubectl printed, one entry per command.
func kubectlStreams(ctx context.Context, kubeconfig string) ([]string, error) {
	kubectl := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, kubectlPath, append([]string{"--kubeconfig", kubeconfig}, args...)...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String(), nil
	}
	pod, err := kubectl("get", "pods", "-l", "app=web", "--field-selector", "spec.nodeName=node-1", "-o", "jsonpath={.items[0].metadata.name}")
	if err != nil || pod == "" {
		return nil, fmt.Errorf("no web pod on node-1: %q, %v", pod, err)
	}
	var outs []string
	logs, err := kubectl("logs", pod)
	if err != nil {
		return nil, err
	}
	if want := "serving http on :80 as " + pod; !strings.Contains(logs, want) {
		return nil, fmt.Errorf("kubectl logs %s = %q, want %q", pod, logs, want)
	}
	outs = append(outs, "logs: "+strings.TrimSpace(logs))
	got, err := kubectl("exec", pod, "--", "cat", "/www/version")
	if err != nil {
		return nil, err
	}
	if want := "version=1.0 hostname=" + pod; strings.TrimSpace(got) != want {
		return nil, fmt.Errorf("kubectl exec %s cat /www/version = %q, want %q", pod, got, want)
	}
	outs = append(outs, "exec: "+strings.TrimSpace(got))
	got, err = kubectl("exec", "-i", pod, "--", "sh", "-c", "hostname; exit 3")
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || strings.TrimSpace(got) != pod {
		return nil, fmt.Errorf("kubectl exec %s sh -c 'hostname; exit 3' = %q, %v; want the pod name and exit status 3", pod, got, err)
	}
	outs = append(outs, "exec exit 3: "+strings.TrimSpace(got))

	// port-forward: kubectl listens on a loopback port and tunnels to the
	// pod's port 80.
	pfCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(pfCtx, kubectlPath, "--kubeconfig", kubeconfig, "port-forward", "pod/"+pod, ":80")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(line, "Forwarding from ")
	addr, _, _ = strings.Cut(addr, " ")
	if err != nil || !ok {
		return nil, fmt.Errorf("kubectl port-forward said %q, %v", line, err)
	}
	resp, err := http.Get("http://" + addr + "/version")
	if err != nil {
		return nil, fmt.Errorf("GET through kubectl port-forward: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "version=1.0 hostname=" + pod; err != nil || strings.TrimSpace(string(body)) != want {
		return nil, fmt.Errorf("GET through kubectl port-forward = %q, %v; want %q", body, err, want)
	}
	outs = append(outs, "port-forward: "+strings.TrimSpace(string(body)))
	return outs, nil
}
