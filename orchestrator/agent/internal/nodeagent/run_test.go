package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/orchestrator/agent"
	"github.com/tugboatdev/tugboat/orchestrator/agent/nodeproc"
	"github.com/tugboatdev/tugboat/runtime/containerd"
	"github.com/tugboatdev/tugboat/runtime/containerd/containerdtest"
	"github.com/tugboatdev/tugboat/store"
)

// TestNodeprocRunContainerd runs the parts of this command's node process
// for real: an API server on loopback, then nodeproc.Run with a private
// containerd. The node registers and turns Ready; a failing component
// stops the node, Run returns its error, the containerd daemon is gone
// and the memory limit is restored.
func TestNodeprocRunContainerd(t *testing.T) {
	testenv.NeedRoot(t)
	for _, c := range []string{"containerd", "runc", "containerd-shim-runc-v2"} {
		testenv.NeedCommand(t, c)
	}
	dir := containerdtest.TempDir(t)
	_, kc := startAPIServer(t, dir)

	rb := make([]byte, 4)
	_, _ = rand.Read(rb)
	node := "np-" + hex.EncodeToString(rb)
	// nodeproc.Run's runtime: if the test process is killed, the next
	// one's sweep removes it.
	containerdtest.Record(t, containerd.Options{DataDir: filepath.Join(dir, "node", "ctr"), Namespace: node}, nil)
	const limit = 96 << 20
	before := debug.SetMemoryLimit(-1)
	boom := errors.New("component failed")
	var daemonPID int
	var limitInRun int64
	err := nodeproc.Run(context.Background(), nodeproc.Config{
		Kubeconfig:  kc,
		DataDir:     filepath.Join(dir, "node"),
		Agent:       agent.Config{NodeName: node, NodeIP: "127.0.0.1"},
		MemoryLimit: limit,
		Log:         quietLog(),
	}, func(ctx context.Context, n *nodeproc.Node) error {
		daemonPID = n.Runtime.DaemonPID()
		limitInRun = debug.SetMemoryLimit(-1)
		deadline := time.Now().Add(2 * time.Minute)
		for {
			nd, err := store.Get[*corev1.Node](ctx, n.Store, "", node)
			if err == nil && isNodeReady(nd) {
				if v := nd.Status.NodeInfo.ContainerRuntimeVersion; v != "containerd://private" {
					t.Errorf("containerRuntimeVersion %q, want containerd://private", v)
				}
				return boom
			}
			if time.Now().After(deadline) {
				return errors.New("node not Ready after 2 minutes")
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want the component's error", err)
	}
	if limitInRun != limit {
		t.Errorf("memory limit while running = %d, want %d", limitInRun, limit)
	}
	if after := debug.SetMemoryLimit(-1); after != before {
		t.Errorf("memory limit after Run = %d, want %d as before", after, before)
	}
	if daemonPID <= 0 {
		t.Fatalf("no private containerd (pid %d)", daemonPID)
	}
	if err := syscall.Kill(daemonPID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("containerd %d still there after Run: %v", daemonPID, err)
	}
}
