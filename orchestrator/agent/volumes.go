package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// volume is a pod volume prepared on the node.
type volume struct {
	hostPath string
	readOnly bool
	// content volumes (configMap, secret, downwardAPI, projected) are
	// refreshed on resync.
	content bool
}

// fileContent is one file of a content volume.
type fileContent struct {
	data []byte
	mode os.FileMode
}

// prepareVolumes makes every volume of the pod exist on the node.
// Content volumes are (re)written on the first call and when refresh is
// set; a changed ConfigMap or Secret thus appears in running containers.
func (w *podWorker) prepareVolumes(ctx context.Context, pod *corev1.Pod, refresh bool) error {
	base := filepath.Join(w.a.podDir(w.uid), "volumes")
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if have, ok := w.volumes[v.Name]; ok && !(have.content && refresh) {
			continue
		}
		vol, err := w.prepareVolume(ctx, pod, v, base)
		if err != nil {
			err = fmt.Errorf("MountVolume.SetUp failed for volume %q : %w", v.Name, err)
			if _, ok := w.volumes[v.Name]; ok {
				// A refresh failed: running containers keep the last
				// content.
				w.event(pod, corev1.EventTypeWarning, "FailedMount", "%s", err.Error())
				continue
			}
			return err
		}
		w.volumes[v.Name] = vol
	}
	return nil
}

func (w *podWorker) prepareVolume(ctx context.Context, pod *corev1.Pod, v *corev1.Volume, base string) (*volume, error) {
	vol, err := w.setUpVolume(ctx, pod, v, base)
	if err != nil || vol.content {
		return vol, err
	}
	// fsGroup: the pod's group owns emptyDir and claim volumes (content
	// volumes get it as they are written).
	if gid, onRootMismatch := podFSGroup(pod); gid != nil && (v.EmptyDir != nil || v.PersistentVolumeClaim != nil) {
		if err := setVolumeOwnership(vol.hostPath, *gid, vol.readOnly, onRootMismatch); err != nil {
			return nil, err
		}
	}
	return vol, nil
}

func (w *podWorker) setUpVolume(ctx context.Context, pod *corev1.Pod, v *corev1.Volume, base string) (*volume, error) {
	switch {
	case v.EmptyDir != nil:
		dir := filepath.Join(base, "empty-dir", v.Name)
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return nil, err
		}
		_ = os.Chmod(dir, 0o777)
		if v.EmptyDir.Medium == corev1.StorageMediumMemory && !isMountPoint(dir) {
			opts := "mode=0777"
			if v.EmptyDir.SizeLimit != nil && v.EmptyDir.SizeLimit.Value() > 0 {
				opts += ",size=" + strconv.FormatInt(v.EmptyDir.SizeLimit.Value(), 10)
			}
			if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
				return nil, fmt.Errorf("mount tmpfs: %w", err)
			}
		}
		return &volume{hostPath: dir}, nil
	case v.HostPath != nil:
		if err := checkHostPath(v.HostPath); err != nil {
			return nil, err
		}
		return &volume{hostPath: v.HostPath.Path}, nil
	case v.PersistentVolumeClaim != nil:
		path, err := w.claimPath(ctx, pod.Namespace, v.PersistentVolumeClaim.ClaimName)
		if err != nil {
			return nil, err
		}
		return &volume{hostPath: path, readOnly: v.PersistentVolumeClaim.ReadOnly}, nil
	}
	files, err := w.volumeFiles(ctx, pod, v)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(base, "content", v.Name)
	var setPerms func(string) error
	if gid, _ := podFSGroup(pod); gid != nil {
		for p, fc := range files {
			// The modes after the ownership change, so that an unchanged
			// volume compares equal and is not rewritten.
			fc.mode |= fsGroupROMask
			files[p] = fc
		}
		setPerms = func(tsDir string) error {
			if err := setVolumeOwnership(tsDir, *gid, true, false); err != nil {
				return err
			}
			return os.Lchown(dir, -1, int(*gid))
		}
	}
	if err := writeAtomic(dir, files, w.a.clk.Now().Format("2006_01_02_15_04_05.000000000"), setPerms); err != nil {
		return nil, err
	}
	return &volume{hostPath: dir, readOnly: true, content: true}, nil
}

