package containerd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/cni"
	"github.com/tugboatdev/tugboat/runtime/images"
)

const busyboxRef = "tugboat.test/busybox:1"

var busyboxArchive = sync.OnceValues(func() ([]byte, error) {
	img, err := images.Busybox()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := images.WriteArchive(&buf, busyboxRef, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
})

func needContainerd(t testing.TB) {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "containerd")
	testenv.NeedCommand(t, "runc")
	testenv.NeedCommand(t, "containerd-shim-runc-v2")
	_, err := os.Stat(images.BusyboxPath)
	testenv.Need(t, err == nil, "static busybox at "+images.BusyboxPath+" (busybox-static)")
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type testOpts struct {
	network    *cni.Network
	dataDir    string
	imagesDir  string
	nodeIP     string
	shimGroups int
	// cgroupParent overrides the containers' parent cgroup.
	cgroupParent string
	// startConcurrency is Options.StartConcurrency.
	startConcurrency int
	// execIPAM is cni.Config.ExecIPAM of the benchmarks' network.
	execIPAM bool
}

// newTestRuntime starts a runtime with a private containerd in a fresh
// data directory and namespace, imports busybox, and destroys everything
// at the end of the test.
func newTestRuntime(t testing.TB, o testOpts) *Runtime {
	t.Helper()
	needContainerd(t)
	dir := o.dataDir
	if dir == "" {
		dir = shortTempDir(t)
	}
	ns := "tbtest-" + randHex(4)
	ctx := context.Background()
	r, err := New(ctx, Options{DataDir: dir, Namespace: ns, Network: o.network, Logger: testLogger(t), ImagesDir: o.imagesDir, NodeIP: o.nodeIP, ShimGroups: o.shimGroups, CgroupParent: o.cgroupParent, StartConcurrency: o.startConcurrency})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Destroy needs a live client: reconnect if the test closed r.
		rr := r
		if rr.bg.Err() != nil {
			var err error
			if rr, err = New(context.Background(), Options{DataDir: dir, Namespace: ns, Network: o.network, Logger: testLogger(t)}); err != nil {
				t.Errorf("cleanup: reopen runtime: %v", err)
				return
			}
		}
		if err := rr.Destroy(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		checkNoLeftovers(t, dir, ns, rr.opts.CgroupParent)
		if _, err := os.Stat("/run/containerd/runc/" + ns); err == nil {
			t.Errorf("runc state directory of %s left behind", ns)
		}
	})
	arch, err := busyboxArchive()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ImportImage(ctx, bytes.NewReader(arch)); err != nil {
		t.Fatal(err)
	}
	return r
}

// shortTempDir is a temporary directory with a short path (unix socket
// paths are limited), removed at the end of the test.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "tb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// checkNoLeftovers fails the test if processes, cgroups, mounts or files of
// the runtime remain.
func checkNoLeftovers(t testing.TB, dir, ns, cgroupParent string) {
	t.Helper()
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("data dir %s left behind", dir)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), dir+"/") {
		t.Errorf("mounts under %s left behind", dir)
	}
	for _, ctl := range []string{"memory", "cpu", "pids", "unified", "systemd"} {
		if _, err := os.Stat("/sys/fs/cgroup/" + ctl + cgroupParent); err == nil {
			t.Errorf("cgroup %s left in %s", cgroupParent, ctl)
		}
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

func runPod(t testing.TB, r runtime.Runtime, cfg *runtime.PodSandboxConfig, cs ...*runtime.ContainerConfig) (string, []string) {
	t.Helper()
	ctx := context.Background()
	sb, err := r.RunPodSandbox(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cs {
		if c.Image == "" {
			c.Image = busyboxRef
		}
		id, err := r.CreateContainer(ctx, sb, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.StartContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return sb, ids
}

// waitExit waits for a container to exit and returns its status.
func waitExit(t testing.TB, r runtime.Runtime, id string, within time.Duration) *runtime.ContainerStatus {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, err := r.ContainerStatus(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.State == runtime.ContainerExited {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s still %s after %v", id, st.State, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func execOut(t testing.TB, r runtime.Runtime, id string, cmd ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	code, err := r.Exec(context.Background(), id, runtime.ExecOptions{Cmd: cmd, Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatalf("exec %v: %v", cmd, err)
	}
	return out.String(), code
}

func logsOf(t testing.TB, r runtime.Runtime, id string) string {
	t.Helper()
	var out bytes.Buffer
	if err := r.ContainerLogs(context.Background(), id, runtime.LogOptions{TailLines: -1}, &out, &out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}
