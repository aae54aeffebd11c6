package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/netproxy"
	"github.com/tugboatdev/tugboat/orchestrator/cluster"
	"github.com/tugboatdev/tugboat/runtime/cni"
	"github.com/tugboatdev/tugboat/runtime/containerd"
	"github.com/tugboatdev/tugboat/runtime/containerd/containerdtest"
)

// TestBinarySimulated builds the example, runs it with three simulated
// nodes, waits for its ready line, checks what it printed and the nodes
// with kubectl, and stops it with SIGINT.
func TestBinarySimulated(t *testing.T) {
	testenv.NeedCommand(t, "go")
	testenv.NeedCommand(t, "/usr/bin/kubectl")
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	data := filepath.Join(dir, "data")
	// Simulated nodes run no service proxy; the cgroup flag names a plain
	// directory of the test all the same, so that nothing here could
	// ever attach to the default, the machine's root cgroup.
	cmd := exec.CommandContext(ctx, bin, "--data-dir", data, "--simulated", "--nodes", "3",
		"--api-address", "127.0.0.1:0", "--registry-address", "127.0.0.1:0", "--proxy-cgroup", filepath.Join(dir, "not-a-cgroup"))
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

// buildBinary builds the example into dir. The build has its own, long
// deadline: on a loaded machine with a cold cache it takes minutes, which
// must not eat into the time the tests give the running binary.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
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
// with its eBPF proxy on a cgroup the test makes (never the default, the
// machine's root cgroup): it checks the printed cgroup line, deploys the
// seeds' nginx Deployment and NodePort Service with kubectl and reaches
// them from a process in that cgroup through the ClusterIP and the
// NodePort. It kills the process with SIGKILL, checks that the programs
// went with it, starts it again over the same data directory and checks
// that the objects and the very same running pods are back, served by one
// set of programs; the second run stops on SIGTERM with --purge and must
// leave nothing behind, no program attached either.
func TestBinaryKill9Restart(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "go")
	testenv.NeedCommand(t, "containerd")
	testenv.NeedCommand(t, "/usr/bin/kubectl")
	_, err := os.Stat("/sys/fs/cgroup/unified/cgroup.procs")
	testenv.Need(t, err == nil, "cgroup v2 at /sys/fs/cgroup/unified")
	testenv.NeedCommand(t, "/bin/busybox")

	dir := containerdtest.TempDir(t)
	bin := buildBinary(t, dir)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
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
	// If the test process is killed, the next one's sweep kills the
	// binary (its path and data directory are in dir), then removes its
	// runtime and network.
	containerdtest.Record(t, containerd.Options{DataDir: filepath.Join(cfg.DataDir, "ctr"), Namespace: cfg.ContainerdNamespace},
		&cni.Config{Name: "tugboat-" + cfg.ContainerdNamespace, Bridge: cfg.Bridge, PodCIDR: cfg.PodCIDR, IPAMDir: filepath.Join(cfg.DataDir, "cni", "networks")})
	// The proxy's cgroup, made by the test (and kept by the binary's
	// purge), with a child in which the test's "host" clients run.
	cfg.ProxyCgroup = testCgroup(t, dir, "/sys/fs/cgroup/unified/tbex-"+sfx)
	clients := testCgroup(t, dir, filepath.Join(cfg.ProxyCgroup, "clients"))
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
		"--proxy-mode", "ebpf", "--proxy-cgroup", cfg.ProxyCgroup, "--api-address", "127.0.0.1:0", "--registry-address", "127.0.0.1:0"}
	cmd, lines := runBinary(t, ctx, bin, args...)
	out := strings.Join(lines, "\n")
	if got := proxyCgroupPrinted(lines); got != cfg.ProxyCgroup {
		t.Errorf("printed proxy cgroup %q, want the flag's %q:\n%s", got, cfg.ProxyCgroup, out)
	}
	if n := attachedPrograms(t, cfg.ProxyCgroup); n != 1 {
		t.Errorf("%d connect4 programs on %s while running, want 1", n, cfg.ProxyCgroup)
	}
	for _, want := range []string{"started: private containerd", "started: node agent " + cfg.NodeName,
		"started: cluster DNS", "kubeconfig: "} {
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
	svc, err := os.ReadFile("../manifests/nginx-service.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kubectl(string(svc), "apply", "-f", "-")
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

	// The host's clients (here: the test cgroup's) reach the Service.
	clusterIP := kubectl("", "get", "svc", "nginx-service", "-o", "jsonpath={.spec.clusterIP}")
	for _, url := range []string{"http://" + clusterIP + "/version", "http://127.0.0.1:32600/version"} {
		if body := getFrom(t, clients, url); !strings.HasPrefix(body, "version=1.0 hostname=nginx-deployment-") {
			t.Errorf("GET %s from %s = %q", url, clients, body)
		}
	}

	// kill -9: the programs go with the process (their links were held by
	// its file descriptors); start again over the same data directory.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if n := attachedPrograms(t, cfg.ProxyCgroup); n != 0 {
		t.Errorf("%d connect4 programs on %s after kill -9, want 0", n, cfg.ProxyCgroup)
	}
	cmd, lines = runBinary(t, ctx, bin, append(args, "--purge")...)
	if got := proxyCgroupPrinted(lines); got != cfg.ProxyCgroup {
		t.Errorf("after restart: printed proxy cgroup %q, want %q", got, cfg.ProxyCgroup)
	}
	if n := attachedPrograms(t, cfg.ProxyCgroup); n != 1 {
		t.Errorf("%d connect4 programs on %s after the restart, want 1", n, cfg.ProxyCgroup)
	}
	if body := getFrom(t, clients, "http://"+clusterIP+"/version"); !strings.HasPrefix(body, "version=1.0 hostname=") {
		t.Errorf("GET the ClusterIP after the restart = %q", body)
	}
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
	if n := attachedPrograms(t, cfg.ProxyCgroup); n != 0 {
		t.Errorf("%d connect4 programs on %s after SIGTERM, want 0", n, cfg.ProxyCgroup)
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

// testCgroup makes the cgroup v2 directory dir for the test and removes it
// when the test ends (if the cluster's purge did not already), or, if the
// test process is killed, the next one's sweep does (it is recorded in
// the marker of tmp, a containerdtest.TempDir).
func testCgroup(t *testing.T, tmp, dir string) string {
	t.Helper()
	containerdtest.RecordCgroup(t, tmp, dir)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("removing cgroup %s: %v", dir, err)
		}
	})
	return dir
}

