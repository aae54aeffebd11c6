package store_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/store"
)

const crashChildEnv = "TUGBOAT_STORE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir, os.Getenv("TUGBOAT_STORE_CRASH_ROUND"))
		return
	}
	os.Exit(m.Run())
}

// crashChild writes as fast as it can from 16 goroutines and reports each
// acknowledged write on stdout, until it is killed.
func crashChild(dir, round string) {
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{Dir: dir, Logger: quietLogs, SnapshotEvery: 300})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	report := func(line string) {
		mu.Lock()
		os.Stdout.WriteString(line + "\n")
		mu.Unlock()
	}
	report("ready")
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counter := fmt.Sprintf("counter-%s-%d", round, g)
			if _, err := store.Create(ctx, s, cm("default", counter)); err != nil {
				report("err " + err.Error())
				return
			}
			for i := 0; ; i++ {
				name := fmt.Sprintf("r%s-g%d-%d", round, g, i)
				c, err := store.Create(ctx, s, cm("default", name))
				if err != nil {
					report("err " + err.Error())
					return
				}
				report(fmt.Sprintf("create %s %s", name, c.ResourceVersion))
				// Read-modify-write with conflict retries on the counter.
				for {
					cur, err := store.Get[*corev1.ConfigMap](ctx, s, "default", counter)
					if err != nil {
						report("err " + err.Error())
						return
					}
					cur.Data["n"] = strconv.Itoa(i)
					out, err := store.Update(ctx, s, cur)
					if apierrors.IsConflict(err) {
						continue
					}
					if err != nil {
						report("err " + err.Error())
						return
					}
					report(fmt.Sprintf("update %s %d %s", counter, i, out.ResourceVersion))
					break
				}
			}
		}()
	}
	wg.Wait()
}

// TestCrashDurability kills a writing child process with SIGKILL at random
// points, many times over one data directory, and checks after each kill
// that every write the child saw acknowledged is there after recovery.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Log("short mode: running 3 rounds")
	}
	rounds := 20
	if testing.Short() {
		rounds = 3
	}
	dir := t.TempDir()
	ctx := context.Background()
	var maxRV uint64
	total := 0
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, "TUGBOAT_STORE_CRASH_ROUND="+strconv.Itoa(round))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		creates := map[string]uint64{}
		updates := map[string]int{}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		if l := <-lines; l != "ready" {
			t.Fatalf("round %d: child said %q", round, l)
		}
		killAt := time.After(time.Duration(50+rand.IntN(300)) * time.Millisecond)
		killed := false
		for !killed {
			select {
			case <-killAt:
				// SIGKILL by the PID of the child this test started.
				_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
				killed = true
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("round %d: child exited early", round)
				}
				recordAck(t, l, creates, updates, &maxRV)
			}
		}
		for l := range lines {
			recordAck(t, l, creates, updates, &maxRV)
		}
		_ = cmd.Wait()

		s, err := store.Open(ctx, store.Config{Dir: dir, Logger: quietLogs})
		if err != nil {
			t.Fatalf("round %d: recover: %v", round, err)
		}
		for name := range creates {
			if _, err := store.Get[*corev1.ConfigMap](ctx, s, "default", name); err != nil {
				t.Errorf("round %d: acknowledged create %s lost: %v", round, name, err)
			}
		}
		for name, n := range updates {
			c, err := store.Get[*corev1.ConfigMap](ctx, s, "default", name)
			if err != nil {
				t.Errorf("round %d: counter %s lost: %v", round, name, err)
				continue
			}
			if got, _ := strconv.Atoi(c.Data["n"]); got < n {
				t.Errorf("round %d: counter %s = %d, acknowledged %d", round, name, got, n)
			}
		}
		if s.Revision() < maxRV {
			t.Errorf("round %d: recovered revision %d < acknowledged %d", round, s.Revision(), maxRV)
		}
		// The revision sequence continues after recovery.
		c, err := store.Create(ctx, s, cm("default", fmt.Sprintf("after-%d", round)))
		if err != nil {
			t.Fatal(err)
		}
		if rv, _ := strconv.ParseUint(c.ResourceVersion, 10, 64); rv <= maxRV {
			t.Errorf("round %d: new revision %d not after %d", round, rv, maxRV)
		}
		s.Close()
		total += len(creates)
		if t.Failed() {
			return
		}
	}
	t.Logf("%d rounds, %d acknowledged creates checked", rounds, total)
	if _, err := os.Stat(filepath.Join(dir, "snapshot.db")); err != nil {
		t.Errorf("no snapshot was written: %v", err)
	}
}

func recordAck(t *testing.T, l string, creates map[string]uint64, updates map[string]int, maxRV *uint64) {
	f := strings.Fields(l)
	if len(f) == 0 {
		return
	}
	switch f[0] {
	case "create":
		rv, _ := strconv.ParseUint(f[2], 10, 64)
		creates[f[1]] = rv
		*maxRV = max(*maxRV, rv)
	case "update":
		n, _ := strconv.Atoi(f[2])
		rv, _ := strconv.ParseUint(f[3], 10, 64)
		updates[f[1]] = max(updates[f[1]], n)
		*maxRV = max(*maxRV, rv)
	case "err":
		t.Errorf("child error: %s", l)
	}
}

func TestDurableRestartAndSnapshot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := store.Open(ctx, store.Config{Dir: dir, Logger: quietLogs, SnapshotEvery: 100})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 450; i++ {
		if _, err := store.Create(ctx, s, cm("default", fmt.Sprintf("c%03d", i))); err != nil {
			t.Fatal(err)
		}
	}
	d, _ := chain(t, s, "web", 3)
	for i := 0; i < 50; i++ {
		s.Delete(ctx, cmGR, "default", fmt.Sprintf("c%03d", i), metav1.DeleteOptions{})
	}
	rev := s.Revision()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := store.Open(ctx, store.Config{Dir: dir, Logger: quietLogs})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.Revision() != rev {
		t.Errorf("recovered revision %d, want %d", s2.Revision(), rev)
	}
	l, _, _ := store.ListOf[*corev1.ConfigMap](ctx, s2, "default", metav1.ListOptions{})
	if len(l) != 400 {
		t.Errorf("recovered %d configmaps, want 400", len(l))
	}
	got, err := store.Get[*corev1.Pod](ctx, s2, "default", "web-abc-2")
	if err != nil || len(got.OwnerReferences) != 1 {
		t.Errorf("pod after restart: %v %v", got, err)
	}
	// Indexes are rebuilt: owner and label lookups work, and the collector
	// finds the recovered owners (it would delete "orphans" otherwise).
	s2.RunCollection(ctx)
	if _, n := count(t, s2, "web"); n != 3 {
		t.Errorf("pods by label after restart: %d", n)
	}
	_ = d
	// A watch from before the restart must relist.
	if _, err := s2.Watch(ctx, cmGR, "", metav1.ListOptions{ResourceVersion: "5"}); !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Errorf("watch from before restart: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "snapshot.db")); err != nil {
		t.Errorf("snapshot: %v", err)
	}
}
