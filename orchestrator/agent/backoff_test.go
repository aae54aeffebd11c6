package agent

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/simulated"
	"github.com/tugboatdev/tugboat/store"
)

// TestCrashLoopBackOffTiming drives a crashing container on a fake clock:
// the first restart is immediate, then the back-off doubles from 10 s up to
// 5 min, and a container that ran 10 minutes resets it.
func TestCrashLoopBackOffTiming(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var mu sync.Mutex
	created := map[uint32]time.Time{}
	runFor := func(attempt uint32) time.Duration {
		if attempt == 8 {
			return 11 * time.Minute
		}
		return time.Second
	}
	e := newEnv(t, envOpts{clock: clk, script: func(_ *runtime.PodSandboxConfig, c *runtime.ContainerConfig) simulated.Behavior {
		mu.Lock()
		created[c.Attempt] = clk.Now()
		mu.Unlock()
		return simulated.Behavior{RunFor: runFor(c.Attempt), ExitCode: 1}
	}})
	e.createPod(simplePod("crash"))
	want := []time.Duration{0, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second, 0, 10 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(created)
		mu.Unlock()
		if n > len(want) || time.Now().After(deadline) {
			break
		}
		clk.Step(time.Second)
		time.Sleep(2 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(created) <= len(want) {
		t.Fatalf("only %d attempts started", len(created))
	}
	for i, d := range want {
		a := uint32(i + 1)
		gap := created[a].Sub(created[a-1].Add(runFor(a - 1)))
		if gap < d || gap > d+3*time.Second {
			t.Errorf("attempt %d started %s after attempt %d exited, want %s", a, gap, a-1, d)
		}
	}
	e.waitPod("default", "crash", "restartCount counting every restart", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= int32(len(want))
	})
}

// TestCrashLoopBackOffMessage checks the waiting message kubectl describe
// shows.
func TestCrashLoopBackOffMessage(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	e := newEnv(t, envOpts{clock: clk, script: func(*runtime.PodSandboxConfig, *runtime.ContainerConfig) simulated.Behavior {
		return simulated.Behavior{RunFor: time.Second, ExitCode: 1}
	}})
	e.createPod(simplePod("msg"))
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		p, err := store.Get[*corev1.Pod](context.Background(), e.s, "default", "msg")
		if err == nil && len(p.Status.ContainerStatuses) == 1 {
			if w := p.Status.ContainerStatuses[0].State.Waiting; w != nil && strings.HasPrefix(w.Message, "back-off 20s restarting failed container=app pod=msg_default(") {
				if PodStatusString(p) != "CrashLoopBackOff" || p.Status.Phase != corev1.PodRunning {
					t.Errorf("status %s phase %s", PodStatusString(p), p.Status.Phase)
				}
				return
			}
		}
		clk.Step(time.Second)
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("never saw back-off 20s")
}
