package containerd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/cni"
)

// busyboxRef is containerdtest.BusyboxRef (SetTestHooks checks it).
const busyboxRef = "tugboat.test/busybox:1"

// busyboxArchive is containerdtest.BusyboxArchive.
func busyboxArchive() ([]byte, error) { return testHooks.BusyboxArchive() }

// needContainerd is containerdtest.Need: root, containerd, runc, the shim
// and busybox-static.
func needContainerd(t testing.TB) {
	t.Helper()
	testHooks.Need(t)
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

// newTestRuntime is containerdtest.New: a runtime with a private
// containerd in a fresh data directory (o.dataDir, or a new one) and
// namespace, with busybox imported, destroyed at the end of the test,
// which then fails if anything of it remains.
func newTestRuntime(t testing.TB, o testOpts) *Runtime {
	t.Helper()
	return testHooks.New(t, Options{DataDir: o.dataDir, Network: o.network, Logger: testLogger(t), ImagesDir: o.imagesDir, NodeIP: o.nodeIP,
		ShimGroups: o.shimGroups, CgroupParent: o.cgroupParent, StartConcurrency: o.startConcurrency})
}

// shortTempDir is containerdtest.TempDir: a temporary directory with a
// short path (unix socket paths are limited), marked as this test
// process's for the sweep of killed tests' leftovers, removed at the end
// of the test.
func shortTempDir(t testing.TB) string {
	t.Helper()
	return testHooks.TempDir(t)
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
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
