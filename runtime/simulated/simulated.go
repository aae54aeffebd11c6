package simulated

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/internal/eventhub"
)

// Behavior scripts what a simulated container does once started.
type Behavior struct {
	// RunFor is how long the container runs before exiting by itself;
	// zero means it runs until stopped.
	RunFor time.Duration
	// ExitCode is the code of that exit.
	ExitCode int32
	// OOMKill makes that exit an OOM kill (exit code 137, reason OOMKilled).
	OOMKill bool
	// ReadyAfter is how long after start exec probes begin to succeed.
	ReadyAfter time.Duration
	// IgnoreSIGTERM makes StopContainer wait the whole grace period before
	// the simulated SIGKILL ends the container (exit code 137).
	IgnoreSIGTERM bool
	// Output lines appear in the log (stdout) when the container starts.
	Output []string
	// CPUMilli and MemoryBytes are reported by ContainerStats.
	CPUMilli    int64
	MemoryBytes uint64
	// WritableLayerBytes is the container's writable layer usage and
	// Processes its process count, as ContainerStats reports them (a
	// running container counts at least 1 process).
	WritableLayerBytes uint64
	Processes          uint64
}

// Options configure a simulated runtime; zero values are usable.
type Options struct {
	// Clock drives scripted times; nil means the real clock. Tests pass a
	// k8s.io/utils/clock/testing.FakeClock and step it.
	Clock clock.WithDelayedExecution
	// Script returns the behaviour of a container; nil means "runs until
	// stopped, ready at once".
	Script func(sandbox *runtime.PodSandboxConfig, c *runtime.ContainerConfig) Behavior
	// Exec, when set, answers Exec calls on running containers; otherwise
	// an exec exits 0 once the container is ready and 1 before.
	Exec func(containerID string, cmd []string, stdout io.Writer) int32
	// PullError, when set, decides the failure of a pull (nil: success).
	PullError func(ref string) error
	// Images are present from the start.
	Images []string
	// PodCIDR is where pod IPs come from; default 10.244.0.0/16.
	PodCIDR netip.Prefix
	// NodeIP is the IP of host-network pods; default 192.0.2.1.
	NodeIP string
}

type sandbox struct {
	id        string
	cfg       runtime.PodSandboxConfig
	state     runtime.SandboxState
	createdAt time.Time
	ip        string
}

type container struct {
	status   runtime.ContainerStatus
	behavior Behavior
	timer    clock.Timer
	exited   chan struct{}
	readyAt  time.Time
}

type image struct {
	runtime.Image
}

// Runtime is the simulated runtime. Create it with New.
type Runtime struct {
	opts   Options
	clock  clock.WithDelayedExecution
	events eventhub.Hub

	mu        sync.Mutex
	seq       int
	nextIP    netip.Addr
	freeIPs   []string // released by removed sandboxes, reused first
	sandboxes map[string]*sandbox
	ctrs      map[string]*container
	images    map[string]*image // by tag
	closed    bool
}

var _ runtime.Runtime = (*Runtime)(nil)

// New returns a simulated runtime.
func New(opts Options) *Runtime {
	r := &Runtime{opts: opts, clock: opts.Clock, sandboxes: map[string]*sandbox{}, ctrs: map[string]*container{}, images: map[string]*image{}}
	if r.clock == nil {
		r.clock = clock.RealClock{}
	}
	if !r.opts.PodCIDR.IsValid() {
		r.opts.PodCIDR = netip.MustParsePrefix("10.244.0.0/16")
	}
	if r.opts.NodeIP == "" {
		r.opts.NodeIP = "192.0.2.1"
	}
	r.nextIP = r.opts.PodCIDR.Masked().Addr().Next().Next()
	for _, ref := range opts.Images {
		r.addImage(ref)
	}
	return r
}

func (r *Runtime) newID(kind string) string {
	r.seq++
	return fmt.Sprintf("simulated-%s-%d", kind, r.seq)
}

func (r *Runtime) addImage(ref string) *image {
	if im, ok := r.images[ref]; ok {
		return im
	}
	r.seq++
	im := &image{runtime.Image{ID: fmt.Sprintf("sha256:%064x", r.seq), RepoTags: []string{ref}, Size: 1 << 20}}
	r.images[ref] = im
	return im
}

