package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/vishvananda/netlink"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/netproxy"
	"github.com/tugboatdev/tugboat/netproxy/dns"
	"github.com/tugboatdev/tugboat/netproxy/route"
	"github.com/tugboatdev/tugboat/orchestrator/agent"
	"github.com/tugboatdev/tugboat/orchestrator/apiserver"
	"github.com/tugboatdev/tugboat/orchestrator/controllers"
	"github.com/tugboatdev/tugboat/orchestrator/serviceaccount"
	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/cni"
	"github.com/tugboatdev/tugboat/runtime/containerd"
	"github.com/tugboatdev/tugboat/runtime/simulated"
	"github.com/tugboatdev/tugboat/scheduler"
	"github.com/tugboatdev/tugboat/store"
)

// Defaults of [Config].
const (
	DefaultAPIAddress          = "127.0.0.1:6443"
	DefaultRegistryAddress     = "127.0.0.1:5000"
	DefaultContainerdNamespace = "tugboat"
	DefaultBridge              = "tugboat0"
	DefaultClusterDomain       = "cluster.local"
	// CgroupV2Root is where the cgroup v2 hierarchy is mounted on hybrid
	// machines; the proxy's cgroup is made under it.
	CgroupV2Root = "/sys/fs/cgroup/unified"
	// KubeconfigFile is the name of the admin kubeconfig in DataDir.
	KubeconfigFile = "admin.kubeconfig"
)

// Default address ranges.
const (
	DefaultServiceCIDR = "10.96.0.0/12"
	DefaultPodCIDR     = "10.244.0.0/24"
)

// Config configures a [Cluster]. Only DataDir is required.
type Config struct {
	// DataDir holds everything durable: the store's log, the PKI, the
	// admin kubeconfig, the node agent's volumes and logs, and the private
	// containerd. Restarting over the same DataDir brings back every object
	// and re-adopts the running pods. Keep it short: containerd's socket
	// lives under it and must fit in 100 bytes.
	DataDir string
	// Simulated runs Nodes simulated nodes (node agents over
	// runtime/simulated: no processes, no network, no proxy) named
	// simulated-0 ... simulated-(Nodes-1), for scale exploration.
	Simulated bool
	// Nodes is the number of simulated nodes (default 1). Without
	// Simulated, exactly one real node runs.
	Nodes int
	// NodeName names the real node (default: the host name).
	NodeName string
	// ContainerdSocket is the socket of an existing containerd; empty
	// starts a private containerd under DataDir.
	ContainerdSocket string
	// ContainerdNamespace is the containerd namespace of the node's
	// containers and the name of their parent cgroup "tugboat-<namespace>"
	// (default "tugboat"). Two clusters on one machine need two namespaces.
	ContainerdNamespace string
	// ServiceCIDR is the range of Service ClusterIPs (default
	// 10.96.0.0/12); it gets a blackhole route. The cluster DNS is the
	// tenth address (10.96.0.10).
	ServiceCIDR netip.Prefix
	// PodCIDR is the real node's pod range (default 10.244.0.0/24); its
	// first address is the bridge, the node's IP and the DNS server's
	// address. Simulated node i gets the i-th /24 after it.
	PodCIDR netip.Prefix
	// Bridge names the node's Linux bridge (default "tugboat0").
	Bridge string
	// APIAddress is where the API server listens (default
	// 127.0.0.1:6443; port 0 picks a free port).
	APIAddress string
	// RegistryAddress is where the demo image registry listens (default
	// 127.0.0.1:5000); "off" runs none.
	RegistryAddress string
	// ProxyMode chooses the service data plane (default automatic).
	ProxyMode netproxy.Mode
	// ProxyCgroup is the cgroup v2 directory the eBPF proxy serves.
	// Default: the pods' parent cgroup
	// /sys/fs/cgroup/unified/tugboat-<namespace>, which the cluster makes;
	// host processes placed in it (or in a child) reach Services too.
	// Naming /sys/fs/cgroup/unified serves every process of the machine,
	// as kube-proxy does.
	ProxyCgroup string
	// ClusterDomain is the DNS domain (default cluster.local).
	ClusterDomain string
	// NoServiceAccounts turns ServiceAccount tokens off. By default, as
	// in Kubernetes, the API server issues and verifies ServiceAccount
	// tokens (signing key DataDir/pki/sa.key; kubectl create token), its
	// ServiceAccount admission gives every new pod the
	// kube-api-access-xxxxx token volume, and the node agents write the
	// tokens into it.
	NoServiceAccounts bool
	// Logger receives every component's logs; nil means slog.Default().
	Logger *slog.Logger
}

