package containerd

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/crilog"
)

// liveContainer is the in-process side of a started container: the
// copiers from its FIFOs into the log file and attached clients.
type liveContainer struct {
	id     string
	log    *crilog.Writer
	stdout *crilog.StreamWriter
	stderr *crilog.StreamWriter
	outFan *fanout
	errFan *fanout
	stdin  *io.PipeWriter // nil unless created with Stdin
	stdinR *io.PipeReader
	io     cio.IO
	exited chan struct{}
	tty    bool
	// startedAt is when StartContainer started the task (zero for a
	// re-adopted container, whose label holds it).
	startedAt time.Time
	logPath   string
	cgroup    string // the container's cgroup path

	once sync.Once
}

// detach stops copying without touching the container (adapter shutdown).
func (lc *liveContainer) detach() {
	if lc.io != nil {
		lc.io.Cancel()
	}
}

// fanout writes to the log stream and to attached clients.
type fanout struct {
	base  io.Writer
	mu    sync.Mutex
	extra map[*io.Writer]struct{}
}

// Write implements io.Writer; a failing attached client is dropped.
func (f *fanout) Write(p []byte) (int, error) {
	n, err := f.base.Write(p)
	f.mu.Lock()
	for w := range f.extra {
		if _, werr := (*w).Write(p); werr != nil {
			delete(f.extra, w)
		}
	}
	f.mu.Unlock()
	return n, err
}

func (f *fanout) add(w io.Writer) func() {
	if w == nil {
		return func() {}
	}
	key := &w
	f.mu.Lock()
	if f.extra == nil {
		f.extra = map[*io.Writer]struct{}{}
	}
	f.extra[key] = struct{}{}
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		delete(f.extra, key)
		f.mu.Unlock()
	}
}

// fifoDir holds a container's FIFOs, in the run directory.
func (r *Runtime) fifoDir(id string) string { return r.runPath("fifo", id) }

// legacyFIFODir is where runtimes before the run directory made a
// container's FIFOs.
func (r *Runtime) legacyFIFODir(id string) string { return filepath.Join(r.opts.DataDir, "fifo", id) }

// CreateContainer implements runtime.Runtime.
func (r *Runtime) CreateContainer(ctx context.Context, sandboxID string, cfg *runtime.ContainerConfig) (string, error) {
	ctx = leases.WithLease(r.nsctx(ctx), containerLease)
	s, err := r.getSandbox(sandboxID)
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	ready := s.State == runtime.SandboxReady
	r.mu.Unlock()
	if !ready {
		return "", fmt.Errorf("containerd: sandbox %s is not ready: %w", sandboxID, runtime.ErrInvalid)
	}
	ii, err := r.imageInfo(ctx, cfg.Image)
	if err != nil {
		return "", err
	}
	id := newID()
	logPath := cfg.LogPath
	if logPath == "" {
		logPath = runtime.LogPathFor(cfg.Name, cfg.Attempt)
	}
	labels := map[string]string{
		labelSandbox: sandboxID, labelName: cfg.Name, labelAttempt: strconv.FormatUint(uint64(cfg.Attempt), 10),
		labelLogPath: filepath.Join(s.LogDir, logPath), labelImage: cfg.Image,
		labelImageID: ii.configDigest, labelCgroup: r.containerCgroup(s, id),
	}
	if cfg.Stdin {
		labels[labelStdin] = "true"
	}
	for k, v := range cfg.Labels {
		labels[labelUser+k] = v
	}
	for k, v := range cfg.Annotations {
		labels[labelAnno+k] = v
	}
	specOpts, err := r.specOpts(s, cfg, ii, id)
	if err != nil {
		return "", err
	}
	var rootfs []mount.Mount
	c, err := r.client.NewContainer(ctx, id,
		client.WithImage(ii.img),
		client.WithSnapshotter(r.opts.Snapshotter),
		r.withNewSnapshot(id, ii, &rootfs),
		client.WithNewSpec(specOpts...),
		client.WithContainerLabels(labels),
	)
	if err != nil {
		return "", fmt.Errorf("containerd: create container %s: %w", cfg.Name, err)
	}
	// The record containerd returned (no call): StartContainer starts
	// the container from it.
	if rec, err := c.Info(ctx, client.WithoutRefreshedMetadata); err == nil {
		r.keepCreated(rec, rootfs)
	}
	r.events.Publish(runtime.ContainerEvent{Type: runtime.EventCreated, ContainerID: id, SandboxID: sandboxID, Time: time.Now()})
	return id, nil
}

