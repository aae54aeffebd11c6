package containerd

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tugboatdev/tugboat/internal/hostfs"
	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/images"
)

// TestSharedProcessNamespace: with shareProcessNamespace the containers
// see each other's processes and the pause process is PID 1; without it
// each container is alone with its own PID 1.
func TestSharedProcessNamespace(t *testing.T) {
	r := newTestRuntime(t, testOpts{})
	ctx := context.Background()
	sb, ids := runPod(t, r, &runtime.PodSandboxConfig{Name: "shared", Namespace: "default", UID: "pid-shared", ShareProcessNamespace: true},
		&runtime.ContainerConfig{Name: "a", Command: []string{"sleep", "1001"}},
		&runtime.ContainerConfig{Name: "b", Command: []string{"sleep", "1002"}})
	ps, code := execOut(t, r, ids[1], "ps", "-o", "pid,args")
	if code != 0 {
		t.Fatalf("ps: %d %s", code, ps)
	}
	if !strings.Contains(ps, "sleep 1001") || !strings.Contains(ps, "sleep 1002") {
		t.Errorf("container b does not see both containers' processes:\n%s", ps)
	}
	comm, _ := execOut(t, r, ids[0], "cat", "/proc/1/cmdline")
	if !strings.Contains(comm, "pause") {
		t.Errorf("PID 1 of the shared namespace is %q, want the pause process", comm)
	}
	// Signals cross containers: a kills b's sleep.
	out, _ := execOut(t, r, ids[0], "sh", "-c", "kill $(ps -o pid,args | awk '/sleep 1002/ && !/awk/ {print $1}') && echo killed")
	if !strings.Contains(out, "killed") {
		t.Errorf("kill across containers: %q", out)
	}
	if st := waitExit(t, r, ids[1], 30*time.Second); st.ExitCode != 143 {
		t.Errorf("b exited with %d, want 143 (SIGTERM from container a)", st.ExitCode)
	}
	s, _ := r.getSandbox(sb)
	pausePID := s.PausePID
	if err := r.StopPodSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pausePID)); err == nil {
		if st, zombie, _ := hostfs.ProcStart(pausePID); st == s.PauseStart && st != 0 && !zombie {
			t.Errorf("pause process %d still runs after StopPodSandbox", pausePID)
		}
	}

	_, ids = runPod(t, r, &runtime.PodSandboxConfig{Name: "private", Namespace: "default", UID: "pid-private"},
		&runtime.ContainerConfig{Name: "a", Command: []string{"sleep", "1003"}},
		&runtime.ContainerConfig{Name: "b", Command: []string{"sleep", "1004"}})
	ps, _ = execOut(t, r, ids[1], "ps", "-o", "pid,args")
	if strings.Contains(ps, "sleep 1003") {
		t.Errorf("without shareProcessNamespace container b sees a's processes:\n%s", ps)
	}
	if one, _ := execOut(t, r, ids[1], "cat", "/proc/1/cmdline"); !strings.Contains(one, "1004") {
		t.Errorf("PID 1 of b's namespace is %q, want its own sleep", one)
	}
}