// withDefaults fills the defaults in.
func (c Config) withDefaults() (Config, error) {
	if c.DataDir == "" {
		return c, errors.New("cluster: Config.DataDir is required")
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return c, fmt.Errorf("cluster: %w", err)
	}
	c.DataDir = abs
	if c.Nodes <= 0 {
		c.Nodes = 1
	}
	if !c.Simulated && c.Nodes != 1 {
		return c, fmt.Errorf("cluster: %d real nodes asked; one process runs one real node (use Simulated for more)", c.Nodes)
	}
	if c.NodeName == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "node"
		}
		c.NodeName = strings.ToLower(h)
	}
	if c.ContainerdNamespace == "" {
		c.ContainerdNamespace = DefaultContainerdNamespace
	}
	if !c.ServiceCIDR.IsValid() {
		c.ServiceCIDR = netip.MustParsePrefix(DefaultServiceCIDR)
	}
	c.ServiceCIDR = c.ServiceCIDR.Masked()
	if !c.PodCIDR.IsValid() {
		c.PodCIDR = netip.MustParsePrefix(DefaultPodCIDR)
	}
	c.PodCIDR = c.PodCIDR.Masked()
	if !c.PodCIDR.Addr().Is4() || c.PodCIDR.Bits() > 30 {
		return c, fmt.Errorf("cluster: pod CIDR %s must be IPv4 with room for pods", c.PodCIDR)
	}
	if c.Bridge == "" {
		c.Bridge = DefaultBridge
	}
	if len(c.Bridge) > 15 {
		return c, fmt.Errorf("cluster: bridge name %q is longer than 15 characters", c.Bridge)
	}
	if c.APIAddress == "" {
		c.APIAddress = DefaultAPIAddress
	}
	if c.RegistryAddress == "" {
		c.RegistryAddress = DefaultRegistryAddress
	}
	if c.ProxyCgroup == "" {
		c.ProxyCgroup = filepath.Join(CgroupV2Root, "tugboat-"+c.ContainerdNamespace)
	}
	if c.ClusterDomain == "" {
		c.ClusterDomain = DefaultClusterDomain
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// DNSAddress returns the ClusterIP of the kube-dns Service: the tenth
// address of the service range.
func (c Config) DNSAddress() netip.Addr {
	cidr := c.ServiceCIDR
	if !cidr.IsValid() {
		cidr = netip.MustParsePrefix(DefaultServiceCIDR)
	}
	a := cidr.Masked().Addr()
	for range 10 {
		a = a.Next()
	}
	return a
}

// gateway returns the first address of the pod range: the bridge's.
func gateway(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }

// Cluster is a whole single-machine Kubernetes cluster in one process:
// the durable store, the API server on loopback (TLS, admin kubeconfig in
// DataDir), the scheduler, the controller manager, a node agent on
// containerd (or simulated nodes), the service proxy, the cluster DNS and a
// registry holding the demo images. Create it with [New] and call
// [Cluster.Run].
type Cluster struct {
	cfg Config
	log *slog.Logger

	ready chan struct{}
	ran   atomic.Bool

	mu        sync.Mutex
	st        *store.Store
	api       *apiserver.Server
	apiURL    string
	regHost   string
	proxyMode netproxy.Mode
	tokens    *serviceaccount.Issuer
	agents    []*agent.Agent
	started   []string
	daemonPID int
	// proxySynced is closed once the proxy programmed the store's
	// Services (nil without a proxy).
	proxySynced <-chan struct{}
	// proxyMetrics puts the proxy's metrics on the API server's /metrics
	// once the proxy runs.
	proxyMetrics *laterCollector
}

// New validates cfg and returns a cluster. Nothing starts before Run.
func New(cfg Config) (*Cluster, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Cluster{cfg: cfg, log: cfg.Logger, ready: make(chan struct{}), proxyMetrics: &laterCollector{}}, nil
}

// Config returns the configuration with its defaults filled in.
func (c *Cluster) Config() Config { return c.cfg }

// Ready is closed once every component runs, the node is registered and
// the proxy and DNS are programmed.
func (c *Cluster) Ready() <-chan struct{} { return c.ready }

// KubeconfigPath is the admin kubeconfig the cluster writes.
func (c *Cluster) KubeconfigPath() string { return filepath.Join(c.cfg.DataDir, KubeconfigFile) }

// Store returns the embedded store while Run runs (nil before Run opened
// it; closed after Run returned).
func (c *Cluster) Store() store.Interface {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st == nil {
		return nil
	}
	return c.st
}

// APIServerURL returns https://host:port of the API server once it listens.
func (c *Cluster) APIServerURL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.apiURL
}

