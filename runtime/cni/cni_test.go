package cni

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tugboatdev/tugboat/internal/testenv"
)

func TestConfList(t *testing.T) {
	b, err := Config{Name: "pods", Bridge: "tb0", PodCIDR: netip.MustParsePrefix("10.244.3.7/24"), IPAMDir: "/x", MTU: 1400}.ConfList()
	if err != nil {
		t.Fatal(err)
	}
	var got any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	var want any
	_ = json.Unmarshal([]byte(`{"cniVersion":"1.0.0","name":"pods","plugins":[
		{"type":"bridge","bridge":"tb0","isGateway":true,"ipMasq":false,"hairpinMode":true,"mtu":1400,
		 "ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.3.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":"/x"}},
		{"type":"portmap","capabilities":{"portMappings":true}}]}`), &want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "no name", cfg: Config{Bridge: "b", PodCIDR: netip.MustParsePrefix("10.244.0.0/24")}, want: "required"},
		{name: "ipv6", cfg: Config{Name: "n", Bridge: "b", PodCIDR: netip.MustParsePrefix("fd00::/64")}, want: "IPv4"},
		{name: "long bridge", cfg: Config{Name: "n", Bridge: "a-very-long-bridge", PodCIDR: netip.MustParsePrefix("10.244.0.0/24")}, want: "15 characters"},
		{name: "no plugins", cfg: Config{Name: "n", Bridge: "b", PodCIDR: netip.MustParsePrefix("10.244.0.0/24"), PluginDirs: []string{t.TempDir()}}, want: "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestNetNS(t *testing.T) {
	testenv.NeedRoot(t)
	path := filepath.Join(t.TempDir(), "ns1")
	if err := NewNetNS(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = DeleteNetNS(path) })
	var names []string
	err := Do(path, func() error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"lo"}, names); diff != "" {
		t.Errorf("interfaces in a new namespace (-want +got):\n%s", diff)
	}
	if err := LoopbackUp(path); err != nil {
		t.Fatal(err)
	}
	var up bool
	_ = Do(path, func() error {
		lo, err := net.InterfaceByName("lo")
		up = err == nil && lo.Flags&net.FlagUp != 0
		return err
	})
	if !up {
		t.Error("lo is not up after LoopbackUp")
	}
	if err := DeleteNetNS(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("namespace file left: %v", err)
	}
	if err := DeleteNetNS(path); err != nil {
		t.Errorf("second delete: %v", err)
	}
}

// Example renders the network configuration the pods of a node use.
func ExampleConfig_ConfList() {
	b, _ := Config{Name: "tugboat", Bridge: "tugboat0", PodCIDR: netip.MustParsePrefix("10.244.1.0/24")}.ConfList()
	fmt.Println(string(b))
	// Output:
	// {"cniVersion":"1.0.0","name":"tugboat","plugins":[{"bridge":"tugboat0","hairpinMode":true,"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}],"type":"host-local"},"isGateway":true,"type":"bridge"},{"capabilities":{"portMappings":true},"type":"portmap"}]}
}
