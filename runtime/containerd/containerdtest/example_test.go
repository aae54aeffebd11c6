package containerdtest_test

import (
	"context"
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