// RegistryHost returns host:port of the demo registry once it runs.
func (c *Cluster) RegistryHost() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.regHost
}

// ProxyMode returns the service data plane that runs (empty for
// simulated clusters).
func (c *Cluster) ProxyMode() netproxy.Mode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proxyMode
}

// ProxyCgroup returns the cgroup v2 directory the eBPF proxy serves.
func (c *Cluster) ProxyCgroup() string { return c.cfg.ProxyCgroup }

// NodeIP returns the real node's address (the bridge's address).
func (c *Cluster) NodeIP() netip.Addr { return gateway(c.cfg.PodCIDR) }

// Started lists one line per started component, in start order.
func (c *Cluster) Started() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.started...)
}

// ContainerdPID returns the PID of the private containerd, or 0.
func (c *Cluster) ContainerdPID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.daemonPID
}

func (c *Cluster) note(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	c.mu.Lock()
	c.started = append(c.started, line)
	c.mu.Unlock()
	c.log.Info("cluster: started " + line)
}

// closers runs cleanup functions in reverse order.
type closers []func()

func (cs *closers) add(f func()) { *cs = append(*cs, f) }
func (cs closers) run() {
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}

// Run starts every component and runs them until ctx ends or one fails.
// On return the components are stopped; running pods are left running,
// to be re-adopted by the next Run over the same DataDir (use [Purge] to
// remove everything). A Cluster runs once: to restart, make a new one
// with [New] over the same Config.
func (c *Cluster) Run(ctx context.Context) (err error) {
	if c.ran.Swap(true) {
		return errors.New("cluster: Run called twice; make a new Cluster to restart")
	}
	cfg := c.cfg
	var cleanup closers
	defer func() { cleanup.run() }() // not "defer cleanup.run()": that copies the empty slice now
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}

	// Store.
	st, err := store.Open(ctx, store.Config{
		Dir:         filepath.Join(cfg.DataDir, "store"),
		ServiceCIDR: cfg.ServiceCIDR,
		Logger:      c.log.With("component", "store"),
	})
	if err != nil {
		return fmt.Errorf("cluster: store: %w", err)
	}
	cleanup.add(func() {
		if err := st.Close(); err != nil {
			c.log.Warn("cluster: closing store", "err", err)
		}
	})
	c.mu.Lock()
	c.st = st
	c.mu.Unlock()
	c.note("store (durable, %s)", filepath.Join(cfg.DataDir, "store"))

	// ServiceAccount tokens: one issuer for the API server and the agents.
	if !cfg.NoServiceAccounts {
		key, err := serviceaccount.LoadOrCreateKey(filepath.Join(cfg.DataDir, "pki", "sa.key"))
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		iss, err := serviceaccount.New(serviceaccount.Config{Store: st, Key: key})
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		c.mu.Lock()
		c.tokens = iss
		c.mu.Unlock()
	}

	// Demo image registry.
	if cfg.RegistryAddress != "off" {
		host, stop, err := startRegistry(ctx, cfg.RegistryAddress)
		if err != nil {
			return err
		}
		cleanup.add(stop)
		if err := pushDemoImages(ctx, host); err != nil {
			return err
		}
		c.mu.Lock()
		c.regHost = host
		c.mu.Unlock()
		c.note("image registry on %s with %s", host, strings.Join(DemoImages(host), ", "))
	}

	g, gctx := errgroup.WithContext(ctx)
	// A start-up failure stops what already runs before the deferred
	// cleanup closes the runtime and the store under it.
	running := false
	defer func() {
		if !running {
			cancel()
			_ = g.Wait()
		}
	}()
	streamers := NewNodeStreamers()
	metrics := NewNodeMetrics(st)

	// Node agents.
	if cfg.Simulated {
		if err := c.startSimulated(gctx, g, st, streamers, metrics); err != nil {
			return err
		}
	} else {
		if err := c.startNode(gctx, g, st, streamers, metrics, &cleanup); err != nil {
			return err
		}
	}

	// API server.
	api, err := apiserver.New(apiserver.Config{
		Collectors:              append(st.Collectors(), c.proxyMetrics),
		Store:                   st,
		DataDir:                 cfg.DataDir,
		Streamer:                streamers,
		Metrics:                 metrics,
		ServiceAccounts:         c.tokens,
		ServiceAccountAdmission: c.tokens != nil,
		Logger:                  c.log.With("component", "apiserver"),
	})
	if err != nil {
		return fmt.Errorf("cluster: apiserver: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.APIAddress)
	if err != nil {
		return fmt.Errorf("cluster: apiserver: %w", err)
	}
	url := "https://" + ln.Addr().String()
	if err := api.PKI().WriteKubeconfig(c.KubeconfigPath(), url, apiserver.KubeconfigOptions{}); err != nil {
		ln.Close()
		return fmt.Errorf("cluster: kubeconfig: %w", err)
	}
	c.mu.Lock()
	c.api, c.apiURL = api, url
	c.mu.Unlock()
	g.Go(func() error {
		if err := api.Serve(gctx, ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("cluster: apiserver: %w", err)
		}
		return nil
	})
	c.note("API server on %s (kubeconfig %s)", url, c.KubeconfigPath())
	if c.tokens != nil {
		c.note("ServiceAccount tokens (issuer %s, admission on)", c.tokens.Issuer())
	}

	// The default StorageClass: host directories under DataDir/local-path.
	if err := ensureStorageClass(ctx, st); err != nil {
		return err
	}

	// Scheduler.
	sched, err := scheduler.New(gctx, st, scheduler.Config{Logger: c.log.With("component", "scheduler")})
	if err != nil {
		return fmt.Errorf("cluster: scheduler: %w", err)
	}
	g.Go(func() error { return wrap("scheduler", sched.Run(gctx)) })
	c.note("scheduler")

	// Controllers.
	mgr := controllers.NewManager(controllers.ManagerOptions{
		Store:          st,
		LeaderElection: true,
		Identity:       cfg.NodeName,
		Log:            c.log.With("component", "controllers"),
		ServiceCIDRs:   []netip.Prefix{cfg.ServiceCIDR},
		NodePortRange:  store.DefaultNodePortRange(),
		LocalPathDir:   filepath.Join(cfg.DataDir, "local-path"),
		Metrics:        metrics,
		RootCAPEM:      api.PKI().CAPEM,
	})
	g.Go(func() error { return wrap("controller manager", mgr.Run(gctx)) })
	c.note("controller manager (leader election on kube-system/tugboat-controller-manager)")

	// Ready once the nodes are registered, then wait for failure or stop.
	g.Go(func() error { return c.waitReady(gctx) })
	running = true
	err = g.Wait()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// DefaultStorageClass names the StorageClass every cluster has, marked as
// the default: PersistentVolumeClaims without a class get host-directory
// volumes under DataDir/local-path.
const DefaultStorageClass = "local-path"

// ensureStorageClass creates the default StorageClass unless it exists.
func ensureStorageClass(ctx context.Context, st store.Interface) error {
	immediate := storagev1.VolumeBindingImmediate
	del := corev1.PersistentVolumeReclaimDelete
	_, err := store.Create(ctx, st, &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        DefaultStorageClass,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"},
		},
		Provisioner:       controllers.LocalPathProvisioner,
		ReclaimPolicy:     &del,
		VolumeBindingMode: &immediate,
	})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("cluster: default StorageClass: %w", err)
	}
	return nil
}