// RunPodSandbox implements runtime.Runtime.
func (r *Runtime) RunPodSandbox(_ context.Context, cfg *runtime.PodSandboxConfig) (string, error) {
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return "", fmt.Errorf("simulated: %w: runtime closed", runtime.ErrInvalid)
	}
	s := &sandbox{id: r.newID("sandbox"), cfg: *cfg, state: runtime.SandboxReady, createdAt: now}
	if cfg.HostNetwork {
		s.ip = r.opts.NodeIP
	} else if n := len(r.freeIPs); n > 0 {
		s.ip, r.freeIPs = r.freeIPs[n-1], r.freeIPs[:n-1]
	} else {
		if !r.opts.PodCIDR.Contains(r.nextIP) {
			return "", fmt.Errorf("simulated: pod CIDR %s exhausted", r.opts.PodCIDR)
		}
		s.ip = r.nextIP.String()
		r.nextIP = r.nextIP.Next()
	}
	r.sandboxes[s.id] = s
	return s.id, nil
}

// StopPodSandbox implements runtime.Runtime.
func (r *Runtime) StopPodSandbox(ctx context.Context, id string) error {
	r.mu.Lock()
	s, ok := r.sandboxes[id]
	if !ok {
		r.mu.Unlock()
		return nil
	}
	s.state = runtime.SandboxNotReady
	var ids []string
	for cid, c := range r.ctrs {
		if c.status.SandboxID == id {
			ids = append(ids, cid)
		}
	}
	r.mu.Unlock()
	for _, cid := range ids {
		if err := r.StopContainer(ctx, cid, 0); err != nil {
			return err
		}
	}
	return nil
}

// RemovePodSandbox implements runtime.Runtime.
func (r *Runtime) RemovePodSandbox(ctx context.Context, id string) error {
	if err := r.StopPodSandbox(ctx, id); err != nil {
		return err
	}
	r.mu.Lock()
	var ids []string
	for cid, c := range r.ctrs {
		if c.status.SandboxID == id {
			ids = append(ids, cid)
		}
	}
	r.mu.Unlock()
	for _, cid := range ids {
		if err := r.RemoveContainer(ctx, cid); err != nil {
			return err
		}
	}
	r.mu.Lock()
	if s, ok := r.sandboxes[id]; ok && !s.cfg.HostNetwork {
		r.freeIPs = append(r.freeIPs, s.ip)
	}
	delete(r.sandboxes, id)
	r.mu.Unlock()
	return nil
}

func (s *sandbox) report() *runtime.PodSandbox {
	return &runtime.PodSandbox{ID: s.id, Config: s.cfg, State: s.state, CreatedAt: s.createdAt, IP: s.ip}
}

// PodSandboxStatus implements runtime.Runtime.
func (r *Runtime) PodSandboxStatus(_ context.Context, id string) (*runtime.PodSandbox, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sandboxes[id]
	if !ok {
		return nil, fmt.Errorf("simulated: sandbox %q: %w", id, runtime.ErrNotFound)
	}
	return s.report(), nil
}

