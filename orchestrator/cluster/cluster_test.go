package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"

	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/netproxy"
	"github.com/tugboatdev/tugboat/runtime/cni"
	"github.com/tugboatdev/tugboat/runtime/containerd"
	"github.com/tugboatdev/tugboat/runtime/containerd/containerdtest"
)

const kubectlPath = "/usr/bin/kubectl"

// testCluster runs a Cluster in the test process and purges it at the end.
type testCluster struct {
	t       *testing.T
	cfg     Config
	c       *Cluster
	cancel  context.CancelFunc
	done    chan error
	purge   sync.Once
	started time.Time
}

// startCluster runs c until stopped and waits for it to be ready.
func (tc *testCluster) start(ctx context.Context) {
	tc.t.Helper()
	c, err := New(tc.cfg)
	if err != nil {
		tc.t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	tc.c, tc.cancel, tc.done = c, cancel, make(chan error, 1)
	tc.started = time.Now()
	go func() { tc.done <- c.Run(rctx) }()
	select {
	case err := <-tc.done:
		tc.done <- err
		tc.t.Fatalf("cluster stopped before ready: %v", err)
	case <-c.Ready():
	case <-time.After(90 * time.Second):
		tc.t.Fatal("cluster not ready after 90s")
	}
	tc.t.Logf("cluster ready in %s: %s", time.Since(tc.started), strings.Join(c.Started(), "; "))
}

// stop cancels Run and waits for it.
func (tc *testCluster) stop() {
	tc.t.Helper()
	if tc.cancel == nil {
		return
	}
	tc.cancel()
	tc.cancel = nil
	select {
	case err := <-tc.done:
		if err != nil {
			tc.t.Errorf("cluster Run: %v", err)
		}
	case <-time.After(60 * time.Second):
		tc.t.Error("cluster did not stop within 60s")
	}
}

func (tc *testCluster) purgeAll() {
	tc.purge.Do(func() {
		tc.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := Purge(ctx, tc.cfg); err != nil {
			tc.t.Errorf("Purge: %v", err)
		}
	})
}

// kubectl runs /usr/bin/kubectl against the cluster.
func (tc *testCluster) kubectl(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectlPath, append([]string{"--kubeconfig", tc.c.KubeconfigPath()}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func (tc *testCluster) mustKubectl(stdin string, args ...string) string {
	tc.t.Helper()
	out, err := tc.kubectl(stdin, args...)
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.t.Logf("$ kubectl %s\n%s", strings.Join(args, " "), out)
	return out
}

// runningPods polls kubectl until n pods labelled app=nginx run with IPs
// and are ready.
func (tc *testCluster) runningPods(n int, timeout time.Duration) []corev1.Pod {
	tc.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		out, err := tc.kubectl("", "get", "pods", "-l", "app=nginx", "-o", "json")
		if err == nil {
			var list corev1.PodList
			if err := json.Unmarshal([]byte(out), &list); err != nil {
				tc.t.Fatalf("decoding kubectl output: %v", err)
			}
			var ok []corev1.Pod
			for _, p := range list.Items {
				if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && podReady(&p) {
					ok = append(ok, p)
				}
			}
			if len(ok) == n && len(list.Items) == n {
				return ok
			}
			last = fmt.Sprintf("%d of %d running and ready", len(ok), len(list.Items))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			wide, _ := tc.kubectl("", "get", "pods", "-o", "wide")
			tc.t.Fatalf("want %d nginx pods running with IPs within %s; last: %s\n%s", n, timeout, last, wide)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// hostGet fetches url from a process in a cgroup under the proxy's cgroup,
// as a host process served by the eBPF proxy.
func hostGet(t *testing.T, cgroupDir, url string) string {
	t.Helper()
	return testenv.WgetFromCgroup(t, cgroupDir, url)
}

// recordRuntime records, for the sweep of containerdtest, the runtime
// and pod network that a real node of cfg starts (see startNode), so
// that a killed test leaves neither behind; cfg.DataDir is a
// containerdtest.TempDir.
func recordRuntime(tb testing.TB, cfg Config) {
	tb.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		tb.Fatal(err)
	}
	containerdtest.Record(tb, containerd.Options{DataDir: filepath.Join(cfg.DataDir, "ctr"), Address: cfg.ContainerdSocket, Namespace: cfg.ContainerdNamespace},
		&cni.Config{Name: "tugboat-" + cfg.ContainerdNamespace, Bridge: cfg.Bridge, PodCIDR: cfg.PodCIDR, IPAMDir: filepath.Join(cfg.DataDir, "cni", "networks")})
}

func linkExists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

// TestClusterKubectl runs a whole cluster on real containerd in the test
// process and drives it with the machine's kubectl: the seeds' nginx
// Deployment and NodePort Service, logs, exec, DNS, Service access from the
// host through the eBPF proxy, scaling, a restart that keeps objects and
// running pods, and a purge that leaves nothing behind.
func TestClusterKubectl(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "containerd")
	testenv.NeedCommand(t, "runc")
	testenv.NeedCommand(t, kubectlPath)
	testenv.NeedCommand(t, "/usr/lib/cni/bridge")
	testenv.NeedCommand(t, "/bin/busybox")
	_, err := os.Stat(filepath.Join(CgroupV2Root, "cgroup.procs"))
	testenv.Need(t, err == nil, "cgroup v2 mounted at "+CgroupV2Root)
	testenv.Need(t, netproxy.EBPFAvailable(netproxy.Config{Cgroup: CgroupV2Root, ServiceCIDR: netip.MustParsePrefix("10.111.0.0/16")}) == nil, "the eBPF service proxy")

	sfx := fmt.Sprintf("%04x", os.Getpid()&0xffff)
	dir := containerdtest.TempDir(t)
	regAddr := "127.0.0.1:5000"
	if ln, err := net.Listen("tcp", regAddr); err != nil {
		regAddr = "127.0.0.1:0" // port 5000 taken: rewrite the manifests' image names
	} else {
		ln.Close()
	}
	tc := &testCluster{t: t, cfg: Config{
		DataDir:             dir,
		NodeName:            "node-" + sfx,
		ContainerdNamespace: "tbcl-" + sfx,
		Bridge:              "tbcl" + sfx,
		PodCIDR:             netip.MustParsePrefix(fmt.Sprintf("10.248.%d.0/24", os.Getpid()%250)),
		ServiceCIDR:         netip.MustParsePrefix("10.111.0.0/16"),
		APIAddress:          "127.0.0.1:0",
		RegistryAddress:     regAddr,
		ProxyMode:           netproxy.ModeEBPF,
	}}
	recordRuntime(t, tc.cfg)
	t.Cleanup(tc.purgeAll)
	ctx := t.Context()
	tc.start(ctx)
	c := tc.c
	if got := c.ProxyMode(); got != netproxy.ModeEBPF {
		t.Fatalf("proxy mode %q, want ebpf", got)
	}

	out := tc.mustKubectl("", "get", "nodes", "-o", "wide")
	if !strings.Contains(out, tc.cfg.NodeName) || !strings.Contains(out, " Ready ") {
		t.Fatalf("node %s not Ready:\n%s", tc.cfg.NodeName, out)
	}
	out = tc.mustKubectl("", "get", "svc", "-n", "kube-system", "kube-dns")
	if !strings.Contains(out, "10.111.0.10") {
		t.Fatalf("kube-dns not at 10.111.0.10:\n%s", out)
	}

	// The seeds' Deployment and NodePort Service.
	var manifests []byte
	for _, f := range []string{"nginx-deployment.yaml", "nginx-service.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "manifests", f))
		if err != nil {
			t.Fatal(err)
		}
		manifests = append(append(manifests, b...), "\n---\n"...)
	}
	text := strings.ReplaceAll(string(manifests), "127.0.0.1:5000/", c.RegistryHost()+"/")
	applied := time.Now()
	tc.mustKubectl(text, "apply", "-f", "-")
	pods := tc.runningPods(3, 120*time.Second)
	t.Logf("nginx Deployment: 3 pods Ready %s after kubectl apply", time.Since(applied))
	wide := tc.mustKubectl("", "get", "pods", "-o", "wide", "--show-labels")
	for _, p := range pods {
		if !strings.Contains(wide, p.Name) || !strings.Contains(wide, p.Status.PodIP) {
			t.Errorf("kubectl get pods -o wide misses %s %s", p.Name, p.Status.PodIP)
		}
		if !tc.cfg.PodCIDR.Contains(netip.MustParseAddr(p.Status.PodIP)) {
			t.Errorf("pod %s IP %s outside the pod CIDR %s", p.Name, p.Status.PodIP, tc.cfg.PodCIDR)
		}
	}

	// The Service by ClusterIP and NodePort from a host process in a cgroup
	// under the proxy's.
	var clusterIP string
	for range 100 {
		clusterIP, _ = tc.kubectl("", "get", "svc", "nginx-service", "-o", "jsonpath={.spec.clusterIP}")
		if clusterIP != "" && clusterIP != "None" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !tc.cfg.ServiceCIDR.Contains(netip.MustParseAddr(clusterIP)) {
		t.Fatalf("ClusterIP %q not in %s", clusterIP, tc.cfg.ServiceCIDR)
	}
	hostCg := filepath.Join(c.ProxyCgroup(), "test-host")
	if err := os.Mkdir(hostCg, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(hostCg) })
	names := map[string]bool{}
	for _, p := range pods {
		names[p.Name] = true
	}
	for _, url := range []string{
		"http://" + clusterIP + "/version",
		"http://127.0.0.1:32600/version",
		"http://" + c.NodeIP().String() + ":32600/version",
	} {
		body := hostGet(t, hostCg, url)
		t.Logf("GET %s: %s", url, strings.TrimSpace(body))
		host, ok := strings.CutPrefix(strings.TrimSpace(body), "version=1.0 hostname=")
		if !ok || !names[host] {
			t.Errorf("GET %s = %q, want version=1.0 and one of the pods' hostnames", url, body)
		}
	}
	if err := os.Remove(hostCg); err != nil {
		t.Errorf("removing %s: %v", hostCg, err)
	}

	// Logs and exec; DNS and the Service by name from inside a pod.
	pod := pods[0].Name
	if out := tc.mustKubectl("", "logs", pod); !strings.Contains(out, "demo web 1.0 serving http on :80 as "+pod) {
		t.Errorf("kubectl logs %s = %q", pod, out)
	}
	if out := tc.mustKubectl("", "exec", pod, "--", "cat", "/www/version"); strings.TrimSpace(out) != "version=1.0 hostname="+pod {
		t.Errorf("kubectl exec cat = %q", out)
	}
	if _, err := tc.kubectl("", "exec", pod, "--", "sh", "-c", "exit 3"); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("kubectl exec exit 3: %v, want exit status 3", err)
	}
	if out := tc.mustKubectl("", "exec", pod, "--", "nslookup", "nginx-service.default.svc.cluster.local"); !strings.Contains(out, clusterIP) {
		t.Errorf("nslookup from a pod = %q, want %s", out, clusterIP)
	}
	if out := tc.mustKubectl("", "exec", pod, "--", "wget", "-q", "-O", "-", "http://nginx-service/version"); !strings.HasPrefix(out, "version=1.0 hostname=nginx-deployment-") {
		t.Errorf("wget http://nginx-service/version from a pod = %q", out)
	}

	// kubectl top through the metrics.k8s.io API.
	tc.eventually(30*time.Second, func(out string) bool { return strings.Contains(out, tc.cfg.NodeName) }, "top", "node")
	tc.eventually(30*time.Second, func(out string) bool { return strings.Count(out, "nginx-deployment-") == 3 }, "top", "pod", "-l", "app=nginx")

	// The store's and the service proxy's metrics on the API server's /metrics.
	metricsText := tc.mustKubectl("", "get", "--raw", "/metrics")
	for _, name := range []string{"tugboat_store_commit_batch_size", "tugboat_netproxy_frontends", "tugboat_netproxy_syncs_total"} {
		if !strings.Contains(metricsText, name) {
			t.Errorf("/metrics has no %s", name)
		}
	}

	// Port-forward through the API server to a pod.
	if body := tc.portForward(pod, 80, "/version"); strings.TrimSpace(body) != "version=1.0 hostname="+pod {
		t.Errorf("GET /version through kubectl port-forward = %q", body)
	}

	// Scale to 4.
	tc.mustKubectl("", "scale", "deployment/nginx-deployment", "--replicas=4")
	pods = tc.runningPods(4, 90*time.Second)
	before := map[string]string{}
	for _, p := range pods {
		before[p.Name] = string(p.UID) + " " + p.Status.PodIP
	}

	// Restart over the same data directory: objects and running pods come
	// back (same pods, same IPs, containers re-adopted, not restarted).
	tc.stop()
	if _, err := os.Stat(c.KubeconfigPath()); err != nil {
		t.Fatalf("kubeconfig gone after stop: %v", err)
	}
	tc.start(ctx)
	pods = tc.runningPods(4, 90*time.Second)
	for _, p := range pods {
		if before[p.Name] != string(p.UID)+" "+p.Status.PodIP {
			t.Errorf("pod %s after restart: %s %s, before: %q", p.Name, p.UID, p.Status.PodIP, before[p.Name])
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.RestartCount != 0 {
				t.Errorf("pod %s container %s restarted %d times across the cluster restart", p.Name, cs.Name, cs.RestartCount)
			}
		}
	}
	if out := tc.mustKubectl("", "get", "deployment", "nginx-deployment", "-o", "jsonpath={.spec.replicas}"); out != "4" {
		t.Errorf("replicas after restart = %q, want 4", out)
	}
	if out := tc.mustKubectl("", "exec", pods[0].Name, "--", "cat", "/www/version"); !strings.HasPrefix(out, "version=1.0") {
		t.Errorf("exec after restart = %q", out)
	}

	// Stop and purge: nothing may be left.
	tc.purgeAll()
	if linkExists(tc.cfg.Bridge) {
		t.Errorf("bridge %s left behind", tc.cfg.Bridge)
	}
	if _, err := os.Stat(c.ProxyCgroup()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("proxy cgroup %s left behind: %v", c.ProxyCgroup(), err)
	}
	if _, err := os.Stat(tc.cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data directory %s left behind: %v", tc.cfg.DataDir, err)
	}
	if pids := daemonPIDs(filepath.Join(tc.cfg.DataDir, "ctr")); len(pids) > 0 {
		t.Errorf("private containerd processes left: %v", pids)
	}
	if routes, err := netlink.RouteList(nil, netlink.FAMILY_V4); err == nil {
		for _, r := range routes {
			if r.Dst != nil && r.Dst.String() == tc.cfg.ServiceCIDR.String() {
				t.Errorf("route for the service CIDR left behind: %v", r)
			}
		}
	} else {
		t.Error(err)
	}
	if procs := processesUnder(tc.cfg.DataDir); len(procs) > 0 {
		t.Errorf("processes still using %s: %v", tc.cfg.DataDir, procs)
	}
}

// processesUnder lists processes whose command line mentions dir (shims,
// daemons).
func processesUnder(dir string) []string {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var out []string
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(dir)) {
			out = append(out, filepath.Base(filepath.Dir(p))+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

// portForward runs `kubectl port-forward pod/<pod> :<port>`, fetches path
// through the local port it prints and stops kubectl.
func (tc *testCluster) portForward(pod string, port int, path string) string {
	tc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectlPath, "--kubeconfig", tc.c.KubeconfigPath(), "port-forward", "pod/"+pod, fmt.Sprintf(":%d", port))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tc.t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		tc.t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	sc := bufio.NewScanner(stdout)
	local := ""
	for sc.Scan() {
		// "Forwarding from 127.0.0.1:41234 -> 80"
		if rest, ok := strings.CutPrefix(sc.Text(), "Forwarding from 127.0.0.1:"); ok {
			local, _, _ = strings.Cut(rest, " ")
			break
		}
	}
	if local == "" {
		tc.t.Fatalf("kubectl port-forward printed no local port: %s", errb.String())
	}
	go io.Copy(io.Discard, stdout)
	resp, err := http.Get("http://127.0.0.1:" + local + path)
	if err != nil {
		tc.t.Fatalf("GET through port-forward: %v (%s)", err, errb.String())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tc.t.Fatal(err)
	}
	return string(b)
}
