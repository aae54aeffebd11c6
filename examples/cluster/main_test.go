package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/netproxy"
	"github.com/tugboatdev/tugboat/orchestrator/cluster"
)

// TestBinarySimulated builds the example, runs it with three simulated
// nodes, waits for its ready line, checks what it printed and the nodes
// with kubectl, and stops it with SIGINT.
func TestBinarySimulated(t *testing.T) {
	testenv.NeedCommand(t, "go")
	testenv.NeedCommand(t, "/usr/bin/kubectl")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	bin := buildBinary(t, ctx, dir)
	data := filepath.Join(dir, "data")
	cmd := exec.CommandContext(ctx, bin, "--data-dir", data, "--simulated", "--nodes", "3",
		"--api-address", "127.0.0.1:0", "--registry-address", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	var lines []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.HasPrefix(sc.Text(), "ready in ") {
			break
		}
	}
	out := strings.Join(lines, "\n")
	kubeconfig := filepath.Join(data, "admin.kubeconfig")
	for _, want := range []string{"started: store (durable", "started: API server on https://127.0.0.1:", "started: 3 simulated node(s)", "started: scheduler", "started: controller manager", "kubeconfig: " + kubeconfig, "ready in "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	nodes, err := exec.CommandContext(ctx, "/usr/bin/kubectl", "--kubeconfig", kubeconfig, "get", "nodes", "--no-headers").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get nodes: %v\n%s", err, nodes)
	}
	if n := strings.Count(string(nodes), " Ready "); n != 3 {
		t.Errorf("kubectl get nodes: %d Ready, want 3:\n%s", n, nodes)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGINT: %v", err)
	}
	if last := lines[len(lines)-1]; last != "stopped" {
		t.Errorf("last line %q, want stopped", last)
	}
	if _, err := os.Stat(filepath.Join(data, "store")); err != nil {
		t.Errorf("store directory missing after stop: %v", err)
	}
}

// buildBinary builds the example into dir.
func buildBinary(t *testing.T, ctx context.Context, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "cluster")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runBinary starts the example and waits for its ready line.
func runBinary(t *testing.T, ctx context.Context, bin string, args ...string) (*exec.Cmd, []string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	var lines []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.HasPrefix(sc.Text(), "ready in ") {
			go func() {
				for sc.Scan() {
				}
			}()
			return cmd, lines
		}
	}
	_ = cmd.Wait()
	t.Fatalf("no ready line; output:\n%s", strings.Join(lines, "\n"))
	return nil, nil
}

// TestBinaryKill9Restart runs the example as a real node on containerd,
// deploys the seeds' nginx Deployment with kubectl, kills the process with
// SIGKILL, starts it again over the same data directory and checks that
// the objects and the very same running pods are back; the second run
// stops on SIGTERM with --purge and must leave nothing behind.
func TestBinaryKill9Restart(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "go")
	testenv.NeedCommand(t, "containerd")
	testenv.NeedCommand(t, "/usr/bin/kubectl")
	_, err := os.Stat("/sys/fs/cgroup/unified/cgroup.procs")
	testenv.Need(t, err == nil, "cgroup v2 at /sys/fs/cgroup/unified")

	dir, err := os.MkdirTemp("", "tbex")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	bin := buildBinary(t, ctx, dir)
	sfx := fmt.Sprintf("%04x", os.Getpid()&0xffff)
	cfg := cluster.Config{
		DataDir:             filepath.Join(dir, "d"),
		NodeName:            "ex-" + sfx,
		ContainerdNamespace: "tbex-" + sfx,
		Bridge:              "tbex" + sfx,
		PodCIDR:             netip.MustParsePrefix(fmt.Sprintf("10.246.%d.0/24", os.Getpid()%250)),
		ServiceCIDR:         netip.MustParsePrefix("10.113.0.0/16"),
		ProxyMode:           netproxy.ModeEBPF,
	}
	// Whatever happens, remove what the binary made.
	t.Cleanup(func() {
		pctx, pcancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer pcancel()
		if _, err := os.Stat(cfg.DataDir); err == nil {
			if err := cluster.Purge(pctx, cfg); err != nil {
				t.Errorf("purge: %v", err)
			}
		}
	})
	args := []string{"--data-dir", cfg.DataDir, "--node-name", cfg.NodeName, "--containerd-namespace", cfg.ContainerdNamespace,
		"--bridge", cfg.Bridge, "--pod-cidr", cfg.PodCIDR.String(), "--service-cidr", cfg.ServiceCIDR.String(),
		"--proxy-mode", "ebpf", "--api-address", "127.0.0.1:0", "--registry-address", "127.0.0.1:0"}
	cmd, lines := runBinary(t, ctx, bin, args...)
	out := strings.Join(lines, "\n")
	for _, want := range []string{"started: private containerd", "started: node agent " + cfg.NodeName,
		"proxy cgroup: /sys/fs/cgroup/unified/tugboat-" + cfg.ContainerdNamespace, "started: cluster DNS", "kubeconfig: "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	registry := ""
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "started: image registry on "); ok {
			registry, _, _ = strings.Cut(rest, " ")
		}
	}
	kubeconfig := filepath.Join(cfg.DataDir, "admin.kubeconfig")
	kubectl := func(stdin string, args ...string) string {
		t.Helper()
		c := exec.CommandContext(ctx, "/usr/bin/kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...)
		c.Stdin = strings.NewReader(stdin)
		b, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return string(b)
	}
	manifest, err := os.ReadFile("../manifests/nginx-deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kubectl(strings.ReplaceAll(string(manifest), "127.0.0.1:5000/", registry+"/"), "apply", "-f", "-")
	podsLine := func() string {
		return kubectl("", "get", "pods", "-l", "app=nginx", "--sort-by", "{.metadata.name}", "-o",
			`jsonpath={range .items[*]}{.metadata.uid} {.status.podIP} {.status.phase} {.status.containerStatuses[0].ready} {.status.containerStatuses[0].restartCount}{"\n"}{end}`)
	}
	var before string
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(300 * time.Millisecond) {
		before = podsLine()
		if strings.Count(before, " Running true 0") == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("3 nginx pods not running:\n%s", before)
		}
	}

	// kill -9, then start again over the same data directory.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	cmd, _ = runBinary(t, ctx, bin, append(args, "--purge")...)
	after := podsLine()
	if after != before {
		t.Errorf("pods after kill -9 and restart:\n%s\nbefore:\n%s", after, before)
	}
	pod := strings.Fields(kubectl("", "get", "pods", "-l", "app=nginx", "-o", "name"))[0]
	if out := kubectl("", "exec", pod, "--", "cat", "/www/version"); !strings.HasPrefix(out, "version=1.0 hostname=") {
		t.Errorf("exec after restart: %q", out)
	}
	if out := kubectl("", "get", "deployment", "nginx-deployment", "-o", "jsonpath={.status.readyReplicas}"); out != "3" {
		t.Errorf("readyReplicas after restart = %q", out)
	}

	// SIGTERM with --purge: nothing is left.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data directory left: %v", err)
	}
	if _, err := os.Stat("/sys/fs/cgroup/unified/tugboat-" + cfg.ContainerdNamespace); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pods' cgroup left: %v", err)
	}
	if _, err := net.InterfaceByName(cfg.Bridge); err == nil {
		t.Errorf("bridge %s left", cfg.Bridge)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), cfg.DataDir) {
			t.Errorf("process left: %s", strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
}
