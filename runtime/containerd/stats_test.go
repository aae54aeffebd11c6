package containerd

import (
	"context"
	"testing"

	"github.com/tugboatdev/tugboat/runtime"
)

// TestContainerStatsWritableLayerAndProcesses writes a file of known size
// into a container's root filesystem and starts background processes, and
// checks that the writable layer and the process count grow accordingly.
func TestContainerStatsWritableLayerAndProcesses(t *testing.T) {
	r := newTestRuntime(t, testOpts{})
	ctx := context.Background()
	_, ids := runPod(t, r, &runtime.PodSandboxConfig{Name: "stats", Namespace: "default", UID: "stats-uid"},
		&runtime.ContainerConfig{Name: "main", Command: []string{"sleep", "1000"}})
	id := ids[0]
	stats := func() *runtime.ContainerStats {
		t.Helper()
		s, err := r.ContainerStats(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := stats()
	if before.Processes < 1 {
		t.Errorf("processes of a running container = %d, want at least 1", before.Processes)
	}

	const size = 4 << 20
	if out, code := execOut(t, r, id, "dd", "if=/dev/urandom", "of=/written", "bs=65536", "count=64"); code != 0 {
		t.Fatalf("dd: exit %d: %s", code, out)
	}
	if out, code := execOut(t, r, id, "sync"); code != 0 {
		t.Fatalf("sync: exit %d: %s", code, out)
	}
	afterWrite := stats()
	if afterWrite.WritableLayerBytes < before.WritableLayerBytes+size {
		t.Errorf("writable layer %d bytes before, %d after writing %d bytes: want it to grow by at least the file",
			before.WritableLayerBytes, afterWrite.WritableLayerBytes, size)
	}
	if afterWrite.WritableLayerInodes <= before.WritableLayerInodes {
		t.Errorf("writable layer inodes %d before, %d after creating a file", before.WritableLayerInodes, afterWrite.WritableLayerInodes)
	}

	const extra = 3
	if out, code := execOut(t, r, id, "sh", "-c", "for i in 1 2 3; do sleep 1000 </dev/null >/dev/null 2>&1 & done"); code != 0 {
		t.Fatalf("starting background processes: exit %d: %s", code, out)
	}
	afterFork := stats()
	// The count right after start includes runc's short-lived setup
	// threads: compare with the sample taken after the execs above.
	if afterFork.Processes < afterWrite.Processes+extra {
		t.Errorf("processes %d before, %d after starting %d background ones", afterWrite.Processes, afterFork.Processes, extra)
	}
	if out, code := execOut(t, r, id, "rm", "/written"); code != 0 {
		t.Fatalf("rm: exit %d: %s", code, out)
	}
	if afterRm := stats(); afterRm.WritableLayerBytes >= afterWrite.WritableLayerBytes {
		t.Errorf("writable layer %d bytes after removing the file, %d before", afterRm.WritableLayerBytes, afterWrite.WritableLayerBytes)
	}
}
