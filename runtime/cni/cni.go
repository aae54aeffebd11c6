package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	gocni "github.com/containerd/go-cni"
	"github.com/containernetworking/cni/libcni"

	"github.com/tugboatdev/tugboat/runtime"
)

// DefaultPluginDir is where Debian installs the CNI plugins.
const DefaultPluginDir = "/usr/lib/cni"

// libcniDir is where libcni caches results whatever we configure.
const libcniDir = "/var/lib/cni"

// Config describes a node's pod network.
type Config struct {
	// Name names the CNI network (it keys IPAM and cache state).
	Name string
	// Bridge is the Linux bridge's name (at most 15 characters).
	Bridge string
	// PodCIDR is the node's pod range; the bridge takes its first address
	// as the pods' gateway.
	PodCIDR netip.Prefix
	// PluginDirs hold the plugin binaries; default DefaultPluginDir.
	PluginDirs []string
	// IPAMDir keeps host-local allocations; default
	// /var/lib/cni/networks (the plugin's own default).
	IPAMDir string
	// MTU of the bridge and pod interfaces; 0 means the plugin's default.
	MTU int
	// ExecIPAM runs the host-local IPAM plugin (through the bridge plugin)
	// for every pod. By default only pods with hostPorts do; the others
	// get their IP from an allocator in this process that uses
	// host-local's on-disk store (the same directory, lock and file
	// format, so the two share one pool), saving a plugin process per pod
	// start and removal.
	ExecIPAM bool
}

// Network sets up and tears down pod networking.
type Network struct {
	cfg Config
	// plain attaches pods without hostPorts (bridge with host-local);
	// withPorts adds the portmap plugin; l2 is the bridge plugin without
	// IPAM, for pods whose IP ips allocates in-process (nil with
	// Config.ExecIPAM). All share the network name, hence the IPAM store.
	plain     gocni.CNI
	withPorts gocni.CNI
	l2        gocni.CNI
	ips       *ipStore

	// gwMu guards gwBridge, the interface index of the bridge that has
	// the gateway address with IP forwarding on (what the bridge plugin
	// does as the gateway when it runs the IPAM itself); 0 for none yet.
	gwMu     sync.Mutex
	gwBridge int
}

// ConfList renders the CNI configuration list: bridge (with host-local
// IPAM; the bridge is the pods' gateway, without masquerading) then
// portmap for hostPort. Pods with hostPorts are attached with it; the
// others (unless Config.ExecIPAM) with the bridge plugin alone and the
// in-process allocator, which gives them the same addressing.
func (c Config) ConfList() ([]byte, error) { return c.confList(true) }

func (c Config) confList(portmap bool) ([]byte, error) {
	return c.renderConfList(portmap, true)
}

// renderConfList renders the bridge (with host-local IPAM when ipam, else
// layer 2 only: the veth pair on the bridge) and optionally portmap.
func (c Config) renderConfList(portmap, ipam bool) ([]byte, error) {
	ipamConf := map[string]any{
		"type":   "host-local",
		"ranges": [][]map[string]string{{{"subnet": c.PodCIDR.Masked().String()}}},
		"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
	}
	if c.IPAMDir != "" {
		ipamConf["dataDir"] = c.IPAMDir
	}
	bridge := map[string]any{
		"type": "bridge", "bridge": c.Bridge, "isGateway": true, "ipMasq": false,
		"hairpinMode": true, "ipam": ipamConf,
	}
	if !ipam {
		bridge = map[string]any{"type": "bridge", "bridge": c.Bridge, "hairpinMode": true}
	}
	if c.MTU > 0 {
		bridge["mtu"] = c.MTU
	}
	plugins := []any{bridge}
	if portmap {
		plugins = append(plugins, map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}})
	}
	return json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": c.Name, "plugins": plugins})
}