// TestSharedIPC: the containers of a pod share their IPC namespace
// (System V IPC) and POSIX shared memory (/dev/shm); another pod shares
// neither.
func TestSharedIPC(t *testing.T) {
	r := newTestRuntime(t, testOpts{})
	sb, ids := runPod(t, r, &runtime.PodSandboxConfig{Name: "ipc", Namespace: "default", UID: "ipc-1"},
		&runtime.ContainerConfig{Name: "a", Command: []string{"sleep", "1000"}},
		&runtime.ContainerConfig{Name: "b", Command: []string{"sleep", "1000"}})
	_, other := runPod(t, r, &runtime.PodSandboxConfig{Name: "ipc-other", Namespace: "default", UID: "ipc-2"},
		&runtime.ContainerConfig{Name: "c", Command: []string{"sleep", "1000"}})

	// System V IPC objects live in the IPC namespace: the containers of a
	// pod are in the same one (busybox has no ipcmk to make an object).
	ipcNS := func(id string) string {
		out, code := execOut(t, r, id, "readlink", "/proc/self/ns/ipc")
		if code != 0 || !strings.HasPrefix(out, "ipc:[") {
			t.Fatalf("readlink /proc/self/ns/ipc: %d %q", code, out)
		}
		return out
	}
	self, _ := os.Readlink("/proc/" + strconv.Itoa(r.DaemonPID()) + "/ns/ipc")
	a, b, c := ipcNS(ids[0]), ipcNS(ids[1]), ipcNS(other[0])
	if a != b || a == c || strings.TrimSpace(a) == self {
		t.Errorf("IPC namespaces: a %s, b %s (want equal), other pod %s, node %s (want different)", a, b, c, self)
	}
	if out, code := execOut(t, r, ids[0], "sh", "-c", "echo hello > /dev/shm/pod-shared"); code != 0 {
		t.Fatalf("writing /dev/shm: %d %s", code, out)
	}
	if got, _ := execOut(t, r, ids[1], "cat", "/dev/shm/pod-shared"); got != "hello\n" {
		t.Errorf("/dev/shm/pod-shared in b = %q, want hello", got)
	}
	if got, code := execOut(t, r, other[0], "cat", "/dev/shm/pod-shared"); code == 0 {
		t.Errorf("another pod reads /dev/shm/pod-shared: %q", got)
	}
	t.Run("System V shared memory", func(t *testing.T) {
		// A static Go program makes a segment with key 123 in container
		// "mk" of the pod (busybox has no ipcmk); the segment outlives it
		// in the pod's IPC namespace.
		testenvNeedGo(t)
		importShmget(t, r)
		mk, err := r.CreateContainer(context.Background(), sb, &runtime.ContainerConfig{Name: "mk", Image: "tugboat.test/shmget:1"})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.StartContainer(context.Background(), mk); err != nil {
			t.Fatal(err)
		}
		if st := waitExit(t, r, mk, 30*time.Second); st.ExitCode != 0 {
			t.Fatalf("shmget: exit %d: %s", st.ExitCode, logsOf(t, r, mk))
		}
		hasKey := func(id string) bool {
			out, _ := execOut(t, r, id, "cat", "/proc/sysvipc/shm")
			for _, line := range strings.Split(out, "\n") {
				if f := strings.Fields(line); len(f) > 0 && f[0] == "123" {
					return true
				}
			}
			return false
		}
		if !hasKey(ids[1]) {
			t.Error("container b does not see the pod's System V segment")
		}
		if hasKey(other[0]) {
			t.Error("another pod sees the segment")
		}
	})
	df, _ := execOut(t, r, ids[1], "df", "-k", "/dev/shm")
	if !strings.Contains(df, "65536") {
		t.Errorf("/dev/shm is not the pod's 64 MiB tmpfs:\n%s", df)
	}
}

// TestHostNamespaces: hostPID shows the node's processes, hostIPC the
// node's IPC namespace.
func TestHostNamespaces(t *testing.T) {
	r := newTestRuntime(t, testOpts{})
	_, ids := runPod(t, r, &runtime.PodSandboxConfig{Name: "host", Namespace: "default", UID: "host-1", HostPID: true, HostIPC: true},
		&runtime.ContainerConfig{Name: "a", Command: []string{"sleep", "1000"}})
	// The node's namespace as the runtime sees it: containerd's. (The
	// test's /proc/self is its main thread, which may have been wedged in
	// a namespace made for a pod.)
	self, _ := os.Readlink("/proc/" + strconv.Itoa(r.DaemonPID()) + "/ns/ipc")
	if got, _ := execOut(t, r, ids[0], "readlink", "/proc/self/ns/ipc"); strings.TrimSpace(got) != self {
		t.Errorf("hostIPC container's IPC namespace %q, want the node's %q", got, self)
	}
	if got, _ := execOut(t, r, ids[0], "cat", "/proc/"+strconv.Itoa(os.Getpid())+"/cmdline"); !strings.Contains(got, filepath.Base(os.Args[0])) {
		t.Errorf("hostPID container does not see the test process %d: %q", os.Getpid(), got)
	}
}

// importShmget builds a static Go program that creates a System V shared
// memory segment with key 123 and imports it as tugboat.test/shmget:1.
func importShmget(t *testing.T, r *Runtime) {
	t.Helper()
	src := t.TempDir()
	files := map[string]string{
		"go.mod": "module shmget\n\ngo 1.22\n",
		"main.go": `package main

import (
	"fmt"
	"os"
	"syscall"
)

func main() {
	const ipcCreat = 0o1000
	id, _, errno := syscall.Syscall(syscall.SYS_SHMGET, 123, 4096, ipcCreat|0o600)
	if errno != 0 {
		fmt.Println("shmget:", errno)
		os.Exit(1)
	}
	fmt.Println("segment", id)
}
`,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(src, "shmget")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	img, err := images.Binary(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := images.WriteArchive(&buf, "tugboat.test/shmget:1", img); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ImportImage(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
}
