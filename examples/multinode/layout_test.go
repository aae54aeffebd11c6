package main

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestLayoutAddresses checks the names and addresses a layout gives each
// node: interface names fit Linux's 15 characters, node addresses follow
// the host's, pod CIDRs are consecutive /24s.
func TestLayoutAddresses(t *testing.T) {
	l := Layout{Prefix: "tbmn1234", Nodes: 3, HostNet: netip.MustParsePrefix("10.251.0.0/24"), PodNet: netip.MustParsePrefix("10.245.0.0/16")}
	type node struct{ Name, Netns, Veth, IP, PodCIDR string }
	var got []node
	for i := range l.Nodes {
		got = append(got, node{l.NodeName(i), l.Netns(i), l.hostVeth(i), l.NodeIP(i).String(), l.PodCIDR(i).String()})
	}
	want := []node{
		{"node-0", "tbmn1234-n0", "tbmn1234v0", "10.251.0.10", "10.245.0.0/24"},
		{"node-1", "tbmn1234-n1", "tbmn1234v1", "10.251.0.11", "10.245.1.0/24"},
		{"node-2", "tbmn1234-n2", "tbmn1234v2", "10.251.0.12", "10.245.2.0/24"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layout (-want +got):\n%s", diff)
	}
	if l.HostIP().String() != "10.251.0.1" || l.Bridge() != "tbmn1234br" {
		t.Errorf("host %s bridge %s", l.HostIP(), l.Bridge())
	}
	for _, n := range []string{l.Bridge(), l.hostVeth(199)} {
		if len(n) > 15 {
			t.Errorf("interface name %q longer than 15", n)
		}
	}
	if got := tenth(netip.MustParsePrefix("10.113.0.0/16")).String(); got != "10.113.0.10" {
		t.Errorf("DNS address %s, want 10.113.0.10", got)
	}
}
