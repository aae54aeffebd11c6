package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/orchestrator/apiserver"
	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/store"
)

// echoAgent is an agent.PodStreamer that answers with what it was asked:
// logs name the pod and container, exec prints its command and the pod
// (and stdin, when given) and exits with the code "exit N" asks for.
type echoAgent struct{}

func (echoAgent) Logs(_ context.Context, ns, pod, container string, _ *corev1.PodLogOptions, out io.Writer) error {
	_, err := fmt.Fprintf(out, "log of %s/%s container %s\n", ns, pod, container)
	return err
}

func (echoAgent) Exec(_ context.Context, ns, pod, _ string, opts runtime.ExecOptions) (int, error) {
	if len(opts.Cmd) == 2 && opts.Cmd[0] == "exit" {
		return strconv.Atoi(opts.Cmd[1])
	}
	fmt.Fprintf(opts.Stdout, "%s in %s/%s\n", strings.Join(opts.Cmd, " "), ns, pod)
	if opts.Stderr != nil {
		fmt.Fprintf(opts.Stderr, "to stderr\n")
	}
	if opts.Stdin != nil {
		if _, err := io.Copy(opts.Stdout, opts.Stdin); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

func (echoAgent) Attach(context.Context, string, string, string, runtime.AttachOptions) error {
	return errors.New("echoAgent: attach not implemented")
}

func (echoAgent) PortForward(_ context.Context, ns, pod string, port int32, stream io.ReadWriter) error {
	_, err := fmt.Fprintf(stream, "port %d of %s/%s\n", port, ns, pod)
	return err
}

// streamCluster is an API server over an in-memory store whose pods'
// streams are served by echoAgent, either in process or through a
// NodeProxy and a node's streaming endpoint over TLS.
type streamCluster struct {
	st         *store.Store
	kubeconfig string
	rest       *rest.Config
	// nodeAuth and nodeUpgrades record the Authorization and Upgrade
	// headers that reached the node.
	mu           sync.Mutex
	nodeAuth     []string
	nodeUpgrades []string
	nodeURL      string
	nodeCAs      *x509.CertPool
}

func startStreamCluster(t *testing.T, remote bool) *streamCluster {
	t.Helper()
	ctx := t.Context()
	st, err := store.Open(ctx, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sc := &streamCluster{st: st}
	streamers := NewNodeStreamers()
	if !remote {
		streamers.Add("n1", echoAgent{})
	}
	dir := t.TempDir()
	api, err := apiserver.New(apiserver.Config{Store: st, DataDir: dir, Streamer: streamers,
		Tokens: map[string]apiserver.UserInfo{"secret-admin-token": {Name: "admin", Groups: []string{"system:masters"}}}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = api.Serve(sctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	sc.kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := api.PKI().WriteKubeconfig(sc.kubeconfig, "https://"+ln.Addr().String(), apiserver.KubeconfigOptions{Token: "secret-admin-token"}); err != nil {
		t.Fatal(err)
	}
	sc.rest = &rest.Config{Host: "https://" + ln.Addr().String(), BearerToken: "secret-admin-token",
		TLSClientConfig: rest.TLSClientConfig{CAData: api.PKI().CAPEM}}

	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	if remote {
		// The node's endpoint: TLS requiring a client certificate of the
		// cluster CA; the API server's proxy holds one.
		node1 := NodeStreamHandler(st, "n1", echoAgent{})
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sc.mu.Lock()
			sc.nodeAuth = append(sc.nodeAuth, r.Header.Get("Authorization"))
			sc.nodeUpgrades = append(sc.nodeUpgrades, r.Header.Get("Upgrade"))
			sc.mu.Unlock()
			node1.ServeHTTP(w, r)
		}))
		srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: api.PKI().CertPool()}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		sc.nodeURL = srv.URL
		sc.nodeCAs = x509.NewCertPool()
		sc.nodeCAs.AddCert(srv.Certificate())
		certPEM, keyPEM, err := api.PKI().IssueClientCert("tugboat-apiserver-node-client", nil)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		px := NewNodeProxy(st, &tls.Config{RootCAs: sc.nodeCAs, Certificates: []tls.Certificate{cert}}, nil)
		t.Cleanup(px.Close)
		streamers.SetFallback(px)
		_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
		p, _ := strconv.Atoi(port)
		node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
		node.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(p)
	}
	created, err := store.Create(ctx, st, node)
	if err != nil {
		t.Fatal(err)
	}
	created = created.DeepCopy()
	created.Status = node.Status
	if _, err := store.UpdateStatus(ctx, st, created); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ name, node string }{{"p1", "n1"}, {"elsewhere", "n2"}} {
		pod, err := store.Create(ctx, st, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: p.name},
			Spec:       corev1.PodSpec{NodeName: p.node, Containers: []corev1.Container{{Name: "c", Image: "demo/web:1.0"}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		pod = pod.DeepCopy()
		pod.Status.Phase = corev1.PodRunning // kubectl port-forward asks for it
		if _, err := store.UpdateStatus(ctx, st, pod); err != nil {
			t.Fatal(err)
		}
	}
	return sc
}

func (sc *streamCluster) kubectl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, kubectlPath, append([]string{"--kubeconfig", sc.kubeconfig}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, stderr.String())
	}
	return stdout.String(), nil
}

// portForward runs kubectl port-forward to port of pod on a free local
// port, connects once and returns what it read.
func (sc *streamCluster) portForward(t *testing.T, pod string, port int) (string, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectlPath, "--kubeconfig", sc.kubeconfig, "port-forward", "pod/"+pod, ":"+strconv.Itoa(port))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	// "Forwarding from 127.0.0.1:NNNN -> 80"
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(line, "Forwarding from ")
	addr, _, _ = strings.Cut(addr, " ")
	if err != nil || !ok {
		stop()
		return "", fmt.Errorf("kubectl port-forward said %q (%v): %s", line, err, stderr.String())
	}
	defer stop()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	b, err := io.ReadAll(conn)
	return string(b), err
}

