package containerd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/images"
)

func ptr[T any](v T) *T { return &v }

func TestContainerLifecycle(t *testing.T) {
	r := newTestRuntime(t, testOpts{})
	ctx := context.Background()
	events, err := r.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := r.RunPodSandbox(ctx, &runtime.PodSandboxConfig{Name: "life", Namespace: "default", UID: "u1",
		DNS:         runtime.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"default.svc.cluster.local"}, Options: []string{"ndots:5"}},
		HostAliases: []runtime.HostAlias{{IP: "10.1.2.3", Hostnames: []string{"alias.example"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id, err := r.CreateContainer(ctx, sb, &runtime.ContainerConfig{Name: "main", Image: busyboxRef,
		Command: []string{"sh", "-c", "echo started; exec sleep 1000"}, Labels: map[string]string{"app": "life"}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.ContainerStatus(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != runtime.ContainerCreated {
		t.Errorf("state after create = %s", st.State)
	}
	if err := r.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := r.StartContainer(ctx, id); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("second start: %v, want ErrInvalid", err)
	}
	st, _ = r.ContainerStatus(ctx, id)
	if st.State != runtime.ContainerRunning || st.Labels["app"] != "life" || !strings.HasPrefix(st.ImageRef, "sha256:") {
		t.Errorf("status after start = %+v", st)
	}

	t.Run("exec exit codes", func(t *testing.T) {
		for _, code := range []int{0, 1, 7} {
			if _, got := execOut(t, r, id, "sh", "-c", "exit "+string(rune('0'+code))); got != code {
				t.Errorf("exit code %d, want %d", got, code)
			}
		}
		if _, err := r.Exec(ctx, id, runtime.ExecOptions{Cmd: []string{"/no/such/binary"}}); err == nil {
			t.Log("exec of a missing binary reported as exit code (runc start failure)")
		}
	})
	t.Run("exec stdin", func(t *testing.T) {
		var out bytes.Buffer
		code, err := r.Exec(ctx, id, runtime.ExecOptions{Cmd: []string{"tr", "a-z", "A-Z"}, Stdin: strings.NewReader("hello stdin\n"), Stdout: &out})
		if err != nil || code != 0 || out.String() != "HELLO STDIN\n" {
			t.Errorf("exec with stdin = %q, %d, %v", out.String(), code, err)
		}
	})
	t.Run("exec tty", func(t *testing.T) {
		var out bytes.Buffer
		resize := make(chan runtime.TerminalSize, 1)
		resize <- runtime.TerminalSize{Width: 100, Height: 40}
		close(resize)
		code, err := r.Exec(ctx, id, runtime.ExecOptions{Cmd: []string{"sh", "-c", "sleep 0.2; test -t 0 && test -t 1 && stty size"}, TTY: true, Stdout: &out, Resize: resize})
		if err != nil || code != 0 || !strings.Contains(out.String(), "40 100") {
			t.Errorf("exec with tty = %q, %d, %v", out.String(), code, err)
		}
	})
	t.Run("sandbox files", func(t *testing.T) {
		hostname, _ := execOut(t, r, id, "hostname")
		hosts, _ := execOut(t, r, id, "cat", "/etc/hosts")
		resolv, _ := execOut(t, r, id, "cat", "/etc/resolv.conf")
		if hostname != "life\n" {
			t.Errorf("hostname = %q", hostname)
		}
		if !strings.Contains(hosts, "10.1.2.3\talias.example") || !strings.Contains(hosts, "localhost") {
			t.Errorf("/etc/hosts = %q", hosts)
		}
		want := "search default.svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
		if resolv != want {
			t.Errorf("/etc/resolv.conf = %q, want %q", resolv, want)
		}
	})
	t.Run("stats", func(t *testing.T) {
		execOut(t, r, id, "sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done")
		s, err := r.ContainerStats(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.CPUUsageNanoSeconds == 0 || s.MemoryUsageBytes == 0 {
			t.Errorf("stats = %+v, want CPU and memory used", s)
		}
	})
	t.Run("list", func(t *testing.T) {
		all, err := r.ListContainers(ctx, runtime.ContainerFilter{SandboxID: sb, State: runtime.ContainerRunning, Labels: map[string]string{"app": "life"}})
		if err != nil || len(all) != 1 || all[0].ID != id {
			t.Errorf("list = %v, %v", all, err)
		}
		none, _ := r.ListContainers(ctx, runtime.ContainerFilter{Labels: map[string]string{"app": "other"}})
		if len(none) != 0 {
			t.Errorf("list with other label = %v", none)
		}
	})

	// sleep as PID 1 ignores SIGTERM: the stop has to fall back to SIGKILL.
	start := time.Now()
	if err := r.StopContainer(ctx, id, 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 500*time.Millisecond {
		t.Errorf("stop took %v, less than the grace period", took)
	}
	st, _ = r.ContainerStatus(ctx, id)
	if st.State != runtime.ContainerExited || st.ExitCode != 137 || st.Reason != runtime.ReasonError {
		t.Errorf("status after stop = %+v, want exited 137", st)
	}
	if got := logsOf(t, r, id); got != "started\n" {
		t.Errorf("logs = %q", got)
	}
	if err := r.RemovePodSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ContainerStatus(ctx, id); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("status after removal: %v", err)
	}
	var got []runtime.EventType
	for ev := range events {
		got = append(got, ev.Type)
		if ev.Type == runtime.EventRemoved {
			break
		}
	}
	want := []runtime.EventType{runtime.EventCreated, runtime.EventStarted, runtime.EventExited, runtime.EventRemoved}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestStopGraceful(t *testing.T) {
	r := newTestRuntime(t, testOpts{})
	_, ids := runPod(t, r, &runtime.PodSandboxConfig{Name: "graceful"},
		&runtime.ContainerConfig{Name: "c", Command: []string{"sh", "-c", "trap 'echo bye; exit 0' TERM; echo ready; while true; do sleep 0.05; done"}})
	for !strings.Contains(logsOf(t, r, ids[0]), "ready") {
		time.Sleep(20 * time.Millisecond)
	}
	if err := r.StopContainer(context.Background(), ids[0], 30*time.Second); err != nil {
		t.Fatal(err)
	}
	st, _ := r.ContainerStatus(context.Background(), ids[0])
	if st.ExitCode != 0 || st.Reason != runtime.ReasonCompleted {
		t.Errorf("status = %+v, want exit 0 on SIGTERM", st)
	}
	if got := logsOf(t, r, ids[0]); got != "ready\nbye\n" {
		t.Errorf("logs = %q", got)
	}
}

func TestOOMKill(t *testing.T) {
	r := newTestRuntime(t, testOpts{})
	ctx := context.Background()
	events, _ := r.Events(ctx)
	_, ids := runPod(t, r, &runtime.PodSandboxConfig{Name: "oom"},
		&runtime.ContainerConfig{Name: "hog", Resources: runtime.Resources{MemoryLimitBytes: 16 << 20},
			Command: []string{"sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived"}})
	st := waitExit(t, r, ids[0], 30*time.Second)
	if st.ExitCode != 137 || st.Reason != runtime.ReasonOOMKilled {
		t.Errorf("status = %+v, want OOMKilled 137", st)
	}
	for ev := range events {
		if ev.Type == runtime.EventOOM && ev.ContainerID == ids[0] {
			break
		}
	}
}

func TestResourcesAndSecurity(t *testing.T) {
	r := newTestRuntime(t, testOpts{})
	vol := t.TempDir()
	os.WriteFile(filepath.Join(vol, "file"), []byte("from host"), 0o644)
	os.MkdirAll(filepath.Join(vol, "sub", "dir"), 0o755)
	os.WriteFile(filepath.Join(vol, "sub", "dir", "x"), []byte("sub"), 0o644)
	os.Symlink("/etc", filepath.Join(vol, "escape"))
	_, ids := runPod(t, r, &runtime.PodSandboxConfig{Name: "sec"},
		&runtime.ContainerConfig{Name: "c", Command: []string{"sleep", "1000"},
			Env:        []runtime.EnvVar{{Name: "GREETING", Value: "hi there"}},
			WorkingDir: "/tmp",
			Resources:  runtime.Resources{CPULimitMilli: 500, CPURequestMilli: 250, MemoryLimitBytes: 64 << 20},
			Security:   runtime.SecurityContext{RunAsUser: ptr[int64](1000), RunAsGroup: ptr[int64](3000), ReadOnlyRootFilesystem: true, DropCapabilities: []string{"ALL"}},
			Mounts: []runtime.Mount{
				{ContainerPath: "/data", HostPath: vol},
				{ContainerPath: "/ro", HostPath: vol, ReadOnly: true},
				{ContainerPath: "/sub", HostPath: vol, SubPath: "sub/dir"},
				{ContainerPath: "/mem", Tmpfs: true, SizeLimitBytes: 1 << 20},
			}})
	id := ids[0]
	tests := []struct {
		name     string
		cmd      string
		want     string
		wantCode int
	}{
		{name: "env", cmd: `echo "$GREETING"`, want: "hi there\n"},
		{name: "workdir", cmd: "pwd", want: "/tmp\n"},
		{name: "user", cmd: "id -u; id -g", want: "1000\n3000\n"},
		{name: "readonly root", cmd: "touch /x 2>/dev/null", wantCode: 1},
		{name: "no capabilities", cmd: "grep CapEff /proc/self/status | tr -d '\\t'", want: "CapEff:0000000000000000\n"},
		{name: "bind mount", cmd: "cat /data/file", want: "from host"},
		{name: "read-only bind", cmd: "touch /ro/y 2>/dev/null", wantCode: 1},
		{name: "subPath", cmd: "cat /sub/x", want: "sub"},
		{name: "tmpfs", cmd: "df -k /mem | tail -1 | awk '{print $2}'", want: "1024\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := execOut(t, r, id, "sh", "-c", tt.cmd)
			if code != tt.wantCode || (tt.wantCode == 0 && out != tt.want) {
				t.Errorf("%s: got %q (exit %d), want %q (exit %d)", tt.cmd, out, code, tt.want, tt.wantCode)
			}
		})
	}
	for file, want := range map[string]string{
		"cpu/cpu.cfs_quota_us":         "50000",
		"cpu/cpu.shares":               "256",
		"memory/memory.limit_in_bytes": "67108864",
	} {
		ctl, name := filepath.Split(file)
		sb, _ := r.getSandbox(mustSandbox(t, r))
		got, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", ctl, sb.Cgroup, id, name))
		if err != nil || strings.TrimSpace(string(got)) != want {
			t.Errorf("cgroup %s = %q, %v; want %s", file, got, err, want)
		}
	}
	if _, err := r.CreateContainer(context.Background(), mustSandbox(t, r), &runtime.ContainerConfig{Name: "bad", Image: busyboxRef, Command: []string{"true"},
		Mounts: []runtime.Mount{{ContainerPath: "/x", HostPath: vol, SubPath: "escape"}}}); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("subPath through a symlink out of the volume: %v, want ErrInvalid", err)
	}
	if _, err := r.CreateContainer(context.Background(), mustSandbox(t, r), &runtime.ContainerConfig{Name: "bad", Image: busyboxRef, Command: []string{"true"},
		Mounts: []runtime.Mount{{ContainerPath: "/x", HostPath: vol, SubPath: "../.."}}}); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("subPath with ..: %v, want ErrInvalid", err)
	}
}

func mustSandbox(t *testing.T, r *Runtime) string {
	t.Helper()
	sbs, err := r.ListPodSandboxes(context.Background())
	if err != nil || len(sbs) == 0 {
		t.Fatalf("no sandbox: %v", err)
	}
	return sbs[0].ID
}

func TestCommandAndArgs(t *testing.T) {
	r := newTestRuntime(t, testOpts{})
	files, err := images.BusyboxFiles(images.BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	img, err := images.Build(files, images.Config{Entrypoint: []string{"echo", "entry"}, Cmd: []string{"cmd"}, Env: []string{"PATH=/bin", "FROM_IMAGE=yes"}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := images.WriteArchive(&buf, "tugboat.test/echo:1", img); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ImportImage(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		command, args []string
		want          string
	}{
		{name: "image defaults", want: "entry cmd\n"},
		{name: "args replace cmd", args: []string{"a", "b"}, want: "entry a b\n"},
		{name: "command drops cmd", command: []string{"echo", "own"}, want: "own\n"},
		{name: "command and args", command: []string{"sh", "-c"}, args: []string{"echo $FROM_IMAGE"}, want: "yes\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ids := runPod(t, r, &runtime.PodSandboxConfig{Name: "cmd", UID: randHex(4)}, &runtime.ContainerConfig{Name: "c", Image: "tugboat.test/echo:1", Command: tt.command, Args: tt.args})
			waitExit(t, r, ids[0], 10*time.Second)
			if got := logsOf(t, r, ids[0]); got != tt.want {
				t.Errorf("output = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLogsRotationAndPrevious(t *testing.T) {
	needContainerd(t)
	dir := shortTempDir(t)
	r := newTestRuntime(t, testOpts{dataDir: dir})
	r.opts.LogMaxSize = 4096
	ctx := context.Background()
	sb, err := r.RunPodSandbox(ctx, &runtime.PodSandboxConfig{Name: "logs", Namespace: "ns", UID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	run := func(attempt uint32, script string) string {
		id, err := r.CreateContainer(ctx, sb, &runtime.ContainerConfig{Name: "app", Attempt: attempt, Image: busyboxRef, Command: []string{"sh", "-c", script}})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.StartContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
		waitExit(t, r, id, 10*time.Second)
		return id
	}
	first := run(0, "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done; exit 1")
	second := run(1, "echo restarted")
	st, _ := r.ContainerStatus(ctx, first)
	if !strings.HasSuffix(st.LogPath, "/ns_logs_u/app/0.log") {
		t.Errorf("log path %s", st.LogPath)
	}
	for _, p := range []string{st.LogPath, st.LogPath + ".1"} {
		fi, err := os.Stat(p)
		if err != nil || fi.Size() > 4096 {
			t.Errorf("%s: %v, size over the rotation limit", p, err)
		}
	}
	var tail bytes.Buffer
	if err := r.ContainerLogs(ctx, first, runtime.LogOptions{TailLines: 2, Timestamps: true}, &tail, io.Discard); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(tail.String()), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[1], " line 299") {
		t.Errorf("tail = %q", tail.String())
	} else if _, err := time.Parse(time.RFC3339Nano, strings.Fields(lines[1])[0]); err != nil {
		t.Errorf("timestamp: %v", err)
	}
	// --previous: the exited attempt's container still serves its log.
	if got := logsOf(t, r, second); got != "restarted\n" {
		t.Errorf("current logs = %q", got)
	}
	raw, _ := os.ReadFile(filepath.Join(filepath.Dir(st.LogPath), "1.log"))
	if !strings.Contains(string(raw), " stdout F restarted\n") {
		t.Errorf("CRI log file = %q", raw)
	}
}

func TestFollowLogsAndAttach(t *testing.T) {
	r := newTestRuntime(t, testOpts{})
	ctx := context.Background()
	_, ids := runPod(t, r, &runtime.PodSandboxConfig{Name: "attach"},
		&runtime.ContainerConfig{Name: "c", Stdin: true, Command: []string{"sh", "-c", "while read line; do echo got $line; [ \"$line\" = quit ] && exit 4; done"}})
	id := ids[0]
	stdinR, stdinW := io.Pipe()
	out := &testenv.SyncBuffer{}
	attached := make(chan error, 1)
	go func() { attached <- r.Attach(ctx, id, runtime.AttachOptions{Stdin: stdinR, Stdout: out}) }()
	followed := &testenv.SyncBuffer{}
	follow := make(chan error, 1)
	go func() {
		follow <- r.ContainerLogs(ctx, id, runtime.LogOptions{Follow: true, TailLines: -1}, followed, io.Discard)
	}()
	time.Sleep(200 * time.Millisecond)
	io.WriteString(stdinW, "ping\n")
	for !strings.Contains(out.String(), "got ping") {
		time.Sleep(20 * time.Millisecond)
	}
	io.WriteString(stdinW, "quit\n")
	if err := <-attached; err != nil {
		t.Fatal(err)
	}
	if err := <-follow; err != nil {
		t.Fatal(err)
	}
	if got := followed.String(); got != "got ping\ngot quit\n" {
		t.Errorf("followed logs = %q", got)
	}
	if st := waitExit(t, r, id, 5*time.Second); st.ExitCode != 4 {
		t.Errorf("exit = %d", st.ExitCode)
	}
}

func TestReadoptionAndContainerdRestart(t *testing.T) {
	needContainerd(t)
	dir := shortTempDir(t)
	r := newTestRuntime(t, testOpts{dataDir: dir})
	ctx := context.Background()
	sb, ids := runPod(t, r, &runtime.PodSandboxConfig{Name: "survivor"},
		&runtime.ContainerConfig{Name: "ticker", Command: []string{"sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"}})
	id := ids[0]
	time.Sleep(300 * time.Millisecond)

	// 1. containerd dies (SIGKILL): the supervisor restarts it and the
	// container keeps running and logging.
	oldPID := r.DaemonPID()
	if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for r.DaemonPID() == oldPID || !dialable(r.daemon.address) {
		if time.Now().After(deadline) {
			t.Fatal("containerd was not restarted")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var st *runtime.ContainerStatus
	var err error
	for st, err = r.ContainerStatus(ctx, id); err != nil && time.Now().Before(deadline); st, err = r.ContainerStatus(ctx, id) {
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || st.State != runtime.ContainerRunning {
		t.Fatalf("after containerd restart: %+v, %v", st, err)
	}
	if out, code := execOut(t, r, id, "echo", "alive"); out != "alive\n" || code != 0 {
		t.Errorf("exec after containerd restart = %q, %d", out, code)
	}

	// 2. The adapter restarts (Close stops the private containerd too):
	// the new one re-adopts the sandbox and the running container.
	before := strings.Count(logsOf(t, r, id), "tick")
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2, err := New(ctx, Options{DataDir: dir, Namespace: r.ns, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if s, err := r2.PodSandboxStatus(ctx, sb); err != nil || s.State != runtime.SandboxReady {
		t.Errorf("sandbox after re-adoption: %+v, %v", s, err)
	}
	if st, err := r2.ContainerStatus(ctx, id); err != nil || st.State != runtime.ContainerRunning || st.Name != "ticker" {
		t.Fatalf("container after re-adoption: %+v, %v", st, err)
	}
	time.Sleep(400 * time.Millisecond)
	after := strings.Count(logsOf(t, r2, id), "tick")
	if after <= before {
		t.Errorf("log did not grow after re-adoption: %d then %d ticks", before, after)
	}
	if err := r2.StopContainer(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
	if st := waitExit(t, r2, id, 10*time.Second); st.ExitCode != 137 {
		t.Errorf("exit after kill = %d", st.ExitCode)
	}
	// Let the cleanup (which reopens the runtime) find r closed.
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestPrivilegedAndCapabilities(t *testing.T) {
	r := newTestRuntime(t, testOpts{})
	_, ids := runPod(t, r, &runtime.PodSandboxConfig{Name: "caps"},
		&runtime.ContainerConfig{Name: "plain", Command: []string{"sleep", "1000"}},
		&runtime.ContainerConfig{Name: "netadmin", Command: []string{"sleep", "1000"}, Security: runtime.SecurityContext{AddCapabilities: []string{"NET_ADMIN"}}},
		&runtime.ContainerConfig{Name: "privileged", Command: []string{"sleep", "1000"}, Security: runtime.SecurityContext{Privileged: true}})
	// Changing lo's MTU needs CAP_NET_ADMIN; it happens in the pod's own
	// network namespace, which the test removes. Host devices appear only
	// in privileged containers.
	tests := []struct {
		id     string
		cmd    string
		wantOK bool
	}{
		{ids[0], "ip link set lo mtu 1500 2>/dev/null", false},
		{ids[1], "ip link set lo mtu 1500", true},
		{ids[1], "test -e /dev/kmsg", false},
		{ids[2], "ip link set lo mtu 1500 && test -e /dev/kmsg", true},
	}
	for i, tt := range tests {
		if out, code := execOut(t, r, tt.id, "sh", "-c", tt.cmd); (code == 0) != tt.wantOK {
			t.Errorf("case %d: %s: exit %d (%q), want success %v", i, tt.cmd, code, out, tt.wantOK)
		}
	}
}

func TestAttachTTYResize(t *testing.T) {
	r := newTestRuntime(t, testOpts{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, ids := runPod(t, r, &runtime.PodSandboxConfig{Name: "tty"},
		&runtime.ContainerConfig{Name: "c", Stdin: true, TTY: true, Command: []string{"sh", "-c", "while read l; do stty size; done"}})
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	out := &testenv.SyncBuffer{}
	resize := make(chan runtime.TerminalSize, 1)
	attached := make(chan error, 1)
	go func() {
		attached <- r.Attach(ctx, ids[0], runtime.AttachOptions{Stdin: stdinR, Stdout: out, Resize: resize})
	}()
	resize <- runtime.TerminalSize{Width: 90, Height: 30}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "30 90") && time.Now().Before(deadline) {
		io.WriteString(stdinW, "x\n")
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "30 90") {
		t.Errorf("terminal output = %q, want the resized size 30 90", out.String())
	}
	cancel()
	if err := <-attached; err != nil {
		t.Fatal(err)
	}
	// The TTY output is in the log too.
	if !strings.Contains(logsOf(t, r, ids[0]), "30 90") {
		t.Errorf("log = %q", logsOf(t, r, ids[0]))
	}
}

// TestGivenSocket runs a second runtime on the first one's containerd
// socket, in its own namespace: it must not stop or disturb that daemon.
func TestGivenSocket(t *testing.T) {
	owner := newTestRuntime(t, testOpts{})
	ctx := context.Background()
	dir := shortTempDir(t)
	r, err := New(ctx, Options{DataDir: dir, Address: owner.daemon.address, Namespace: "tbtest-" + randHex(4), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	arch, _ := busyboxArchive()
	if _, err := r.ImportImage(ctx, bytes.NewReader(arch)); err != nil {
		t.Fatal(err)
	}
	_, ids := runPod(t, r, &runtime.PodSandboxConfig{Name: "guest"}, &runtime.ContainerConfig{Name: "c", Command: []string{"echo", "guest"}})
	waitExit(t, r, ids[0], 10*time.Second)
	if got := logsOf(t, r, ids[0]); got != "guest\n" {
		t.Errorf("logs = %q", got)
	}
	if r.DaemonPID() != 0 {
		t.Errorf("DaemonPID = %d for a given socket", r.DaemonPID())
	}
	if err := r.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("data dir keeps %v", entries)
	}
	// The owner's daemon still serves its own namespace.
	if _, ids := runPod(t, owner, &runtime.PodSandboxConfig{Name: "host"}, &runtime.ContainerConfig{Name: "c", Command: []string{"true"}}); waitExit(t, owner, ids[0], 10*time.Second).ExitCode != 0 {
		t.Error("owner's container failed")
	}
}