// specOpts translates a container config into OCI spec options.
func (r *Runtime) specOpts(s *sandbox, cfg *runtime.ContainerConfig, ii *imageInfo, id string) ([]oci.SpecOpts, error) {
	args := runtime.ResolveCommand(ii.entrypoint, ii.cmd, cfg.Command, cfg.Args)
	if len(args) == 0 {
		return nil, fmt.Errorf("containerd: container %s: no command and the image has no entrypoint or cmd: %w", cfg.Name, runtime.ErrInvalid)
	}
	opts := []oci.SpecOpts{
		ii.withImageConfig(),
		oci.WithProcessArgs(args...),
		oci.WithCgroup(r.containerCgroup(s, id)),
		oci.WithAnnotations(map[string]string{shimGroupAnnotation: r.shimGroup(s.ID)}),
	}
	if !s.Config.HostNetwork {
		opts = append(opts, oci.WithHostname(s.hostname()))
	}
	if len(cfg.Env) > 0 {
		env := make([]string, 0, len(cfg.Env))
		for _, e := range cfg.Env {
			env = append(env, e.Name+"="+e.Value)
		}
		opts = append(opts, oci.WithEnv(env))
	}
	if cfg.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(cfg.WorkingDir))
	}
	if cfg.TTY {
		opts = append(opts, oci.WithTTY)
	}
	if s.Config.HostNetwork {
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostNamespace(specs.UTSNamespace))
	} else {
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: s.NetNS}))
	}
	nsOpts, err := r.podNamespaceOpts(s)
	if err != nil {
		return nil, fmt.Errorf("containerd: container %s: %w", cfg.Name, err)
	}
	opts = append(opts, nsOpts...)
	// The sandbox's files first, then the volumes (a volume may shadow them).
	mounts := []specs.Mount{
		{Destination: "/etc/hosts", Type: "bind", Source: filepath.Join(s.filesDir(), "hosts"), Options: []string{"rbind", "rprivate", "rw"}},
		{Destination: "/etc/resolv.conf", Type: "bind", Source: filepath.Join(s.filesDir(), "resolv.conf"), Options: []string{"rbind", "rprivate", "rw"}},
		{Destination: "/etc/hostname", Type: "bind", Source: filepath.Join(s.filesDir(), "hostname"), Options: []string{"rbind", "rprivate", "rw"}},
	}
	for _, m := range cfg.Mounts {
		sm, err := specMount(m)
		if err != nil {
			return nil, fmt.Errorf("containerd: container %s: %w", cfg.Name, err)
		}
		mounts = append(mounts, sm)
	}
	opts = append(opts, oci.WithMounts(mounts))

	sec := cfg.Security
	switch {
	case sec.RunAsUser != nil && sec.RunAsGroup != nil:
		opts = append(opts, oci.WithUIDGID(uint32(*sec.RunAsUser), uint32(*sec.RunAsGroup)))
	case sec.RunAsUser != nil:
		opts = append(opts, oci.WithUserID(uint32(*sec.RunAsUser)))
	case sec.RunAsGroup != nil:
		gid := uint32(*sec.RunAsGroup)
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, sp *oci.Spec) error {
			sp.Process.User.GID = gid
			return nil
		})
	}
	if len(sec.SupplementalGroups) > 0 {
		gids := sec.SupplementalGroups
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, sp *oci.Spec) error {
			for _, g := range gids {
				if !slices.Contains(sp.Process.User.AdditionalGids, uint32(g)) {
					sp.Process.User.AdditionalGids = append(sp.Process.User.AdditionalGids, uint32(g))
				}
			}
			return nil
		})
	}
	if sec.Privileged {
		opts = append(opts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices, oci.WithWriteableSysfs, oci.WithWriteableCgroupfs)
	} else {
		if add := capNames(sec.AddCapabilities); len(add) > 0 {
			opts = append(opts, oci.WithAddedCapabilities(add))
		}
		if drop := capNames(sec.DropCapabilities); len(drop) > 0 {
			if slices.Contains(drop, "CAP_ALL") {
				opts = append(opts, oci.WithCapabilities(capNames(sec.AddCapabilities)))
			} else {
				opts = append(opts, oci.WithDroppedCapabilities(drop))
			}
		}
	}
	if sec.ReadOnlyRootFilesystem {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	// After the capabilities: the default seccomp profile depends on them.
	profOpts, err := r.securityProfileOpts(cfg)
	if err != nil {
		return nil, fmt.Errorf("containerd: container %s: %w", cfg.Name, err)
	}
	opts = append(opts, profOpts...)
	res := cfg.Resources
	if res.MemoryLimitBytes > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(res.MemoryLimitBytes)))
	}
	if res.CPULimitMilli > 0 {
		const period = 100000
		opts = append(opts, oci.WithCPUCFS(res.CPULimitMilli*period/1000, period))
	}
	if res.CPURequestMilli > 0 {
		shares := uint64(res.CPURequestMilli * 1024 / 1000)
		opts = append(opts, oci.WithCPUShares(max(shares, 2)))
	}
	return opts, nil
}

