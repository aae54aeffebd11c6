package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/store"
)

func mountAt(t *testing.T, cfg *runtime.ContainerConfig, path string) runtime.Mount {
	t.Helper()
	for _, m := range cfg.Mounts {
		if m.ContainerPath == path {
			return m
		}
	}
	t.Fatalf("no mount at %s in %+v", path, cfg.Mounts)
	return runtime.Mount{}
}

func readVol(t *testing.T, m runtime.Mount, rel string) (string, os.FileMode) {
	t.Helper()
	p := filepath.Join(m.HostPath, m.SubPath, rel)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), fi.Mode().Perm()
}

func waitFile(t *testing.T, m runtime.Mount, rel, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(m.HostPath, rel)); err == nil && string(b) == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, err := os.ReadFile(filepath.Join(m.HostPath, rel))
	t.Fatalf("%s is %q (%v), want %q", rel, b, err, want)
}

func TestContentVolumes(t *testing.T) {
	e := newEnv(t, envOpts{})
	cm := mustCreate(t, e, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "site"},
		Data: map[string]string{"index.html": "v1", "extra.conf": "x=1"}})
	mustCreate(t, e, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "tls"},
		Data: map[string][]byte{"tls.key": []byte("KEY"), "tls.crt": []byte("CRT")}})
	p := simplePod("vols", corev1.Container{Name: "app", Image: "app:1", VolumeMounts: []corev1.VolumeMount{
		{Name: "site", MountPath: "/usr/share/nginx/html"},
		{Name: "items", MountPath: "/etc/items"},
		{Name: "tls", MountPath: "/etc/tls"},
		{Name: "info", MountPath: "/etc/podinfo"},
		{Name: "all", MountPath: "/etc/all"},
		{Name: "site", MountPath: "/etc/extra.conf", SubPath: "extra.conf"},
	}})
	p.Spec.Volumes = []corev1.Volume{
		{Name: "site", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "site"}}}},
		{Name: "items", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "site"},
			Optional: ptr(true), Items: []corev1.KeyToPath{{Key: "extra.conf", Path: "conf/app.conf", Mode: ptr(int32(0o600))}, {Key: "absent", Path: "absent"}}}}},
		{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tls", DefaultMode: ptr(int32(0o400))}}},
		{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
			{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
			{Path: "mem", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}},
		}}}},
		{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "site"}, Items: []corev1.KeyToPath{{Key: "index.html", Path: "index.html"}}}},
			{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "tls"}, Items: []corev1.KeyToPath{{Key: "tls.crt", Path: "certs/tls.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "ns", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
		}}}},
	}
	p.Labels = map[string]string{"app": "vols", "tier": "web"}
	p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"memory": resource.MustParse("32Mi")}
	e.createPod(p)
	e.waitStatus("default", "vols", "Running")
	cfg := e.rec.last("app")

	site := mountAt(t, cfg, "/usr/share/nginx/html")
	if !site.ReadOnly {
		t.Error("configMap volume is not read-only")
	}
	if got, mode := readVol(t, site, "index.html"); got != "v1" || mode != 0o644 {
		t.Errorf("index.html = %q %o", got, mode)
	}
	items := mountAt(t, cfg, "/etc/items")
	if got, mode := readVol(t, items, "conf/app.conf"); got != "x=1" || mode != 0o600 {
		t.Errorf("conf/app.conf = %q %o", got, mode)
	}
	if _, err := os.Stat(filepath.Join(items.HostPath, "absent")); err == nil {
		t.Error("optional absent key was written")
	}
	tls := mountAt(t, cfg, "/etc/tls")
	if got, mode := readVol(t, tls, "tls.key"); got != "KEY" || mode != 0o400 {
		t.Errorf("tls.key = %q %o", got, mode)
	}
	info := mountAt(t, cfg, "/etc/podinfo")
	if got, _ := readVol(t, info, "labels"); got != "app=\"vols\"\ntier=\"web\"" {
		t.Errorf("labels = %q", got)
	}
	if got, _ := readVol(t, info, "mem"); got != "32" {
		t.Errorf("mem = %q", got)
	}
	all := mountAt(t, cfg, "/etc/all")
	for rel, want := range map[string]string{"index.html": "v1", "certs/tls.crt": "CRT", "ns": "default"} {
		if got, _ := readVol(t, all, rel); got != want {
			t.Errorf("projected %s = %q, want %q", rel, got, want)
		}
	}
	sub := mountAt(t, cfg, "/etc/extra.conf")
	if sub.SubPath != "extra.conf" || sub.HostPath != site.HostPath {
		t.Errorf("subPath mount = %+v", sub)
	}
	if tl := mountAt(t, cfg, "/dev/termination-log"); !strings.HasSuffix(tl.HostPath, "0-termination-log") {
		t.Errorf("termination log mount = %+v", tl)
	}

	// Updates appear in place, in the same directory.
	cm.Data["index.html"] = "v2"
	if _, err := store.Update(e.ctx, e.s, cm); err != nil {
		t.Fatal(err)
	}
	waitFile(t, site, "index.html", "v2")
	waitFile(t, all, "index.html", "v2")
	pod, _ := store.Get[*corev1.Pod](e.ctx, e.s, "default", "vols")
	pod.Labels["tier"] = "db"
	if _, err := store.Update(e.ctx, e.s, pod); err != nil {
		t.Fatal(err)
	}
	waitFile(t, info, "labels", "app=\"vols\"\ntier=\"db\"")
	if len(e.rec.all()) != 1 {
		t.Errorf("the container was restarted by a volume update: %d creations", len(e.rec.all()))
	}
	// The ConfigMap goes away: the running pod keeps the last content.
	if err := store.Delete[*corev1.ConfigMap](e.ctx, e.s, "default", "site", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if msgs := e.waitEvent("vols", "FailedMount"); !strings.Contains(msgs[0], `configmap "site" not found`) {
		t.Errorf("FailedMount = %q", msgs)
	}
	if got, _ := readVol(t, site, "index.html"); got != "v2" {
		t.Errorf("index.html = %q after the ConfigMap was deleted", got)
	}
	if p := e.waitStatus("default", "vols", "Running"); !ready(p) {
		t.Error("pod not Ready after its ConfigMap was deleted")
	}
}

