package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"

	criportforward "k8s.io/cri-streaming/pkg/streaming/portforward"
	crirc "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/tugboatdev/tugboat/internal/kubectltest"
	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/store"
)

// spdyNode is a node's streaming endpoint as the kubelet serves it (SPDY,
// through k8s.io/cri-streaming), whose "containers" run a few built-in
// commands:
//
//	upper       stdin upper-cased to stdout, "done" to stderr
//	fail        exits with code 3
//	size        (tty) prints the first terminal size it is sent
//
// and whose pods echo port-forwarded lines back prefixed with the port.
type spdyNode struct{}

func (n spdyNode) ServePod(w http.ResponseWriter, r *http.Request, pod *corev1.Pod, sub string) {
	q := r.URL.Query()
	opts := &crirc.Options{Stdin: q.Get("stdin") == "true", Stdout: q.Get("stdout") == "true",
		Stderr: q.Get("stderr") == "true", TTY: q.Get("tty") == "true"}
	switch sub {
	case "exec":
		crirc.ServeExec(w, r, n, pod.Name, string(pod.UID), "", q["command"], opts, time.Minute, 10*time.Second, crirc.SupportedStreamingProtocols)
	case "attach":
		crirc.ServeAttach(w, r, n, pod.Name, string(pod.UID), "", opts, time.Minute, 10*time.Second, crirc.SupportedStreamingProtocols)
	case "portforward":
		criportforward.ServePortForward(w, r, n, pod.Name, string(pod.UID), &criportforward.V4Options{}, time.Minute, 10*time.Second, criportforward.SupportedProtocols)
	default:
		http.Error(w, "no "+sub, http.StatusNotFound)
	}
}

func (spdyNode) ExecInContainer(ctx context.Context, _, _, _ string, cmd []string, in io.Reader, out, errw io.WriteCloser, _ bool, resize <-chan crirc.TerminalSize, _ time.Duration) error {
	switch cmd[0] {
	case "upper":
		b, err := io.ReadAll(in)
		if err != nil {
			return err
		}
		_, _ = out.Write(bytes.ToUpper(b))
		if errw != nil {
			_, _ = io.WriteString(errw, "done")
		}
		return nil
	case "fail":
		return utilexec.CodeExitError{Err: errors.New("command terminated with non-zero exit code 3"), Code: 3}
	case "size":
		select {
		case sz := <-resize:
			_, _ = fmt.Fprintf(out, "%dx%d", sz.Width, sz.Height)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return utilexec.CodeExitError{Err: errors.New("not found"), Code: 127}
}

func (spdyNode) AttachContainer(_ context.Context, _, _, _ string, in io.Reader, out, _ io.WriteCloser, _ bool, _ <-chan crirc.TerminalSize) error {
	b, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	_, err = out.Write(append([]byte("attached:"), b...))
	return err
}

func (spdyNode) PortForward(_ context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	r := bufio.NewReader(stream)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil
		}
		if _, err := fmt.Fprintf(stream, "%d:%s", port, line); err != nil {
			return err
		}
	}
}

// recordingStreamer remembers over which connection each stream request
// reached the node side.
type recordingStreamer struct {
	next PodStreamer
	mu   sync.Mutex
	seen []string // "<subresource> <remote addr>"
}

func (s *recordingStreamer) ServePod(w http.ResponseWriter, r *http.Request, pod *corev1.Pod, sub string) {
	s.mu.Lock()
	s.seen = append(s.seen, sub+" "+r.RemoteAddr)
	s.mu.Unlock()
	s.next.ServePod(w, r, pod, sub)
}

// viaBackend reports whether a request for sub came through the
// websocket bridge (the in-process backend).
func (s *recordingStreamer) viaBackend(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.seen {
		if v == sub+" pipe" { // net.Pipe's address
			return true
		}
	}
	return false
}

type streamEnv struct {
	cfg        *rest.Config
	kubeconfig string
	dir        string
	rec        *recordingStreamer
	cs         *kubernetes.Clientset
}

func startStreamServer(t *testing.T) *streamEnv {
	t.Helper()
	rec := &recordingStreamer{next: spdyNode{}}
	ts := startServer(t, func(c *Config) { c.Streamer = rec })
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	created, err := store.Create(context.Background(), ts.st, pod)
	if err != nil {
		t.Fatal(err)
	}
	created.Status.Phase = corev1.PodRunning // kubectl port-forward checks
	if _, err := store.UpdateStatus(context.Background(), ts.st, created); err != nil {
		t.Fatal(err)
	}
	return &streamEnv{cfg: ts.rest, kubeconfig: ts.kubeconfig, dir: ts.dir, rec: rec, cs: kubernetes.NewForConfigOrDie(ts.rest)}
}

