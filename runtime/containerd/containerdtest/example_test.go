package containerdtest_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/tugboatdev/tugboat/runtime/containerd"
	"github.com/tugboatdev/tugboat/runtime/containerd/containerdtest"
)

// ExampleNew is a test (in a _test.go file it would be func
// TestBusybox(t *testing.T)) that gets a runtime over a private
// containerd with busybox imported. New skips the test outside CI when the
// machine lacks root, containerd, runc or busybox-static, and removes the
// runtime, its daemon and its containers when the test ends, even if it
// fails; if the test process is killed instead, the next test process
// that uses the package removes them.
func ExampleNew() {
	testBusybox := func(t *testing.T) {
		rt := containerdtest.New(t, containerd.Options{})
		img, err := rt.ImageStatus(context.Background(), containerdtest.BusyboxRef)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("busybox image %s in namespace %s", img.ID, rt.Namespace())
	}
	_ = testBusybox
}

// ExampleRecord is a test of code that starts a runtime itself (here
// containerd.New stands for the code under test: a cluster, a node
// process, or an example's binary run as a child with its data directory
// on the command line). The test gives it a directory below a TempDir and
// records the runtime before it starts, so that if the test process is
// killed, the next test process that uses the package kills what still
// uses the runtime, then removes the runtime with its daemon, containers,
// cgroups and data.
func ExampleRecord() {
	testOwnRuntime := func(t *testing.T) {
		containerdtest.Need(t)
		opts := containerd.Options{DataDir: filepath.Join(containerdtest.TempDir(t), "ctr"), Namespace: "tbexample"}
		containerdtest.Record(t, opts, nil)
		rt, err := containerd.New(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := rt.Destroy(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	_ = testOwnRuntime
}
