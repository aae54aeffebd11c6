package containerdtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tugboatdev/tugboat/internal/hostfs"
	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/runtime/cni"
	"github.com/tugboatdev/tugboat/runtime/containerd"
	"github.com/tugboatdev/tugboat/runtime/images"
)

// BusyboxRef is the name of the busybox image [New] imports (see
// [BusyboxArchive]).
const BusyboxRef = "tugboat.test/busybox:1"

// busyboxArchive builds the archive once per test process.
var busyboxArchive = sync.OnceValues(func() ([]byte, error) {
	img, err := images.Busybox()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := images.WriteArchive(&buf, BusyboxRef, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
})

// BusyboxArchive returns an OCI image archive of a busybox image named
// [BusyboxRef], built from the machine's static busybox
// ([images.BusyboxPath]); import it with [containerd.Runtime.ImportImage].
// It is built once per test process; callers must not modify the bytes.
func BusyboxArchive() ([]byte, error) { return busyboxArchive() }

// Need requires what a real containerd runtime needs: root, containerd,
// runc, the runc v2 shim and busybox-static. Outside CI a missing
// prerequisite skips the test; in CI it fails it (see internal/testenv).
func Need(t testing.TB) {
	t.Helper()
	testenv.NeedRoot(t)
	for _, c := range []string{"containerd", "runc", "containerd-shim-runc-v2"} {
		testenv.NeedCommand(t, c)
	}
	_, err := os.Stat(images.BusyboxPath)
	testenv.Need(t, err == nil, "static busybox at "+images.BusyboxPath+" (busybox-static)")
}

// TempDir returns a new directory with a short path (/tmp/tb<digits>/d:
// unix socket paths are limited to about 100 bytes) for a runtime's data
// and the test's files. Its parent holds the marker that names the test
// process as its owner (see the package documentation); both are removed,
// with whatever is mounted below them, at the end of the test. The first
// call in a test process sweeps the leftovers of dead test processes.
func TempDir(t testing.TB) string {
	t.Helper()
	sweepOnce(t)
	top, err := os.MkdirTemp("/tmp", "tb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := removeDir(top); err != nil {
			t.Errorf("containerdtest: remove %s: %v", top, err)
		}
	})
	self, err := ownerOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if err := writeMarker(top, self); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(top, "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// New starts a runtime over a private containerd (opts.Address empty) or
// a given socket, imports busybox as [BusyboxRef], and destroys the
// runtime (its pods, containers, images, namespace, cgroups, daemon and
// data directory) at the end of the test, then fails the test if
// anything of it remains. Empty fields of opts get test defaults:
// DataDir a [TempDir], Namespace tbtest-<random>, CgroupParent
// /tugboat-<Namespace>, Logger debug output on stderr with go test -v and
// none otherwise. A DataDir of the caller's should be below a [TempDir],
// so that the runtime is recorded for the sweep.
//
// If the test closes the runtime, New's cleanup reopens one over the same
// data directory to destroy it; a test that opened a second runtime over
// it must close that one first (register its Close with t.Cleanup after
// calling New).
func New(t testing.TB, opts containerd.Options) *containerd.Runtime {
	t.Helper()
	Need(t)
	if opts.DataDir == "" {
		opts.DataDir = TempDir(t)
	}
	if opts.Namespace == "" {
		opts.Namespace = "tbtest-" + randHex(4)
	}
	if opts.CgroupParent == "" {
		opts.CgroupParent = "/tugboat-" + opts.Namespace
	}
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	sweepOnce(t)
	if _, err := record(opts, nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := containerd.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { destroy(t, r, opts) })
	arch, err := BusyboxArchive()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ImportImage(ctx, bytes.NewReader(arch)); err != nil {
		t.Fatal(err)
	}
	return r
}

// destroy is New's cleanup: it destroys r (or, if the test closed r, a
// runtime reopened over the same data directory) and checks that nothing
// of it remains.
func destroy(t testing.TB, r *containerd.Runtime, opts containerd.Options) {
	ctx := context.Background()
	vctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err := r.Client().Version(vctx)
	cancel()
	if err != nil {
		// Closed by the test (or its daemon is gone): Destroy needs a
		// live client.
		reopen := opts
		reopen.ImagesDir = ""
		if r, err = containerd.New(ctx, reopen); err != nil {
			t.Errorf("containerdtest: cleanup: reopen runtime: %v", err)
			return
		}
	}
	if err := r.Destroy(ctx); err != nil {
		t.Errorf("containerdtest: cleanup: %v", err)
	}
	checkNoLeftovers(t, opts)
}

// checkNoLeftovers fails the test if processes, cgroups, mounts or files
// of the runtime made with opts remain.
func checkNoLeftovers(t testing.TB, opts containerd.Options) {
	t.Helper()
	dir, ns := opts.DataDir, opts.Namespace
	if opts.Address == "" {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("data dir %s left behind", dir)
		}
	}
	if pts, err := hostfs.MountsUnder(dir); err != nil || len(pts) > 0 {
		t.Errorf("mounts under %s left behind: %v %v", dir, pts, err)
	}
	for _, ctl := range []string{"memory", "cpu", "pids", "unified", "systemd"} {
		if _, err := os.Stat("/sys/fs/cgroup/" + ctl + opts.CgroupParent); err == nil {
			t.Errorf("cgroup %s left in %s", opts.CgroupParent, ctl)
		}
	}
	if _, err := os.Stat("/run/containerd/runc/" + ns); err == nil {
		t.Errorf("runc state directory of %s left behind", ns)
	}
	// Shims of this namespace exit once their tasks are deleted.
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := exec.Command("pgrep", "-f", "-a", "containerd-shim.*-namespace "+ns+" ").Output()
		if len(bytes.TrimSpace(out)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("shims left running: %s", out)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Record records, in the marker of the [TempDir] that holds
// opts.DataDir, a runtime that the test starts otherwise than through
// [New]: through the code under test (a cluster of orchestrator/cluster, a
// node process of orchestrator/agent/nodeproc) or in a child process (an
// example's binary). If the test process is killed, the sweep of a later
// test process tears the runtime down as it does those of New (see the
// package documentation). Call Record before the runtime starts.
//
// opts are the runtime's [containerd.Options] as the code that starts it
// fills them in; of them the sweep uses DataDir, Address, Namespace,
// CgroupParent and Network, and empty Namespace and CgroupParent mean
// [containerd.New]'s defaults ("tugboat", "/tugboat-<Namespace>").
// network, when not nil, is the configuration of the runtime's CNI
// network for code that makes the network itself (it replaces
// opts.Network); the sweep destroys that network after the runtime.
//
// A child process that uses the runtime must name a path in the TempDir
// on its command line or run in it: the sweep kills such processes before
// it tears the runtimes down, so that nothing starts containers while
// they go. Record fails the test if opts.DataDir is not below a TempDir.
func Record(t testing.TB, opts containerd.Options, network *cni.Config) {
	t.Helper()
	if opts.Namespace == "" {
		opts.Namespace = "tugboat"
	}
	if opts.CgroupParent == "" {
		opts.CgroupParent = "/tugboat-" + opts.Namespace
	}
	ok, err := record(opts, network)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatalf("containerdtest: Record: %s is not below a TempDir", opts.DataDir)
	}
}

// RecordCgroup records, in the marker of the [TempDir] that holds dir, a
// cgroup that the test makes itself (a path below a hierarchy in
// /sys/fs/cgroup, such as the cgroup v2 directory an eBPF program is
// attached to), so that the sweep removes it, with the cgroups below it,
// if the test process is killed; a cgroup that still holds processes
// stays. Call it before making the cgroup. RecordCgroup fails the test if
// dir is not below a TempDir or cgroup is no such path.
func RecordCgroup(t testing.TB, dir, cgroup string) {
	t.Helper()
	if !validCgroup(cgroup) {
		t.Fatalf("containerdtest: RecordCgroup: %q is no cgroup below a hierarchy of %s", cgroup, cgroupRoot)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	top, ok := markedParent(abs)
	if !ok {
		t.Fatalf("containerdtest: RecordCgroup: %s is not below a TempDir", dir)
	}
	if err := updateMarker(top, func(m *marker) { m.Cgroups = append(m.Cgroups, cgroup) }); err != nil {
		t.Fatal(err)
	}
}

// record adds the runtime opts describes, with network or else
// opts.Network's configuration, to the marker of the TempDir holding
// opts.DataDir, if there is one; it reports whether there was.
func record(opts containerd.Options, network *cni.Config) (bool, error) {
	dir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return false, fmt.Errorf("containerdtest: %w", err)
	}
	top, ok := markedParent(dir)
	if !ok {
		return false, nil
	}
	rec := runtimeRecord{DataDir: dir, Address: opts.Address, Namespace: opts.Namespace, CgroupParent: opts.CgroupParent, Network: network}
	if network == nil && opts.Network != nil {
		cfg := opts.Network.Config()
		rec.Network = &cfg
	}
	return true, updateMarker(top, func(m *marker) { m.Runtimes = append(m.Runtimes, rec) })
}

// markedParent returns the directory /tmp/tb* holding dir that has a
// marker.
func markedParent(dir string) (string, bool) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	for d := abs; d != "/" && d != "."; d = filepath.Dir(d) {
		if filepath.Dir(d) == "/tmp" {
			if !strings.HasPrefix(filepath.Base(d), "tb") {
				return "", false
			}
			_, err := os.Stat(filepath.Join(d, markerName))
			return d, err == nil
		}
	}
	return "", false
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// removeDir detaches the mounts below dir (deepest first) and removes it.
func removeDir(dir string) error {
	var errs []error
	if err := hostfs.UnmountUnder(dir); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("containerdtest: %w", err))
	}
	return errors.Join(errs...)
}
