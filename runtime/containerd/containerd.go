package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"

	"github.com/tugboatdev/tugboat/internal/hostfs"
	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/cni"
	"github.com/tugboatdev/tugboat/runtime/internal/eventhub"
)

// Container labels kept in containerd's metadata: they let a new Runtime
// over the same state re-adopt everything.
const (
	labelSandbox = "io.tugboat.sandbox"
	labelName    = "io.tugboat.name"
	labelAttempt = "io.tugboat.attempt"
	labelLogPath = "io.tugboat.logpath"
	labelImage   = "io.tugboat.image"
	labelImageID = "io.tugboat.imageid"
	labelStdin   = "io.tugboat.stdin"
	labelStarted = "io.tugboat.started"
	labelOOM     = "io.tugboat.oom"
	labelExit    = "io.tugboat.exit"   // exit code of a container stopped before start
	labelCgroup  = "io.tugboat.cgroup" // the container's cgroup path
	// labelFinished is the exit time of a container whose task was deleted
	// (its exit code is then in labelExit).
	labelFinished = "io.tugboat.finished"
	labelUser     = "io.tugboat.label." // prefix of the user's labels
	labelAnno     = "io.tugboat.anno."  // prefix of the user's annotations
)

// containerLease holds the runtime's container snapshots while they are
// made and removed.
const containerLease = "io.tugboat.containers"

// Options configure a containerd Runtime.
type Options struct {
	// DataDir holds the runtime's state: sandboxes, default log
	// directories and, without Address, the private containerd (its root
	// and socket). Per-boot state (FIFOs, namespace mount points, runc's
	// and the private containerd's state) lives on a tmpfs the Runtime
	// mounts at DataDir/run, as /run is on a usual node. Required. Keep it
	// short: the socket path must fit in 100 bytes.
	DataDir string
	// Address is the socket of an existing containerd; empty means a
	// private daemon supervised by the Runtime.
	Address string
	// ContainerdBinary runs the private daemon; default "containerd".
	ContainerdBinary string
	// Namespace is the containerd namespace of everything the Runtime
	// creates; default "tugboat".
	Namespace string
	// Snapshotter unpacks images and makes container root filesystems;
	// default "overlayfs".
	Snapshotter string
	// Network gives pods their network; nil gives every non-host-network
	// pod a namespace with only loopback.
	Network *cni.Network
	// CgroupParent is the cgroup under which containers' cgroups are made;
	// default "/tugboat-<Namespace>".
	CgroupParent string
	// PlainHTTP reports whether a registry host is reached over plain
	// HTTP; default: loopback hosts (localhost, 127.0.0.0/8, [::1]).
	PlainHTTP func(host string) bool
	// ImagesDir holds image archives (*.tar) imported at start, as k3s
	// does for air-gapped nodes. Empty means none.
	ImagesDir string
	// NodeIP is reported as the IP of host-network pods.
	NodeIP string
	// LogMaxSize and LogMaxFiles rotate container logs; defaults 10 MiB
	// and 2 files.
	LogMaxSize  int64
	LogMaxFiles int
	// Logger receives the runtime's logs; nil means slog.Default().
	Logger *slog.Logger
	// ShimGroups spreads the pods over that many shared containerd shims
	// (runc v2 shim grouping); 0 means DefaultShimGroups and a negative
	// value one shim per pod, as the CRI plugin runs them. Shared shims
	// start one Go process fewer per pod start (about 20 % of a start's
	// CPU on the 2-core machine of BENCHMARKS.md) and save about 10 MiB of
	// memory per pod. The cost is a larger failure domain: a shim that
	// dies takes the containers it serves with it. Too few groups
	// serialize starts, since a shim creates one task at a time.
	ShimGroups int
	// StartConcurrency, when positive, bounds how many CNI setups and how
	// many container task creations (shim, runc create and start) run at
	// once. 0 means unbounded: on the shared 2-core machine of
	// BENCHMARKS.md a bound of 8 made 100 concurrent pod starts slower
	// (21-22 s against 13-15 s) and saved no CPU time.
	StartConcurrency int
	// SeccompDefault runs containers that choose no seccomp profile with
	// the runtime's default profile (RuntimeDefault), as the kubelet's
	// --seccomp-default does; by default they run Unconfined.
	SeccompDefault bool
	// SeccompProfileRoot holds the Localhost seccomp profiles (JSON files
	// in the OCI form), as the kubelet's <root-dir>/seccomp does; default
	// DataDir/seccomp.
	SeccompProfileRoot string
}