func (e *streamEnv) execURL(sub string, opts *corev1.PodExecOptions) *url.URL {
	req := e.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name("p").SubResource(sub)
	if sub == "attach" {
		req = req.VersionedParams(&corev1.PodAttachOptions{Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr, TTY: opts.TTY}, scheme.ParameterCodec)
	} else {
		req = req.VersionedParams(opts, scheme.ParameterCodec)
	}
	return req.URL()
}

type fixedSize struct{ sent bool }

func (f *fixedSize) Next() *remotecommand.TerminalSize {
	if f.sent {
		return nil // no more sizes
	}
	f.sent = true
	return &remotecommand.TerminalSize{Width: 120, Height: 40}
}

// TestWebSocketExec runs exec and attach through client-go's websocket
// (v5.channel.k8s.io) and SPDY executors and checks streams, exit codes
// and terminal sizes arrive.
func TestWebSocketExec(t *testing.T) {
	e := startStreamServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	executors := map[string]func(u *url.URL) (remotecommand.Executor, error){
		"websocket": func(u *url.URL) (remotecommand.Executor, error) {
			return remotecommand.NewWebSocketExecutor(e.cfg, "GET", u.String())
		},
		// v4 websockets reach the node's own websocket support (the
		// kubelet's, cri-streaming's), as in kube-apiserver.
		"websocket-v4": func(u *url.URL) (remotecommand.Executor, error) {
			return remotecommand.NewWebSocketExecutorForProtocols(e.cfg, "GET", u.String(), "v4.channel.k8s.io")
		},
		"spdy": func(u *url.URL) (remotecommand.Executor, error) {
			return remotecommand.NewSPDYExecutor(e.cfg, "POST", u)
		},
	}
	tests := []struct {
		name       string
		sub        string
		opts       corev1.PodExecOptions
		stdin      string
		wantOut    string
		wantErr    string
		wantErrMsg string
		size       bool
	}{
		{name: "stdin stdout stderr", sub: "exec", opts: corev1.PodExecOptions{Command: []string{"upper"}, Stdin: true, Stdout: true, Stderr: true},
			stdin: "hello websocket", wantOut: "HELLO WEBSOCKET", wantErr: "done"},
		{name: "exit code", sub: "exec", opts: corev1.PodExecOptions{Command: []string{"fail"}, Stdout: true, Stderr: true},
			wantErrMsg: "command terminated with exit code 3"},
		{name: "tty size", sub: "exec", opts: corev1.PodExecOptions{Command: []string{"size"}, Stdout: true, TTY: true},
			wantOut: "120x40", size: true},
		{name: "attach", sub: "attach", opts: corev1.PodExecOptions{Stdin: true, Stdout: true},
			stdin: "in", wantOut: "attached:in"},
	}
	for proto, mk := range executors {
		for _, tt := range tests {
			if proto == "websocket-v4" && tt.opts.Stdin {
				continue // v4 cannot half-close stdin (v5 added that)
			}
			t.Run(proto+"/"+tt.name, func(t *testing.T) {
				ex, err := mk(e.execURL(tt.sub, &tt.opts))
				if err != nil {
					t.Fatal(err)
				}
				var out, errb bytes.Buffer
				so := remotecommand.StreamOptions{Stdout: &out, Tty: tt.opts.TTY}
				if tt.opts.Stderr {
					so.Stderr = &errb
				}
				if tt.opts.Stdin {
					so.Stdin = strings.NewReader(tt.stdin)
				}
				if tt.size {
					so.TerminalSizeQueue = &fixedSize{}
				}
				err = ex.StreamWithContext(ctx, so)
				if tt.wantErrMsg != "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErrMsg) {
						t.Fatalf("error = %v, want %q", err, tt.wantErrMsg)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if out.String() != tt.wantOut || errb.String() != tt.wantErr {
					t.Errorf("stdout %q stderr %q, want %q %q", out.String(), errb.String(), tt.wantOut, tt.wantErr)
				}
			})
		}
	}
	if !e.rec.viaBackend("exec") || !e.rec.viaBackend("attach") {
		t.Errorf("websocket exec/attach did not go through the websocket bridge: %v", e.rec.seen)
	}
}