// ReasonUnknown is the exit reason of a container whose task vanished
// (as after a host reboot), as the CRI plugin reports it.
const ReasonUnknown = "Unknown"

// shimGroupAnnotation makes containerd's runc v2 shim serve every
// container carrying the same value from one shim process.
const shimGroupAnnotation = "io.containerd.runc.v2.group"

// DefaultShimGroups is the number of shared shims a Runtime spreads its
// pods over when Options.ShimGroups is 0. With 100 pods started at once on
// two cores, 8 to 16 groups took the least CPU; 1 or 2 groups serialized
// the starts (BENCHMARKS.md). Sixteen keeps the failure domain of a shim
// at about one pod in sixteen.
const DefaultShimGroups = 16

// shimGroup names the shim a sandbox's containers share: the sandbox's own
// (as the CRI plugin does) or one of the shared shims, chosen by a hash of
// the sandbox ID so that every container of a pod has the same shim.
func (r *Runtime) shimGroup(sandboxID string) string {
	groups := r.opts.ShimGroups
	if groups == 0 {
		groups = DefaultShimGroups
	}
	if groups < 0 {
		return "tugboat-" + sandboxID
	}
	h := fnv.New32a()
	h.Write([]byte(sandboxID))
	return fmt.Sprintf("tugboat-%s-shim-%d", r.ns, h.Sum32()%uint32(groups))
}

// capNames turns Kubernetes capability names (NET_ADMIN) into OCI ones
// (CAP_NET_ADMIN).
func capNames(in []string) []string {
	out := make([]string, 0, len(in))
	for _, c := range in {
		c = strings.ToUpper(c)
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		out = append(out, c)
	}
	return out
}

// specMount turns a volume mount into an OCI mount. SubPath must stay
// inside HostPath, symbolic links included.
func specMount(m runtime.Mount) (specs.Mount, error) {
	if !filepath.IsAbs(m.ContainerPath) {
		return specs.Mount{}, fmt.Errorf("mount path %q is not absolute: %w", m.ContainerPath, runtime.ErrInvalid)
	}
	if m.Tmpfs {
		opts := []string{"nosuid", "nodev", "mode=1777"}
		if m.SizeLimitBytes > 0 {
			opts = append(opts, fmt.Sprintf("size=%d", m.SizeLimitBytes))
		}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		return specs.Mount{Destination: m.ContainerPath, Type: "tmpfs", Source: "tmpfs", Options: opts}, nil
	}
	src, err := resolveSubPath(m.HostPath, m.SubPath)
	if err != nil {
		return specs.Mount{}, err
	}
	mode := "rw"
	if m.ReadOnly {
		mode = "ro"
	}
	return specs.Mount{Destination: m.ContainerPath, Type: "bind", Source: src, Options: []string{"rbind", "rprivate", mode}}, nil
}

