package containerdtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/tugboatdev/tugboat/internal/hostfs"
	"github.com/tugboatdev/tugboat/runtime/cni"
)

// markerName is the marker file in a TempDir's top directory.
const markerName = "containerdtest.json"

// marker is the content of a marker file: the owner of the directory and
// the runtimes started in it.
type marker struct {
	owner
	// Runtimes are the runtimes New started over data directories in
	// the directory, in order.
	Runtimes []runtimeRecord `json:"runtimes,omitempty"`
	// Cgroups are the cgroup directories RecordCgroup recorded, in
	// order.
	Cgroups []string `json:"cgroups,omitempty"`
}

// owner identifies a process across PID reuse and reboots.
type owner struct {
	PID int `json:"pid"`
	// Start is the process's start time in clock ticks after boot
	// (field 22 of /proc/<pid>/stat).
	Start uint64 `json:"start"`
	// Boot is the kernel's boot ID.
	Boot string `json:"boot"`
}

// runtimeRecord is what the sweep needs to tear a runtime down.
type runtimeRecord struct {
	DataDir      string      `json:"dataDir"`
	Address      string      `json:"address,omitempty"`
	Namespace    string      `json:"namespace"`
	CgroupParent string      `json:"cgroupParent"`
	Network      *cni.Config `json:"network,omitempty"`
}

// ownerOf returns the identity of the running process pid.
func ownerOf(pid int) (owner, error) {
	start, _, err := hostfs.ProcStart(pid)
	if err != nil {
		return owner{}, fmt.Errorf("containerdtest: %w", err)
	}
	boot, err := bootID()
	if err != nil {
		return owner{}, err
	}
	return owner{PID: pid, Start: start, Boot: boot}, nil
}

// alive reports whether o still runs: a process with o's PID and start
// time exists in this boot and is not a zombie.
func (o owner) alive() (bool, error) {
	boot, err := bootID()
	if err != nil {
		return false, err
	}
	if o.PID <= 0 || o.Boot != boot {
		return false, nil
	}
	start, zombie, err := hostfs.ProcStart(o.PID)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("containerdtest: %w", err)
	}
	return start == o.Start && !zombie, nil
}

func bootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("containerdtest: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// parseMarker decodes a marker file strictly.
func parseMarker(b []byte) (*marker, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var m marker
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("containerdtest: marker: %w", err)
	}
	if m.PID <= 0 {
		return nil, errors.New("containerdtest: marker: no owner PID")
	}
	for _, r := range m.Runtimes {
		if !filepath.IsAbs(r.DataDir) || r.Namespace == "" {
			return nil, fmt.Errorf("containerdtest: marker: runtime %q in %q is incomplete", r.Namespace, r.DataDir)
		}
	}
	for _, c := range m.Cgroups {
		if !validCgroup(c) {
			return nil, fmt.Errorf("containerdtest: marker: %q is no cgroup below a hierarchy", c)
		}
	}
	return &m, nil
}

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup/"

// validCgroup reports whether p is a clean path of a cgroup below a
// hierarchy's root (/sys/fs/cgroup/<hierarchy>/<cgroup>...), never a root.
func validCgroup(p string) bool {
	rel, ok := strings.CutPrefix(p, cgroupRoot)
	return ok && p == filepath.Clean(p) && strings.Contains(rel, "/")
}

func readMarker(dir string) (*marker, error) {
	b, err := os.ReadFile(filepath.Join(dir, markerName))
	if err != nil {
		return nil, fmt.Errorf("containerdtest: %w", err)
	}
	return parseMarker(b)
}

// writeMarker writes a new marker naming o into dir, atomically (a sweep
// never reads half a marker).
func writeMarker(dir string, o owner) error {
	return storeMarker(dir, &marker{owner: o})
}

func storeMarker(dir string, m *marker) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("containerdtest: %w", err)
	}
	tmp := filepath.Join(dir, "."+markerName+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("containerdtest: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, markerName)); err != nil {
		return fmt.Errorf("containerdtest: %w", err)
	}
	return nil
}

// updateMarker changes dir's marker under an exclusive lock of the
// directory (concurrent tests of one process may add runtimes to it).
func updateMarker(dir string, change func(*marker)) error {
	unlock, err := lockDir(dir, true)
	if err != nil {
		return err
	}
	defer unlock()
	m, err := readMarker(dir)
	if err != nil {
		return err
	}
	change(m)
	return storeMarker(dir, m)
}

// lockDir takes an exclusive flock of dir, waiting for it when wait holds
// and failing with unix.EWOULDBLOCK otherwise. Sweeps lock a directory
// before tearing it down, so that two test processes sweeping at the
// same time do not tear down the same directory at once.
func lockDir(dir string, wait bool) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("containerdtest: %w", err)
	}
	how := unix.LOCK_EX
	if !wait {
		how |= unix.LOCK_NB
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("containerdtest: lock %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}
