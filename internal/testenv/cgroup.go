package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// WgetFromCgroup fetches url with busybox wget started inside the cgroup v2
// directory dir (so the eBPF service proxy attached there serves it) and
// returns the body. It retries for up to about 30 s while the proxy
// programs new endpoints, then fails the test with the last error.
func WgetFromCgroup(t testing.TB, dir, url string) string {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var last string
	for range 60 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, "/bin/busybox", "wget", "-q", "-O", "-", url)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil {
			return string(out)
		}
		last = fmt.Sprintf("%v: %s", err, out)
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("wget %s from cgroup %s: %s", url, dir, last)
	return ""
}
