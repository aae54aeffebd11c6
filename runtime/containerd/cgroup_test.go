package containerd

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tugboatdev/tugboat/runtime"
)

func TestQOSOf(t *testing.T) {
	for _, tc := range []struct {
		cfg  runtime.PodSandboxConfig
		want runtime.QOSClass
	}{
		{runtime.PodSandboxConfig{}, runtime.QOSBestEffort},
		{runtime.PodSandboxConfig{QOSClass: runtime.QOSGuaranteed}, runtime.QOSGuaranteed},
		{runtime.PodSandboxConfig{Resources: runtime.Resources{CPURequestMilli: 100}}, runtime.QOSBurstable},
		{runtime.PodSandboxConfig{Resources: runtime.Resources{MemoryLimitBytes: 1 << 20}}, runtime.QOSBurstable},
		{runtime.PodSandboxConfig{Resources: runtime.Resources{MemoryLimitBytes: 1 << 20, CPULimitMilli: 100}}, runtime.QOSGuaranteed},
		{runtime.PodSandboxConfig{Resources: runtime.Resources{MemoryLimitBytes: 1 << 20, CPULimitMilli: 100, CPURequestMilli: 50}}, runtime.QOSBurstable},
	} {
		if got := qosOf(&tc.cfg); got != tc.want {
			t.Errorf("qosOf(%+v) = %s, want %s", tc.cfg, got, tc.want)
		}
	}
}

// hostCgroup reads a host process's cgroup path in one v1 hierarchy.
func hostCgroup(t *testing.T, pid uint32, controller string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.SplitN(line, ":", 3); len(f) == 3 && f[1] == controller {
			return f[2]
		}
	}
	t.Fatalf("no %s cgroup in %s", controller, b)
	return ""
}

func readCgroupFile(t *testing.T, controller, p, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(cgroupRoot, controller, p, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestPodCgroup: each pod gets kubepods[/<qos>]/pod<uid> with its totals
// as limits, its containers' cgroups are nested in it, and it is removed
// with the sandbox.
func TestPodCgroup(t *testing.T) {
	_, err := os.Stat(filepath.Join(cgroupRoot, "memory", "memory.limit_in_bytes"))
	if err != nil || cgroupV2Only() {
		t.Fatalf("this test checks cgroup v1 files (memory hierarchy: %v)", err)
	}
	r := newTestRuntime(t, testOpts{})
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		qos  runtime.QOSClass
		res  runtime.Resources
		dir  string
		want map[string]string // controller/file -> value
	}{
		{"guaranteed", runtime.QOSGuaranteed, runtime.Resources{MemoryLimitBytes: 64 << 20, CPULimitMilli: 500, CPURequestMilli: 500}, "kubepods",
			map[string]string{"memory/memory.limit_in_bytes": "67108864", "cpu/cpu.cfs_quota_us": "50000", "cpu/cpu.cfs_period_us": "100000", "cpu/cpu.shares": "512"}},
		{"burstable", "", runtime.Resources{MemoryLimitBytes: 32 << 20, CPURequestMilli: 250}, "kubepods/burstable",
			map[string]string{"memory/memory.limit_in_bytes": "33554432", "cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.shares": "256"}},
		{"besteffort", "", runtime.Resources{}, "kubepods/besteffort",
			map[string]string{"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.shares": "1024"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uid := "uid-" + tc.name
			sb, ids := runPod(t, r, &runtime.PodSandboxConfig{Name: tc.name, Namespace: "default", UID: uid, QOSClass: tc.qos, Resources: tc.res},
				&runtime.ContainerConfig{Name: "c", Command: []string{"sleep", "1000"}, Resources: runtime.Resources{MemoryLimitBytes: 16 << 20}})
			podCg := path.Join(r.opts.CgroupParent, tc.dir, "pod"+uid)
			st, err := r.PodSandboxStatus(ctx, sb)
			if err != nil {
				t.Fatal(err)
			}
			if st.CgroupPath != podCg {
				t.Errorf("CgroupPath = %q, want %q", st.CgroupPath, podCg)
			}
			got := map[string]string{}
			for file := range tc.want {
				ctl, name := path.Split(file)
				got[file] = readCgroupFile(t, ctl, podCg, name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("pod cgroup limits (-want +got):\n%s", diff)
			}
			c, err := r.client.LoadContainer(r.nsctx(ctx), ids[0])
			if err != nil {
				t.Fatal(err)
			}
			task, err := c.Task(r.nsctx(ctx), nil)
			if err != nil {
				t.Fatal(err)
			}
			ctls := []string{"memory", "cpu", "pids"}
			if _, err := os.Stat(filepath.Join(cgroupRoot, "unified", "cgroup.procs")); err == nil {
				ctls = append(ctls, "") // the v2 (unified) hierarchy of a hybrid host: "0::<path>"
			}
			for _, ctl := range ctls {
				if got, want := hostCgroup(t, task.Pid(), ctl), podCg+"/"+ids[0]; got != want {
					t.Errorf("container's %s cgroup = %q, want %q (nested in the pod's)", ctl, got, want)
				}
			}
			if got := readCgroupFile(t, "memory", podCg+"/"+ids[0], "memory.limit_in_bytes"); got != "16777216" {
				t.Errorf("container memory limit = %s, want 16777216", got)
			}
			if err := r.RemovePodSandbox(ctx, sb); err != nil {
				t.Fatal(err)
			}
			hier, _ := filepath.Glob(filepath.Join(cgroupRoot, "*"))
			for _, h := range hier {
				if _, err := os.Stat(filepath.Join(h, podCg)); err == nil {
					t.Errorf("pod cgroup %s left in %s after RemovePodSandbox", podCg, h)
				}
			}
		})
	}
}

// TestPodMemoryLimit: the pod-level limit applies to containers without
// limits of their own.
func TestPodMemoryLimit(t *testing.T) {
	r := newTestRuntime(t, testOpts{})
	_, ids := runPod(t, r, &runtime.PodSandboxConfig{Name: "podlimit", Namespace: "default", UID: "podlimit", Resources: runtime.Resources{MemoryLimitBytes: 16 << 20}},
		&runtime.ContainerConfig{Name: "hog", Command: []string{"sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived"}})
	st := waitExit(t, r, ids[0], 30*time.Second)
	if st.ExitCode != 137 {
		t.Errorf("container over the pod's memory limit: %+v, want killed (137)", st)
	}
	if strings.Contains(logsOf(t, r, ids[0]), "survived") {
		t.Error("the hog survived the pod memory limit")
	}
}
