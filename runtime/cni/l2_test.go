package cni

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tugboatdev/tugboat/internal/testenv"
)

// TestSetupWithoutIPAMPlugin attaches pods through the bridge plugin
// alone with the in-process allocator, checks what the pod and the bridge
// get, and that a bridge deleted meanwhile gets its gateway address again.
func TestSetupWithoutIPAMPlugin(t *testing.T) {
	testenv.NeedRoot(t)
	_, err := os.Stat(filepath.Join(DefaultPluginDir, "bridge"))
	testenv.Need(t, err == nil, "CNI bridge plugin in "+DefaultPluginDir+" (containernetworking-plugins)")
	suffix := fmt.Sprintf("%04x", os.Getpid()&0xffff)
	cidr := netip.MustParsePrefix("10.247.13.0/24")
	forward, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	n, err := New(Config{Name: "tbl2-" + suffix, Bridge: "tbl2" + suffix, PodCIDR: cidr, IPAMDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Destroy(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if len(forward) > 0 {
			_ = os.WriteFile("/proc/sys/net/ipv4/ip_forward", forward, 0o644)
		}
	})
	ctx := context.Background()
	gw := cidr.Addr().Next()
	setup := func(id string) (string, string) {
		t.Helper()
		ns := filepath.Join(t.TempDir(), id)
		if err := NewNetNS(ns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = n.Teardown(ctx, id, ns, nil)
			_ = DeleteNetNS(ns)
		})
		ip, err := n.Setup(ctx, id, ns, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ns, ip
	}
	bridgeHasGateway := func() bool {
		br, err := netlink.LinkByName(n.cfg.Bridge)
		if err != nil {
			t.Fatal(err)
		}
		addrs, err := netlink.AddrList(br, unix.AF_INET)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			if a.IPNet.String() == netip.PrefixFrom(gw, 24).String() {
				return true
			}
		}
		return false
	}

	ns, ip := setup("pod-a")
	if ip != "10.247.13.2" {
		t.Errorf("first pod IP = %s, want 10.247.13.2", ip)
	}
	err = Do(ns, func() error {
		eth, err := netlink.LinkByName(ifName)
		if err != nil {
			return err
		}
		addrs, _ := netlink.AddrList(eth, unix.AF_INET)
		if len(addrs) != 1 || addrs[0].IPNet.String() != ip+"/24" {
			t.Errorf("eth0 addresses = %v, want %s/24", addrs, ip)
		}
		routes, _ := netlink.RouteList(eth, unix.AF_INET)
		var def bool
		for _, r := range routes {
			def = def || (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.Equal(gw.AsSlice())
		}
		if !def {
			t.Errorf("no default route via %v: %v", gw, routes)
		}
		lo, err := net.InterfaceByName("lo")
		if err != nil || lo.Flags&net.FlagUp == 0 {
			t.Errorf("lo not up: %v %v", lo, err)
		}
		if b, _ := os.ReadFile("/proc/sys/net/ipv4/conf/eth0/arp_notify"); strings.TrimSpace(string(b)) != "1" {
			t.Errorf("arp_notify = %q", b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bridgeHasGateway() {
		t.Error("bridge has no gateway address")
	}
	if b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(string(b)) != "1" {
		t.Errorf("ip_forward = %q", b)
	}
	if err := n.Teardown(ctx, "pod-a", ns, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(n.ips.dir, ip)); !os.IsNotExist(err) {
		t.Errorf("IP %s still allocated after teardown: %v", ip, err)
	}

	// The bridge goes away; the plugin makes a new one for the next pod.
	if out, err := exec.Command("ip", "link", "delete", n.cfg.Bridge).CombinedOutput(); err != nil {
		t.Fatalf("delete bridge: %v: %s", err, out)
	}
	if _, ip := setup("pod-b"); ip != "10.247.13.3" {
		t.Errorf("second pod IP = %s, want 10.247.13.3", ip)
	}
	if !bridgeHasGateway() {
		t.Error("the new bridge has no gateway address")
	}
}