// tokenRequester returns the token issuer for the agents, or nil (an
// untyped nil, so that the agent sees no requester) without one.
func (c *Cluster) tokenRequester() agent.TokenRequester {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokens == nil {
		return nil
	}
	return c.tokens
}

// wrap names a component in its error; a clean stop is no error.
func wrap(what string, err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return nil
	}
	return fmt.Errorf("cluster: %s: %w", what, err)
}

// waitReady closes c.ready once every node agent registered its Node as
// Ready and the service proxy did its first full sync.
func (c *Cluster) waitReady(ctx context.Context) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		c.mu.Lock()
		agents, synced := c.agents, c.proxySynced
		c.mu.Unlock()
		ok := true
		if synced != nil {
			select {
			case <-synced:
			default:
				ok = false
			}
		}
		for _, a := range agents {
			if n := a.Node(); n == nil || !nodeReady(n) {
				ok = false
				break
			}
		}
		if ok {
			close(c.ready)
			c.log.Info("cluster: ready", "kubeconfig", c.KubeconfigPath())
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// startSimulated runs Nodes agents over simulated runtimes.
func (c *Cluster) startSimulated(ctx context.Context, g *errgroup.Group, st store.Interface, streamers *NodeStreamers, metrics *NodeMetrics) error {
	cfg := c.cfg
	for i := range cfg.Nodes {
		name := fmt.Sprintf("simulated-%d", i)
		cidr := nthSubnet(cfg.PodCIDR, i)
		rt := simulated.New(simulated.Options{PodCIDR: cidr, NodeIP: gateway(cidr).String()})
		a, err := agent.New(agent.Config{
			NodeName:       name,
			Store:          st,
			Runtime:        rt,
			RootDir:        filepath.Join(cfg.DataDir, "nodes", name),
			PodCIDR:        cidr.String(),
			NodeIP:         gateway(cidr).String(),
			Hostname:       name,
			ClusterDNS:     []string{cfg.DNSAddress().String()},
			ClusterDomain:  cfg.ClusterDomain,
			RuntimeName:    "simulated",
			RuntimeVersion: "simulated://1",
			TokenRequester: c.tokenRequester(),
			Log:            c.log.With("component", "agent", "node", name),
		})
		if err != nil {
			return fmt.Errorf("cluster: agent %s: %w", name, err)
		}
		streamers.Add(name, a)
		metrics.Add(name, a)
		c.mu.Lock()
		c.agents = append(c.agents, a)
		c.mu.Unlock()
		g.Go(func() error {
			defer rt.Close()
			return wrap("agent "+name, a.Run(ctx))
		})
	}
	c.note("%d simulated node(s) simulated-0..simulated-%d (runtime/simulated)", cfg.Nodes, cfg.Nodes-1)
	return nil
}

// nthSubnet returns the i-th subnet of p's size after p.
func nthSubnet(p netip.Prefix, i int) netip.Prefix {
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(i) << (32 - p.Bits())
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), p.Bits())
}

