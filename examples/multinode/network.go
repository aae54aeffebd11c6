package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
)

// Layout is the network of a multinode cluster: a host bridge joining
// one veth per node; each node lives in its own network namespace with
// its own pod bridge and pod CIDR, and routes to the other nodes' pod
// CIDRs through their addresses on the host bridge.
type Layout struct {
	// Prefix names everything made (bridge, namespaces, veths); at most 8
	// characters so that interface names fit in 15.
	Prefix string
	// Nodes is the number of nodes.
	Nodes int
	// HostNet is the host bridge's subnet; the host takes the first
	// address, node i the (10+i)-th.
	HostNet netip.Prefix
	// PodNet holds the nodes' pod CIDRs: node i gets the i-th /24.
	PodNet netip.Prefix
}

// Bridge is the host bridge's name.
func (l Layout) Bridge() string { return l.Prefix + "br" }

// HostIP is the host's address on the bridge: the API server, registry
// and DNS listen there.
func (l Layout) HostIP() netip.Addr { return l.HostNet.Masked().Addr().Next() }

// Netns names node i's network namespace.
func (l Layout) Netns(i int) string { return fmt.Sprintf("%s-n%d", l.Prefix, i) }

// hostVeth names the host end of node i's veth.
func (l Layout) hostVeth(i int) string { return fmt.Sprintf("%sv%d", l.Prefix, i) }

// NodeName names node i.
func (l Layout) NodeName(i int) string { return fmt.Sprintf("node-%d", i) }

// NodeIP is node i's address (on its eth0, in the host bridge's subnet).
func (l Layout) NodeIP(i int) netip.Addr {
	a := l.HostNet.Masked().Addr()
	for range 10 + i {
		a = a.Next()
	}
	return a
}

// PodCIDR is node i's pod range.
func (l Layout) PodCIDR(i int) netip.Prefix {
	b := l.PodNet.Masked().Addr().As4()
	b[2] += byte(i)
	return netip.PrefixFrom(netip.AddrFrom4(b), 24)
}

// ip runs the ip command.
func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Create makes the host bridge, the namespaces, veths, addresses and
// routes. On error it removes what it made.
func (l Layout) Create(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			_ = l.Remove(context.WithoutCancel(ctx))
		}
	}()
	br := l.Bridge()
	hostAddr := netip.PrefixFrom(l.HostIP(), l.HostNet.Bits()).String()
	steps := [][]string{
		{"link", "add", br, "type", "bridge"},
		{"addr", "add", hostAddr, "dev", br},
		{"link", "set", br, "up"},
	}
	for i := range l.Nodes {
		ns, hv := l.Netns(i), l.hostVeth(i)
		steps = append(steps,
			[]string{"netns", "add", ns},
			[]string{"link", "add", hv, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"link", "set", hv, "master", br},
			[]string{"link", "set", hv, "up"},
			[]string{"-n", ns, "addr", "add", netip.PrefixFrom(l.NodeIP(i), l.HostNet.Bits()).String(), "dev", "eth0"},
			[]string{"-n", ns, "link", "set", "eth0", "up"},
			[]string{"-n", ns, "link", "set", "lo", "up"},
			// The host reaches every node's pods through that node.
			[]string{"route", "add", l.PodCIDR(i).String(), "via", l.NodeIP(i).String(), "dev", br},
		)
		for j := range l.Nodes {
			if j != i {
				steps = append(steps, []string{"-n", ns, "route", "add", l.PodCIDR(j).String(), "via", l.NodeIP(j).String(), "dev", "eth0"})
			}
		}
	}
	for _, s := range steps {
		if err := ip(ctx, s...); err != nil {
			return fmt.Errorf("multinode: network: %w", err)
		}
	}
	// Nodes forward between their pods and the other nodes.
	for i := range l.Nodes {
		if err := ip(ctx, "netns", "exec", l.Netns(i), "sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
			return fmt.Errorf("multinode: network: %w", err)
		}
	}
	return nil
}

// Remove deletes the namespaces (with everything in them: veth ends, pod
// bridges, routes), the host veths, the host routes and the bridge. It
// removes what exists and reports the other failures.
func (l Layout) Remove(ctx context.Context) error {
	var errs []error
	for i := range l.Nodes {
		if l.PodNet.IsValid() {
			_ = ip(ctx, "route", "del", l.PodCIDR(i).String())
		}
		// Deleting the host end deletes the node's eth0 with it.
		if linkExists(l.hostVeth(i)) {
			if err := ip(ctx, "link", "del", l.hostVeth(i)); err != nil && linkExists(l.hostVeth(i)) {
				errs = append(errs, err)
			}
		}
		if _, err := os.Stat("/run/netns/" + l.Netns(i)); err == nil {
			if err := ip(ctx, "netns", "del", l.Netns(i)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if linkExists(l.Bridge()) {
		if err := ip(ctx, "link", "del", l.Bridge()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Leftovers lists what of the layout still exists on the machine.
func (l Layout) Leftovers() []string {
	var left []string
	if linkExists(l.Bridge()) {
		left = append(left, "bridge "+l.Bridge())
	}
	for i := range l.Nodes {
		if _, err := os.Stat("/run/netns/" + l.Netns(i)); err == nil {
			left = append(left, "netns "+l.Netns(i))
		}
		if linkExists(l.hostVeth(i)) {
			left = append(left, "veth "+l.hostVeth(i))
		}
	}
	return left
}

func linkExists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}
