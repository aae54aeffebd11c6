package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/orchestrator/apiserver"
	"github.com/tugboatdev/tugboat/runtime/containerd"
	"github.com/tugboatdev/tugboat/runtime/containerd/containerdtest"
	"github.com/tugboatdev/tugboat/runtime/images"
	"github.com/tugboatdev/tugboat/store"
)

// procMemory is the memory of a process from /proc/<pid>/status, in bytes.
type procMemory struct {
	VmRSS, RssAnon, RssFile int64
}

// parseProcStatus reads the VmRSS, RssAnon and RssFile lines of a
// /proc/<pid>/status file.
func parseProcStatus(r io.Reader) (procMemory, error) {
	var m procMemory
	found := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch key {
		case "VmRSS":
			dst = &m.VmRSS
		case "RssAnon":
			dst = &m.RssAnon
		case "RssFile":
			dst = &m.RssFile
		default:
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("proc status: %s: unexpected value %q", key, val)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 || kb > 1<<40 {
			return m, fmt.Errorf("proc status: %s: bad value %q", key, val)
		}
		*dst = kb << 10
		found++
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if found == 0 {
		return m, fmt.Errorf("proc status: no VmRSS, RssAnon or RssFile line")
	}
	return m, nil
}

func readProcMemory(pid int) (procMemory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMemory{}, err
	}
	defer f.Close()
	return parseProcStatus(f)
}

// procCPU returns the user+system CPU time of a process from
// /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseProcStat(b)
}

// parseProcStat returns utime+stime of a /proc/<pid>/stat line.
func parseProcStat(b []byte) (time.Duration, error) {
	// The command may contain spaces and parentheses: the fields start
	// after its last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("proc stat: no command")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("proc stat: %d fields", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil || ut > 1<<40 || st > 1<<40 {
		return 0, fmt.Errorf("proc stat: bad times %q %q", f[11], f[12])
	}
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz, nil
}

// heapInuse fetches the heap profile (debug=1, after a GC) from a
// net/http/pprof server and returns its HeapInuse figure; when save is
// not empty the binary profile is also written there.
func heapInuse(ctx context.Context, addr, save string) (int64, error) {
	get := func(q string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/pprof/heap?"+q, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return io.ReadAll(resp.Body)
	}
	b, err := get("gc=1&debug=1")
	if err != nil {
		return 0, err
	}
	if save != "" {
		if p, err := get("gc=1"); err == nil {
			_ = os.WriteFile(save, p, 0o600)
		}
		_ = os.WriteFile(save+".txt", b, 0o600)
	}
	return memStat(b, "HeapInuse")
}