// startNode runs the real node: bridge, containerd, the agent, the
// service proxy and the cluster DNS.
func (c *Cluster) startNode(ctx context.Context, g *errgroup.Group, st store.Interface, streamers *NodeStreamers, metrics *NodeMetrics, cleanup *closers) error {
	cfg := c.cfg
	gw := gateway(cfg.PodCIDR)

	// The bridge exists before the first pod so the DNS server can listen
	// on its address; the CNI bridge plugin adopts it.
	if err := ensureBridge(cfg.Bridge, netip.PrefixFrom(gw, cfg.PodCIDR.Bits())); err != nil {
		return err
	}
	netw, err := cni.New(cni.Config{
		Name:    "tugboat-" + cfg.ContainerdNamespace,
		Bridge:  cfg.Bridge,
		PodCIDR: cfg.PodCIDR,
		IPAMDir: filepath.Join(cfg.DataDir, "cni", "networks"),
	})
	if err != nil {
		return fmt.Errorf("cluster: pod network: %w", err)
	}
	c.note("pod network %s on bridge %s (node IP %s)", cfg.PodCIDR, cfg.Bridge, gw)

	// The pods' parent cgroup, which the eBPF proxy serves.
	if err := os.MkdirAll(cfg.ProxyCgroup, 0o755); err != nil && cfg.ProxyMode != netproxy.ModeUserspace {
		c.log.Warn("cluster: cannot make the proxy cgroup", "cgroup", cfg.ProxyCgroup, "err", err)
	}

	rt, err := containerd.New(ctx, containerd.Options{
		DataDir:      filepath.Join(cfg.DataDir, "ctr"),
		Address:      cfg.ContainerdSocket,
		Namespace:    cfg.ContainerdNamespace,
		Network:      netw,
		CgroupParent: "/tugboat-" + cfg.ContainerdNamespace,
		NodeIP:       gw.String(),
		Logger:       c.log.With("component", "containerd"),
	})
	if err != nil {
		return fmt.Errorf("cluster: containerd: %w", err)
	}
	cleanup.add(func() {
		if err := rt.Close(); err != nil {
			c.log.Warn("cluster: closing containerd runtime", "err", err)
		}
	})
	c.mu.Lock()
	c.daemonPID = rt.DaemonPID()
	c.mu.Unlock()
	if cfg.ContainerdSocket != "" {
		c.note("containerd runtime on %s (namespace %s)", cfg.ContainerdSocket, cfg.ContainerdNamespace)
	} else {
		c.note("private containerd (pid %d, namespace %s) under %s", rt.DaemonPID(), cfg.ContainerdNamespace, filepath.Join(cfg.DataDir, "ctr"))
	}

	a, err := agent.New(agent.Config{
		NodeName:       cfg.NodeName,
		Store:          st,
		Runtime:        rt,
		RootDir:        filepath.Join(cfg.DataDir, "agent"),
		PodCIDR:        cfg.PodCIDR.String(),
		NodeIP:         gw.String(),
		ClusterDNS:     []string{cfg.DNSAddress().String()},
		ClusterDomain:  cfg.ClusterDomain,
		RuntimeName:    "containerd",
		RuntimeVersion: "containerd://" + containerdVersion(ctx, rt),
		TokenRequester: c.tokenRequester(),
		Log:            c.log.With("component", "agent"),
	})
	if err != nil {
		return fmt.Errorf("cluster: agent: %w", err)
	}
	streamers.Add(cfg.NodeName, a)
	metrics.Add(cfg.NodeName, a)
	c.mu.Lock()
	c.agents = append(c.agents, a)
	c.mu.Unlock()
	g.Go(func() error { return wrap("agent", a.Run(ctx)) })
	c.note("node agent %s", cfg.NodeName)

	// Service proxy.
	pcfg := netproxy.Config{
		Mode:        cfg.ProxyMode,
		ServiceCIDR: cfg.ServiceCIDR,
		NodeIPs:     []netip.Addr{gw, netip.MustParseAddr("127.0.0.1")},
		Logger:      c.log.With("component", "netproxy"),
	}
	if cfg.ProxyMode != netproxy.ModeUserspace {
		pcfg.Cgroup = cfg.ProxyCgroup
		pcfg.ServeHost = filepath.Clean(cfg.ProxyCgroup) == CgroupV2Root // named explicitly: a real node
	}
	px, err := netproxy.New(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("cluster: service proxy: %w", err)
	}
	cleanup.add(func() {
		if err := px.Close(); err != nil {
			c.log.Warn("cluster: closing proxy", "err", err)
		}
	})
	c.mu.Lock()
	c.proxyMode = px.Mode()
	c.mu.Unlock()
	c.proxyMetrics.set(px.Collector())
	g.Go(func() error { return wrap("service proxy", px.Run(ctx, st)) })
	if px.Mode() == netproxy.ModeEBPF {
		c.note("service proxy (eBPF, attached to cgroup %s; blackhole route for %s)", cfg.ProxyCgroup, cfg.ServiceCIDR)
	} else {
		c.note("service proxy (%s; blackhole route for %s)", px.Mode(), cfg.ServiceCIDR)
	}

	// Cluster DNS on the bridge address, published as kube-dns.
	cat := dns.NewCatalog()
	srv := dns.NewServer(dns.Config{Domain: cfg.ClusterDomain, Logger: c.log.With("component", "dns")}, cat)
	bound, err := srv.Start(netip.AddrPortFrom(gw, 53).String())
	if err != nil {
		return fmt.Errorf("cluster: dns: %w", err)
	}
	cleanup.add(func() { srv.Close() })
	g.Go(func() error {
		dns.Sync(ctx, st, cat, c.log.With("component", "dns"), nil)
		return nil
	})
	if _, err := dns.Register(ctx, st, dns.Registration{ClusterIP: cfg.DNSAddress().String(), Servers: []netip.AddrPort{bound}}); err != nil {
		return fmt.Errorf("cluster: dns: %w", err)
	}
	c.note("cluster DNS on %s as kube-system/kube-dns %s (%s)", bound, cfg.DNSAddress(), cfg.ClusterDomain)
	c.mu.Lock()
	c.proxySynced = px.Synced()
	c.mu.Unlock()
	return nil
}