// resolveSubPath joins base and sub and checks, component by component and
// after resolving symbolic links, that the result stays inside base. A
// missing subPath directory is created, as the kubelet does, but only
// below a checked component.
func resolveSubPath(base, sub string) (string, error) {
	if base == "" {
		return "", fmt.Errorf("mount without host path: %w", runtime.ErrInvalid)
	}
	if sub == "" {
		return base, nil
	}
	if !filepath.IsLocal(sub) {
		return "", fmt.Errorf("subPath %q must be a relative path inside the volume: %w", sub, runtime.ErrInvalid)
	}
	realBase, err := filepath.EvalSymlinks(base)
	if err != nil {
		return "", fmt.Errorf("volume %s: %w", base, err)
	}
	cur := realBase
	parts := strings.Split(filepath.Clean(sub), string(filepath.Separator))
	for i, part := range parts {
		next := filepath.Join(cur, part)
		if _, err := os.Lstat(next); errors.Is(err, os.ErrNotExist) {
			p := filepath.Join(append([]string{cur}, parts[i:]...)...)
			if err := os.MkdirAll(p, 0o755); err != nil {
				return "", err
			}
			return p, nil
		}
		real, err := filepath.EvalSymlinks(next)
		if err != nil {
			return "", err
		}
		if rel, err := filepath.Rel(realBase, real); err != nil || !(rel == "." || filepath.IsLocal(rel)) {
			return "", fmt.Errorf("subPath %q escapes its volume: %w", sub, runtime.ErrInvalid)
		}
		cur = real
	}
	return cur, nil
}

// StartContainer implements runtime.Runtime.
func (r *Runtime) StartContainer(ctx context.Context, id string) error {
	ctx = r.nsctx(ctx)
	rec, rootfs, err := r.containerForStart(ctx, id)
	if err != nil {
		return err
	}
	labels := rec.Labels
	if labels[labelExit] != "" {
		return fmt.Errorf("containerd: container %s was already started: %w", id, runtime.ErrInvalid)
	}
	var spec oci.Spec
	if err := typeurl.UnmarshalTo(rec.Spec, &spec); err != nil || spec.Process == nil {
		return fmt.Errorf("containerd: spec of %s: %w", id, errors.Join(err, errors.New("no process")))
	}
	lc, err := r.newLive(id, labels, spec.Process.Terminal)
	if err != nil {
		return err
	}
	fifos := cio.NewFIFOSet(cio.Config{
		Stdin:    filepath.Join(r.fifoDir(id), "stdin"),
		Stdout:   filepath.Join(r.fifoDir(id), "stdout"),
		Stderr:   filepath.Join(r.fifoDir(id), "stderr"),
		Terminal: lc.tty,
	}, func() error { return os.RemoveAll(r.fifoDir(id)) })
	if err := os.MkdirAll(r.fifoDir(id), 0o700); err != nil {
		lc.closeLog()
		return fmt.Errorf("containerd: %w", err)
	}
	release, err := acquire(ctx, r.taskSlots)
	if err != nil {
		lc.closeLog()
		_ = os.RemoveAll(r.fifoDir(id))
		return fmt.Errorf("containerd: start %s: %w", id, err)
	}
	defer release()
	pio, err := r.attach(lc)(fifos)
	if err == nil {
		err = r.createTask(ctx, &rec, rootfs, pio.Config())
		if err != nil {
			pio.Cancel()
			_ = pio.Close()
		}
	}
	if err != nil {
		lc.closeLog()
		_ = os.RemoveAll(r.fifoDir(id))
		if errdefs.IsAlreadyExists(err) {
			return fmt.Errorf("containerd: container %s was already started: %w", id, runtime.ErrInvalid)
		}
		return fmt.Errorf("containerd: start %s: %w", id, err)
	}
	lc.io = pio
	statusC := r.waitTask(id)
	now := time.Now()
	lc.startedAt = now
	if _, err := r.client.TaskService().Start(ctx, &tasksapi.StartRequest{ContainerID: id}); err != nil {
		r.killTask(ctx, id)
		lc.closeLog()
		return fmt.Errorf("containerd: start %s: %w", id, errgrpc.ToNative(err))
	}
	r.mu.Lock()
	r.live[id] = lc
	r.mu.Unlock()
	r.events.Publish(runtime.ContainerEvent{Type: runtime.EventStarted, ContainerID: id, SandboxID: labels[labelSandbox], Time: now})
	// The start time is recorded in containerd (for a later Runtime over
	// the same state) after the start, off the start's path: until then
	// status reads it from lc.
	r.wg.Add(2)
	go r.recordStart(id, now)
	go r.monitor(lc, labels[labelSandbox], statusC)
	return nil
}

