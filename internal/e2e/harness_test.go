package e2e

import (
	"bytes"
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

	"github.com/vishvananda/netlink"

	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/netproxy"
	"github.com/tugboatdev/tugboat/orchestrator/cluster"
)

const kubectlPath = "/usr/bin/kubectl"

// manifestsDir holds the seeds' manifests, relative to this package.
const manifestsDir = "../../examples/manifests"

// env is the one cluster the walk-throughs share.
type env struct {
	cfg  cluster.Config
	c    *cluster.Cluster
	reg  string // host:port of the demo registry
	node string
	// hostCg is a cgroup under the proxy's cgroup in which the test's
	// "host" clients run, so the eBPF proxy serves them.
	hostCg string
}

// needPrerequisites skips (outside CI) or fails (in CI) without root,
// containerd, runc, the CNI plugins, busybox, kubectl, cgroup v2 or eBPF.
func needPrerequisites(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "containerd")
	testenv.NeedCommand(t, "runc")
	testenv.NeedCommand(t, kubectlPath)
	testenv.NeedCommand(t, "/usr/lib/cni/bridge")
	testenv.NeedCommand(t, "/bin/busybox")
	_, err := os.Stat(filepath.Join(cluster.CgroupV2Root, "cgroup.procs"))
	testenv.Need(t, err == nil, "cgroup v2 mounted at "+cluster.CgroupV2Root)
	testenv.Need(t, netproxy.EBPFAvailable(netproxy.Config{Cgroup: cluster.CgroupV2Root, ServiceCIDR: netip.MustParsePrefix("10.112.0.0/16")}) == nil, "the eBPF service proxy")
}

// startCluster runs a cluster on real containerd for the whole test and
// purges it (pods, containerd namespace, bridge, routes, cgroups, data)
// when the test ends, whether it passed or not.
func startCluster(t *testing.T) *env {
	t.Helper()
	sfx := fmt.Sprintf("%04x", os.Getpid()&0xffff)
	dir, err := os.MkdirTemp("", "tbe2e")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	regAddr := cluster.DefaultRegistryAddress
	if ln, err := net.Listen("tcp", regAddr); err != nil {
		regAddr = "127.0.0.1:0" // taken: the manifests' image names are rewritten
	} else {
		ln.Close()
	}
	e := &env{cfg: cluster.Config{
		DataDir:             filepath.Join(dir, "d"),
		NodeName:            "e2e-" + sfx,
		ContainerdNamespace: "tbe2e-" + sfx,
		Bridge:              "tbe2e" + sfx,
		PodCIDR:             netip.MustParsePrefix(fmt.Sprintf("10.249.%d.0/24", os.Getpid()%250)),
		ServiceCIDR:         netip.MustParsePrefix("10.112.0.0/16"),
		APIAddress:          "127.0.0.1:0",
		RegistryAddress:     regAddr,
		ProxyMode:           netproxy.ModeEBPF,
	}}
	e.node = e.cfg.NodeName
	c, err := cluster.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.c = c
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("cluster Run: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("cluster did not stop within 60s")
		}
		pctx, pcancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer pcancel()
		if err := cluster.Purge(pctx, e.cfg); err != nil {
			t.Errorf("Purge: %v", err)
		}
		if _, err := netlink.LinkByName(e.cfg.Bridge); err == nil {
			t.Errorf("bridge %s left behind", e.cfg.Bridge)
		}
		if _, err := os.Stat(c.ProxyCgroup()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("proxy cgroup %s left behind: %v", c.ProxyCgroup(), err)
		}
	})
	select {
	case err := <-done:
		done <- err
		t.Fatalf("cluster stopped before ready: %v", err)
	case <-c.Ready():
	case <-time.After(120 * time.Second):
		t.Fatal("cluster not ready after 120s")
	}
	t.Logf("cluster ready in %s: %s", time.Since(start), strings.Join(c.Started(), "; "))
	e.reg = c.RegistryHost()
	e.hostCg = filepath.Join(c.ProxyCgroup(), "e2e-host")
	if err := os.Mkdir(e.hostCg, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(e.hostCg) }) // runs before the purge above
	return e
}

// image names a demo image ("web:1.0", "busybox:1.35") in the registry.
func (e *env) image(nameTag string) string { return e.reg + "/demo/" + nameTag }

// manifest reads a file of examples/manifests with its image names
// pointed at the test's registry.
func (e *env) manifest(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(manifestsDir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), cluster.DefaultRegistryAddress+"/", e.reg+"/")
}

// kube runs kubectl for one walk-through, in its namespace (if any).
type kube struct {
	t          *testing.T
	e          *env
	ns         string
	kubeconfig string
}

// kubectl returns a runner in namespace ns ("" for the kubeconfig's).
func (e *env) kubectl(t *testing.T, ns string) *kube {
	return &kube{t: t, e: e, ns: ns, kubeconfig: e.c.KubeconfigPath()}
}

// namespace creates a namespace for a walk-through and returns a kubectl
// runner in it; the namespace is deleted when the walk-through ends.
func (e *env) namespace(t *testing.T, ns string) *kube {
	t.Helper()
	k := e.kubectl(t, "")
	k.must("create", "namespace", ns)
	t.Cleanup(func() { _, _ = k.run("", "delete", "namespace", ns, "--wait=false") })
	kn := e.kubectl(t, ns)
	// As upstream's e2e framework: pods are admitted once the namespace
	// has its default ServiceAccount.
	kn.eventually(time.Minute, contains("default"), "get", "serviceaccount", "default", "-o", "name")
	return kn
}

// run runs kubectl with stdin (if not empty) and returns its stdout.
func (k *kube) run(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	full := []string{"--kubeconfig", k.kubeconfig}
	if k.ns != "" {
		full = append(full, "-n", k.ns)
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, kubectlPath, full...)
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
	k.t.Logf("$ kubectl %s\n%s", strings.Join(args, " "), out)
	return out
}

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
// count as not ok) and returns that output; it fails after timeout.
func (k *kube) eventually(timeout time.Duration, ok func(string) bool, args ...string) string {
	k.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		out, err := k.run("", args...)
		if err == nil && ok(out) {
			k.t.Logf("$ kubectl %s\n%s", strings.Join(args, " "), out)
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
		time.Sleep(500 * time.Millisecond)
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

// hostGet fetches url with busybox wget from a process in the test's host
// cgroup (served by the eBPF proxy), retrying while the proxy programs
// new endpoints.
func (e *env) hostGet(t *testing.T, url string) string {
	t.Helper()
	f, err := os.Open(e.hostCg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var last string
	for range 60 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, "/bin/busybox", "wget", "-q", "-O", "-", url)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil {
			return string(out)
		}
		last = fmt.Sprintf("%v: %s", err, out)
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("wget %s from cgroup %s: %s", url, e.hostCg, last)
	return ""
}