// containerdVersion asks the daemon its version.
func containerdVersion(ctx context.Context, rt *containerd.Runtime) string {
	v, err := rt.Client().Version(ctx)
	if err != nil {
		return "unknown"
	}
	return v.Version
}

// ensureBridge makes the Linux bridge with addr, or checks an existing one.
func ensureBridge(name string, addr netip.Prefix) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("cluster: bridge %s: %w", name, err)
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
		if err := netlink.LinkAdd(br); err != nil {
			return fmt.Errorf("cluster: bridge %s: %w", name, err)
		}
		if link, err = netlink.LinkByName(name); err != nil {
			return fmt.Errorf("cluster: bridge %s: %w", name, err)
		}
	}
	if link.Type() != "bridge" {
		return fmt.Errorf("cluster: %s exists and is a %s, not a bridge", name, link.Type())
	}
	nladdr := &netlink.Addr{IPNet: &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), 32)}}
	if err := netlink.AddrReplace(link, nladdr); err != nil {
		return fmt.Errorf("cluster: bridge %s address %s: %w", name, addr, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("cluster: bridge %s up: %w", name, err)
	}
	return nil
}

// Purge removes everything a cluster with cfg left on the machine after
// Run returned: its pods and containers, the containerd namespace, images
// and private daemon, the pod network (bridge and IP allocations), the
// blackhole route of the service range, the proxy cgroup (when the
// cluster made it) and DataDir.
//
// With a private containerd (no ContainerdSocket), Purge starts the daemon
// only when pods or containers are left (processes in the node's cgroups,
// containerd shims, pod namespaces): a runtime with none left is only
// files and mounts under DataDir, which Purge removes directly.
func Purge(ctx context.Context, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	var errs []error
	if !cfg.Simulated {
		netw, err := cni.New(cni.Config{
			Name:    "tugboat-" + cfg.ContainerdNamespace,
			Bridge:  cfg.Bridge,
			PodCIDR: cfg.PodCIDR,
			IPAMDir: filepath.Join(cfg.DataDir, "cni", "networks"),
		})
		if err != nil {
			errs = append(errs, err)
		}
		ctrDir, cgroupParent := filepath.Join(cfg.DataDir, "ctr"), "/tugboat-"+cfg.ContainerdNamespace
		// A shared containerd holds the namespace, so only it can remove
		// it; a private one is started only when something of the
		// runtime still lives (see runtimeAlive).
		alive := true
		if cfg.ContainerdSocket == "" {
			if alive, err = runtimeAlive(ctrDir, cgroupParent); err != nil {
				cfg.Logger.Warn("cluster: purge: starting containerd to tear down", "err", err)
				alive = true
			}
		}
		if alive {
			rt, err := containerd.New(ctx, containerd.Options{
				DataDir:      ctrDir,
				Address:      cfg.ContainerdSocket,
				Namespace:    cfg.ContainerdNamespace,
				Network:      netw,
				CgroupParent: cgroupParent,
				Logger:       cfg.Logger,
			})
			if err != nil {
				errs = append(errs, fmt.Errorf("cluster: purge: containerd: %w", err))
			} else if err := rt.Destroy(ctx); err != nil {
				errs = append(errs, fmt.Errorf("cluster: purge: containerd: %w", err))
			}
		} else if err := removeStoppedRuntime(ctrDir, cgroupParent, cfg.ContainerdNamespace); err != nil {
			errs = append(errs, err)
		}
		// A private containerd must not outlive the purge, even one a
		// crashed program left without its supervisor.
		killDaemons(ctx, filepath.Join(cfg.DataDir, "ctr"))
		if netw != nil {
			if err := netw.Destroy(ctx); err != nil {
				errs = append(errs, fmt.Errorf("cluster: purge: network: %w", err))
			}
		}
		if link, err := netlink.LinkByName(cfg.Bridge); err == nil {
			if err := netlink.LinkDel(link); err != nil {
				errs = append(errs, fmt.Errorf("cluster: purge: bridge: %w", err))
			}
		}
		if b, err := route.InstallBlackhole(nil, cfg.ServiceCIDR); err == nil {
			if err := b.Remove(); err != nil {
				errs = append(errs, fmt.Errorf("cluster: purge: route: %w", err))
			}
		}
		if cfg.ProxyCgroup == filepath.Join(CgroupV2Root, "tugboat-"+cfg.ContainerdNamespace) {
			if err := removeCgroupTree(cfg.ProxyCgroup); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := os.RemoveAll(cfg.DataDir); err != nil {
		errs = append(errs, fmt.Errorf("cluster: purge: %w", err))
	}
	return errors.Join(errs...)
}

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// runtimeAlive reports whether anything of a private containerd runtime
// (its data directory dir, its containers under cgroupParent) still lives
// and so needs containerd to be torn down: a process (the daemon or a shim,
// whose command lines name files under dir, or a container in one of
// cgroupParent's cgroups) or a pod's namespace mount under dir (its
// network is released through the runtime, with a CNI DEL). What else a
// stopped runtime leaves (images, snapshots, containerd's metadata, the
// run directory's tmpfs) is files and plain mounts, which need no daemon.
func runtimeAlive(dir, cgroupParent string) (bool, error) {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if pids := pidsWhere(func(args []string) bool {
		return slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, dir+string(filepath.Separator)) })
	}); len(pids) > 0 {
		return true, nil
	}
	busy, err := cgroupsBusy(cgroupParent)
	if err != nil || busy {
		return true, err
	}
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return true, fmt.Errorf("cluster: purge: %w", err)
	}
	for _, m := range mounts {
		if m.FSType == "nsfs" {
			return true, nil
		}
	}
	return false, nil
}