// proxyCgroupPrinted returns the cgroup of the binary's "proxy cgroup:"
// line.
func proxyCgroupPrinted(lines []string) string {
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "proxy cgroup: "); ok {
			cg, _, _ := strings.Cut(rest, " ")
			return cg
		}
	}
	return ""
}

// attachedPrograms counts the connect4 programs in effect for the cgroup
// dir (its own and those inherited from its ancestors).
func attachedPrograms(t *testing.T, dir string) int {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := link.QueryPrograms(link.QueryOptions{Target: int(f.Fd()), Attach: ebpf.AttachCGroupInet4Connect, QueryFlags: unix.BPF_F_QUERY_EFFECTIVE})
	if err != nil {
		t.Fatalf("query programs of %s: %v", dir, err)
	}
	return len(res.Programs)
}

// getFrom fetches url from a process in the cgroup dir.
func getFrom(t *testing.T, dir, url string) string {
	t.Helper()
	return testenv.WgetFromCgroup(t, dir, url)
}

// TestParseFlags checks the command line, in particular that the eBPF
// proxy serves the whole machine by default and --proxy-cgroup narrows it.
func TestParseFlags(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantCg    string
		wantPurge bool
		wantErr   string
	}{
		{name: "default serves the host", wantCg: cluster.CgroupV2Root},
		{name: "narrowed", args: []string{"--proxy-cgroup", "/sys/fs/cgroup/unified/tugboat-tugboat", "--purge"}, wantCg: "/sys/fs/cgroup/unified/tugboat-tugboat", wantPurge: true},
		{name: "bad service range", args: []string{"--service-cidr", "10.96.0.0"}, wantErr: "--service-cidr"},
		{name: "bad pod range", args: []string{"--pod-cidr", "x"}, wantErr: "--pod-cidr"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseFlags(%q) error %v, want one containing %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.cfg.ProxyCgroup != tt.wantCg || o.purge != tt.wantPurge {
				t.Errorf("parseFlags(%q): proxy cgroup %q, purge %v; want %q, %v", tt.args, o.cfg.ProxyCgroup, o.purge, tt.wantCg, tt.wantPurge)
			}
		})
	}
}

// TestProxyCgroupLine checks the printed line names the cgroup first and
// says whom it serves.
func TestProxyCgroupLine(t *testing.T) {
	tests := []struct{ cgroup, want string }{
		{cluster.CgroupV2Root, "proxy cgroup: /sys/fs/cgroup/unified (the cgroup v2 root: every process of this machine reaches Services)"},
		{"/sys/fs/cgroup/unified/", "proxy cgroup: /sys/fs/cgroup/unified/ (the cgroup v2 root: every process of this machine reaches Services)"},
		{"/sys/fs/cgroup/unified/tb", "proxy cgroup: /sys/fs/cgroup/unified/tb (processes in it reach Services; join with: echo $$ > /sys/fs/cgroup/unified/tb/cgroup.procs)"},
	}
	for _, tt := range tests {
		got := proxyCgroupLine(tt.cgroup)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("proxyCgroupLine(%q) (-want +got):\n%s", tt.cgroup, diff)
		}
		if pc := proxyCgroupPrinted([]string{got}); pc != tt.cgroup {
			t.Errorf("the line of %q reads back as %q", tt.cgroup, pc)
		}
	}
}

// FuzzParseFlags checks the command-line parser never panics, and that
// whatever it accepts names a proxy cgroup and valid ranges.
func FuzzParseFlags(f *testing.F) {
	f.Add("--proxy-cgroup\x00/sys/fs/cgroup/unified/tb\x00--purge")
	f.Add("--service-cidr\x0010.96.0.0/12\x00--pod-cidr\x0010.244.0.0/24")
	f.Add("--nodes=3\x00--simulated\x00extra")
	f.Add("-h")
	f.Fuzz(func(t *testing.T, joined string) {
		var args []string
		if joined != "" {
			args = strings.Split(joined, "\x00")
		}
		o, err := parseFlags(args, io.Discard)
		if err != nil {
			return
		}
		if !o.cfg.ServiceCIDR.IsValid() || !o.cfg.PodCIDR.IsValid() {
			t.Errorf("parseFlags(%q) accepted invalid ranges: %v %v", args, o.cfg.ServiceCIDR, o.cfg.PodCIDR)
		}
		if line := proxyCgroupLine(o.cfg.ProxyCgroup); !strings.HasPrefix(line, "proxy cgroup: "+o.cfg.ProxyCgroup+" (") {
			t.Errorf("line %q does not start with the cgroup %q", line, o.cfg.ProxyCgroup)
		}
	})
}
