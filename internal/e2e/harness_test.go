package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/tugboatdev/tugboat/internal/kubectltest"
	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/netproxy"
	"github.com/tugboatdev/tugboat/orchestrator/cluster"
	"github.com/tugboatdev/tugboat/runtime/cni"
	"github.com/tugboatdev/tugboat/runtime/containerd"
	"github.com/tugboatdev/tugboat/runtime/containerd/containerdtest"
)

// manifestsDir holds the seeds' manifests, relative to this package.
const manifestsDir = "../../examples/manifests"

// shared is the one cluster the walk-throughs share.
type shared struct {
	cfg        cluster.Config
	kubeconfig string     // the admin kubeconfig examples/cluster wrote
	nodeIP     netip.Addr // the node's InternalIP
	reg        string     // host:port of the demo registry
	node       string
	// hostCg is a cgroup under the proxy's cgroup in which the test's
	// "host" clients run, so the eBPF proxy serves them.
	hostCg string

	// nodeLabel serialises the walk-throughs' edits of the node's labels.
	nodeLabel sync.Mutex
	mu        sync.Mutex
	exclusive map[string]*sync.Mutex // by walk-through name
}

// lock takes the lock named name, so that the walk-throughs of that name
// (one per kubectl binary) run one at a time, and returns its unlock.
func (s *shared) lock(name string) func() {
	s.mu.Lock()
	if s.exclusive == nil {
		s.exclusive = map[string]*sync.Mutex{}
	}
	m := s.exclusive[name]
	if m == nil {
		m = &sync.Mutex{}
		s.exclusive[name] = m
	}
	s.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// env is what one walk-through works with: the shared cluster and one
// kubectl binary. Every binary runs every walk-through, in namespaces
// named after the binary.
type env struct {
	*shared
	bin kubectltest.Binary
	// nodePort is the seeds' NodePort (32600) moved for this binary, so
	// that both binaries' nginx Services can exist at once.
	nodePort int
	// waitDelete makes the walk-through's namespaces be deleted
	// completely when it ends, before the next one may start (for
	// walk-throughs that run one at a time).
	waitDelete bool
}

// needPrerequisites skips (outside CI) or fails (in CI) without root,
// containerd, runc, the CNI plugins, busybox, kubectl, cgroup v2 or eBPF.
func needPrerequisites(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "containerd")
	testenv.NeedCommand(t, "runc")
	testenv.NeedCommand(t, kubectltest.Installed)
	testenv.NeedCommand(t, "/usr/lib/cni/bridge")
	testenv.NeedCommand(t, "/bin/busybox")
	_, err := os.Stat(filepath.Join(cluster.CgroupV2Root, "cgroup.procs"))
	testenv.Need(t, err == nil, "cgroup v2 mounted at "+cluster.CgroupV2Root)
	testenv.Need(t, netproxy.EBPFAvailable(netproxy.Config{Cgroup: cluster.CgroupV2Root, ServiceCIDR: netip.MustParsePrefix("10.112.0.0/16")}) == nil, "the eBPF service proxy")
}

