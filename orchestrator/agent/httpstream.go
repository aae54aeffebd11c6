package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/tugboatdev/tugboat/runtime"
)

// Timeouts of streaming sessions, as the kubelet's defaults.
const (
	streamIdleTimeout     = 4 * time.Hour
	streamCreationTimeout = 30 * time.Second
)

// ServePod serves one pod subresource request — "log", "exec", "attach"
// or "portforward" — over HTTP, with the protocols kubectl speaks (SPDY and
// websocket upgrades for exec, attach and port-forward). The API server
// calls it for pods on this node.
func (a *Agent) ServePod(w http.ResponseWriter, r *http.Request, pod *corev1.Pod, subresource string) {
	q := r.URL.Query()
	if subresource != "log" {
		w = hijackable(w)
	}
	switch subresource {
	case "log":
		opts, err := parseLogOptions(q.Get, q.Has)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		out := io.Writer(w)
		if f, ok := w.(http.Flusher); ok && opts.Follow {
			out = &flushWriter{w: w, f: f}
		}
		if err := a.Logs(r.Context(), pod.Namespace, pod.Name, q.Get("container"), opts, out); err != nil {
			writeStreamError(w, err)
		}
	case "exec":
		r = kubeletParams(r)
		opts, err := remotecommand.NewOptions(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		remotecommand.ServeExec(w, r, streamAdapter{a, pod.Namespace}, pod.Name, string(pod.UID), q.Get("container"), q["command"], opts,
			streamIdleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
	case "attach":
		r = kubeletParams(r)
		opts, err := remotecommand.NewOptions(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		remotecommand.ServeAttach(w, r, streamAdapter{a, pod.Namespace}, pod.Name, string(pod.UID), q.Get("container"), opts,
			streamIdleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
	case "portforward":
		opts, err := portforward.NewV4Options(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		portforward.ServePortForward(w, r, streamAdapter{a, pod.Namespace}, pod.Name, string(pod.UID), opts,
			streamIdleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
	default:
		http.Error(w, fmt.Sprintf("unknown pod subresource %q", subresource), http.StatusNotFound)
	}
}

// hijackable unwraps middleware ResponseWriters (those with an Unwrap
// method, as http.ResponseController follows) down to one that can be
// hijacked: the SPDY and websocket upgraders assert http.Hijacker directly.
func hijackable(w http.ResponseWriter) http.ResponseWriter {
	for cur := w; ; {
		if _, ok := cur.(http.Hijacker); ok {
			return cur
		}
		u, ok := cur.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		cur = u.Unwrap()
	}
}

// kubeletParams renames the API's PodExecOptions/PodAttachOptions query
// parameters (stdin, stdout, stderr) to the kubelet streaming names
// (input, output, error) the protocol servers read.
func kubeletParams(r *http.Request) *http.Request {
	q := r.URL.Query()
	for api, kubelet := range map[string]string{"stdin": "input", "stdout": "output", "stderr": "error", "tty": "tty"} {
		v := q.Get(api)
		if kubelet != api && q.Has(kubelet) {
			continue
		}
		// client-go encodes booleans as "true"; the servers want "1".
		if b, err := strconv.ParseBool(v); err == nil && b {
			q.Set(kubelet, "1")
		}
	}
	r2 := r.Clone(r.Context())
	r2.URL.RawQuery = q.Encode()
	r2.Form = nil
	return r2
}

func writeStreamError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, runtime.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, runtime.ErrInvalid):
		code = http.StatusBadRequest
	}
	http.Error(w, err.Error(), code)
}

// parseLogOptions reads the query parameters of pods/log.
func parseLogOptions(get func(string) string, has func(string) bool) (*corev1.PodLogOptions, error) {
	o := &corev1.PodLogOptions{Container: get("container")}
	boolean := func(name string) (bool, error) {
		if !has(name) {
			return false, nil
		}
		v := get(name)
		if v == "" {
			return true, nil
		}
		return strconv.ParseBool(v)
	}
	integer := func(name string) (*int64, error) {
		if !has(name) {
			return nil, nil
		}
		v, err := strconv.ParseInt(get(name), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid %s: %w", name, err)
		}
		return &v, nil
	}
	var err error
	if o.Follow, err = boolean("follow"); err != nil {
		return nil, err
	}
	if o.Previous, err = boolean("previous"); err != nil {
		return nil, err
	}
	if o.Timestamps, err = boolean("timestamps"); err != nil {
		return nil, err
	}
	if o.TailLines, err = integer("tailLines"); err != nil {
		return nil, err
	}
	if o.LimitBytes, err = integer("limitBytes"); err != nil {
		return nil, err
	}
	if o.SinceSeconds, err = integer("sinceSeconds"); err != nil {
		return nil, err
	}
	if has("sinceTime") {
		t, err := time.Parse(time.RFC3339, get("sinceTime"))
		if err != nil {
			return nil, fmt.Errorf("invalid sinceTime: %w", err)
		}
		mt := metav1.NewTime(t)
		o.SinceTime = &mt
	}
	if (o.TailLines != nil && *o.TailLines < 0) || (o.LimitBytes != nil && *o.LimitBytes < 1) || (o.SinceSeconds != nil && *o.SinceSeconds < 1) {
		return nil, errors.New("tailLines must be >= 0, limitBytes and sinceSeconds >= 1")
	}
	return o, nil
}

type flushWriter struct {
	mu sync.Mutex
	w  io.Writer
	f  http.Flusher
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.w.Write(p)
	f.f.Flush()
	return n, err
}

// streamAdapter connects the kubelet streaming protocol servers to the
// agent.
type streamAdapter struct {
	a         *Agent
	namespace string
}

// exitError reports a non-zero exit of an exec'd command to the streaming
// server (it implements k8s.io/utils/exec.ExitError).
type exitError struct{ code int }

func (e exitError) Error() string   { return fmt.Sprintf("command terminated with exit code %d", e.code) }
func (e exitError) String() string  { return e.Error() }
func (e exitError) Exited() bool    { return true }
func (e exitError) ExitStatus() int { return e.code }

// TerminalSizes converts the terminal size events of a streaming session to
// the runtime's, until in closes or ctx ends; nil in gives nil.
func TerminalSizes(ctx context.Context, in <-chan remotecommand.TerminalSize) <-chan runtime.TerminalSize {
	if in == nil {
		return nil
	}
	out := make(chan runtime.TerminalSize)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case s, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- runtime.TerminalSize{Width: s.Width, Height: s.Height}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

func nilIfNil(w io.WriteCloser) io.Writer {
	if w == nil {
		return nil
	}
	return w
}

func (s streamAdapter) ExecInContainer(ctx context.Context, name, _ string, container string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	code, err := s.a.Exec(ctx, s.namespace, name, container, runtime.ExecOptions{Cmd: cmd, Stdin: in, Stdout: nilIfNil(out), Stderr: nilIfNil(errw), TTY: tty, Resize: TerminalSizes(ctx, resize)})
	if err != nil {
		return err
	}
	if code != 0 {
		return exitError{code}
	}
	return nil
}

func (s streamAdapter) AttachContainer(ctx context.Context, name, _ string, container string, in io.Reader, out, errw io.WriteCloser, _ bool, resize <-chan remotecommand.TerminalSize) error {
	return s.a.Attach(ctx, s.namespace, name, container, runtime.AttachOptions{Stdin: in, Stdout: nilIfNil(out), Stderr: nilIfNil(errw), Resize: TerminalSizes(ctx, resize)})
}

func (s streamAdapter) PortForward(ctx context.Context, name, _ string, port int32, stream io.ReadWriteCloser) error {
	return s.a.PortForward(ctx, s.namespace, name, port, stream)
}

// Nodes routes pod subresource requests to the agent of the pod's node,
// for an API server that embeds several agents (one per node).
type Nodes struct {
	mu     sync.RWMutex
	agents map[string]*Agent
}

// Add registers an agent under its node name.
func (n *Nodes) Add(a *Agent) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.agents == nil {
		n.agents = map[string]*Agent{}
	}
	n.agents[a.NodeName()] = a
}

// Agent returns the agent of a node, or nil.
func (n *Nodes) Agent(node string) *Agent {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.agents[node]
}

// ServePod serves a pod subresource through the agent of pod.Spec.NodeName.
func (n *Nodes) ServePod(w http.ResponseWriter, r *http.Request, pod *corev1.Pod, subresource string) {
	a := n.Agent(pod.Spec.NodeName)
	if a == nil {
		http.Error(w, fmt.Sprintf("pod %s/%s is not running on a node this server reaches (node %q)", pod.Namespace, pod.Name, pod.Spec.NodeName), http.StatusServiceUnavailable)
		return
	}
	a.ServePod(w, r, pod, subresource)
}

// ListPodMetrics returns the usage of every pod on every registered node.
func (n *Nodes) ListPodMetrics(ctx context.Context) ([]PodUsage, error) {
	n.mu.RLock()
	agents := make([]*Agent, 0, len(n.agents))
	for _, a := range n.agents {
		agents = append(agents, a)
	}
	n.mu.RUnlock()
	var out []PodUsage
	for _, a := range agents {
		u, err := a.ListPodMetrics(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, u...)
	}
	return out, nil
}

// ListNodeMetrics returns the usage of every registered node.
func (n *Nodes) ListNodeMetrics(ctx context.Context) ([]NodeUsage, error) {
	n.mu.RLock()
	agents := make([]*Agent, 0, len(n.agents))
	for _, a := range n.agents {
		agents = append(agents, a)
	}
	n.mu.RUnlock()
	var out []NodeUsage
	for _, a := range agents {
		u, err := a.NodeMetrics(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, *u)
	}
	return out, nil
}
