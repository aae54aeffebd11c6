package pause

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tugboatdev/tugboat/internal/testenv"
)

// TestPauseIsInitOfNewPIDNamespace runs the program as PID 1 of a new PID
// namespace and checks that it ignores SIGCHLD (so orphans are reaped)
// and keeps running until killed.
func TestPauseIsInitOfNewPIDNamespace(t *testing.T) {
	testenv.NeedRoot(t)
	bin := Binary()
	testenv.Need(t, bin != nil, "a pause binary for this architecture (amd64)")
	path := filepath.Join(t.TempDir(), "pause")
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var status string
	for range 100 {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
		if err != nil {
			t.Fatal(err)
		}
		status = string(b)
		if sigIgn(status)&(1<<(int(syscall.SIGCHLD)-1)) != 0 {
			break
		}
		exec.Command("sleep", "0.01").Run()
	}
	if got := field(status, "NSpid"); len(strings.Fields(got)) != 2 || strings.Fields(got)[1] != "1" {
		t.Errorf("NSpid = %q, want the host PID and 1", got)
	}
	if sigIgn(status)&(1<<(int(syscall.SIGCHLD)-1)) == 0 {
		t.Errorf("SIGCHLD is not ignored: SigIgn %s", field(status, "SigIgn"))
	}
	if st := field(status, "State"); !strings.HasPrefix(st, "S") {
		t.Errorf("State = %q, want sleeping", st)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Errorf("pause ended with %v, want killed by SIGKILL", err)
	}
}

func field(status, name string) string {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func sigIgn(status string) uint64 {
	n, _ := strconv.ParseUint(field(status, "SigIgn"), 16, 64)
	return n
}
