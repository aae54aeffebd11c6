package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/tugboatdev/tugboat/orchestrator/agent"
	"github.com/tugboatdev/tugboat/runtime"
)

// Stream timeouts of exec, attach and port-forward sessions, as the
// kubelet's defaults.
const (
	streamIdleTimeout     = 4 * time.Hour
	streamCreationTimeout = 30 * time.Second
)

// NodeStreamers adapts the node agents' Go-level [agent.PodStreamer] to the
// API server's HTTP-level apiserver.PodStreamer: it picks the agent of the
// pod's node and speaks the kubelet's streaming protocols (plain HTTP for
// logs, SPDY for exec, attach and port-forward) with
// k8s.io/cri-streaming.
//
// Websocket upgrades are refused with 400 Bad Request, which makes kubectl
// fall back to SPDY.
type NodeStreamers struct {
	mu    sync.RWMutex
	nodes map[string]agent.PodStreamer
}

// NewNodeStreamers returns an empty set; add agents with Add.
func NewNodeStreamers() *NodeStreamers {
	return &NodeStreamers{nodes: map[string]agent.PodStreamer{}}
}

// Add serves the pods of node with s.
func (n *NodeStreamers) Add(node string, s agent.PodStreamer) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nodes[node] = s
}

func (n *NodeStreamers) get(node string) agent.PodStreamer {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.nodes[node]
}

// ServePod implements apiserver.PodStreamer.
func (n *NodeStreamers) ServePod(w http.ResponseWriter, r *http.Request, pod *corev1.Pod, subresource string) {
	if pod.Spec.NodeName == "" {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("pod %s is not scheduled to a node yet", pod.Name)))
		return
	}
	s := n.get(pod.Spec.NodeName)
	if s == nil {
		writeStatus(w, apierrors.NewServiceUnavailable(fmt.Sprintf("node %s of pod %s has no agent in this process", pod.Spec.NodeName, pod.Name)))
		return
	}
	q := r.URL.Query()
	switch subresource {
	case "log":
		serveLog(w, r, s, pod)
		return
	case "exec", "attach", "portforward":
	default:
		writeStatus(w, apierrors.NewNotFound(corev1.Resource("pods/"+subresource), pod.Name))
		return
	}
	if isWebSocket(r) {
		writeStatus(w, apierrors.NewBadRequest("websocket streaming is not supported by this node; use SPDY"))
		return
	}
	w = unwrap(w)
	switch subresource {
	case "exec", "attach":
		opts := &remotecommand.Options{
			Stdin:  boolParam(q.Get("stdin")),
			Stdout: boolParam(q.Get("stdout")),
			Stderr: boolParam(q.Get("stderr")),
			TTY:    boolParam(q.Get("tty")),
		}
		if opts.TTY {
			opts.Stderr = false
		}
		if !opts.Stdin && !opts.Stdout && !opts.Stderr {
			writeStatus(w, apierrors.NewBadRequest("you must specify at least 1 of stdin, stdout, stderr"))
			return
		}
		ad := &streamAdapter{s: s, ns: pod.Namespace}
		container := q.Get("container")
		if subresource == "exec" {
			cmd := q["command"]
			if len(cmd) == 0 {
				writeStatus(w, apierrors.NewBadRequest("you must specify a command"))
				return
			}
			remotecommand.ServeExec(w, r, ad, pod.Name, string(pod.UID), container, cmd, opts,
				streamIdleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
			return
		}
		remotecommand.ServeAttach(w, r, ad, pod.Name, string(pod.UID), container, opts,
			streamIdleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
	case "portforward":
		portforward.ServePortForward(w, r, &streamAdapter{s: s, ns: pod.Namespace}, pod.Name, string(pod.UID),
			&portforward.V4Options{}, streamIdleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
	}
}

// streamAdapter turns cri-streaming's callbacks into agent calls for the
// pods of one namespace.
type streamAdapter struct {
	s  agent.PodStreamer
	ns string
}

// ExecInContainer implements remotecommand.Executor.
func (a *streamAdapter) ExecInContainer(ctx context.Context, name, _, container string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	opts := runtime.ExecOptions{Cmd: cmd, TTY: tty, Resize: agent.TerminalSizes(ctx, resize)}
	setStreams(&opts.Stdin, &opts.Stdout, &opts.Stderr, in, out, errw)
	code, err := a.s.Exec(ctx, a.ns, name, container, opts)
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with non-zero exit code %d", code), Code: code}
	}
	return nil
}

// AttachContainer implements remotecommand.Attacher.
func (a *streamAdapter) AttachContainer(ctx context.Context, name, _, container string, in io.Reader, out, errw io.WriteCloser, _ bool, resize <-chan remotecommand.TerminalSize) error {
	opts := runtime.AttachOptions{Resize: agent.TerminalSizes(ctx, resize)}
	setStreams(&opts.Stdin, &opts.Stdout, &opts.Stderr, in, out, errw)
	return a.s.Attach(ctx, a.ns, name, container, opts)
}

// PortForward implements portforward.PortForwarder.
func (a *streamAdapter) PortForward(ctx context.Context, name, _ string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	return a.s.PortForward(ctx, a.ns, name, port, stream)
}

// setStreams copies the streams that are really there: a nil stream must
// stay a nil interface, not an interface holding a nil pointer.
func setStreams(stdin *io.Reader, stdout, stderr *io.Writer, in io.Reader, out, errw io.WriteCloser) {
	if in != nil {
		*stdin = in
	}
	if out != nil {
		*stdout = out
	}
	if errw != nil {
		*stderr = errw
	}
}

// serveLog streams a container log as text/plain, flushing every write so
// that `kubectl logs -f` sees lines as they come.
func serveLog(w http.ResponseWriter, r *http.Request, s agent.PodStreamer, pod *corev1.Pod) {
	opts, err := logOptions(r)
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	fw := &flushWriter{w: w}
	err = s.Logs(r.Context(), pod.Namespace, pod.Name, opts.Container, opts, fw)
	if err != nil && !fw.started {
		writeStatus(w, statusFor(err))
	}
}

// logOptions reads the query parameters of pods/log.
func logOptions(r *http.Request) (*corev1.PodLogOptions, error) {
	q := r.URL.Query()
	o := &corev1.PodLogOptions{
		Container:  q.Get("container"),
		Follow:     boolParam(q.Get("follow")),
		Previous:   boolParam(q.Get("previous")),
		Timestamps: boolParam(q.Get("timestamps")),
	}
	intParam := func(name string) (*int64, error) {
		v := q.Get(name)
		if v == "" {
			return nil, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid %s %q: %w", name, v, err)
		}
		return &n, nil
	}
	var err error
	if o.TailLines, err = intParam("tailLines"); err != nil {
		return nil, err
	}
	if o.LimitBytes, err = intParam("limitBytes"); err != nil {
		return nil, err
	}
	if o.SinceSeconds, err = intParam("sinceSeconds"); err != nil {
		return nil, err
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, fmt.Errorf("invalid sinceTime %q: %w", v, err)
		}
		mt := metav1.NewTime(t)
		o.SinceTime = &mt
	}
	return o, nil
}

