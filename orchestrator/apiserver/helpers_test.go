package apiserver

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/store"
)

// testServer is an API server on an ephemeral 127.0.0.1 port over an
// in-memory store.
type testServer struct {
	srv        *Server
	st         *store.Store
	url        string
	dir        string
	kubeconfig string
	rest       *rest.Config
	// kubectlPath is the kubectl binary kubectl runs (default: the one
	// on $PATH).
	kubectlPath string
}

func startServer(t testing.TB, mutate ...func(*Config)) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := Config{Store: st, DataDir: dir, Tokens: map[string]UserInfo{"test-token": {Name: "tester", Groups: []string{"system:masters"}}}}
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	ts := &testServer{srv: srv, st: st, url: "https://" + ln.Addr().String(), dir: dir}
	ts.kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := srv.PKI().WriteKubeconfig(ts.kubeconfig, ts.url, KubeconfigOptions{}); err != nil {
		t.Fatal(err)
	}
	ts.rest, err = clientcmd.BuildConfigFromFlags("", ts.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ts.rest.QPS, ts.rest.Burst = 1000, 2000
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
		_ = st.Close()
	})
	return ts
}

// kubectl runs /usr/bin/kubectl against the server and returns its
// combined output.
func (ts *testServer) kubectl(t testing.TB, stdin string, args ...string) (string, error) {
	t.Helper()
	testenv.NeedCommand(t, "kubectl")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bin := ts.kubectlPath
	if bin == "" {
		bin = "kubectl"
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", ts.kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+ts.dir, "KUBECACHEDIR="+filepath.Join(ts.dir, "cache"))
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (ts *testServer) mustKubectl(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	out, err := ts.kubectl(t, stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}