// startCluster builds examples/cluster and runs it as the seeds' node for
// the whole test, as a newcomer would (with its eBPF proxy narrowed to the
// pods' cgroup, never the machine's root cgroup), and purges it
// (pods, containerd namespace, bridge, routes, data) when the test ends,
// whether it passed or not.
func startCluster(t *testing.T) *shared {
	t.Helper()
	sfx := fmt.Sprintf("%04x", os.Getpid()&0xffff)
	dir := containerdtest.TempDir(t)
	regAddr := cluster.DefaultRegistryAddress
	if ln, err := net.Listen("tcp", regAddr); err != nil {
		regAddr = "127.0.0.1:0" // taken: the manifests' image names are rewritten
	} else {
		ln.Close()
	}
	e := &shared{cfg: cluster.Config{
		DataDir:             filepath.Join(dir, "d"),
		NodeName:            "e2e-" + sfx,
		ContainerdNamespace: "tbe2e-" + sfx,
		Bridge:              "tbe2e" + sfx,
		PodCIDR:             netip.MustParsePrefix(fmt.Sprintf("10.249.%d.0/24", os.Getpid()%250)),
		ServiceCIDR:         netip.MustParsePrefix("10.112.0.0/16"),
		RegistryAddress:     regAddr,
		ProxyMode:           netproxy.ModeEBPF,
	}}
	// If the test process is killed, the next one's sweep kills the
	// binary (its path and data directory are in dir), then removes its
	// runtime and network.
	containerdtest.Record(t, containerd.Options{DataDir: filepath.Join(e.cfg.DataDir, "ctr"), Namespace: e.cfg.ContainerdNamespace},
		&cni.Config{Name: "tugboat-" + e.cfg.ContainerdNamespace, Bridge: e.cfg.Bridge, PodCIDR: e.cfg.PodCIDR, IPAMDir: filepath.Join(e.cfg.DataDir, "cni", "networks")})
	// The proxy serves the pods' cgroup (not the whole machine, the
	// binary's default): pods, and the test's "host" clients in a child
	// of it, reach Services. The purge removes it.
	e.cfg.ProxyCgroup = filepath.Join(cluster.CgroupV2Root, "tugboat-"+e.cfg.ContainerdNamespace)
	e.node = e.cfg.NodeName
	e.nodeIP = e.cfg.PodCIDR.Addr().Next() // the node's address on its pod bridge
	e.kubeconfig = filepath.Join(e.cfg.DataDir, "admin.kubeconfig")
	bctx, bcancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer bcancel()
	bin := filepath.Join(dir, "cluster")
	if out, err := exec.CommandContext(bctx, "go", "build", "-o", bin, "../../examples/cluster").CombinedOutput(); err != nil {
		t.Fatalf("go build examples/cluster: %v\n%s", err, out)
	}
	start := time.Now()
	cmd := exec.Command(bin, "--data-dir", e.cfg.DataDir, "--node-name", e.cfg.NodeName,
		"--containerd-namespace", e.cfg.ContainerdNamespace, "--bridge", e.cfg.Bridge,
		"--pod-cidr", e.cfg.PodCIDR.String(), "--service-cidr", e.cfg.ServiceCIDR.String(),
		"--proxy-mode", "ebpf", "--proxy-cgroup", e.cfg.ProxyCgroup,
		"--api-address", "127.0.0.1:0", "--registry-address", regAddr)
	stderr := &testenv.SyncBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		select {
		case err := <-waited:
			if err != nil {
				t.Errorf("examples/cluster after SIGTERM: %v\n%s", err, stderr.String())
			}
		case <-time.After(60 * time.Second):
			t.Error("examples/cluster did not stop within 60s of SIGTERM")
			_ = cmd.Process.Kill()
			<-waited
		}
		pctx, pcancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer pcancel()
		if err := cluster.Purge(pctx, e.cfg); err != nil {
			t.Errorf("Purge: %v", err)
		}
		if _, err := netlink.LinkByName(e.cfg.Bridge); err == nil {
			t.Errorf("bridge %s left behind", e.cfg.Bridge)
		}
	})
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var printed []string
	timeout := time.After(3 * time.Minute)
	for ready := false; !ready; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("examples/cluster stopped before ready:\n%s\n%s", strings.Join(printed, "\n"), stderr.String())
			}
			printed = append(printed, l)
			if rest, ok := strings.CutPrefix(l, "started: image registry on "); ok {
				e.reg, _, _ = strings.Cut(rest, " ")
			}
			ready = strings.HasPrefix(l, "ready in ")
		case <-timeout:
			t.Fatalf("examples/cluster not ready after 3 min:\n%s\n%s", strings.Join(printed, "\n"), stderr.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	t.Logf("examples/cluster ready in %s:\n%s", time.Since(start), strings.Join(printed, "\n"))
	out := strings.Join(printed, "\n")
	for _, want := range []string{"proxy cgroup: " + e.cfg.ProxyCgroup, "kubeconfig: " + e.kubeconfig} {
		if !strings.Contains(out, want) {
			t.Errorf("examples/cluster output lacks %q", want)
		}
	}
	if e.reg == "" {
		t.Fatalf("examples/cluster printed no registry line:\n%s", out)
	}
	e.hostCg = filepath.Join(e.cfg.ProxyCgroup, "e2e-host")
	if err := os.Mkdir(e.hostCg, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(e.hostCg) }) // runs before the purge above
	return e
}

// image names a demo image ("web:1.0", "busybox:1.35") in the registry.
func (e *shared) image(nameTag string) string { return e.reg + "/demo/" + nameTag }

// manifest reads a file of examples/manifests with its image names
// pointed at the test's registry.
func (e *shared) manifest(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(manifestsDir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), cluster.DefaultRegistryAddress+"/", e.reg+"/")
}

// manifestIn is manifest with the namespace kube-system of the file
// replaced by ns.
func (e *shared) manifestIn(t *testing.T, file, ns string) string {
	t.Helper()
	return strings.ReplaceAll(e.manifest(t, file), "namespace: kube-system\n", "namespace: "+ns+"\n")
}

// kube runs kubectl for one walk-through, in its namespace (if any).
type kube struct {
	t          *testing.T
	e          *env
	ns         string
	kubeconfig string
	bin        string // the kubectl executable
}

// kubectl returns a runner in namespace ns ("" for the kubeconfig's).
func (e *env) kubectl(t *testing.T, ns string) *kube {
	return &kube{t: t, e: e, ns: ns, kubeconfig: e.kubeconfig, bin: e.bin.Path}
}

// nsName is the name of the walk-through's namespace base for this
// binary ("e2e-job" becomes "e2e-job-newest").
func (e *env) nsName(base string) string { return base + "-" + e.bin.Name }

// namespace creates the namespace nsName(base) for a walk-through and
// returns a kubectl runner in it; the namespace is deleted when the
// walk-through ends.
func (e *env) namespace(t *testing.T, base string) *kube {
	t.Helper()
	ns := e.nsName(base)
	k := e.kubectl(t, "")
	k.must("create", "namespace", ns)
	t.Cleanup(func() { e.deleteNamespaces(k, ns) })
	kn := e.kubectl(t, ns)
	// As upstream's e2e framework: pods are admitted once the namespace
	// has its default ServiceAccount.
	kn.eventually(time.Minute, contains("default"), "get", "serviceaccount", "default", "-o", "name")
	return kn
}

