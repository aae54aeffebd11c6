package containerd_test

import (
	"github.com/tugboatdev/tugboat/runtime/containerd"
	"github.com/tugboatdev/tugboat/runtime/containerd/containerdtest"
)

// The internal tests use containerdtest through these hooks (see
// export_test.go).
func init() {
	containerd.SetTestHooks(containerd.TestHooks{
		Need:           containerdtest.Need,
		TempDir:        containerdtest.TempDir,
		New:            containerdtest.New,
		BusyboxArchive: containerdtest.BusyboxArchive,
		BusyboxRef:     containerdtest.BusyboxRef,
	})
}
