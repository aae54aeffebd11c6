package agent

import "testing"

// TestContainerdPodStats measures a real pod the way eviction does: a
// file of known size written into the container's root filesystem grows
// the pod's writable layer figure, and background processes started in
// it grow its process count.
func TestContainerdPodStats(t *testing.T) {
	e := newContainerdEnv(t)
	p := simplePod("usage", bb("app", "sleep", "3600"))
	created := e.createPod(p)
	e.waitStatus("default", "usage", "Running")
	measure := func() PodStats {
		t.Helper()
		s, err := dirStats{e.agent}.PodStats(e.ctx, created)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := measure()
	const size = 2 << 20
	if out, code := e.execIn("usage", "app", "sh", "-c", "dd if=/dev/urandom of=/blob bs=65536 count=32 && sync"); code != 0 {
		t.Fatalf("dd: exit %d: %s", code, out)
	}
	afterWrite := measure()
	if afterWrite.WritableLayerBytes < before.WritableLayerBytes+size {
		t.Errorf("writable layer %d bytes before, %d after writing %d", before.WritableLayerBytes, afterWrite.WritableLayerBytes, size)
	}
	if afterWrite.EphemeralStorageBytes < afterWrite.WritableLayerBytes {
		t.Errorf("ephemeral storage %d below the writable layer %d", afterWrite.EphemeralStorageBytes, afterWrite.WritableLayerBytes)
	}
	if out, code := e.execIn("usage", "app", "sh", "-c", "for i in 1 2 3; do sleep 3600 </dev/null >/dev/null 2>&1 & done"); code != 0 {
		t.Fatalf("background processes: exit %d: %s", code, out)
	}
	afterFork := measure()
	if afterWrite.Processes < 1 || afterFork.Processes < afterWrite.Processes+3 {
		t.Errorf("processes %d before, %d after starting 3 in the background", afterWrite.Processes, afterFork.Processes)
	}
	u, err := e.agent.PodMetrics(e.ctx, "default", "usage")
	if err != nil || len(u.Containers) != 1 || u.Containers[0].WritableLayerBytes < size || u.Containers[0].Processes < 4 {
		t.Errorf("pod metrics = %+v, %v; want the writable layer and the processes", u, err)
	}
}
