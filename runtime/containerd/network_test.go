package containerd

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/cni"
)

// newTestNetwork makes a CNI network with a bridge, pod CIDR (inside
// 10.244.0.0/16) and name unique to the test. At the end it removes the
// bridge, IPAM state and libcni cache, and restores ip_forward (the bridge
// plugin turns it on).
func newTestNetwork(t testing.TB, mod ...func(*cni.Config)) *cni.Network {
	t.Helper()
	testenv.NeedRoot(t)
	for _, p := range []string{"bridge", "host-local", "loopback", "portmap"} {
		_, err := os.Stat(filepath.Join(cni.DefaultPluginDir, p))
		testenv.Need(t, err == nil, "CNI plugin "+p+" in "+cni.DefaultPluginDir+" (containernetworking-plugins)")
	}
	suffix := randHex(3)
	cidr := netip.MustParsePrefix(fmt.Sprintf("10.244.%d.0/24", 100+rand.IntN(150)))
	forward, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	// The IPAM directory is marked for the sweep of killed tests.
	cfg := cni.Config{Name: "tbtest-" + suffix, Bridge: "tbt" + suffix, PodCIDR: cidr, IPAMDir: shortTempDir(t)}
	for _, m := range mod {
		m(&cfg)
	}
	n, err := cni.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Every pod is gone by now (the runtime's cleanup ran first): no
		// veth may remain on the bridge.
		if out, _ := exec.Command("ip", "-o", "link", "show", "master", n.Config().Bridge).Output(); len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("veths left on %s: %s", n.Config().Bridge, out)
		}
		if err := n.Destroy(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if len(forward) > 0 {
			_ = os.WriteFile("/proc/sys/net/ipv4/ip_forward", forward, 0o644)
		}
		if _, err := net.InterfaceByName(n.Config().Bridge); err == nil {
			t.Errorf("bridge %s left behind", n.Config().Bridge)
		}
		if m, _ := filepath.Glob("/var/lib/cni/results/" + n.Config().Name + "-*"); len(m) > 0 {
			t.Errorf("libcni results left behind: %v", m)
		}
	})
	return n
}

const webScript = "mkdir -p /tmp/www && echo hello-from-$HOSTNAME > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"

// fetch retries (httpd may still be starting) and prints the page.
func fetch(url string) []string {
	return []string{"sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do wget -q -O - " + url + " && exit 0; sleep 0.1; done; exit 1"}
}