// deleteNamespaces deletes namespaces at the end of a walk-through:
// in the background, or with waitDelete until they are gone. To be quick
// about it, the pods of a namespace being deleted are deleted at once
// (--force --grace-period=0): the demo web server ignores SIGTERM and
// would hold each pod for its 30 s grace period.
func (e *env) deleteNamespaces(k *kube, names ...string) {
	_, _ = k.run("", append([]string{"delete", "namespace", "--ignore-not-found", "--wait=false"}, names...)...)
	if !e.waitDelete {
		return
	}
	for _, ns := range names {
		_, _ = k.run("", "delete", "pods", "--all", "-n", ns, "--force", "--grace-period=0", "--ignore-not-found")
	}
	for _, ns := range names {
		out, err := k.run("", "wait", "--for=delete", "--timeout=3m", "namespace/"+ns)
		if err != nil && !strings.Contains(out, "NotFound") { // NotFound: gone already
			k.t.Errorf("deleting namespace %s: %v\n%s", ns, err, out)
		}
	}
}

// run runs kubectl with stdin (if not empty) and returns its stdout.
func (k *kube) run(stdin string, args ...string) (string, error) {
	// A guard against a hung kubectl, longer than any --timeout given.
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	full := []string{"--kubeconfig", k.kubeconfig}
	if k.ns != "" {
		full = append(full, "-n", k.ns)
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, k.bin, full...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String() + errb.String(), fmt.Errorf("kubectl %s: %w: %s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), nil
}

// must runs kubectl, fails the test on error and logs the session.
func (k *kube) must(args ...string) string {
	k.t.Helper()
	return k.mustIn("", args...)
}

// mustIn is must with stdin.
func (k *kube) mustIn(stdin string, args ...string) string {
	k.t.Helper()
	out, err := k.run(stdin, args...)
	if err != nil {
		k.t.Fatal(err)
	}
	k.t.Logf("%s $ kubectl %s\n%s", stamp(), strings.Join(args, " "), out)
	return out
}

// stamp is the time of day for the session log.
func stamp() string { return time.Now().Format("15:04:05.0") }

// fails runs kubectl that must fail and returns its combined output.
func (k *kube) fails(args ...string) string {
	k.t.Helper()
	out, err := k.run("", args...)
	if err == nil {
		k.t.Fatalf("kubectl %s succeeded, want an error:\n%s", strings.Join(args, " "), out)
	}
	k.t.Logf("$ kubectl %s (fails as expected)\n%s", strings.Join(args, " "), out)
	return out
}

// apply applies a file of examples/manifests.
func (k *kube) apply(file string) string {
	k.t.Helper()
	return k.mustIn(k.e.manifest(k.t, file), "apply", "-f", "-")
}

// applyText applies a manifest given as text.
func (k *kube) applyText(text string) string {
	k.t.Helper()
	return k.mustIn(text, "apply", "-f", "-")
}

// eventually reruns kubectl args until ok accepts the output (errors
// count as not ok) and returns that output; it fails after timeout. The
// pause between tries grows from 200 ms to 2 s: many walk-throughs poll
// at once, and each kubectl run costs CPU.
func (k *kube) eventually(timeout time.Duration, ok func(string) bool, args ...string) string {
	k.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	pause := 200 * time.Millisecond
	for {
		out, err := k.run("", args...)
		if err == nil && ok(out) {
			k.t.Logf("%s $ kubectl %s\n%s", stamp(), strings.Join(args, " "), out)
			return out
		}
		if err != nil {
			last = err.Error()
		} else {
			last = out
		}
		if time.Now().After(deadline) {
			pods, _ := k.run("", "get", "pods", "-o", "wide")
			events, _ := k.run("", "get", "events")
			k.t.Fatalf("kubectl %s: no wanted output within %s; last:\n%s\npods:\n%s\nevents:\n%s", strings.Join(args, " "), timeout, last, pods, events)
		}
		time.Sleep(pause)
		pause = min(pause*3/2, 2*time.Second)
	}
}

// equals returns a check that the trimmed output is want.
func equals(want string) func(string) bool {
	return func(s string) bool { return strings.TrimSpace(s) == want }
}

// contains returns a check that the output holds every one of subs.
func contains(subs ...string) func(string) bool {
	return func(s string) bool {
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				return false
			}
		}
		return true
	}
}

// wantContains fails unless out holds every one of subs.
func wantContains(t *testing.T, what, out string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(out, sub) {
			t.Errorf("%s: %q missing from:\n%s", what, sub, out)
		}
	}
}

// hostGet fetches url from a process in the test's host cgroup (served by
// the eBPF proxy).
func (e *shared) hostGet(t *testing.T, url string) string {
	t.Helper()
	return testenv.WgetFromCgroup(t, e.hostCg, url)
}