// recordStart writes a started container's start time label.
func (r *Runtime) recordStart(id string, at time.Time) {
	defer r.wg.Done()
	rec := containers.Container{ID: id, Labels: map[string]string{labelStarted: at.UTC().Format(time.RFC3339Nano)}}
	if _, err := r.client.ContainerService().Update(r.bg, rec, "labels."+labelStarted); err != nil && !errdefs.IsNotFound(err) && r.bg.Err() == nil {
		r.logger.Warn("recording a container's start time", "container", id, "err", err)
	}
}

// newLive opens the container's log file and stream plumbing.
func (r *Runtime) newLive(id string, labels map[string]string, tty bool) (*liveContainer, error) {
	w, err := crilog.NewWriter(labels[labelLogPath], crilog.WriterOptions{MaxSize: r.opts.LogMaxSize, MaxFiles: r.opts.LogMaxFiles})
	if err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	lc := &liveContainer{id: id, log: w, stdout: w.Stream(crilog.Stdout), stderr: w.Stream(crilog.Stderr), exited: make(chan struct{}), tty: tty, logPath: labels[labelLogPath], cgroup: r.cgroupOf(id, labels)}
	lc.outFan, lc.errFan = &fanout{base: lc.stdout}, &fanout{base: lc.stderr}
	if labels[labelStdin] == "true" {
		lc.stdinR, lc.stdin = io.Pipe()
	}
	return lc, nil
}

// attach returns the cio.Attach that copies lc's output to its log and
// attached clients, and its stdin pipe (if any) to the process.
func (r *Runtime) attach(lc *liveContainer) cio.Attach {
	var stdin io.Reader
	if lc.stdinR != nil {
		stdin = lc.stdinR
	}
	return attachPoll(r.outBufs, stdin, lc.outFan, lc.errFan)
}

func (lc *liveContainer) closeLog() {
	lc.once.Do(func() {
		_ = lc.stdout.Close()
		_ = lc.stderr.Close()
		_ = lc.log.Close()
		if lc.stdin != nil {
			lc.stdin.Close()
		}
	})
}

