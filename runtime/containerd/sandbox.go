package containerd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/cni"
)

// sandbox is a pod sandbox's persisted state (sandboxes/<id>/sandbox.json).
// There is no pause container: the sandbox is a network namespace bind
// mount plus the hostname, hosts and resolv.conf files that every
// container of the pod mounts.
type sandbox struct {
	ID        string
	Config    runtime.PodSandboxConfig
	State     runtime.SandboxState
	CreatedAt time.Time
	IP        string
	NetNS     string
	Dir       string
	LogDir    string
	// Networked records that CNI attached the sandbox (Teardown owed).
	Networked bool
	// IPCNS is the pod's IPC namespace (a bind mount) and Shm the
	// directory of its /dev/shm tmpfs; both empty for hostIPC.
	IPCNS string `json:",omitempty"`
	Shm   string `json:",omitempty"`
	// PausePID and PauseStart identify the pause process, PID 1 of the
	// pod's shared PID namespace (shareProcessNamespace only).
	PausePID   int    `json:",omitempty"`
	PauseStart uint64 `json:",omitempty"`
	// Cgroup is the pod-level cgroup holding the containers' cgroups.
	Cgroup string `json:",omitempty"`
	// RunDir holds the sandbox's per-boot files (hostname, hosts,
	// resolv.conf and the /dev/shm mount point) in the run directory;
	// empty for sandboxes made before it existed, which keep them in Dir.
	RunDir string `json:",omitempty"`
}

// filesDir is the directory of the sandbox's hostname, hosts and
// resolv.conf files.
func (s *sandbox) filesDir() string {
	if s.RunDir != "" {
		return s.RunDir
	}
	return s.Dir
}

func (s *sandbox) report() *runtime.PodSandbox {
	return &runtime.PodSandbox{ID: s.ID, Config: s.Config, State: s.State, CreatedAt: s.CreatedAt, IP: s.IP, NetNSPath: s.NetNS, CgroupPath: s.Cgroup}
}

func (r *Runtime) sandboxesDir() string { return filepath.Join(r.opts.DataDir, "sandboxes") }

func (r *Runtime) save(s *sandbox) error {
	if err := writeJSON(filepath.Join(s.Dir, "sandbox.json"), s); err != nil {
		return fmt.Errorf("containerd: save sandbox %s: %w", s.ID, err)
	}
	return nil
}

// RunPodSandbox implements runtime.Runtime.
func (r *Runtime) RunPodSandbox(ctx context.Context, cfg *runtime.PodSandboxConfig) (_ string, err error) {
	s := &sandbox{ID: newID(), Config: *cfg, State: runtime.SandboxReady, CreatedAt: time.Now()}
	s.Dir = filepath.Join(r.sandboxesDir(), s.ID)
	s.LogDir = cfg.LogDirectory
	if s.LogDir == "" {
		s.LogDir = filepath.Join(r.opts.DataDir, "pods", fmt.Sprintf("%s_%s_%s", cfg.Namespace, cfg.Name, cfg.UID))
	}
	s.RunDir = r.runPath("sandboxes", s.ID)
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return "", fmt.Errorf("containerd: %w", err)
	}
	if err := os.MkdirAll(s.RunDir, 0o755); err != nil {
		return "", fmt.Errorf("containerd: %w", err)
	}
	if err := os.MkdirAll(s.LogDir, 0o755); err != nil {
		return "", fmt.Errorf("containerd: %w", err)
	}
	defer func() {
		if err != nil {
			r.teardownSandbox(context.WithoutCancel(ctx), s)
			_ = cni.DeleteNetNS(s.NetNS)
			r.releasePodResources(s)
			_ = os.RemoveAll(s.Dir)
			_ = os.RemoveAll(s.RunDir)
		}
	}()
	s.Cgroup = r.podCgroupPath(s)
	if err := createPodCgroup(s.Cgroup, cfg.Resources); err != nil {
		return "", fmt.Errorf("containerd: sandbox %s: %w", s.ID, err)
	}
	if !cfg.HostIPC {
		s.IPCNS = r.runPath("ipcns", s.ID)
		if err := newIPCNS(s.IPCNS); err != nil {
			s.IPCNS = ""
			return "", fmt.Errorf("containerd: sandbox %s: %w", s.ID, err)
		}
		s.Shm = filepath.Join(s.RunDir, "shm")
		if err := mountShm(s.Shm); err != nil {
			return "", fmt.Errorf("containerd: sandbox %s: %w", s.ID, err)
		}
	}
	if cfg.ShareProcessNamespace && !cfg.HostPID {
		if err := r.startPause(s); err != nil {
			return "", fmt.Errorf("containerd: sandbox %s: %w", s.ID, err)
		}
	}
	if cfg.HostNetwork {
		s.IP = r.opts.NodeIP
	} else {
		s.NetNS = r.runPath("netns", s.ID)
		if err := cni.NewNetNS(s.NetNS); err != nil {
			return "", fmt.Errorf("containerd: sandbox %s: %w", s.ID, err)
		}
		if r.opts.Network != nil {
			release, err := acquire(ctx, r.cniSlots)
			if err != nil {
				return "", fmt.Errorf("containerd: sandbox %s: %w", s.ID, err)
			}
			s.Networked = true
			ip, err := r.opts.Network.Setup(ctx, s.ID, s.NetNS, cfg.PortMappings)
			release()
			if err != nil {
				return "", fmt.Errorf("containerd: sandbox %s: %w", s.ID, err)
			}
			s.IP = ip
		} else if err := cni.LoopbackUp(s.NetNS); err != nil {
			return "", fmt.Errorf("containerd: sandbox %s: %w", s.ID, err)
		}
	}
	if err := r.writeSandboxFiles(s); err != nil {
		return "", err
	}
	if err := r.save(s); err != nil {
		return "", err
	}
	r.mu.Lock()
	r.sandboxes[s.ID] = s
	r.mu.Unlock()
	return s.ID, nil
}