// checkHostPath applies a hostPath volume's type.
func checkHostPath(h *corev1.HostPathVolumeSource) error {
	t := corev1.HostPathUnset
	if h.Type != nil {
		t = *h.Type
	}
	fi, err := os.Stat(h.Path)
	switch t {
	case corev1.HostPathUnset:
		return nil
	case corev1.HostPathDirectoryOrCreate:
		if err != nil {
			return os.MkdirAll(h.Path, 0o755)
		}
		if !fi.IsDir() {
			return fmt.Errorf("hostPath type check failed: %s is not a directory", h.Path)
		}
		return nil
	case corev1.HostPathFileOrCreate:
		if err != nil {
			if err := os.MkdirAll(filepath.Dir(h.Path), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(h.Path, os.O_CREATE|os.O_RDWR, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("hostPath type check failed: %s is not a file", h.Path)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("hostPath type check failed: %s does not exist", h.Path)
	}
	ok := map[corev1.HostPathType]bool{
		corev1.HostPathDirectory: fi.IsDir(),
		corev1.HostPathFile:      fi.Mode().IsRegular(),
		corev1.HostPathSocket:    fi.Mode()&fs.ModeSocket != 0,
		corev1.HostPathCharDev:   fi.Mode()&fs.ModeCharDevice != 0,
		corev1.HostPathBlockDev:  fi.Mode()&fs.ModeDevice != 0 && fi.Mode()&fs.ModeCharDevice == 0,
	}[t]
	if !ok {
		return fmt.Errorf("hostPath type check failed: %s is not a %s", h.Path, t)
	}
	return nil
}

// claimPath resolves a PersistentVolumeClaim to the host path of its bound
// hostPath or local PersistentVolume.
func (w *podWorker) claimPath(ctx context.Context, ns, claim string) (string, error) {
	pvc, err := storeapi.Get[*corev1.PersistentVolumeClaim](ctx, w.a.s, ns, claim)
	if err != nil {
		return "", wrapMissing("persistentvolumeclaim", claim, err)
	}
	if pvc.Spec.VolumeName == "" || pvc.Status.Phase != corev1.ClaimBound {
		return "", fmt.Errorf("persistentvolumeclaim %q is not bound", claim)
	}
	pv, err := storeapi.Get[*corev1.PersistentVolume](ctx, w.a.s, "", pvc.Spec.VolumeName)
	if err != nil {
		return "", wrapMissing("persistentvolume", pvc.Spec.VolumeName, err)
	}
	switch {
	case pv.Spec.HostPath != nil:
		if err := checkHostPath(pv.Spec.HostPath); err != nil {
			return "", err
		}
		if pv.Spec.HostPath.Type == nil {
			if err := os.MkdirAll(pv.Spec.HostPath.Path, 0o777); err != nil {
				return "", err
			}
		}
		return pv.Spec.HostPath.Path, nil
	case pv.Spec.Local != nil:
		if _, err := os.Stat(pv.Spec.Local.Path); err != nil {
			return "", fmt.Errorf("local volume %s: %w", pv.Spec.Local.Path, err)
		}
		return pv.Spec.Local.Path, nil
	}
	return "", fmt.Errorf("persistentvolume %q: only hostPath and local volumes are supported on this node", pv.Name)
}

// volumeFiles computes the files of a configMap, secret, downwardAPI or
// projected volume.
func (w *podWorker) volumeFiles(ctx context.Context, pod *corev1.Pod, v *corev1.Volume) (map[string]fileContent, error) {
	files := map[string]fileContent{}
	switch {
	case v.ConfigMap != nil:
		return files, w.configMapFiles(ctx, pod, files, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional, modeOr(v.ConfigMap.DefaultMode, 0o644))
	case v.Secret != nil:
		return files, w.secretFiles(ctx, pod, files, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional, modeOr(v.Secret.DefaultMode, 0o644))
	case v.DownwardAPI != nil:
		return files, w.downwardFiles(pod, files, v.DownwardAPI.Items, modeOr(v.DownwardAPI.DefaultMode, 0o644))
	case v.Projected != nil:
		mode := modeOr(v.Projected.DefaultMode, 0o644)
		for _, src := range v.Projected.Sources {
			var err error
			switch {
			case src.ConfigMap != nil:
				err = w.configMapFiles(ctx, pod, files, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional, mode)
			case src.Secret != nil:
				err = w.secretFiles(ctx, pod, files, src.Secret.Name, src.Secret.Items, src.Secret.Optional, mode)
			case src.DownwardAPI != nil:
				err = w.downwardFiles(pod, files, src.DownwardAPI.Items, mode)
			case src.ServiceAccountToken != nil:
				if w.a.cfg.TokenRequester == nil {
					if !w.warned["sat/"+v.Name] {
						w.warned["sat/"+v.Name] = true
						w.event(pod, corev1.EventTypeWarning, "UnsupportedVolumeSource", "volume %q: serviceAccountToken projections need a token issuer, which this node has not been given; the token file is not written", v.Name)
					}
					continue
				}
				if !filepath.IsLocal(src.ServiceAccountToken.Path) {
					return nil, fmt.Errorf("invalid path %q", src.ServiceAccountToken.Path)
				}
				var tok string
				if tok, err = w.serviceAccountToken(ctx, pod, v.Name, src.ServiceAccountToken); err == nil {
					files[src.ServiceAccountToken.Path] = fileContent{[]byte(tok), mode}
				}
			default:
				err = errors.New("unsupported projected volume source")
			}
			if err != nil {
				return nil, err
			}
		}
		return files, nil
	}
	return nil, errors.New("unsupported volume type")
}

func modeOr(m *int32, def int32) os.FileMode {
	if m != nil {
		return os.FileMode(*m)
	}
	return os.FileMode(def)
}

func (w *podWorker) configMapFiles(ctx context.Context, pod *corev1.Pod, files map[string]fileContent, name string, items []corev1.KeyToPath, optional *bool, mode os.FileMode) error {
	cm, err := storeapi.Get[*corev1.ConfigMap](ctx, w.a.s, pod.Namespace, name)
	if err != nil {
		if apierrors.IsNotFound(err) && optional != nil && *optional {
			return nil
		}
		return wrapMissing("configmap", name, err)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return projectKeys(files, data, items, optional, mode, "configmap", name)
}

func (w *podWorker) secretFiles(ctx context.Context, pod *corev1.Pod, files map[string]fileContent, name string, items []corev1.KeyToPath, optional *bool, mode os.FileMode) error {
	sec, err := storeapi.Get[*corev1.Secret](ctx, w.a.s, pod.Namespace, name)
	if err != nil {
		if apierrors.IsNotFound(err) && optional != nil && *optional {
			return nil
		}
		return wrapMissing("secret", name, err)
	}
	data := map[string][]byte{}
	for k, v := range sec.Data {
		data[k] = v
	}
	for k, v := range sec.StringData {
		data[k] = []byte(v)
	}
	return projectKeys(files, data, items, optional, mode, "secret", name)
}

// projectKeys adds data's keys (all, or the listed items with their paths
// and modes) to files.
func projectKeys(files map[string]fileContent, data map[string][]byte, items []corev1.KeyToPath, optional *bool, mode os.FileMode, kind, name string) error {
	if len(items) == 0 {
		for k, v := range data {
			files[k] = fileContent{v, mode}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional != nil && *optional {
				continue
			}
			return fmt.Errorf("configuration error: %s %q has no key %q", kind, name, it.Key)
		}
		if !filepath.IsLocal(it.Path) {
			return fmt.Errorf("invalid path %q", it.Path)
		}
		files[it.Path] = fileContent{v, modeOr(it.Mode, int32(mode))}
	}
	return nil
}

func (w *podWorker) downwardFiles(pod *corev1.Pod, files map[string]fileContent, items []corev1.DownwardAPIVolumeFile, mode os.FileMode) error {
	for _, it := range items {
		if !filepath.IsLocal(it.Path) {
			return fmt.Errorf("invalid path %q", it.Path)
		}
		var val string
		var err error
		switch {
		case it.FieldRef != nil:
			val, err = w.fieldValue(pod, it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			val, err = w.resourceValue(pod, nil, it.ResourceFieldRef)
		}
		if err != nil {
			return err
		}
		files[it.Path] = fileContent{[]byte(val), modeOr(it.Mode, int32(mode))}
	}
	return nil
}

// writeAtomic writes files into dir the way the kubelet's atomic writer
// does: the content lives in a timestamped directory that the "..data"
// symlink points to, and each top-level name is a symlink through
// "..data". An update writes a new directory and swaps the symlink in one
// rename, so a container never sees a half-written volume.
//
// setPerms, when not nil, runs on the new timestamped directory before it
// is published (the fsGroup ownership change).
func writeAtomic(dir string, files map[string]fileContent, stamp string, setPerms func(tsDir string) error) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	dataLink := filepath.Join(dir, "..data")
	if old, err := os.Readlink(dataLink); err == nil && sameFiles(filepath.Join(dir, old), files) {
		return nil
	}
	tsDir, err := os.MkdirTemp(dir, ".."+stamp+".")
	if err != nil {
		return err
	}
	if err := os.Chmod(tsDir, 0o755); err != nil {
		return err
	}
	for p, fc := range files {
		full := filepath.Join(tsDir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, fc.data, fc.mode.Perm()); err != nil {
			return err
		}
		if err := os.Chmod(full, fc.mode.Perm()); err != nil {
			return err
		}
	}
	if setPerms != nil {
		if err := setPerms(tsDir); err != nil {
			return err
		}
	}
	old, _ := os.Readlink(dataLink)
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(tsDir), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dataLink); err != nil {
		return err
	}
	top := map[string]bool{}
	for p := range files {
		top[strings.SplitN(p, string(filepath.Separator), 2)[0]] = true
	}
	for name := range top {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			return err
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") || top[e.Name()] {
			continue
		}
		_ = os.Remove(filepath.Join(dir, e.Name()))
	}
	if old != "" && old != filepath.Base(tsDir) {
		_ = os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}

// sameFiles reports whether dir holds exactly files.
func sameFiles(dir string, files map[string]fileContent) bool {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		fc, ok := files[rel]
		if !ok {
			return errors.New("extra")
		}
		fi, err := d.Info()
		if err != nil || fi.Mode().Perm() != fc.mode.Perm() {
			return errors.New("mode")
		}
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(b, fc.data) {
			return errors.New("content")
		}
		n++
		return nil
	})
	return err == nil && n == len(files)
}

// mounts builds a container's mounts, including its termination log file.
func (w *podWorker) mounts(pod *corev1.Pod, c *corev1.Container, attempt uint32, mapping func(string) (string, bool)) ([]runtime.Mount, error) {
	var out []runtime.Mount
	for _, vm := range c.VolumeMounts {
		vol, ok := w.volumes[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volume %q not found", vm.Name)
		}
		sub := vm.SubPath
		if vm.SubPathExpr != "" {
			sub = Expand(vm.SubPathExpr, mapping)
		}
		if sub != "" {
			if !filepath.IsLocal(sub) {
				return nil, fmt.Errorf("subPath %q must be a relative path within the volume", sub)
			}
			if !vol.content {
				target := filepath.Join(vol.hostPath, sub)
				if _, err := os.Lstat(target); os.IsNotExist(err) {
					if err := os.MkdirAll(target, 0o777); err != nil {
						return nil, err
					}
				}
			}
		}
		out = append(out, runtime.Mount{ContainerPath: vm.MountPath, HostPath: vol.hostPath, SubPath: sub, ReadOnly: vm.ReadOnly || vol.readOnly})
	}
	path := c.TerminationMessagePath
	if path == "" {
		path = corev1.TerminationMessagePathDefault
	}
	logFile := w.terminationLogPath(c.Name, attempt)
	if err := os.MkdirAll(filepath.Dir(logFile), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o666)
	if err != nil {
		return nil, err
	}
	f.Close()
	_ = os.Chmod(logFile, 0o666)
	out = append(out, runtime.Mount{ContainerPath: path, HostPath: logFile})
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].ContainerPath) < len(out[j].ContainerPath) })
	return out, nil
}

// isMountPoint reports whether dir is a mount point (its device differs
// from its parent's).
func isMountPoint(dir string) bool {
	var a, b unix.Stat_t
	if unix.Lstat(dir, &a) != nil || unix.Lstat(filepath.Dir(dir), &b) != nil {
		return false
	}
	return a.Dev != b.Dev
}

// unmountUnder unmounts the tmpfs volumes of a pod directory.
func unmountUnder(podDir string) {
	entries, err := os.ReadDir(filepath.Join(podDir, "volumes", "empty-dir"))
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(podDir, "volumes", "empty-dir", e.Name())
		if isMountPoint(p) {
			_ = unix.Unmount(p, unix.MNT_DETACH)
		}
	}
}
