package cni

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tugboatdev/tugboat/internal/testenv"
)

// BenchmarkIPAllocation compares what a pod's IP costs: the in-process
// allocator against a run of the host-local plugin (the process the
// bridge plugin starts for it otherwise), each an allocation and its
// release with 100 other pods' allocations in the store. cpu-ms/op
// counts the CPU time of this process and of the plugin processes.
func BenchmarkIPAllocation(b *testing.B) {
	b.Run("in-process", func(b *testing.B) {
		s, err := newIPStore(b.TempDir(), "bench", netip.MustParsePrefix("10.9.0.0/16"))
		if err != nil {
			b.Fatal(err)
		}
		for i := range 100 {
			if _, err := s.allocate(fmt.Sprintf("other-%d", i), "eth0"); err != nil {
				b.Fatal(err)
			}
		}
		cpu := cpuTime()
		for i := 0; b.Loop(); i++ {
			id := fmt.Sprintf("pod-%d", i)
			if _, err := s.allocate(id, "eth0"); err != nil {
				b.Fatal(err)
			}
			if err := s.release(id, "eth0"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	})
	b.Run("host-local", func(b *testing.B) {
		plugin := filepath.Join(DefaultPluginDir, "host-local")
		_, err := os.Stat(plugin)
		testenv.Need(b, err == nil, "host-local plugin in "+DefaultPluginDir+" (containernetworking-plugins)")
		dataDir := b.TempDir()
		conf, _ := json.Marshal(map[string]any{
			"cniVersion": "1.0.0", "name": "bench", "type": "bridge",
			"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{"subnet": "10.9.0.0/16"}}}, "dataDir": dataDir},
		})
		run := func(cmd, id string) {
			c := exec.Command(plugin)
			c.Stdin = bytes.NewReader(conf)
			c.Env = []string{"CNI_COMMAND=" + cmd, "CNI_CONTAINERID=" + id, "CNI_NETNS=/nonexistent", "CNI_IFNAME=eth0", "CNI_PATH=" + DefaultPluginDir}
			if out, err := c.CombinedOutput(); err != nil {
				b.Fatalf("host-local %s: %v: %s", cmd, err, out)
			}
		}
		for i := range 100 {
			run("ADD", fmt.Sprintf("other-%d", i))
		}
		cpu := cpuTime()
		for i := 0; b.Loop(); i++ {
			id := fmt.Sprintf("pod-%d", i)
			run("ADD", id)
			run("DEL", id)
		}
		b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	})
}

// cpuTime is the user+system time of this process and its waited-for
// children.
func cpuTime() time.Duration {
	var self, children syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(children.Utime) + tv(children.Stime)
}