// flushWriter writes the response header on the first write and flushes
// after each.
type flushWriter struct {
	w       http.ResponseWriter
	started bool
	mu      sync.Mutex
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.started {
		f.started = true
		f.w.Header().Set("Content-Type", "text/plain")
		f.w.WriteHeader(http.StatusOK)
	}
	n, err := f.w.Write(p)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}

// statusFor maps runtime errors to API errors.
func statusFor(err error) *apierrors.StatusError {
	var se *apierrors.StatusError
	switch {
	case errors.As(err, &se):
		return se
	case errors.Is(err, runtime.ErrNotFound):
		return apierrors.NewNotFound(corev1.Resource("pods"), err.Error())
	case errors.Is(err, runtime.ErrInvalid):
		return apierrors.NewBadRequest(err.Error())
	default:
		return apierrors.NewInternalError(err)
	}
}

// writeStatus writes err as a metav1.Status.
func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	st := err.Status()
	st.Kind, st.APIVersion = "Status", "v1"
	w.Header().Set("Content-Type", "application/json")
	code := int(st.Code)
	if code == 0 {
		code = http.StatusInternalServerError
	}
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(&st)
}

func boolParam(v string) bool {
	b, _ := strconv.ParseBool(v)
	return b || v == "1"
}

func isWebSocket(r *http.Request) bool {
	for _, v := range r.Header.Values("Upgrade") {
		if strings.EqualFold(strings.TrimSpace(v), "websocket") {
			return true
		}
	}
	return false
}

// unwrap returns the innermost ResponseWriter, which can hijack the
// connection for SPDY.
func unwrap(w http.ResponseWriter) http.ResponseWriter {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		inner := u.Unwrap()
		if inner == w {
			return w
		}
		w = inner
	}
}
