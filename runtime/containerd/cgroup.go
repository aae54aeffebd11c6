package containerd

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tugboatdev/tugboat/internal/hostfs"
	"github.com/tugboatdev/tugboat/runtime"
)

const cgroupRoot = "/sys/fs/cgroup"

// cgroupV2Only reports a host with the unified hierarchy alone.
func cgroupV2Only() bool {
	_, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers"))
	return err == nil
}

// qosOf is the pod's QoS class: the given one, or the kubelet's rule
// applied to the pod's totals (limits equal to requests for both CPU and
// memory: Guaranteed; anything set: Burstable; nothing: BestEffort).
func qosOf(cfg *runtime.PodSandboxConfig) runtime.QOSClass {
	if cfg.QOSClass != "" {
		return cfg.QOSClass
	}
	res := cfg.Resources
	switch {
	case res.CPULimitMilli > 0 && res.MemoryLimitBytes > 0 && (res.CPURequestMilli == 0 || res.CPURequestMilli == res.CPULimitMilli):
		return runtime.QOSGuaranteed
	case res.CPULimitMilli > 0 || res.MemoryLimitBytes > 0 || res.CPURequestMilli > 0:
		return runtime.QOSBurstable
	default:
		return runtime.QOSBestEffort
	}
}

// podCgroupPath is the pod-level cgroup as the kubelet lays it out (with
// the cgroupfs driver) under the runtime's CgroupParent:
// kubepods/pod<uid>, kubepods/burstable/pod<uid> or
// kubepods/besteffort/pod<uid>.
func (r *Runtime) podCgroupPath(s *sandbox) string {
	dir := path.Join(r.opts.CgroupParent, "kubepods")
	switch qosOf(&s.Config) {
	case runtime.QOSBurstable:
		dir = path.Join(dir, "burstable")
	case runtime.QOSBestEffort:
		dir = path.Join(dir, "besteffort")
	}
	uid := s.Config.UID
	if uid == "" || strings.ContainsAny(uid, "/\x00") || uid == "." || uid == ".." {
		uid = s.ID
	}
	return path.Join(dir, "pod"+uid)
}

// v1Controllers are the cgroup v1 hierarchies in which the pod cgroup is
// made (and limited) before any container; runc adds the container
// cgroups below it in every hierarchy.
func v1Controllers() []string {
	return []string{"cpu", "cpuacct", "memory", "pids", "unified", "systemd"}
}

// createPodCgroup makes the pod cgroup and applies the pod's totals: a
// memory limit, a CFS quota and CPU shares (weight on cgroup v2).
func createPodCgroup(p string, res runtime.Resources) error {
	if cgroupV2Only() {
		return createPodCgroupV2(p, res)
	}
	for _, ctl := range v1Controllers() {
		root := filepath.Join(cgroupRoot, ctl)
		if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
			continue
		}
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			return fmt.Errorf("pod cgroup %s: %w", p, err)
		}
	}
	var files []struct{ file, value string }
	add := func(file, value string) { files = append(files, struct{ file, value string }{file, value}) }
	if res.MemoryLimitBytes > 0 {
		add("memory/memory.limit_in_bytes", strconv.FormatInt(res.MemoryLimitBytes, 10))
	}
	if res.CPULimitMilli > 0 {
		add("cpu/cpu.cfs_period_us", "100000")
		add("cpu/cpu.cfs_quota_us", strconv.FormatInt(res.CPULimitMilli*100, 10))
	}
	if res.CPURequestMilli > 0 {
		add("cpu/cpu.shares", strconv.FormatUint(cpuShares(res.CPURequestMilli), 10))
	}
	for _, f := range files {
		ctl, name := filepath.Split(f.file)
		if err := os.WriteFile(filepath.Join(cgroupRoot, ctl, p, name), []byte(f.value), 0o644); err != nil {
			return fmt.Errorf("pod cgroup %s: %w", p, err)
		}
	}
	return nil
}

// cpuShares converts milli-CPUs to cgroup v1 shares as the kubelet does.
func cpuShares(milli int64) uint64 { return max(uint64(milli*1024/1000), 2) }

func createPodCgroupV2(p string, res runtime.Resources) error {
	// Enable the controllers on the way down so that the pod cgroup (and
	// its containers) can be limited.
	parts := strings.Split(strings.Trim(p, "/"), "/")
	cur := cgroupRoot
	for _, part := range parts {
		_ = os.WriteFile(filepath.Join(cur, "cgroup.subtree_control"), []byte("+cpu +memory +pids"), 0o644)
		cur = filepath.Join(cur, part)
		if err := os.Mkdir(cur, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("pod cgroup %s: %w", p, err)
		}
	}
	write := func(name, value string) error {
		if err := os.WriteFile(filepath.Join(cur, name), []byte(value), 0o644); err != nil {
			return fmt.Errorf("pod cgroup %s: %w", p, err)
		}
		return nil
	}
	if res.MemoryLimitBytes > 0 {
		if err := write("memory.max", strconv.FormatInt(res.MemoryLimitBytes, 10)); err != nil {
			return err
		}
	}
	if res.CPULimitMilli > 0 {
		if err := write("cpu.max", fmt.Sprintf("%d 100000", res.CPULimitMilli*100)); err != nil {
			return err
		}
	}
	if res.CPURequestMilli > 0 {
		// The OCI conversion of shares to weight (runc's).
		weight := 1 + ((cpuShares(res.CPURequestMilli)-2)*9999)/262142
		if err := write("cpu.weight", strconv.FormatUint(weight, 10)); err != nil {
			return err
		}
	}
	return nil
}

// joinCgroup moves a process into the pod cgroup (the pause process).
func joinCgroup(p string, pid int) error {
	roots := []string{cgroupRoot}
	if !cgroupV2Only() {
		roots = roots[:0]
		for _, ctl := range v1Controllers() {
			roots = append(roots, filepath.Join(cgroupRoot, ctl))
		}
	}
	for _, root := range roots {
		procs := filepath.Join(root, p, "cgroup.procs")
		if _, err := os.Stat(procs); err != nil {
			continue
		}
		if err := os.WriteFile(procs, []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("join cgroup %s: %w", procs, err)
		}
	}
	return nil
}

// removeCgroupTree removes the cgroup p and everything below it, deepest
// first, from every hierarchy. The cgroups must be empty of processes.
func removeCgroupTree(p string) error {
	if p == "" || p == "/" {
		return nil
	}
	roots, _ := filepath.Glob(filepath.Join(cgroupRoot, "*"))
	roots = append(roots, cgroupRoot)
	var errs []error
	for _, root := range roots {
		dir := filepath.Join(root, p)
		if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
			continue
		}
		if err := hostfs.RemoveDirTree(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}
