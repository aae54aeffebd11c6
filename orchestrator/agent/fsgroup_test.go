package agent

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/simulated"
	"github.com/tugboatdev/tugboat/store"
)

// ownerMode returns a file's group and mode.
func ownerMode(t *testing.T, p string) (uint32, os.FileMode) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Gid, fi.Mode()
}

func TestSecurityContextGroups(t *testing.T) {
	var mu sync.Mutex
	var sandbox runtime.PodSandboxConfig
	e := newEnv(t, envOpts{script: func(sb *runtime.PodSandboxConfig, _ *runtime.ContainerConfig) simulated.Behavior {
		mu.Lock()
		sandbox = *sb
		mu.Unlock()
		return simulated.Behavior{}
	}})
	p := simplePod("groups")
	p.Spec.ShareProcessNamespace = ptr(true)
	p.Spec.HostIPC = true
	p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr(int64(1000)), RunAsGroup: ptr(int64(3000)), FSGroup: ptr(int64(2000)),
		SupplementalGroups: []int64{4000, 2000}, SELinuxOptions: &corev1.SELinuxOptions{Level: "s0:c1,c2"},
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
	p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "other", Image: "app:1",
		SecurityContext: &corev1.SecurityContext{RunAsUser: ptr(int64(1001)), SELinuxOptions: &corev1.SELinuxOptions{User: "system_u", Role: "system_r", Type: "spc_t", Level: "s0"},
			SeccompProfile:  &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr("profiles/audit.json")},
			AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}}})
	e.createPod(p)
	e.waitStatus("default", "groups", "Running")
	app, other := e.rec.last("app"), e.rec.last("other")
	mu.Lock()
	if !sandbox.ShareProcessNamespace || !sandbox.HostIPC || sandbox.HostPID || sandbox.QOSClass != runtime.QOSBestEffort {
		t.Errorf("sandbox shareProcessNamespace %v hostIPC %v hostPID %v QoS %q", sandbox.ShareProcessNamespace, sandbox.HostIPC, sandbox.HostPID, sandbox.QOSClass)
	}
	mu.Unlock()
	if want := (runtime.SecurityProfile{Type: runtime.ProfileRuntimeDefault}); app.Security.Seccomp != want || app.Security.AppArmor != (runtime.SecurityProfile{}) {
		t.Errorf("app seccomp %+v apparmor %+v", app.Security.Seccomp, app.Security.AppArmor)
	}
	if want := (runtime.SecurityProfile{Type: runtime.ProfileLocalhost, LocalhostProfile: "profiles/audit.json"}); other.Security.Seccomp != want ||
		other.Security.AppArmor != (runtime.SecurityProfile{Type: runtime.ProfileUnconfined}) {
		t.Errorf("other seccomp %+v apparmor %+v", other.Security.Seccomp, other.Security.AppArmor)
	}
	if diff := cmp.Diff([]int64{4000, 2000}, app.Security.SupplementalGroups); diff != "" {
		t.Errorf("supplemental groups (-want +got):\n%s", diff)
	}
	if *app.Security.RunAsUser != 1000 || *app.Security.RunAsGroup != 3000 || *other.Security.RunAsUser != 1001 || *other.Security.RunAsGroup != 3000 {
		t.Errorf("users app %d:%d other %d:%d", *app.Security.RunAsUser, *app.Security.RunAsGroup, *other.Security.RunAsUser, *other.Security.RunAsGroup)
	}
	if app.Security.SELinuxLabel != ":::s0:c1,c2" || other.Security.SELinuxLabel != "system_u:system_r:spc_t:s0" {
		t.Errorf("SELinux labels %q, %q", app.Security.SELinuxLabel, other.Security.SELinuxLabel)
	}
	if ev := e.events("groups", "UnsupportedFields"); len(ev) > 0 {
		t.Errorf("unexpected warning %q", ev)
	}
}

// TestFSGroupVolumes checks the group ownership fsGroup gives emptyDir,
// configMap, projected and claim volumes, and fsGroupChangePolicy.
func TestFSGroupVolumes(t *testing.T) {
	testenv.NeedRoot(t) // chown to a foreign group
	e := newEnv(t, envOpts{})
	mustCreate(t, e, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cfg"}, Data: map[string]string{"k": "v"}})
	pvDir := filepath.Join(t.TempDir(), "pv")
	if err := os.MkdirAll(filepath.Join(pvDir, "old"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pvDir, "old", "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, e, &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-fs"}, Spec: corev1.PersistentVolumeSpec{
		Capacity: corev1.ResourceList{"storage": resource.MustParse("1Gi")}, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: pvDir}}}})
	pvc := mustCreate(t, e, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "claim"}, Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, VolumeName: "pv-fs",
		Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{"storage": resource.MustParse("1Gi")}}}})
	pvc.Status.Phase = corev1.ClaimBound
	if _, err := store.UpdateStatus(e.ctx, e.s, pvc); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, policy corev1.PodFSGroupChangePolicy) *corev1.Pod {
		p := simplePod(name, corev1.Container{Name: "app", Image: "app:1", VolumeMounts: []corev1.VolumeMount{
			{Name: "scratch", MountPath: "/scratch"}, {Name: "cfg", MountPath: "/cfg"}, {Name: "data", MountPath: "/data"}}})
		p.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr(int64(2000)), FSGroupChangePolicy: &policy}
		p.Spec.Volumes = []corev1.Volume{
			{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, DefaultMode: ptr(int32(0o400))}}},
			{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "claim"}}},
		}
		return p
	}
	e.createPod(mk("fs", corev1.FSGroupChangeAlways))
	e.waitStatus("default", "fs", "Running")
	cfg := e.rec.last("app")
	for _, tc := range []struct {
		path string
		want os.FileMode
	}{
		{filepath.Join(mountAt(t, cfg, "/scratch").HostPath), os.ModeDir | os.ModeSetgid | 0o777},
		{filepath.Join(mountAt(t, cfg, "/cfg").HostPath, "k"), 0o440},
		{pvDir, os.ModeDir | os.ModeSetgid | 0o775},
		{filepath.Join(pvDir, "old"), os.ModeDir | os.ModeSetgid | 0o775},
		{filepath.Join(pvDir, "old", "f"), 0o664},
	} {
		if gid, mode := ownerMode(t, tc.path); gid != 2000 || mode != tc.want {
			t.Errorf("%s: group %d mode %v, want 2000 %v", tc.path, gid, mode, tc.want)
		}
	}
	// OnRootMismatch: the claim's root already matches, so a file whose
	// group was changed since is left alone; Always fixes it.
	if err := os.Chown(filepath.Join(pvDir, "old", "f"), -1, 0); err != nil {
		t.Fatal(err)
	}
	e.createPod(mk("fs-lazy", corev1.FSGroupChangeOnRootMismatch))
	e.waitStatus("default", "fs-lazy", "Running")
	if gid, _ := ownerMode(t, filepath.Join(pvDir, "old", "f")); gid != 0 {
		t.Errorf("OnRootMismatch changed a file below a matching root (group %d)", gid)
	}
	e.createPod(mk("fs-again", corev1.FSGroupChangeAlways))
	e.waitStatus("default", "fs-again", "Running")
	if gid, _ := ownerMode(t, filepath.Join(pvDir, "old", "f")); gid != 2000 {
		t.Errorf("fsGroupChangePolicy Always left group %d", gid)
	}
}