// ListPodSandboxes implements runtime.Runtime.
func (r *Runtime) ListPodSandboxes(context.Context) ([]*runtime.PodSandbox, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*runtime.PodSandbox, 0, len(r.sandboxes))
	for _, s := range r.sandboxes {
		out = append(out, s.report())
	}
	slices.SortFunc(out, func(a, b *runtime.PodSandbox) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// CreateContainer implements runtime.Runtime.
func (r *Runtime) CreateContainer(_ context.Context, sandboxID string, cfg *runtime.ContainerConfig) (string, error) {
	now := r.clock.Now()
	r.mu.Lock()
	s, ok := r.sandboxes[sandboxID]
	if !ok {
		r.mu.Unlock()
		return "", fmt.Errorf("simulated: sandbox %q: %w", sandboxID, runtime.ErrNotFound)
	}
	if s.state != runtime.SandboxReady {
		r.mu.Unlock()
		return "", fmt.Errorf("simulated: sandbox %q is not ready: %w", sandboxID, runtime.ErrInvalid)
	}
	im, ok := r.images[cfg.Image]
	if !ok {
		r.mu.Unlock()
		return "", fmt.Errorf("simulated: image %q: %w", cfg.Image, runtime.ErrNotFound)
	}
	var b Behavior
	if r.opts.Script != nil {
		b = r.opts.Script(&s.cfg, cfg)
	}
	logPath := cfg.LogPath
	if logPath == "" {
		logPath = runtime.LogPathFor(cfg.Name, cfg.Attempt)
	}
	c := &container{behavior: b, exited: make(chan struct{}), status: runtime.ContainerStatus{
		ID: r.newID("container"), SandboxID: sandboxID, Name: cfg.Name, Attempt: cfg.Attempt,
		Image: cfg.Image, ImageRef: im.ID, State: runtime.ContainerCreated, CreatedAt: now,
		Labels: cfg.Labels, Annotations: cfg.Annotations, LogPath: s.cfg.LogDirectory + "/" + logPath,
	}}
	r.ctrs[c.status.ID] = c
	r.mu.Unlock()
	r.events.Publish(runtime.ContainerEvent{Type: runtime.EventCreated, ContainerID: c.status.ID, SandboxID: sandboxID, Time: now})
	return c.status.ID, nil
}

func (r *Runtime) get(id string) (*container, error) {
	c, ok := r.ctrs[id]
	if !ok {
		return nil, fmt.Errorf("simulated: container %q: %w", id, runtime.ErrNotFound)
	}
	return c, nil
}

// StartContainer implements runtime.Runtime.
func (r *Runtime) StartContainer(_ context.Context, id string) error {
	now := r.clock.Now()
	r.mu.Lock()
	c, err := r.get(id)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	if c.status.State != runtime.ContainerCreated {
		r.mu.Unlock()
		return fmt.Errorf("simulated: container %q is %s: %w", id, c.status.State, runtime.ErrInvalid)
	}
	c.status.State = runtime.ContainerRunning
	c.status.StartedAt = now
	c.readyAt = now.Add(c.behavior.ReadyAfter)
	b := c.behavior
	r.mu.Unlock()
	r.events.Publish(runtime.ContainerEvent{Type: runtime.EventStarted, ContainerID: id, SandboxID: c.status.SandboxID, Time: now})
	if b.RunFor > 0 {
		at := now.Add(b.RunFor)
		code, reason := b.ExitCode, ""
		if b.OOMKill {
			code, reason = 137, runtime.ReasonOOMKilled
		}
		// The callback runs with the clock's lock held: it must not call
		// the clock, so the exit time is computed here.
		t := r.clock.AfterFunc(b.RunFor, func() { r.exit(id, at, code, reason) })
		r.mu.Lock()
		c.timer = t
		r.mu.Unlock()
	}
	return nil
}

// exit records the end of a container.
func (r *Runtime) exit(id string, at time.Time, code int32, reason string) {
	r.mu.Lock()
	c, ok := r.ctrs[id]
	if !ok || c.status.State != runtime.ContainerRunning {
		r.mu.Unlock()
		return
	}
	c.status.State = runtime.ContainerExited
	c.status.FinishedAt = at
	c.status.ExitCode = code
	switch {
	case reason != "":
		c.status.Reason = reason
	case code == 0:
		c.status.Reason = runtime.ReasonCompleted
	default:
		c.status.Reason = runtime.ReasonError
	}
	close(c.exited)
	sb := c.status.SandboxID
	r.mu.Unlock()
	if reason == runtime.ReasonOOMKilled {
		r.events.Publish(runtime.ContainerEvent{Type: runtime.EventOOM, ContainerID: id, SandboxID: sb, Time: at})
	}
	r.events.Publish(runtime.ContainerEvent{Type: runtime.EventExited, ContainerID: id, SandboxID: sb, Time: at, ExitCode: code})
}

// StopContainer implements runtime.Runtime. A container whose behaviour
// ignores SIGTERM exits with 137 when grace has passed on the clock;
// otherwise it exits with 143 (128+SIGTERM) at once.
func (r *Runtime) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	now := r.clock.Now()
	r.mu.Lock()
	c, err := r.get(id)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	switch c.status.State {
	case runtime.ContainerCreated:
		c.status.State = runtime.ContainerExited
		c.status.FinishedAt = now
		close(c.exited)
		r.mu.Unlock()
		return nil
	case runtime.ContainerExited:
		r.mu.Unlock()
		return nil
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	ignore := c.behavior.IgnoreSIGTERM
	exited := c.exited
	r.mu.Unlock()
	if !ignore || grace <= 0 {
		code := int32(143)
		if ignore {
			code = 137
		}
		r.exit(id, now, code, "")
		return nil
	}
	select {
	case <-r.clock.After(grace):
		r.exit(id, now.Add(grace), 137, "")
		return nil
	case <-exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RemoveContainer implements runtime.Runtime.
func (r *Runtime) RemoveContainer(ctx context.Context, id string) error {
	if err := r.StopContainer(ctx, id, 0); err != nil {
		return err
	}
	now := r.clock.Now()
	r.mu.Lock()
	c, ok := r.ctrs[id]
	delete(r.ctrs, id)
	r.mu.Unlock()
	if ok {
		r.events.Publish(runtime.ContainerEvent{Type: runtime.EventRemoved, ContainerID: id, SandboxID: c.status.SandboxID, Time: now})
	}
	return nil
}

func (c *container) report() *runtime.ContainerStatus {
	st := c.status
	return &st
}

// ContainerStatus implements runtime.Runtime.
func (r *Runtime) ContainerStatus(_ context.Context, id string) (*runtime.ContainerStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return nil, err
	}
	return c.report(), nil
}

// ListContainers implements runtime.Runtime.
func (r *Runtime) ListContainers(_ context.Context, f runtime.ContainerFilter) ([]*runtime.ContainerStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*runtime.ContainerStatus
	for _, c := range r.ctrs {
		if st := c.report(); f.Matches(st) {
			out = append(out, st)
		}
	}
	slices.SortFunc(out, func(a, b *runtime.ContainerStatus) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// ContainerStats implements runtime.Runtime with the scripted usage.
func (r *Runtime) ContainerStats(_ context.Context, id string) (*runtime.ContainerStats, error) {
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return nil, err
	}
	if c.status.State != runtime.ContainerRunning {
		return nil, fmt.Errorf("simulated: container %q is %s: %w", id, c.status.State, runtime.ErrInvalid)
	}
	used := now.Sub(c.status.StartedAt).Nanoseconds() * c.behavior.CPUMilli / 1000
	procs := c.behavior.Processes
	if procs == 0 {
		procs = 1
	}
	return &runtime.ContainerStats{ContainerID: id, Timestamp: now, CPUUsageNanoSeconds: uint64(used),
		MemoryUsageBytes: c.behavior.MemoryBytes, MemoryWorkingSetBytes: c.behavior.MemoryBytes,
		WritableLayerBytes: c.behavior.WritableLayerBytes, Processes: procs}, nil
}

// Exec implements runtime.Runtime: see Options.Exec.
func (r *Runtime) Exec(_ context.Context, id string, opts runtime.ExecOptions) (int, error) {
	now := r.clock.Now()
	r.mu.Lock()
	c, err := r.get(id)
	if err != nil {
		r.mu.Unlock()
		return 0, err
	}
	if c.status.State != runtime.ContainerRunning {
		r.mu.Unlock()
		return 0, fmt.Errorf("simulated: container %q is %s: %w", id, c.status.State, runtime.ErrInvalid)
	}
	ready := !now.Before(c.readyAt)
	r.mu.Unlock()
	if r.opts.Exec != nil {
		out := opts.Stdout
		if out == nil {
			out = io.Discard
		}
		return int(r.opts.Exec(id, opts.Cmd, out)), nil
	}
	if ready {
		return 0, nil
	}
	return 1, nil
}

// Attach implements runtime.Runtime: it writes nothing new (scripted output
// is logged at start) and returns when the container exits or ctx ends.
func (r *Runtime) Attach(ctx context.Context, id string, _ runtime.AttachOptions) error {
	r.mu.Lock()
	c, err := r.get(id)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	select {
	case <-c.exited:
	case <-ctx.Done():
	}
	return nil
}

// PortForward implements runtime.Runtime. No process listens in a
// simulated sandbox, so the connection is refused.
func (r *Runtime) PortForward(_ context.Context, sandboxID string, port int32, _ io.ReadWriter) error {
	if _, err := r.PodSandboxStatus(context.Background(), sandboxID); err != nil {
		return err
	}
	return fmt.Errorf("simulated: port %d of sandbox %q: connection refused (no processes in a simulated runtime)", port, sandboxID)
}

// ContainerLogs implements runtime.Runtime with the scripted output, stamped
// with the start time.
func (r *Runtime) ContainerLogs(ctx context.Context, id string, opts runtime.LogOptions, stdout, _ io.Writer) error {
	r.mu.Lock()
	c, err := r.get(id)
	var lines []string
	var started time.Time
	if err == nil && c.status.State != runtime.ContainerCreated {
		lines, started = c.behavior.Output, c.status.StartedAt
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if !opts.Since.IsZero() && started.Before(opts.Since) {
		lines = nil
	}
	if opts.TailLines >= 0 && int64(len(lines)) > opts.TailLines {
		lines = lines[int64(len(lines))-opts.TailLines:]
	}
	var buf strings.Builder
	for _, l := range lines {
		if opts.Timestamps {
			buf.WriteString(started.UTC().Format(time.RFC3339Nano) + " ")
		}
		buf.WriteString(l + "\n")
	}
	out := buf.String()
	if opts.LimitBytes > 0 && int64(len(out)) > opts.LimitBytes {
		out = out[:opts.LimitBytes]
	}
	if stdout != nil {
		if _, err := io.WriteString(stdout, out); err != nil {
			return fmt.Errorf("simulated: %w", err)
		}
	}
	if opts.Follow {
		select {
		case <-c.exited:
		case <-ctx.Done():
		}
	}
	return nil
}

// Events implements runtime.Runtime.
func (r *Runtime) Events(ctx context.Context) (<-chan runtime.ContainerEvent, error) {
	return r.events.Subscribe(ctx), nil
}

// PullImage implements runtime.Runtime.
func (r *Runtime) PullImage(_ context.Context, ref string, _ *runtime.AuthConfig) (*runtime.Image, error) {
	if r.opts.PullError != nil {
		if err := r.opts.PullError(ref); err != nil {
			return nil, &runtime.ImagePullError{Ref: ref, Err: err}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	im := r.addImage(ref).Image
	return &im, nil
}

// ImportImage implements runtime.Runtime: the archive is read as a list
// of image references, one per line.
func (r *Runtime) ImportImage(_ context.Context, archive io.Reader) ([]*runtime.Image, error) {
	b, err := io.ReadAll(archive)
	if err != nil {
		return nil, fmt.Errorf("simulated: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*runtime.Image
	for _, ref := range strings.Fields(string(b)) {
		im := r.addImage(ref).Image
		out = append(out, &im)
	}
	return out, nil
}

// ImageStatus implements runtime.Runtime.
func (r *Runtime) ImageStatus(_ context.Context, ref string) (*runtime.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for tag, im := range r.images {
		if tag == ref || im.ID == ref {
			cp := im.Image
			return &cp, nil
		}
	}
	return nil, fmt.Errorf("simulated: image %q: %w", ref, runtime.ErrNotFound)
}

// ListImages implements runtime.Runtime.
func (r *Runtime) ListImages(context.Context) ([]*runtime.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*runtime.Image
	for _, im := range r.images {
		cp := im.Image
		out = append(out, &cp)
	}
	slices.SortFunc(out, func(a, b *runtime.Image) int { return strings.Compare(a.RepoTags[0], b.RepoTags[0]) })
	return out, nil
}

// RemoveImage implements runtime.Runtime.
func (r *Runtime) RemoveImage(_ context.Context, ref string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for tag, im := range r.images {
		if tag == ref || im.ID == ref {
			delete(r.images, tag)
		}
	}
	return nil
}

// Close implements runtime.Runtime: pending scripted exits are cancelled.
func (r *Runtime) Close() error {
	r.mu.Lock()
	r.closed = true
	for _, c := range r.ctrs {
		if c.timer != nil {
			c.timer.Stop()
		}
	}
	r.mu.Unlock()
	r.events.Close()
	return nil
}
