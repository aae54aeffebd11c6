package agent

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	corev1 "k8s.io/api/core/v1"
)

// Permission bits the volume ownership change adds, as upstream's
// SetVolumeOwnership: group read-write (read-only for read-only volumes),
// and on directories group search plus setgid so that new files inherit
// the group.
const (
	fsGroupRWMask   = os.FileMode(0o660)
	fsGroupROMask   = os.FileMode(0o440)
	fsGroupExecMask = os.FileMode(0o110)
)

// podFSGroup returns the pod's fsGroup and whether ownership changes may be
// skipped when the volume's root already matches (fsGroupChangePolicy
// OnRootMismatch).
func podFSGroup(pod *corev1.Pod) (gid *int64, onRootMismatch bool) {
	sc := pod.Spec.SecurityContext
	if sc == nil || sc.FSGroup == nil {
		return nil, false
	}
	return sc.FSGroup, sc.FSGroupChangePolicy != nil && *sc.FSGroupChangePolicy == corev1.FSGroupChangeOnRootMismatch
}

// setVolumeOwnership gives every file under dir the group gid and the
// group permissions of [fsGroupRWMask] (or [fsGroupROMask] when readOnly);
// directories also get setgid. With onRootMismatch nothing is changed when
// dir itself already has them. Symbolic links keep their targets' modes.
func setVolumeOwnership(dir string, gid int64, readOnly, onRootMismatch bool) error {
	mask := fsGroupRWMask
	if readOnly {
		mask = fsGroupROMask
	}
	if onRootMismatch && ownershipMatches(dir, gid, mask) {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(p, -1, int(gid)); err != nil {
			return fmt.Errorf("fsGroup: %w", err)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		m := mask
		if fi.IsDir() {
			m |= os.ModeSetgid | fsGroupExecMask
		}
		if err := os.Chmod(p, fi.Mode()&(os.ModePerm|os.ModeSetgid|os.ModeSetuid|os.ModeSticky)|m); err != nil {
			return fmt.Errorf("fsGroup: %w", err)
		}
		return nil
	})
}

// ownershipMatches reports whether dir has group gid, setgid and the mask
// bits: what OnRootMismatch checks before skipping the recursive change.
func ownershipMatches(dir string, gid int64, mask os.FileMode) bool {
	fi, err := os.Stat(dir)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int64(st.Gid) != gid {
		return false
	}
	return fi.Mode()&os.ModeSetgid != 0 && fi.Mode().Perm()&mask == mask
}

// supplementalGroups is the pod's supplementalGroups followed by its
// fsGroup, without duplicates.
func supplementalGroups(pod *corev1.Pod) []int64 {
	sc := pod.Spec.SecurityContext
	if sc == nil {
		return nil
	}
	out := slices.Clone(sc.SupplementalGroups)
	if sc.FSGroup != nil && !slices.Contains(out, *sc.FSGroup) {
		out = append(out, *sc.FSGroup)
	}
	return out
}

// seLinuxLabel formats seLinuxOptions as a process label
// "user:role:type:level" (empty parts stay empty; no options give "").
func seLinuxLabel(o *corev1.SELinuxOptions) string {
	if o == nil || (o.User == "" && o.Role == "" && o.Type == "" && o.Level == "") {
		return ""
	}
	return strings.Join([]string{o.User, o.Role, o.Type, o.Level}, ":")
}