// wsPortForward opens pods/portforward as a websocket with the
// v4.channel.k8s.io protocol (as older clients do) and returns what the
// data channel of port carried.
func (sc *streamCluster) wsPortForward(t *testing.T, pod string, port int) (string, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(sc.rest.TLSClientConfig.CAData)
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}, Subprotocols: []string{"v4.channel.k8s.io"}, HandshakeTimeout: 10 * time.Second}
	u := strings.Replace(sc.rest.Host, "https://", "wss://", 1) + "/api/v1/namespaces/default/pods/" + pod + "/portforward?ports=" + strconv.Itoa(port)
	conn, resp, err := d.DialContext(t.Context(), u, http.Header{"Authorization": {"Bearer " + sc.rest.BearerToken}})
	if err != nil {
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			err = fmt.Errorf("%w: %s %s", err, resp.Status, b)
		}
		return "", err
	}
	defer conn.Close()
	if conn.Subprotocol() != "v4.channel.k8s.io" {
		return "", fmt.Errorf("negotiated %q", conn.Subprotocol())
	}
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	// Each message starts with its channel: 0 data, 1 errors; the first
	// on each channel carries the port (2 bytes, little endian).
	var data []byte
	first := map[byte]bool{}
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			if len(data) > 0 {
				return string(data), nil
			}
			return "", err
		}
		if len(msg) == 0 {
			continue
		}
		ch, body := msg[0], msg[1:]
		if !first[ch] {
			first[ch] = true
			if len(body) != 2 || int(body[0])|int(body[1])<<8 != port {
				return "", fmt.Errorf("channel %d opened with %v, want port %d", ch, body, port)
			}
			continue
		}
		switch ch {
		case 0:
			data = append(data, body...)
			if bytes.HasSuffix(data, []byte("\n")) {
				return string(data), nil
			}
		case 1:
			return string(data), fmt.Errorf("port-forward error: %s", body)
		}
	}
}

// execURL is the pods/exec URL of pod p1 for cmd.
func (sc *streamCluster) execURL(pod string, cmd ...string) string {
	q := url.Values{"command": cmd, "stdout": {"true"}, "stderr": {"true"}}
	return sc.rest.Host + "/api/v1/namespaces/default/pods/" + pod + "/exec?" + q.Encode()
}