// pidsWhere lists the processes whose command line match accepts.
func pidsWhere(match func(args []string) bool) []int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []int
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if match(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")) {
			if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// cgroupDirs returns cgroupParent's directory in every mounted cgroup
// hierarchy where it exists.
func cgroupDirs(cgroupParent string) []string {
	hs, _ := filepath.Glob(filepath.Join(cgroupRoot, "*"))
	var out []string
	for _, h := range hs {
		d := filepath.Join(h, cgroupParent)
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			out = append(out, d)
		}
	}
	return out
}

// cgroupsBusy reports whether a process runs in cgroupParent or below it
// in any hierarchy.
func cgroupsBusy(cgroupParent string) (bool, error) {
	for _, d := range cgroupDirs(cgroupParent) {
		errStop := errors.New("busy")
		err := filepath.WalkDir(d, func(path string, e os.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return nil
				}
				return err
			}
			if e.IsDir() {
				return nil
			}
			if e.Name() != "cgroup.procs" {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			if len(strings.TrimSpace(string(b))) > 0 {
				return errStop
			}
			return nil
		})
		if errors.Is(err, errStop) {
			return true, nil
		}
		if err != nil {
			return true, fmt.Errorf("cluster: purge: cgroup %s: %w", d, err)
		}
	}
	return false, nil
}

