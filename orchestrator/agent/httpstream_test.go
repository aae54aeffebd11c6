package agent

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	clientremote "k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/simulated"
	"github.com/tugboatdev/tugboat/store"
)

// TestServePodHTTP drives pods/log and pods/exec over HTTP as kubectl does
// (exec through client-go's SPDY executor).
func TestServePodHTTP(t *testing.T) {
	e := newEnv(t, envOpts{
		script: func(*runtime.PodSandboxConfig, *runtime.ContainerConfig) simulated.Behavior {
			return simulated.Behavior{Output: []string{"a", "b", "c"}}
		},
		exec: func(_ string, cmd []string, out io.Writer) int32 {
			io.WriteString(out, strings.Join(cmd, " ")+"\n")
			return 7
		},
	})
	e.createPod(simplePod("web"))
	e.waitStatus("default", "web", "Running")
	var nodes Nodes
	nodes.Add(e.agent)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// /api/v1/namespaces/{ns}/pods/{name}/{sub}
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		pod, err := store.Get[*corev1.Pod](r.Context(), e.s, parts[3], parts[5])
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		nodes.ServePod(w, r, pod, parts[6])
	}))
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + "/api/v1/namespaces/default/pods/web/log?tailLines=2&container=app")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "b\nc\n" {
		t.Errorf("log: %d %q", resp.StatusCode, body)
	}
	resp, _ = http.Get(srv.URL + "/api/v1/namespaces/default/pods/web/log?tailLines=x")
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad tailLines: %d", resp.StatusCode)
	}

	u, _ := url.Parse(srv.URL + "/api/v1/namespaces/default/pods/web/exec?container=app&command=echo&command=hi&stdout=true&stderr=true")
	ex, err := clientremote.NewSPDYExecutor(&rest.Config{Host: srv.URL}, "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err = ex.StreamWithContext(context.Background(), clientremote.StreamOptions{Stdout: &stdout, Stderr: &stderr})
	var exitErr utilexec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitStatus() != 7 {
		t.Errorf("exec error = %v, want exit code 7", err)
	}
	if diff := cmp.Diff("echo hi\n", stdout.String()); diff != "" {
		t.Errorf("exec stdout (-want +got):\n%s", diff)
	}
}

func TestParseLogOptions(t *testing.T) {
	q, _ := url.ParseQuery("container=app&follow=true&previous&tailLines=10&limitBytes=100&sinceSeconds=5&timestamps=1")
	o, err := parseLogOptions(q.Get, q.Has)
	if err != nil {
		t.Fatal(err)
	}
	if o.Container != "app" || !o.Follow || !o.Previous || !o.Timestamps || *o.TailLines != 10 || *o.LimitBytes != 100 || *o.SinceSeconds != 5 {
		t.Errorf("options %+v", o)
	}
	for _, bad := range []string{"tailLines=-1", "limitBytes=0", "sinceTime=yesterday", "follow=maybe"} {
		q, _ := url.ParseQuery(bad)
		if _, err := parseLogOptions(q.Get, q.Has); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func FuzzParseLogOptions(f *testing.F) {
	f.Add("tailLines=3&follow=true")
	f.Add("sinceTime=2026-01-01T00:00:00Z&limitBytes=9")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		o, err := parseLogOptions(q.Get, q.Has)
		if err != nil {
			return
		}
		if o.TailLines != nil && *o.TailLines < 0 {
			t.Fatalf("negative tailLines accepted from %q", raw)
		}
	})
}