// TestPodStreamsThroughAPIServer drives logs and exec through a real API
// server with /usr/bin/kubectl (websocket v5, which the server translates
// to SPDY for the node streamer; port-forward tunnelled likewise),
// client-go's websocket executor speaking only v4.channel.k8s.io and a
// v4.channel.k8s.io websocket port-forward (which reach the node streamer
// as websockets), and client-go's SPDY executor; once with the agent in process
// (NodeStreamers) and once with the agent behind a node endpoint
// (NodeStreamHandler over TLS with client certificates) that a NodeProxy
// reaches.
func TestPodStreamsThroughAPIServer(t *testing.T) {
	testenv.NeedCommand(t, kubectlPath)
	for _, remote := range []bool{false, true} {
		t.Run(map[bool]string{false: "in-process", true: "remote-node"}[remote], func(t *testing.T) {
			sc := startStreamCluster(t, remote)
			tests := []struct {
				name    string
				run     func() (string, error)
				want    string
				wantErr string
			}{
				{name: "kubectl logs", run: func() (string, error) { return sc.kubectl(t, "logs", "p1") }, want: "log of default/p1 container c\n"},
				{name: "kubectl logs -f", run: func() (string, error) { return sc.kubectl(t, "logs", "-f", "p1", "-c", "c") }, want: "log of default/p1 container c\n"},
				{name: "kubectl exec", run: func() (string, error) { return sc.kubectl(t, "exec", "p1", "--", "echo", "hi") }, want: "echo hi in default/p1\n"},
				{name: "kubectl exec stdin", run: func() (string, error) {
					cmd := exec.CommandContext(t.Context(), kubectlPath, "--kubeconfig", sc.kubeconfig, "exec", "-i", "p1", "--", "cat")
					cmd.Stdin = strings.NewReader("from stdin\n")
					out, err := cmd.Output()
					return string(out), err
				}, want: "cat in default/p1\nfrom stdin\n"},
				{name: "kubectl exec exit code", run: func() (string, error) { return sc.kubectl(t, "exec", "p1", "--", "exit", "3") }, wantErr: "exit status 3"},
				{name: "kubectl exec on a node without agent", run: func() (string, error) { return sc.kubectl(t, "exec", "elsewhere", "--", "echo") }, wantErr: "n2"},
				{name: "kubectl port-forward", run: func() (string, error) { return sc.portForward(t, "p1", 80) }, want: "port 80 of default/p1\n"},
				{name: "websocket v4 port-forward", run: func() (string, error) { return sc.wsPortForward(t, "p1", 80) }, want: "port 80 of default/p1\n"},
				{name: "websocket v4 exec", run: func() (string, error) {
					return sc.stream(t, "ws", remotecommand.StreamOptions{}, "echo", "v4")
				}, want: "echo v4 in default/p1\n|to stderr\n"},
				{name: "websocket v4 exec exit code", run: func() (string, error) {
					return sc.stream(t, "ws", remotecommand.StreamOptions{}, "exit", "4")
				}, wantErr: "exit code 4"},
				{name: "spdy exec", run: func() (string, error) {
					return sc.stream(t, "spdy", remotecommand.StreamOptions{}, "echo", "spdy")
				}, want: "echo spdy in default/p1\n|to stderr\n"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got, err := tt.run()
					if tt.wantErr != "" {
						if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
							t.Fatalf("error %v, want one containing %q (output %q)", err, tt.wantErr, got)
						}
						return
					}
					if err != nil {
						t.Fatalf("%v (output %q)", err, got)
					}
					if got != tt.want {
						t.Errorf("output %q, want %q", got, tt.want)
					}
				})
			}
			if remote {
				sc.checkNode(t)
			}
		})
	}
}

// stream runs cmd in p1 with client-go: "ws" offers only websocket
// v4.channel.k8s.io, "spdy" SPDY. It returns stdout|stderr; a non-zero
// exit is an error "exit code N".
func (sc *streamCluster) stream(t *testing.T, kind string, opts remotecommand.StreamOptions, cmd ...string) (string, error) {
	t.Helper()
	var ex remotecommand.Executor
	var err error
	switch kind {
	case "ws":
		ex, err = remotecommand.NewWebSocketExecutorForProtocols(sc.rest, "GET", sc.execURL("p1", cmd...), "v4.channel.k8s.io")
	default:
		u, perr := url.Parse(sc.execURL("p1", cmd...))
		if perr != nil {
			return "", perr
		}
		ex, err = remotecommand.NewSPDYExecutor(sc.rest, "POST", u)
	}
	if err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	opts.Stdout, opts.Stderr = &stdout, &stderr
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err = ex.StreamWithContext(ctx, opts)
	var ee utilexec.CodeExitError
	if errors.As(err, &ee) {
		err = fmt.Errorf("exit code %d", ee.Code)
	}
	return stdout.String() + "|" + stderr.String(), err
}