// New loads the network configuration. It checks the plugins exist but
// changes nothing on the host until the first Setup.
func New(cfg Config) (*Network, error) {
	if cfg.Name == "" || cfg.Bridge == "" || !cfg.PodCIDR.IsValid() || !cfg.PodCIDR.Addr().Is4() {
		return nil, fmt.Errorf("cni: Name, Bridge and an IPv4 PodCIDR are required (got %q, %q, %v)", cfg.Name, cfg.Bridge, cfg.PodCIDR)
	}
	if len(cfg.Bridge) > 15 {
		return nil, fmt.Errorf("cni: bridge name %q is longer than 15 characters", cfg.Bridge)
	}
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = []string{DefaultPluginDir}
	}
	for _, p := range []string{"bridge", "host-local", "loopback", "portmap"} {
		if _, err := findPlugin(cfg.PluginDirs, p); err != nil {
			return nil, err
		}
	}
	n := &Network{cfg: cfg}
	for _, v := range []struct {
		portmap, ipam bool
		dst           *gocni.CNI
	}{{false, true, &n.plain}, {true, true, &n.withPorts}, {false, false, &n.l2}} {
		if !v.ipam && cfg.ExecIPAM {
			continue
		}
		list, err := cfg.renderConfList(v.portmap, v.ipam)
		if err != nil {
			return nil, fmt.Errorf("cni: %w", err)
		}
		c, err := gocni.New(gocni.WithPluginDir(cfg.PluginDirs), gocni.WithMinNetworkCount(1))
		if err != nil {
			return nil, fmt.Errorf("cni: %w", err)
		}
		// Only the pod network, which thus gets eth0 (go-cni names
		// interfaces by load order; a loopback network loaded first would
		// push it to eth1). Setup brings lo up itself, saving a plugin run.
		if err := c.Load(gocni.WithConfListBytes(list)); err != nil {
			return nil, fmt.Errorf("cni: %w", err)
		}
		*v.dst = c
	}
	if !cfg.ExecIPAM {
		ips, err := newIPStore(cfg.IPAMDir, cfg.Name, cfg.PodCIDR)
		if err != nil {
			return nil, err
		}
		n.ips = ips
	}
	return n, nil
}

func findPlugin(dirs []string, name string) (string, error) {
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("cni: plugin %q not found in %v (install containernetworking-plugins)", name, dirs)
}

// Config returns the network's configuration.
func (n *Network) Config() Config { return n.cfg }

func (n *Network) pick(ports []runtime.PortMapping) (gocni.CNI, []gocni.NamespaceOpts) {
	opts := portOpts(ports)
	switch {
	case len(opts) > 0:
		return n.withPorts, opts
	case n.l2 != nil:
		return n.l2, nil
	}
	return n.plain, nil
}

// ifName is the pod's interface (go-cni names the first network's eth0).
const ifName = gocni.DefaultPrefix + "0"

func portOpts(ports []runtime.PortMapping) []gocni.NamespaceOpts {
	var pm []gocni.PortMapping
	for _, p := range ports {
		if p.HostPort <= 0 {
			continue
		}
		proto := strings.ToLower(string(p.Protocol))
		if proto == "" {
			proto = "tcp"
		}
		pm = append(pm, gocni.PortMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: proto, HostIP: p.HostIP})
	}
	if len(pm) == 0 {
		return nil
	}
	return []gocni.NamespaceOpts{gocni.WithCapabilityPortMap(pm)}
}

// Setup attaches the namespace at netnsPath to the network under the given
// sandbox id and returns the pod's IP.
func (n *Network) Setup(ctx context.Context, id, netnsPath string, ports []runtime.PortMapping) (string, error) {
	c, opts := n.pick(ports)
	if c == n.l2 {
		return n.setupL2(ctx, id, netnsPath)
	}
	if err := LoopbackUp(netnsPath); err != nil {
		return "", fmt.Errorf("cni: setup %s: %w", id, err)
	}
	res, err := c.Setup(ctx, id, netnsPath, opts...)
	if err != nil {
		return "", fmt.Errorf("cni: setup %s: %w", id, err)
	}
	for _, iface := range res.Interfaces {
		for _, ipc := range iface.IPConfigs {
			if ip := ipc.IP.To4(); ip != nil {
				return ip.String(), nil
			}
		}
	}
	return "", fmt.Errorf("cni: setup %s: no IPv4 address in result", id)
}