func TestMissingConfigMapKeepsPodWaiting(t *testing.T) {
	e := newEnv(t, envOpts{})
	p := simplePod("waits", corev1.Container{Name: "app", Image: "app:1", VolumeMounts: []corev1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}}})
	p.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "later"}}}}}
	e.createPod(p)
	msgs := e.waitEvent("waits", "FailedMount")
	if !strings.Contains(msgs[0], `MountVolume.SetUp failed for volume "cfg" : configmap "later" not found`) {
		t.Errorf("FailedMount = %q", msgs[0])
	}
	got := e.waitStatus("default", "waits", "ContainerCreating")
	if got.Status.Phase != corev1.PodPending || len(e.rec.all()) != 0 {
		t.Errorf("phase %s, %d containers", got.Status.Phase, len(e.rec.all()))
	}
	mustCreate(t, e, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "later"}, Data: map[string]string{"a": "b"}})
	e.waitStatus("default", "waits", "Running")
}

func TestHostPathAndClaimVolumes(t *testing.T) {
	e := newEnv(t, envOpts{})
	root := t.TempDir()
	pvDir := filepath.Join(root, "pv1")
	mustCreate(t, e, &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv1"}, Spec: corev1.PersistentVolumeSpec{
		Capacity: corev1.ResourceList{"storage": resource.MustParse("1Gi")}, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: pvDir}}}})
	pvc := mustCreate(t, e, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "data"}, Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, VolumeName: "pv1",
		Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{"storage": resource.MustParse("1Gi")}}}})
	pvc.Status.Phase = corev1.ClaimBound
	if _, err := store.UpdateStatus(e.ctx, e.s, pvc); err != nil {
		t.Fatal(err)
	}
	created := filepath.Join(root, "made")
	p := simplePod("paths", corev1.Container{Name: "app", Image: "app:1", VolumeMounts: []corev1.VolumeMount{
		{Name: "made", MountPath: "/made"}, {Name: "data", MountPath: "/data", SubPathExpr: "$(POD_NAME)"}, {Name: "scratch", MountPath: "/scratch"}},
		Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}})
	p.Spec.Volumes = []corev1.Volume{
		{Name: "made", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: created, Type: ptr(corev1.HostPathDirectoryOrCreate)}}},
		{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}},
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	e.createPod(p)
	e.waitStatus("default", "paths", "Running")
	cfg := e.rec.last("app")
	if fi, err := os.Stat(created); err != nil || !fi.IsDir() {
		t.Errorf("DirectoryOrCreate did not create %s: %v", created, err)
	}
	if m := mountAt(t, cfg, "/made"); m.HostPath != created || m.ReadOnly {
		t.Errorf("hostPath mount %+v", m)
	}
	data := mountAt(t, cfg, "/data")
	if data.HostPath != pvDir || data.SubPath != "paths" {
		t.Errorf("claim mount %+v", data)
	}
	if fi, err := os.Stat(filepath.Join(pvDir, "paths")); err != nil || !fi.IsDir() {
		t.Errorf("subPath directory not created: %v", err)
	}
	if m := mountAt(t, cfg, "/scratch"); !strings.HasPrefix(m.HostPath, e.cfg.RootDir) {
		t.Errorf("emptyDir mount %+v", m)
	}

	// A hostPath of type Directory that does not exist keeps the pod waiting.
	p = simplePod("nodir", corev1.Container{Name: "app", Image: "app:1", VolumeMounts: []corev1.VolumeMount{{Name: "d", MountPath: "/d"}}})
	p.Spec.Volumes = []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: filepath.Join(root, "absent"), Type: ptr(corev1.HostPathDirectory)}}}}
	e.createPod(p)
	if msgs := e.waitEvent("nodir", "FailedMount"); !strings.Contains(msgs[0], "does not exist") {
		t.Errorf("FailedMount = %q", msgs)
	}
}

func TestMemoryEmptyDirIsTmpfs(t *testing.T) {
	testenv.NeedRoot(t)
	e := newEnv(t, envOpts{})
	p := simplePod("mem", corev1.Container{Name: "app", Image: "app:1", VolumeMounts: []corev1.VolumeMount{{Name: "cache", MountPath: "/cache"}}})
	p.Spec.Volumes = []corev1.Volume{{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: ptr(resource.MustParse("8Mi"))}}}}
	e.createPod(p)
	e.waitStatus("default", "mem", "Running")
	dir := mountAt(t, e.rec.last("app"), "/cache").HostPath
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.TMPFS_MAGIC || int64(st.Blocks)*st.Bsize != 8<<20 {
		t.Errorf("statfs %s: type %x size %d", dir, st.Type, int64(st.Blocks)*st.Bsize)
	}
	if err := store.Delete[*corev1.Pod](context.Background(), e.s, "default", "mem", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitGone("default", "mem")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && isMountPoint(dir) {
		time.Sleep(10 * time.Millisecond)
	}
	if isMountPoint(dir) {
		t.Errorf("tmpfs at %s still mounted after the pod left", dir)
	}
}