// Runtime runs pods with containerd. Create it with New.
type Runtime struct {
	opts   Options
	client *client.Client
	daemon *daemon
	ns     string
	logger *slog.Logger
	events eventhub.Hub

	// bg lives until Close; it carries the namespace.
	bg     context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	sandboxes map[string]*sandbox
	live      map[string]*liveContainer
	images    map[string]*imageInfo // by normalized name
	// created holds the records of containers created and not yet
	// started or removed (see containerForStart).
	created map[string]*createdContainer

	// outBufs lends the buffers containers' output is copied through.
	outBufs *sync.Pool

	// cniSlots and taskSlots bound concurrent CNI setups and task
	// creations (nil: unbounded).
	cniSlots  chan struct{}
	taskSlots chan struct{}
}

var _ runtime.Runtime = (*Runtime)(nil)

// New connects to containerd (starting a private daemon when
// Options.Address is empty), re-adopts the sandboxes and running
// containers a previous Runtime left in DataDir, and imports ImagesDir.
func New(ctx context.Context, opts Options) (_ *Runtime, retErr error) {
	if opts.DataDir == "" {
		return nil, errors.New("containerd: Options.DataDir is required")
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	opts.DataDir = dataDir
	if opts.Namespace == "" {
		opts.Namespace = "tugboat"
	}
	if opts.Snapshotter == "" {
		opts.Snapshotter = "overlayfs"
	}
	if opts.CgroupParent == "" {
		opts.CgroupParent = "/tugboat-" + opts.Namespace
	}
	if opts.PlainHTTP == nil {
		opts.PlainHTTP = isLoopbackHost
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r := &Runtime{opts: opts, ns: opts.Namespace, logger: opts.Logger, sandboxes: map[string]*sandbox{}, live: map[string]*liveContainer{}, images: map[string]*imageInfo{}, created: map[string]*createdContainer{}, outBufs: newOutputBuffers()}
	if n := opts.StartConcurrency; n > 0 {
		r.cniSlots, r.taskSlots = make(chan struct{}, n), make(chan struct{}, n)
	}
	mounted, err := mountRunDir(r.runPath())
	if err != nil {
		return nil, err
	}
	// A run directory mounted by this call serves nothing yet: a failed
	// New takes it away again.
	defer func() {
		if mounted && retErr != nil {
			_ = unmountRunDir(r.runPath())
		}
	}()
	address := opts.Address
	if address == "" {
		d, err := startDaemon(ctx, filepath.Join(dataDir, "containerd"), privateStateDir(dataDir), opts.ContainerdBinary, opts.Logger)
		if err != nil {
			return nil, err
		}
		r.daemon, address = d, d.address
	}
	c, err := client.New(address, client.WithDefaultNamespace(opts.Namespace), client.WithTimeout(10*time.Second))
	if err != nil {
		r.stopDaemon()
		return nil, fmt.Errorf("containerd: connect %s: %w", address, err)
	}
	r.client = c
	r.bg, r.cancel = context.WithCancel(namespaces.WithNamespace(context.Background(), opts.Namespace))
	// One lease for every container snapshot, instead of the lease the
	// client otherwise creates and deletes around each NewContainer (two
	// metadata writes, each an fsync, per container).
	if _, err := c.LeasesService().Create(r.bg, leases.WithID(containerLease)); err != nil && !errdefs.IsAlreadyExists(err) {
		r.Close()
		return nil, fmt.Errorf("containerd: lease: %w", err)
	}
	if err := r.readopt(r.bg); err != nil {
		r.Close()
		return nil, err
	}
	r.wg.Add(1)
	go r.watchOOM()
	if opts.ImagesDir != "" {
		if err := r.importDir(r.bg, opts.ImagesDir); err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

func isLoopbackHost(host string) bool {
	h := host
	if i := strings.LastIndex(host, ":"); i >= 0 && !strings.HasSuffix(host, "]") {
		h = host[:i]
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}

func (r *Runtime) stopDaemon() {
	if r.daemon != nil {
		_ = r.daemon.stop()
	}
}

// Client returns the containerd client (in the runtime's namespace), for
// callers that need containerd directly.
func (r *Runtime) Client() *client.Client { return r.client }

// Namespace returns the containerd namespace the runtime uses.
func (r *Runtime) Namespace() string { return r.ns }

// DaemonPID returns the PID of the private containerd, or 0 when the
// runtime uses a given socket.
func (r *Runtime) DaemonPID() int {
	if r.daemon == nil {
		return 0
	}
	return r.daemon.PID()
}

func (r *Runtime) nsctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.ns)
}

// Close stops watching containers and, for a private daemon, stops
// containerd. Containers keep running (in their shims) and are re-adopted
// by the next New over the same DataDir. The run directory's tmpfs stays
// mounted unless no sandbox and no task remains.
func (r *Runtime) Close() error {
	if r.cancel != nil {
		r.cancel()
	}
	r.mu.Lock()
	for _, lc := range r.live {
		lc.detach()
	}
	r.mu.Unlock()
	r.wg.Wait()
	r.mu.Lock()
	for _, lc := range r.live {
		lc.closeLog()
	}
	r.mu.Unlock()
	r.events.Close()
	idle := r.client != nil && r.runDirIdle()
	var err error
	if r.client != nil {
		err = r.client.Close()
	}
	r.stopDaemon()
	if idle {
		// Nothing lives in the run directory: a Runtime that ran no pods
		// or removed them all leaves no mount behind.
		if uerr := unmountRunDir(r.runPath()); uerr != nil {
			r.logger.Warn("unmounting the idle run directory", "err", uerr)
		}
	}
	return err
}

// Destroy removes everything the runtime made: sandboxes (network
// namespaces and CNI attachments), containers, snapshots, images, the
// containerd namespace, the containers' parent cgroups, and, for a private
// daemon, the daemon and DataDir. Tests call it in t.Cleanup.
func (r *Runtime) Destroy(ctx context.Context) error {
	ctx = r.nsctx(ctx)
	var errs []error
	if sbs, err := r.ListPodSandboxes(ctx); err == nil {
		for _, s := range sbs {
			if err := r.RemovePodSandbox(ctx, s.ID); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if cs, err := r.client.Containers(ctx); err == nil {
		for _, c := range cs {
			if err := r.RemoveContainer(ctx, c.ID()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	ls := r.client.LeasesService()
	if all, err := ls.List(ctx); err == nil {
		for _, l := range all {
			_ = ls.Delete(ctx, l, leases.SynchronousDelete)
		}
	}
	if imgs, err := r.client.ImageService().List(ctx); err == nil {
		for _, im := range imgs {
			if err := r.client.ImageService().Delete(ctx, im.Name, images.SynchronousDelete()); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
	}
	errs = append(errs, r.deleteNamespace(ctx))
	errs = append(errs, r.Close())
	errs = append(errs, removeCgroupParent(r.opts.CgroupParent))
	// containerd 1.6 keeps runc state under /run/containerd/runc/<namespace>
	// whatever its state directory is; the directory is empty by now.
	_ = os.Remove(filepath.Join("/run/containerd/runc", r.ns))
	if r.daemon != nil {
		killOrphanShims(r.daemon.address)
		errs = append(errs, hostfs.UnmountUnder(r.opts.DataDir))
		if err := os.RemoveAll(r.opts.DataDir); err != nil {
			errs = append(errs, fmt.Errorf("containerd: %w", err))
		}
	} else {
		// A shared containerd: remove only what the runtime keeps.
		for _, sub := range []string{runSubdir, "sandboxes", "netns", "ipcns", "fifo", "pods", "bin"} {
			dir := filepath.Join(r.opts.DataDir, sub)
			errs = append(errs, hostfs.UnmountUnder(dir))
			if err := os.RemoveAll(dir); err != nil {
				errs = append(errs, fmt.Errorf("containerd: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// deleteNamespace removes the namespace once its content, leases and
// snapshots are gone (garbage collection may need a moment).
func (r *Runtime) deleteNamespace(ctx context.Context) error {
	var err error
	for range 50 {
		sn := r.client.SnapshotService(r.opts.Snapshotter)
		var keys []string
		_ = sn.Walk(ctx, func(_ context.Context, info snapshotInfo) error {
			keys = append(keys, info.Name)
			return nil
		})
		for _, k := range keys {
			_ = sn.Remove(ctx, k)
		}
		err = r.client.NamespaceService().Delete(ctx, r.ns)
		if err == nil || errdefs.IsNotFound(err) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("containerd: delete namespace %s: %w", r.ns, err)
}

// acquire takes a slot of a bounded pool (nil: unbounded) and returns its
// release, or ctx's error.
func acquire(ctx context.Context, slots chan struct{}) (func(), error) {
	if slots == nil {
		return func() {}, nil
	}
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// watchOOM turns containerd's TaskOOM events into OOM labels and events.
func (r *Runtime) watchOOM() {
	defer r.wg.Done()
	for r.bg.Err() == nil {
		ch, errc := r.client.Subscribe(r.bg, `topic=="/tasks/oom"`, fmt.Sprintf(`namespace==%q`, r.ns))
	loop:
		for {
			select {
			case env := <-ch:
				if env == nil || env.Event == nil {
					continue
				}
				v, err := typeurl.UnmarshalAny(env.Event)
				if err != nil {
					continue
				}
				if oom, ok := v.(*apievents.TaskOOM); ok {
					r.markOOM(r.bg, oom.ContainerID)
				}
			case <-errc:
				break loop
			case <-r.bg.Done():
				return
			}
		}
		// containerd restarted: subscribe again.
		select {
		case <-r.bg.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (r *Runtime) markOOM(ctx context.Context, id string) {
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return
	}
	labels, err := c.Labels(ctx)
	if err != nil || labels[labelOOM] == "true" {
		return
	}
	if _, err := c.SetLabels(ctx, map[string]string{labelOOM: "true"}); err != nil {
		r.logger.Warn("recording OOM", "container", id, "err", err)
	}
	r.events.Publish(runtime.ContainerEvent{Type: runtime.EventOOM, ContainerID: id, SandboxID: labels[labelSandbox], Time: time.Now()})
}

// Events implements runtime.Runtime.
func (r *Runtime) Events(ctx context.Context) (<-chan runtime.ContainerEvent, error) {
	return r.events.Subscribe(ctx), nil
}

func notFound(kind, id string) error {
	return fmt.Errorf("containerd: %s %q: %w", kind, id, runtime.ErrNotFound)
}

func wrapNotFound(err error, kind, id string) error {
	if errdefs.IsNotFound(err) {
		return notFound(kind, id)
	}
	return fmt.Errorf("containerd: %s %q: %w", kind, id, err)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func sortedContainers(cs []*runtime.ContainerStatus) {
	slices.SortFunc(cs, func(a, b *runtime.ContainerStatus) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

func atoi32(s string) int32 {
	n, _ := strconv.ParseInt(s, 10, 32)
	return int32(n)
}