func TestPodNetworking(t *testing.T) {
	network := newTestNetwork(t)
	r := newTestRuntime(t, testOpts{network: network, nodeIP: "127.0.0.1"})
	ctx := context.Background()
	cidr := network.Config().PodCIDR

	sbA, idsA := runPod(t, r, &runtime.PodSandboxConfig{Name: "pod-a", Namespace: "default", UID: "a",
		PortMappings: []runtime.PortMapping{{Protocol: runtime.ProtocolTCP, ContainerPort: 8080, HostPort: 18080, HostIP: cidr.Addr().Next().String()}}},
		&runtime.ContainerConfig{Name: "web", Command: []string{"sh", "-c", webScript}},
		&runtime.ContainerConfig{Name: "side", Command: []string{"sleep", "1000"}})
	sbB, idsB := runPod(t, r, &runtime.PodSandboxConfig{Name: "pod-b", Namespace: "default", UID: "b"},
		&runtime.ContainerConfig{Name: "client", Command: []string{"sleep", "1000"}})
	a, _ := r.PodSandboxStatus(ctx, sbA)
	b, _ := r.PodSandboxStatus(ctx, sbB)
	for _, s := range []*runtime.PodSandbox{a, b} {
		ip, err := netip.ParseAddr(s.IP)
		if err != nil || !cidr.Contains(ip) {
			t.Fatalf("pod IP %q not in %s", s.IP, cidr)
		}
	}
	if a.IP == b.IP {
		t.Fatalf("pods share IP %s", a.IP)
	}

	t.Run("eth0 carries the pod IP", func(t *testing.T) {
		out, code := execOut(t, r, idsB[0], "ip", "-4", "-o", "addr", "show", "dev", "eth0")
		if code != 0 || !strings.Contains(out, b.IP+"/24") {
			t.Errorf("eth0 = %q (exit %d), want %s", out, code, b.IP)
		}
	})
	t.Run("default route via the bridge", func(t *testing.T) {
		// Pod a (hostPort) is attached through host-local, pod b through
		// the in-process allocator: both get the plugin's routing.
		for _, id := range []string{idsA[1], idsB[0]} {
			out, code := execOut(t, r, id, "ip", "-4", "route", "show", "default")
			if want := "default via " + cidr.Addr().Next().String() + " dev eth0"; code != 0 || !strings.Contains(out, want) {
				t.Errorf("default route = %q (exit %d), want %q", out, code, want)
			}
			if out, _ := execOut(t, r, id, "ip", "-o", "link", "show", "lo"); !strings.Contains(out, ",UP") {
				t.Errorf("lo is not up: %q", out)
			}
		}
	})
	t.Run("containers of a pod share localhost", func(t *testing.T) {
		out, code := execOut(t, r, idsA[1], fetch("http://127.0.0.1:8080/")...)
		if code != 0 || out != "hello-from-pod-a\n" {
			t.Errorf("side container got %q (exit %d)", out, code)
		}
	})
	t.Run("pods reach each other by IP", func(t *testing.T) {
		out, code := execOut(t, r, idsB[0], fetch("http://"+a.IP+":8080/")...)
		if code != 0 || out != "hello-from-pod-a\n" {
			t.Errorf("pod b got %q (exit %d)", out, code)
		}
	})
	t.Run("port-forward", func(t *testing.T) {
		client, server := net.Pipe()
		done := make(chan error, 1)
		go func() { done <- r.PortForward(ctx, sbA, 8080, server); server.Close() }()
		fmt.Fprint(client, "GET / HTTP/1.0\r\n\r\n")
		var body strings.Builder
		sc := bufio.NewScanner(client)
		for sc.Scan() {
			body.WriteString(sc.Text() + "\n")
		}
		client.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(body.String(), "hello-from-pod-a") {
			t.Errorf("port-forward response = %q", body.String())
		}
	})
	t.Run("hostPort", func(t *testing.T) {
		// The bridge's gateway address is ours: portmap DNATs it to pod a.
		out, code := execOut(t, r, idsB[0], fetch("http://"+cidr.Addr().Next().String()+":18080/")...)
		if code != 0 || out != "hello-from-pod-a\n" {
			t.Errorf("hostPort got %q (exit %d)", out, code)
		}
	})
	t.Run("host network", func(t *testing.T) {
		sb, ids := runPod(t, r, &runtime.PodSandboxConfig{Name: "host", HostNetwork: true},
			&runtime.ContainerConfig{Name: "c", Command: []string{"sleep", "1000"}})
		s, _ := r.PodSandboxStatus(ctx, sb)
		hostname, _ := os.Hostname()
		out, _ := execOut(t, r, ids[0], "hostname")
		if s.IP != "127.0.0.1" || s.NetNSPath != "" || out != hostname+"\n" {
			t.Errorf("host-network pod: IP %q netns %q hostname %q", s.IP, s.NetNSPath, out)
		}
		if err := r.RemovePodSandbox(ctx, sb); err != nil {
			t.Fatal(err)
		}
	})

	// Removing a pod releases its IP and its namespace (pod a's IP came
	// from host-local, pod b's from the in-process allocator).
	for _, p := range []struct {
		sb string
		s  *runtime.PodSandbox
	}{{sbA, a}, {sbB, b}} {
		ipamFile := filepath.Join(network.Config().IPAMDir, network.Config().Name, p.s.IP)
		if _, err := os.Stat(ipamFile); err != nil {
			t.Errorf("IPAM allocation of %s missing: %v", p.s.Config.Name, err)
		}
		if err := r.RemovePodSandbox(ctx, p.sb); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(ipamFile); !os.IsNotExist(err) {
			t.Errorf("IP %s still allocated after removal: %v", p.s.IP, err)
		}
		if _, err := os.Stat(p.s.NetNSPath); !os.IsNotExist(err) {
			t.Errorf("netns %s left after removal", p.s.NetNSPath)
		}
	}
}