// monitor waits for the container's exit, surviving containerd restarts,
// and records it.
func (r *Runtime) monitor(lc *liveContainer, sandboxID string, statusC <-chan client.ExitStatus) {
	defer r.wg.Done()
	for {
		var st client.ExitStatus
		select {
		case st = <-statusC:
		case <-r.bg.Done():
			return
		}
		if r.bg.Err() != nil {
			return
		}
		if st.Error() == nil {
			r.finish(lc, sandboxID, st)
			return
		}
		// The wait broke (containerd restarting): wait again.
		r.logger.Debug("re-waiting for container after containerd error", "container", lc.id, "err", st.Error())
		for {
			select {
			case <-r.bg.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			c, err := r.client.LoadContainer(r.bg, lc.id)
			if err != nil {
				if errdefs.IsNotFound(err) {
					r.finish(lc, sandboxID, *client.NewExitStatus(255, time.Now(), nil))
					return
				}
				continue
			}
			t, err := c.Task(r.bg, nil)
			if err != nil {
				if errdefs.IsNotFound(err) {
					r.finish(lc, sandboxID, *client.NewExitStatus(255, time.Now(), nil))
					return
				}
				continue
			}
			if statusC, err = t.Wait(r.bg); err == nil {
				break
			}
		}
	}
}

// finish flushes the container's output and publishes its exit.
func (r *Runtime) finish(lc *liveContainer, sandboxID string, st client.ExitStatus) {
	if lc.io != nil {
		done := make(chan struct{})
		go func() { lc.io.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			// A child still holds the output open; stop copying.
			lc.io.Cancel()
		}
	}
	lc.closeLog()
	code := int32(st.ExitCode())
	if code == 128+int32(syscall.SIGKILL) && cgroupOOMKilled(lc.cgroup) {
		r.markOOM(r.bg, lc.id)
	}
	r.events.Publish(runtime.ContainerEvent{Type: runtime.EventExited, ContainerID: lc.id, SandboxID: sandboxID, Time: st.ExitTime(), ExitCode: code})
	close(lc.exited)
}

// cgroupOf is the cgroup path of container id with the given labels.
func (r *Runtime) cgroupOf(id string, labels map[string]string) string {
	if cg := labels[labelCgroup]; cg != "" {
		return cg
	}
	return r.opts.CgroupParent + "/" + id
}

// cgroupOOMKilled reads a container's memory cgroup (v1) OOM kill count.
func cgroupOOMKilled(cgroup string) bool {
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", cgroup, "memory.oom_control"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "oom_kill" && f[1] != "0" {
			return true
		}
	}
	return false
}

// StopContainer implements runtime.Runtime.
func (r *Runtime) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	ctx = r.nsctx(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return wrapNotFound(err, "container", id)
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		// Never started: it is now exited.
		r.forgetCreated(id)
		if _, err := c.SetLabels(ctx, map[string]string{labelExit: "0"}); err != nil {
			return wrapNotFound(err, "container", id)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("containerd: stop %s: %w", id, err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return wrapNotFound(err, "container", id)
	}
	if st.Status == client.Stopped {
		return nil
	}
	r.mu.Lock()
	lc := r.live[id]
	r.mu.Unlock()
	var exited <-chan struct{}
	if lc != nil {
		exited = lc.exited
	} else {
		ch := make(chan struct{})
		statusC, err := task.Wait(ctx)
		if err != nil {
			return fmt.Errorf("containerd: stop %s: %w", id, err)
		}
		go func() { <-statusC; close(ch) }()
		exited = ch
	}
	if grace > 0 {
		if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("containerd: stop %s: %w", id, err)
		}
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-exited:
			return nil
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := task.Kill(ctx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("containerd: kill %s: %w", id, err)
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RemoveContainer implements runtime.Runtime.
func (r *Runtime) RemoveContainer(ctx context.Context, id string) error {
	// With the lease, removing the snapshot also drops its reference.
	ctx = leases.WithLease(r.nsctx(ctx), containerLease)
	c, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("containerd: remove %s: %w", id, err)
	}
	labels, _ := c.Labels(ctx)
	if err := r.StopContainer(ctx, id, 0); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		return err
	}
	if task, err := c.Task(ctx, nil); err == nil {
		if err := deleteTask(ctx, c, task, client.WithProcessKill); err != nil {
			return fmt.Errorf("containerd: remove %s: %w", id, err)
		}
	}
	if err := c.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("containerd: remove %s: %w", id, err)
	}
	r.mu.Lock()
	lc := r.live[id]
	delete(r.live, id)
	delete(r.created, id)
	r.mu.Unlock()
	if lc != nil {
		lc.closeLog()
		if lc.io != nil {
			_ = lc.io.Close()
		}
	}
	_ = os.RemoveAll(r.fifoDir(id))
	_ = os.RemoveAll(r.legacyFIFODir(id))
	r.events.Publish(runtime.ContainerEvent{Type: runtime.EventRemoved, ContainerID: id, SandboxID: labels[labelSandbox], Time: time.Now()})
	return nil
}