// TestWebSocketPortForward forwards a port with client-go's SPDY over
// websocket dialer (kubectl's default) and with plain SPDY.
func TestWebSocketPortForward(t *testing.T) {
	e := startStreamServer(t)
	u := e.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name("p").SubResource("portforward").URL()
	for _, proto := range []string{"websocket", "spdy"} {
		t.Run(proto, func(t *testing.T) {
			var dialer httpstream.Dialer
			if proto == "websocket" {
				d, err := portforward.NewSPDYOverWebsocketDialer(u, e.cfg)
				if err != nil {
					t.Fatal(err)
				}
				dialer = d
			} else {
				rt, up, err := spdy.RoundTripperFor(e.cfg)
				if err != nil {
					t.Fatal(err)
				}
				dialer = spdy.NewDialer(up, &http.Client{Transport: rt}, "POST", u)
			}
			stop, ready := make(chan struct{}), make(chan struct{})
			// client-go writes to out from one goroutine per connection.
			pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:8080"}, stop, ready, io.Discard, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- pf.ForwardPorts() }()
			defer func() { close(stop); <-done }()
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("port-forward: %v", err)
			}
			ports, err := pf.GetPorts()
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2 { // two connections over one tunnel
				c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0].Local))
				if err != nil {
					t.Fatal(err)
				}
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				msg := fmt.Sprintf("ping %d\n", i)
				if _, err := io.WriteString(c, msg); err != nil {
					t.Fatal(err)
				}
				line, err := bufio.NewReader(c).ReadString('\n')
				_ = c.Close()
				if err != nil || line != "8080:"+msg {
					t.Fatalf("echo %q, %v; want %q", line, err, "8080:"+msg)
				}
			}
		})
	}
	if !e.rec.viaBackend("portforward") {
		t.Errorf("websocket port-forward did not go through the bridge: %v", e.rec.seen)
	}
}

// kubectlExec runs a kubectl binary against e.
func (e *streamEnv) kubectl(ctx context.Context, bin string, stdin io.Reader, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", e.kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+e.dir, "KUBECACHEDIR="+filepath.Join(e.dir, "cache"))
	cmd.Stdin = stdin
	return cmd
}

var forwardingRE = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 8080`)

// TestKubectlWebSocketStreams runs kubectl exec (stdin, stderr, exit
// code), attach, exec -it in a terminal (its size reaches the command) and
// port-forward with each kubectl; they use websockets first, and the test
// checks they went through the websocket bridge.
func TestKubectlWebSocketStreams(t *testing.T) {
	for _, k := range kubectltest.Binaries(t) {
		bin := k.Path
		t.Run(k.Name, func(t *testing.T) {
			e := startStreamServer(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := e.kubectl(ctx, bin, strings.NewReader("from kubectl"), "exec", "-i", "p", "--", "upper")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("kubectl exec: %v\n%s%s", err, &stdout, &stderr)
			}
			if stdout.String() != "FROM KUBECTL" || stderr.String() != "done" {
				t.Errorf("kubectl exec stdout %q stderr %q", &stdout, &stderr)
			}
			out, err := e.kubectl(ctx, bin, nil, "exec", "p", "--", "fail").CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
				t.Errorf("kubectl exec fail: %v (want exit code 3)\n%s", err, out)
			}
			if !e.rec.viaBackend("exec") {
				t.Errorf("kubectl exec did not use websockets: %v", e.rec.seen)
			}
			cmd = e.kubectl(ctx, bin, strings.NewReader("to main"), "attach", "-i", "p")
			stdout.Reset()
			stderr.Reset()
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil || stdout.String() != "attached:to main" {
				t.Errorf("kubectl attach: %v, stdout %q stderr %q", err, &stdout, &stderr)
			}
			if !e.rec.viaBackend("attach") {
				t.Errorf("kubectl attach did not use websockets: %v", e.rec.seen)
			}
			// A terminal: kubectl exec -it sends the terminal's size through
			// the resize channel. script(1) gives kubectl a pty of 100x30.
			testenv.NeedCommand(t, "script")
			shell := fmt.Sprintf("stty cols 100 rows 30; %s --kubeconfig %s exec -it p -- size", bin, e.kubeconfig)
			ttyCtx, ttyCancel := context.WithTimeout(ctx, 20*time.Second)
			defer ttyCancel()
			tty := exec.CommandContext(ttyCtx, "script", "-qec", shell, "/dev/null")
			tty.Env = append(os.Environ(), "HOME="+e.dir, "KUBECACHEDIR="+filepath.Join(e.dir, "cache"))
			if out, err := tty.CombinedOutput(); err != nil || !strings.Contains(string(out), "100x30") {
				t.Errorf("kubectl exec -t: %v, output %q; want the terminal size 100x30", err, out)
			}

			pf := e.kubectl(ctx, bin, nil, "port-forward", "pod/p", ":8080")
			pfOut, err := pf.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			pf.Stderr = os.Stderr
			if err := pf.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = pf.Process.Kill(); _ = pf.Wait() })
			sc := bufio.NewScanner(pfOut)
			var port string
			for sc.Scan() {
				if m := forwardingRE.FindStringSubmatch(sc.Text()); m != nil {
					port = m[1]
					break
				}
			}
			if port == "" {
				t.Fatal("kubectl port-forward printed no local port")
			}
			go func() { _, _ = io.Copy(io.Discard, pfOut) }()
			c, err := net.Dial("tcp", "127.0.0.1:"+port)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.WriteString(c, "ping\n"); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || line != "8080:ping\n" {
				t.Fatalf("port-forward echo %q, %v", line, err)
			}
			if !e.rec.viaBackend("portforward") {
				t.Errorf("kubectl port-forward did not use websockets: %v", e.rec.seen)
			}
		})
	}
}