// removeStoppedRuntime removes what a private containerd runtime that
// [runtimeAlive] found stopped left: the mounts under dir (deepest first)
// and dir itself, the empty cgroups under cgroupParent in every hierarchy,
// and runc's state directory of namespace ns (containerd 1.6 keeps it
// under /run/containerd/runc whatever its state directory is) when empty.
func removeStoppedRuntime(dir, cgroupParent, ns string) error {
	var errs []error
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		errs = append(errs, fmt.Errorf("cluster: purge: %w", err))
	}
	slices.SortFunc(mounts, func(a, b *mountinfo.Info) int { return len(b.Mountpoint) - len(a.Mountpoint) })
	for _, m := range mounts {
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("cluster: purge: unmount %s: %w", m.Mountpoint, err))
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("cluster: purge: %w", err))
	}
	for _, d := range cgroupDirs(cgroupParent) {
		errs = append(errs, removeCgroupTree(d))
	}
	_ = os.Remove(filepath.Join("/run/containerd/runc", ns))
	return errors.Join(errs...)
}

// removeCgroupTree removes an empty cgroup directory and its empty
// children, deepest first.
func removeCgroupTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cluster: purge: cgroup: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroupTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cluster: purge: cgroup %s: %w", dir, err)
	}
	return nil
}

var _ runtime.Runtime = (*containerd.Runtime)(nil)

// killDaemons kills the containerd processes whose command line names a
// configuration under dir (the private daemons this cluster started),
// looking again for a moment in case a supervisor respawned one.
func killDaemons(ctx context.Context, dir string) {
	for range 10 {
		for _, pid := range daemonPIDs(dir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// daemonPIDs lists the containerd processes started with a --config under
// dir.
func daemonPIDs(dir string) []int {
	return pidsWhere(func(args []string) bool {
		if len(args) < 3 || filepath.Base(args[0]) != "containerd" {
			return false
		}
		for i, a := range args[:len(args)-1] {
			if a == "--config" && strings.HasPrefix(args[i+1], dir+string(filepath.Separator)) {
				return true
			}
		}
		return false
	})
}