// status builds a ContainerStatus from containerd's records.
func (r *Runtime) status(rec containers.Container, proc *tasktypes.Process) *runtime.ContainerStatus {
	l := rec.Labels
	st := &runtime.ContainerStatus{
		ID: rec.ID, SandboxID: l[labelSandbox], Name: l[labelName], Attempt: uint32(atoi32(l[labelAttempt])),
		Image: l[labelImage], ImageRef: l[labelImageID], CreatedAt: rec.CreatedAt, LogPath: l[labelLogPath],
		State: runtime.ContainerCreated,
	}
	for k, v := range l {
		if name, ok := strings.CutPrefix(k, labelUser); ok {
			if st.Labels == nil {
				st.Labels = map[string]string{}
			}
			st.Labels[name] = v
		} else if name, ok := strings.CutPrefix(k, labelAnno); ok {
			if st.Annotations == nil {
				st.Annotations = map[string]string{}
			}
			st.Annotations[name] = v
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, l[labelStarted]); err == nil {
		st.StartedAt = t
	} else {
		// Started moments ago: the label is still being written.
		r.mu.Lock()
		if lc := r.live[rec.ID]; lc != nil {
			st.StartedAt = lc.startedAt
		}
		r.mu.Unlock()
	}
	switch {
	case proc == nil && l[labelExit] != "":
		st.State, st.ExitCode, st.Reason = runtime.ContainerExited, atoi32(l[labelExit]), runtime.ReasonCompleted
		st.FinishedAt = rec.UpdatedAt
		if t, err := time.Parse(time.RFC3339Nano, l[labelFinished]); err == nil {
			// A started container whose task was deleted after its exit.
			st.FinishedAt = t
			switch {
			case l[labelOOM] == "true":
				st.Reason = runtime.ReasonOOMKilled
			case st.ExitCode != 0:
				st.Reason = runtime.ReasonError
			}
		}
	case proc == nil && !st.StartedAt.IsZero():
		// Started, but its task is gone (containerd lost it, as after a
		// host reboot): it is not running any more.
		st.State, st.ExitCode, st.Reason = runtime.ContainerExited, 255, ReasonUnknown
		st.FinishedAt = rec.UpdatedAt
	case proc == nil:
	case proc.Status == tasktypes.Status_RUNNING || proc.Status == tasktypes.Status_PAUSED || proc.Status == tasktypes.Status_PAUSING:
		st.State = runtime.ContainerRunning
	case proc.Status == tasktypes.Status_STOPPED:
		st.State = runtime.ContainerExited
		st.ExitCode = int32(proc.ExitStatus)
		if proc.ExitedAt != nil {
			st.FinishedAt = proc.ExitedAt.AsTime()
		}
		switch {
		// The exit watcher records an OOM kill once the output is drained;
		// a status read before that asks the memory cgroup itself.
		case l[labelOOM] == "true" || (st.ExitCode == 128+int32(syscall.SIGKILL) && cgroupOOMKilled(r.cgroupOf(rec.ID, l))):
			st.Reason = runtime.ReasonOOMKilled
		case st.ExitCode == 0:
			st.Reason = runtime.ReasonCompleted
		default:
			st.Reason = runtime.ReasonError
		}
	case proc.Status == tasktypes.Status_CREATED:
		st.State = runtime.ContainerCreated
	default:
		st.State = runtime.ContainerUnknown
	}
	return st
}

// ContainerStatus implements runtime.Runtime.
func (r *Runtime) ContainerStatus(ctx context.Context, id string) (*runtime.ContainerStatus, error) {
	ctx = r.nsctx(ctx)
	rec, err := r.client.ContainerService().Get(ctx, id)
	if err != nil {
		return nil, wrapNotFound(err, "container", id)
	}
	resp, err := r.client.TaskService().Get(ctx, &tasksapi.GetRequest{ContainerID: id})
	var proc *tasktypes.Process
	switch {
	case err == nil:
		proc = resp.Process
	case !errdefs.IsNotFound(errgrpc.ToNative(err)):
		return nil, fmt.Errorf("containerd: status %s: %w", id, errgrpc.ToNative(err))
	}
	return r.status(rec, proc), nil
}

// ListContainers implements runtime.Runtime.
func (r *Runtime) ListContainers(ctx context.Context, f runtime.ContainerFilter) ([]*runtime.ContainerStatus, error) {
	ctx = r.nsctx(ctx)
	var filters []string
	if f.SandboxID != "" {
		filters = append(filters, fmt.Sprintf("labels.%q==%q", labelSandbox, f.SandboxID))
	}
	recs, err := r.client.ContainerService().List(ctx, filters...)
	if err != nil {
		return nil, fmt.Errorf("containerd: list containers: %w", err)
	}
	procs, err := r.taskStates(ctx, recs, f.SandboxID != "")
	if err != nil {
		return nil, err
	}
	var out []*runtime.ContainerStatus
	for _, rec := range recs {
		if rec.Labels[labelSandbox] == "" {
			continue
		}
		if st := r.status(rec, procs[rec.ID]); f.Matches(st) {
			out = append(out, st)
		}
	}
	sortedContainers(out)
	return out, nil
}

// taskStates returns the task state of containers by ID (absent: no
// task). containerd answers a task list by asking every task's shim, so
// for the few containers of one sandbox (the agent's query for each pod)
// each task is asked alone; listing every task would make N pods' syncs
// cost N² shim calls.
func (r *Runtime) taskStates(ctx context.Context, recs []containers.Container, few bool) (map[string]*tasktypes.Process, error) {
	procs := map[string]*tasktypes.Process{}
	for _, rec := range recs {
		if !few || rec.Labels[labelSandbox] == "" {
			continue
		}
		resp, err := r.client.TaskService().Get(ctx, &tasksapi.GetRequest{ContainerID: rec.ID})
		switch err := errgrpc.ToNative(err); {
		case err == nil:
			procs[rec.ID] = resp.Process
			continue
		case errdefs.IsNotFound(err):
			continue
		}
		// A task whose shim is gone fails alone; the list, as before,
		// leaves it out (the container then reads as exited).
		few = false
	}
	if few {
		return procs, nil
	}
	resp, err := r.client.TaskService().List(ctx, &tasksapi.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("containerd: list tasks: %w", errgrpc.ToNative(err))
	}
	for _, p := range resp.Tasks {
		procs[p.ID] = p
	}
	return procs, nil
}

// deleteTask deletes a container's task and treats it as gone when it
// already is. When a task's shim exits on its own (all of a shared PID
// namespace's processes die with its init, for example), containerd can
// answer the delete with "ttrpc: closed" while it cleans up after the dead
// shim; the delete is retried until containerd reports the task gone.
func deleteTask(ctx context.Context, c client.Container, task client.Task, opts ...client.ProcessDeleteOpts) error {
	var err error
	for attempt := range 10 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w (after %w)", err, ctx.Err())
			case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
			}
			// Reload: containerd may have removed the task meanwhile.
			t, lerr := c.Task(ctx, nil)
			if errdefs.IsNotFound(lerr) {
				return nil
			}
			if lerr == nil {
				task = t
			}
		}
		_, err = task.Delete(ctx, opts...)
		if err == nil || errdefs.IsNotFound(err) {
			return nil
		}
		if !shimGone(err) {
			return err
		}
	}
	return err
}

// shimGone reports whether err says the task's shim connection is closed.
func shimGone(err error) bool {
	s := err.Error()
	return strings.Contains(s, "ttrpc: closed") || strings.Contains(s, "transport is closing") || errdefs.IsUnavailable(err)
}