// memStat returns one "# Name = value" figure of a debug=1 heap profile
// (the runtime.MemStats fields net/http/pprof appends).
func memStat(profile []byte, name string) (int64, error) {
	for _, l := range strings.Split(string(profile), "\n") {
		if v, ok := strings.CutPrefix(l, "# "+name+" = "); ok {
			v, _, _ = strings.Cut(strings.TrimSpace(v), " ")
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in the heap profile", name)
}

// BenchmarkAgentAlone110PodsContainerd measures the node agent alone: it
// builds this command (the agent with the containerd runtime
// adapter and the remote store client, as a node process of
// examples/multinode), serves the store over the API server on loopback in
// this process, starts the node process against it, binds 110 busybox
// pods to its node and reports the node process's VmRSS, RssAnon and Go
// heap in use before the pods, when all are Running and Ready, and after
// a settle period, with its CPU use over that period.
//
// TUGBOAT_HEAP_PROFILE=file saves the settled heap profile for pprof
// (with file.txt, file.smaps and file.goroutines beside it);
// TUGBOAT_NODE_MEMPROFILERATE=1 makes that profile exact;
// TUGBOAT_NODE_GOMEMLIMIT and TUGBOAT_NODE_GOGC set the node process's
// GOMEMLIMIT and GOGC.
func BenchmarkAgentAlone110PodsContainerd(b *testing.B) {
	testenv.NeedRoot(b)
	for _, c := range []string{"containerd", "runc", "containerd-shim-runc-v2", "go"} {
		testenv.NeedCommand(b, c)
	}
	_, err := os.Stat(images.BusyboxPath)
	testenv.Need(b, err == nil, "static busybox at "+images.BusyboxPath+" (busybox-static)")
	// If the benchmark process is killed, the next test process's sweep
	// kills the node process (it runs from dir; see benchAgentAlone for
	// the record of its runtime) and removes what it left.
	dir := containerdtest.TempDir(b)
	bin := filepath.Join(dir, "nodeagent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	img, err := images.Busybox()
	if err != nil {
		b.Fatal(err)
	}
	var arch bytes.Buffer
	if err := images.WriteArchive(&arch, busyboxRef, img); err != nil {
		b.Fatal(err)
	}
	imgDir := filepath.Join(dir, "images")
	if err := os.MkdirAll(imgDir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(imgDir, "busybox.tar"), arch.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}

	for i := 0; i < b.N; i++ {
		benchAgentAlone(b, dir, bin, imgDir, 110, 30*time.Second)
	}
}

// startAPIServer serves an in-memory store over the API server (HTTPS on
// loopback) until the test ends, and returns the store and the path of an
// admin kubeconfig under dir.
func startAPIServer(tb testing.TB, dir string) (store.Interface, string) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := store.Open(ctx, store.Config{Logger: quietLog()})
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	srvDir := filepath.Join(dir, "apiserver")
	srv, err := apiserver.New(apiserver.Config{Store: s, DataDir: srvDir, Logger: quietLog()})
	if err != nil {
		cancel()
		s.Close()
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		s.Close()
		tb.Fatal(err)
	}
	served := make(chan struct{})
	go func() { _ = srv.Serve(ctx, ln); close(served) }()
	tb.Cleanup(func() { cancel(); <-served; s.Close() })
	kc := filepath.Join(srvDir, "admin.kubeconfig")
	if err := srv.PKI().WriteKubeconfig(kc, "https://"+ln.Addr().String(), apiserver.KubeconfigOptions{}); err != nil {
		tb.Fatal(err)
	}
	return s, kc
}

func benchAgentAlone(b *testing.B, dir, bin, imgDir string, n int, settle time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, kc := startAPIServer(b, dir)

	rb := make([]byte, 4)
	_, _ = rand.Read(rb)
	node := "alone-" + hex.EncodeToString(rb)
	containerdtest.Record(b, containerd.Options{DataDir: filepath.Join(dir, "node", "ctr"), Namespace: node}, nil)
	addrFile := filepath.Join(dir, "debug-addr")
	_ = os.Remove(addrFile)
	logFile, err := os.Create(filepath.Join(dir, "node.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "-kubeconfig", kc, "-node", node, "-data-dir", filepath.Join(dir, "node"),
		"-namespace", node, "-images-dir", imgDir, "-debug-addr-file", addrFile)
	if r := os.Getenv("TUGBOAT_NODE_MEMPROFILERATE"); r != "" {
		cmd.Args = append(cmd.Args, "-memprofilerate", r)
	}
	// TUGBOAT_NODE_GOMEMLIMIT and TUGBOAT_NODE_GOGC tune the node
	// process's Go runtime (GOMEMLIMIT, GOGC) without touching this one.
	cmd.Env = os.Environ()
	for _, v := range []string{"GOMEMLIMIT", "GOGC"} {
		if x := os.Getenv("TUGBOAT_NODE_" + v); x != "" {
			cmd.Env = append(cmd.Env, v+"="+x)
		}
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stopNode := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				b.Errorf("node process: %v (log %s)", err, logFile.Name())
			}
		case <-time.After(10 * time.Minute):
			// Killing it leaves its containerd and containers behind.
			_ = cmd.Process.Kill()
			<-exited
			b.Errorf("node process did not stop within 10 minutes")
		}
	}
	defer stopNode()
	pid := cmd.Process.Pid

	// Wait for the node to register and be Ready.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		nd, err := store.Get[*corev1.Node](ctx, s, "", node)
		if err == nil && isNodeReady(nd) {
			break
		}
		select {
		case err := <-exited:
			b.Fatalf("node process exited: %v; log:\n%s", err, tail(logFile.Name()))
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("node %s not Ready after 2 minutes; log:\n%s", node, tail(logFile.Name()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	addr, err := os.ReadFile(addrFile)
	if err != nil {
		b.Fatal(err)
	}
	report := func(phase string) {
		m, err := readProcMemory(pid)
		if err != nil {
			b.Fatal(err)
		}
		save := ""
		if p := os.Getenv("TUGBOAT_HEAP_PROFILE"); p != "" && phase == "settled" {
			save = p
		}
		h, err := heapInuse(ctx, string(addr), save)
		if err != nil {
			b.Fatal(err)
		}
		if save != "" {
			smaps, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
			_ = os.WriteFile(save+".smaps", smaps, 0o600)
			if resp, err := http.Get("http://" + string(addr) + "/debug/pprof/goroutine?debug=1"); err == nil {
				g, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				_ = os.WriteFile(save+".goroutines", g, 0o600)
			}
		}
		b.ReportMetric(float64(m.VmRSS)/(1<<20), phase+"-rss-MiB")
		b.ReportMetric(float64(m.RssAnon)/(1<<20), phase+"-rssanon-MiB")
		b.ReportMetric(float64(h)/(1<<20), phase+"-heapinuse-MiB")
	}
	time.Sleep(10 * time.Second)
	report("idle")

	w, err := store.WatchOf[*corev1.Pod](ctx, s, "default", metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := store.Create(ctx, s, benchPod(i, node)); err != nil {
			b.Fatal(err)
		}
	}
	waitReady(b, w, n, 5*time.Minute)
	b.ReportMetric(float64(time.Since(start).Milliseconds()), "all-ready-ms")
	report("ready")
	time.Sleep(settle / 2)
	c0, err := procCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	w0 := time.Now()
	time.Sleep(settle / 2)
	c1, err := procCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(c1-c0)/float64(time.Since(w0))*100, "settled-cpu-%")
	report("settled")

	deleteAll(b, ctx, s)
	stopNode()
}

const busyboxRef = "tugboat.test/busybox:1"

// benchPod is a busybox pod bound to node, Ready once running.
func benchPod(i int, node string) *corev1.Pod {
	grace := int64(2)
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("bench-%03d", i), Labels: map[string]string{"app": "bench"}},
		Spec: corev1.PodSpec{NodeName: node, TerminationGracePeriodSeconds: &grace, Containers: []corev1.Container{{
			Name: "app", Image: busyboxRef, ImagePullPolicy: corev1.PullNever, Command: []string{"sleep", "3600"}}}}}
}

// waitReady consumes pod events until n pods have been Running and Ready.
func waitReady(b *testing.B, w watch.Interface, n int, within time.Duration) {
	ready := map[string]bool{}
	timeout := time.After(within)
	for len(ready) < n {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				b.Fatal("pod watch ended")
			}
			p, ok := ev.Object.(*corev1.Pod)
			if ok && p.Status.Phase == corev1.PodRunning && podReady(p) {
				ready[p.Name] = true
			}
		case <-timeout:
			b.Fatalf("%d of %d pods Ready after %s", len(ready), n, within)
		}
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// deleteAll deletes every pod and waits until the agent removed them.
func deleteAll(b *testing.B, ctx context.Context, s store.Interface) {
	pods, _, err := store.ListOf[*corev1.Pod](ctx, s, "", metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range pods {
		_ = store.Delete[*corev1.Pod](ctx, s, p.Namespace, p.Name, metav1.DeleteOptions{})
	}
	deadline := time.Now().Add(6 * time.Minute)
	for time.Now().Before(deadline) {
		pods, _, err := store.ListOf[*corev1.Pod](ctx, s, "", metav1.ListOptions{})
		if err == nil && len(pods) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Errorf("pods still present after 6 minutes")
}

func isNodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// tail returns the end of a log file, for failure messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
