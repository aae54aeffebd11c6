package containerd

import (
	"fmt"
	"testing"
)

// TestHooks give this package's internal tests the shared test helpers of
// runtime/containerd/containerdtest, which they cannot import (it imports
// this package: an import cycle). The external test package, which can,
// sets them in an init function (see hooks_test.go) before any test runs;
// the internal tests reach them through helpers_test.go.
type TestHooks struct {
	// Need is containerdtest.Need.
	Need func(testing.TB)
	// TempDir is containerdtest.TempDir.
	TempDir func(testing.TB) string
	// New is containerdtest.New.
	New func(testing.TB, Options) *Runtime
	// BusyboxArchive is containerdtest.BusyboxArchive.
	BusyboxArchive func() ([]byte, error)
	// BusyboxRef is containerdtest.BusyboxRef, the image BusyboxArchive
	// holds; it must equal the internal tests' busyboxRef.
	BusyboxRef string
}

// testHooks is set once, before the tests run, by SetTestHooks.
var testHooks TestHooks

// SetTestHooks installs the shared helpers for the internal tests.
func SetTestHooks(h TestHooks) {
	if h.BusyboxRef != busyboxRef {
		panic(fmt.Sprintf("containerd tests: busybox image %q, the internal tests expect %q", h.BusyboxRef, busyboxRef))
	}
	testHooks = h
}