// checkNode checks the node endpoint: the client's token never reached
// it, it refuses clients without a certificate, and it serves only the
// pods bound to its node.
func (sc *streamCluster) checkNode(t *testing.T) {
	sc.mu.Lock()
	seen := append([]string(nil), sc.nodeAuth...)
	upgrades := strings.Join(sc.nodeUpgrades, ",")
	sc.mu.Unlock()
	// kubectl's websocket v5 exec and tunnelled port-forward arrive as
	// SPDY (translated by the API server); the v4 client's as a websocket.
	for _, want := range []string{"SPDY/3.1", "websocket"} {
		if !strings.Contains(upgrades, want) {
			t.Errorf("no %s upgrade reached the node (saw %q)", want, upgrades)
		}
	}
	if len(seen) == 0 {
		t.Error("no request reached the node endpoint")
	}
	for _, a := range seen {
		if a != "" {
			t.Errorf("the node endpoint received Authorization %q", a)
		}
	}
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sc.nodeCAs}}}
	defer anon.CloseIdleConnections()
	resp, err := anon.Get(sc.nodeURL + NodeStreamPathPrefix + "default/p1/log")
	if err == nil {
		resp.Body.Close()
		t.Errorf("node endpoint answered a client without certificate: %s", resp.Status)
	}

	// With the API server's credentials, straight at the node.
	h := NodeStreamHandler(sc.st, "n1", echoAgent{})
	for _, tt := range []struct {
		path     string
		wantCode int
		wantBody string
	}{
		{"/pods/default/p1/log", 200, "log of default/p1"},
		{"/pods/default/elsewhere/log", 404, `bound to node \"n2\"`},
		{"/pods/default/missing/log", 404, "not found"},
		{"/pods/default/p1", 404, "NotFound"},
		{"/other", 404, "NotFound"},
		{"/pods/default/p1/proxy", 404, "NotFound"},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", tt.path, nil))
		if w.Code != tt.wantCode || !strings.Contains(w.Body.String(), tt.wantBody) {
			t.Errorf("GET %s = %d %q, want %d containing %q", tt.path, w.Code, w.Body.String(), tt.wantCode, tt.wantBody)
		}
	}
}

// countingAgent counts the streams it serves.
type countingAgent struct {
	echoAgent
	mu   sync.Mutex
	logs int
}

func (c *countingAgent) Logs(ctx context.Context, ns, pod, container string, o *corev1.PodLogOptions, out io.Writer) error {
	c.mu.Lock()
	c.logs++
	c.mu.Unlock()
	return c.echoAgent.Logs(ctx, ns, pod, container, o, out)
}

// FuzzNodeStreamHandlerPath checks that the node endpoint's path parser
// only ever hands the agent the one pod that exists on its node, and
// answers every other path with an API error.
func FuzzNodeStreamHandlerPath(f *testing.F) {
	st, err := store.Open(context.Background(), store.Config{})
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	if _, err := store.Create(context.Background(), st, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p1"},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "i"}}},
	}); err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"/pods/default/p1/log", "/pods/default/p1/log/", "/pods//p1/log", "/pods/default/p1", "/pods/../default/p1/log", "/", "", "/pods/default/p2/exec", "/pods/a/b/c/d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		a := &countingAgent{}
		h := NodeStreamHandler(st, "n1", a)
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path = path
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		served := a.logs > 0
		if served != (path == "/pods/default/p1/log") {
			t.Fatalf("path %q: agent served %v (status %d)", path, served, w.Code)
		}
		if !served && w.Code < 400 && !strings.HasPrefix(path, NodeStreamPathPrefix+"default/p1/") {
			t.Fatalf("path %q: status %d without an error", path, w.Code)
		}
	})
}

func TestNodeStreamURL(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}}
	tests := []struct {
		name    string
		node    corev1.Node
		want    string
		wantErr string
	}{
		{name: "published port", node: corev1.Node{Status: corev1.NodeStatus{
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "h"}, {Type: corev1.NodeInternalIP, Address: "10.0.0.5"}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 12345}},
		}}, want: "https://10.0.0.5:12345/pods/ns/p/exec?command=ls&stdout=true"},
		{name: "default port, IPv6", node: corev1.Node{Status: corev1.NodeStatus{
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "fd00::5"}},
		}}, want: "https://[fd00::5]:10250/pods/ns/p/exec?command=ls&stdout=true"},
		{name: "no address", node: corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}}, wantErr: "node n has no InternalIP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := NodeStreamURL(&tt.node, pod, "exec", url.Values{"command": {"ls"}, "stdout": {"true"}})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || u.String() != tt.want {
				t.Fatalf("got %v, %v; want %s", u, err, tt.want)
			}
		})
	}
}
