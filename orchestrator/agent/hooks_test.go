package agent

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tugboatdev/tugboat/store"
)

func TestHTTPLifecycleHooks(t *testing.T) {
	var mu sync.Mutex
	var hits []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits = append(hits, r.URL.Path)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	hook := func(path string) *corev1.LifecycleHandler {
		return &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Host: "127.0.0.1", Port: intstr.Parse(port), Path: path}}
	}
	e := newEnv(t, envOpts{})
	p := simplePod("hooks", corev1.Container{Name: "app", Image: "app:1", Lifecycle: &corev1.Lifecycle{PostStart: hook("/started"), PreStop: hook("/stopping")}})
	p.Spec.TerminationGracePeriodSeconds = ptr(int64(30)) // graceful: the agent finishes the deletion
	e.createPod(p)
	e.waitStatus("default", "hooks", "Running")
	if err := store.Delete[*corev1.Pod](e.ctx, e.s, "default", "hooks", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitGone("default", "hooks")
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"/started", "/stopping"}, hits); diff != "" {
		t.Errorf("hook requests (-want +got):\n%s", diff)
	}
}

func TestFailedPostStartHookRestarts(t *testing.T) {
	e := newEnv(t, envOpts{exec: func(_ string, cmd []string, out io.Writer) int32 {
		io.WriteString(out, "no config")
		return 1
	}})
	p := simplePod("poststart", corev1.Container{Name: "app", Image: "app:1", Lifecycle: &corev1.Lifecycle{
		PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"setup"}}}}})
	e.createPod(p)
	msgs := e.waitEvent("poststart", "FailedPostStartHook")
	if !strings.Contains(msgs[0], "Exec lifecycle hook ([setup]) for Container \"app\"") || !strings.Contains(msgs[0], "no config") {
		t.Errorf("event = %q", msgs[0])
	}
	e.waitPod("default", "poststart", "a restart", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1
	})
}
