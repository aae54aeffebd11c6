package cni

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// setupL2 attaches a pod without hostPorts: loopback is brought up, the IP
// comes from the in-process allocator, the bridge plugin (without IPAM) makes the veth
// pair on the bridge, and the pod's interface is configured here as the
// plugin's IPAM step would (address, default route via the bridge,
// arp_notify); the bridge gets the gateway address and IP forwarding is
// turned on, as the plugin does for a gateway bridge.
func (n *Network) setupL2(ctx context.Context, id, netnsPath string) (_ string, err error) {
	ip, err := n.ips.allocate(id, ifName)
	if err != nil {
		return "", fmt.Errorf("cni: setup %s: %w", id, err)
	}
	defer func() {
		if err != nil {
			_ = n.ips.release(id, ifName)
		}
	}()
	if _, err := n.l2.Setup(ctx, id, netnsPath); err != nil {
		return "", fmt.Errorf("cni: setup %s: %w", id, err)
	}
	if err := n.ensureGateway(); err != nil {
		return "", fmt.Errorf("cni: setup %s: %w", id, err)
	}
	gw := n.ips.gateway
	err = Do(netnsPath, func() error {
		if err := setLinkUp("lo"); err != nil {
			return err
		}
		return configureIface(ifName, ip, gw)
	})
	if err != nil {
		return "", fmt.Errorf("cni: setup %s: %w", id, err)
	}
	return ip.Addr().String(), nil
}

// ensureGateway gives the bridge the gateway address (the pods' default
// route) and turns on IP forwarding, once per bridge (again if the bridge
// was deleted and the plugin made a new one).
func (n *Network) ensureGateway() error {
	br, err := netlink.LinkByName(n.cfg.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", n.cfg.Bridge, err)
	}
	n.gwMu.Lock()
	defer n.gwMu.Unlock()
	if n.gwBridge == br.Attrs().Index {
		return nil
	}
	gw := netip.PrefixFrom(n.ips.gateway, n.ips.subnet.Bits())
	if err := netlink.AddrAdd(br, &netlink.Addr{IPNet: ipNet(gw)}); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("gateway address %v on %s: %w", gw, n.cfg.Bridge, err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return fmt.Errorf("bridge %s up: %w", n.cfg.Bridge, err)
	}
	if err := enableIPForward(); err != nil {
		return err
	}
	n.gwBridge = br.Attrs().Index
	return nil
}

// enableIPForward turns on net.ipv4.ip_forward unless it is on.
func enableIPForward() error {
	const path = "/proc/sys/net/ipv4/ip_forward"
	b, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable ip_forward: %w", err)
	}
	return nil
}

// configureIface sets up the pod's interface in the calling thread's
// network namespace: arp_notify (announce the address), link up, the
// address and the default route via the gateway.
func configureIface(name string, ip netip.Prefix, gw netip.Addr) error {
	// As the plugins' IPAM step: best effort.
	_ = os.WriteFile("/proc/sys/net/ipv4/conf/"+name+"/arp_notify", []byte("1"), 0o644)
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("pod interface %s: %w", name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("pod interface %s up: %w", name, err)
	}
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(ip)}); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("address %v on %s: %w", ip, name, err)
	}
	route := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, Gw: gw.AsSlice()}
	if err := netlink.RouteAdd(route); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("default route via %v: %w", gw, err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