func (s *sandbox) hostname() string {
	if s.Config.Hostname != "" {
		return s.Config.Hostname
	}
	if s.Config.HostNetwork {
		h, _ := os.Hostname()
		return h
	}
	name := s.Config.Name
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

// writeSandboxFiles writes the pod's hostname, /etc/hosts and
// /etc/resolv.conf.
func (r *Runtime) writeSandboxFiles(s *sandbox) error {
	var hosts strings.Builder
	if s.Config.HostNetwork {
		b, err := os.ReadFile("/etc/hosts")
		if err != nil {
			return fmt.Errorf("containerd: %w", err)
		}
		hosts.Write(b)
	} else {
		hosts.WriteString("# Kubernetes-managed hosts file (tugboat).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
		if s.IP != "" {
			fmt.Fprintf(&hosts, "%s\t%s\n", s.IP, s.hostname())
		}
	}
	for _, a := range s.Config.HostAliases {
		fmt.Fprintf(&hosts, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
	}
	var resolv []byte
	if d := s.Config.DNS; len(d.Servers)+len(d.Searches)+len(d.Options) > 0 {
		var b strings.Builder
		if len(d.Searches) > 0 {
			fmt.Fprintf(&b, "search %s\n", strings.Join(d.Searches, " "))
		}
		for _, srv := range d.Servers {
			fmt.Fprintf(&b, "nameserver %s\n", srv)
		}
		if len(d.Options) > 0 {
			fmt.Fprintf(&b, "options %s\n", strings.Join(d.Options, " "))
		}
		resolv = []byte(b.String())
	} else {
		var err error
		if resolv, err = os.ReadFile("/etc/resolv.conf"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("containerd: %w", err)
		}
	}
	for name, data := range map[string][]byte{"hosts": []byte(hosts.String()), "resolv.conf": resolv, "hostname": []byte(s.hostname() + "\n")} {
		if err := os.WriteFile(filepath.Join(s.filesDir(), name), data, 0o644); err != nil {
			return fmt.Errorf("containerd: %w", err)
		}
	}
	return nil
}

func (r *Runtime) getSandbox(id string) (*sandbox, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sandboxes[id]
	if !ok {
		return nil, notFound("sandbox", id)
	}
	return s, nil
}

// teardownSandbox releases the sandbox's network attachment.
func (r *Runtime) teardownSandbox(ctx context.Context, s *sandbox) error {
	if !s.Networked || r.opts.Network == nil {
		return nil
	}
	if err := r.opts.Network.Teardown(ctx, s.ID, s.NetNS, s.Config.PortMappings); err != nil {
		return err
	}
	s.Networked = false
	return nil
}

// StopPodSandbox implements runtime.Runtime.
func (r *Runtime) StopPodSandbox(ctx context.Context, id string) error {
	s, err := r.getSandbox(id)
	if err != nil {
		if errors.Is(err, runtime.ErrNotFound) {
			return nil
		}
		return err
	}
	cs, err := r.ListContainers(ctx, runtime.ContainerFilter{SandboxID: id})
	if err != nil {
		return err
	}
	// The containers are killed in parallel, as the kubelet does.
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		if c.State == runtime.ContainerRunning || c.State == runtime.ContainerCreated {
			wg.Go(func() { errs[i] = r.StopContainer(ctx, c.ID, 0) })
		}
	}
	wg.Wait()
	r.mu.Lock()
	s.State = runtime.SandboxNotReady
	r.mu.Unlock()
	r.stopPause(s)
	errs = append(errs, r.teardownSandbox(ctx, s), r.save(s))
	return errors.Join(errs...)
}

// RemovePodSandbox implements runtime.Runtime.
func (r *Runtime) RemovePodSandbox(ctx context.Context, id string) error {
	s, err := r.getSandbox(id)
	if err != nil {
		if errors.Is(err, runtime.ErrNotFound) {
			return nil
		}
		return err
	}
	if err := r.StopPodSandbox(ctx, id); err != nil {
		return err
	}
	cs, err := r.ListContainers(ctx, runtime.ContainerFilter{SandboxID: id})
	if err != nil {
		return err
	}
	rmErrs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() { rmErrs[i] = r.RemoveContainer(ctx, c.ID) })
	}
	wg.Wait()
	if err := errors.Join(rmErrs...); err != nil {
		return err
	}
	if err := cni.DeleteNetNS(s.NetNS); err != nil && s.NetNS != "" {
		return fmt.Errorf("containerd: sandbox %s: %w", id, err)
	}
	if err := r.releasePodResources(s); err != nil {
		return fmt.Errorf("containerd: sandbox %s: %w", id, err)
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	if s.RunDir != "" {
		if err := os.RemoveAll(s.RunDir); err != nil {
			return fmt.Errorf("containerd: %w", err)
		}
	}
	r.mu.Lock()
	delete(r.sandboxes, id)
	r.mu.Unlock()
	return nil
}

// PodSandboxStatus implements runtime.Runtime.
func (r *Runtime) PodSandboxStatus(_ context.Context, id string) (*runtime.PodSandbox, error) {
	s, err := r.getSandbox(id)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
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
	slices.SortFunc(out, func(a, b *runtime.PodSandbox) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// releasePodResources removes the sandbox's IPC namespace, /dev/shm and,
// unless another sandbox of the same pod still uses it, the pod cgroup.
func (r *Runtime) releasePodResources(s *sandbox) error {
	r.stopPause(s)
	r.mu.Lock()
	shared := false
	for _, o := range r.sandboxes {
		shared = shared || (o.ID != s.ID && o.Cgroup == s.Cgroup)
	}
	r.mu.Unlock()
	errs := []error{unmountAndRemove(s.IPCNS), unmountAndRemove(s.Shm)}
	if !shared && s.Cgroup != "" {
		errs = append(errs, removeCgroupTree(s.Cgroup))
	}
	return errors.Join(errs...)
}

// loadSandboxes reads the sandboxes a previous Runtime persisted.
func (r *Runtime) loadSandboxes() error {
	entries, err := os.ReadDir(r.sandboxesDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(r.sandboxesDir(), e.Name(), "sandbox.json"))
		if err != nil {
			r.logger.Warn("skipping unreadable sandbox state", "dir", e.Name(), "err", err)
			continue
		}
		var s sandbox
		if err := json.Unmarshal(b, &s); err != nil {
			r.logger.Warn("skipping corrupt sandbox state", "dir", e.Name(), "err", err)
			continue
		}
		r.sandboxes[s.ID] = &s
	}
	return nil
}