// Teardown detaches the sandbox and releases its IP. It is idempotent and
// works when the namespace is already gone.
func (n *Network) Teardown(ctx context.Context, id, netnsPath string, ports []runtime.PortMapping) error {
	c, opts := n.pick(ports)
	if err := c.Remove(ctx, id, netnsPath, opts...); err != nil {
		return fmt.Errorf("cni: teardown %s: %w", id, err)
	}
	return n.release(id)
}

// release frees the IP the in-process allocator holds for sandbox id
// (none, for a pod host-local served: its DEL released it).
func (n *Network) release(id string) error {
	if n.ips == nil {
		return nil
	}
	if err := n.ips.release(id, ifName); err != nil {
		return fmt.Errorf("cni: teardown %s: %w", id, err)
	}
	return nil
}

// TeardownCached detaches a sandbox with the configuration (and port
// mappings) libcni cached when the sandbox was attached, as a node must
// after a reboot or a change of its network configuration; without a
// cached configuration it is Teardown. It works when the namespace is
// already gone: the plugins then only release what they hold on the node
// (the IP, the veth's host side, port mappings).
func (n *Network) TeardownCached(ctx context.Context, id, netnsPath string, ports []runtime.PortMapping) error {
	lib := libcni.NewCNIConfigWithCacheDir(n.cfg.PluginDirs, "", nil)
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: netnsPath, IfName: ifName}
	data, cachedRt, err := lib.GetNetworkListCachedConfig(&libcni.NetworkConfigList{Name: n.cfg.Name}, rt)
	if err != nil || data == nil {
		return n.Teardown(ctx, id, netnsPath, ports)
	}
	list, err := libcni.ConfListFromBytes(data)
	if err != nil {
		return fmt.Errorf("cni: teardown %s: cached configuration: %w", id, err)
	}
	if err := lib.DelNetworkList(ctx, list, cachedRt); err != nil {
		return fmt.Errorf("cni: teardown %s: %w", id, err)
	}
	return n.release(id)
}

// Destroy removes what the network left on the host once no pod uses it:
// the bridge, the host-local allocations and libcni's cached results for
// this network name.
func (n *Network) Destroy(context.Context) error {
	var errs []error
	if _, err := net.InterfaceByName(n.cfg.Bridge); err == nil {
		if out, err := exec.Command("ip", "link", "delete", n.cfg.Bridge).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("cni: delete bridge %s: %v: %s", n.cfg.Bridge, err, out))
		}
	}
	ipamDir := n.cfg.IPAMDir
	if ipamDir == "" {
		ipamDir = filepath.Join(libcniDir, "networks")
	}
	if err := os.RemoveAll(filepath.Join(ipamDir, n.cfg.Name)); err != nil {
		errs = append(errs, err)
	}
	matches, _ := filepath.Glob(filepath.Join(libcniDir, "results", n.cfg.Name+"-*"))
	for _, m := range matches {
		if err := os.Remove(m); err != nil {
			errs = append(errs, err)
		}
	}
	// Empty directories only: other networks may still use them.
	_ = os.Remove(filepath.Join(libcniDir, "results"))
	_ = os.Remove(filepath.Join(libcniDir, "networks"))
	_ = os.Remove(libcniDir)
	removeIdlePortmapChains()
	n.gwMu.Lock()
	n.gwBridge = 0
	n.gwMu.Unlock()
	return errors.Join(errs...)
}

// removeIdlePortmapChains deletes the portmap plugin's shared NAT chains
// when no pod uses them any more (no per-pod chain hangs off
// CNI-HOSTPORT-DNAT).
func removeIdlePortmapChains() {
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-S", "CNI-HOSTPORT-DNAT").Output()
	if err != nil || strings.Contains(string(out), "-A CNI-HOSTPORT-DNAT") {
		return
	}
	ipt := func(args ...string) {
		_ = exec.Command("iptables", append([]string{"-w", "-t", "nat"}, args...)...).Run()
	}
	ipt("-D", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT")
	ipt("-D", "OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT")
	ipt("-D", "POSTROUTING", "-m", "comment", "--comment", "CNI portfwd requiring masquerade", "-j", "CNI-HOSTPORT-MASQ")
	for _, chain := range []string{"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"} {
		ipt("-F", chain)
		ipt("-X", chain)
	}
}
