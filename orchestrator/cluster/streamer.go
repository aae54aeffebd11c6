package cluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilproxy "k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/tugboatdev/tugboat/orchestrator/agent"
	"github.com/tugboatdev/tugboat/orchestrator/apiserver"
	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/store"
)

// Stream timeouts of exec, attach and port-forward sessions, as the
// kubelet's defaults.
const (
	streamIdleTimeout     = 4 * time.Hour
	streamCreationTimeout = 30 * time.Second
)

// NodeStreamers adapts the node agents' Go-level [agent.PodStreamer] to the
// API server's HTTP-level apiserver.PodStreamer: it picks the agent of the
// pod's node and speaks the kubelet's streaming protocols with
// k8s.io/cri-streaming: plain HTTP for logs; SPDY (v1 to v4) and
// websocket (the channel.k8s.io protocols up to v4.channel.k8s.io, binary
// and base64) for exec and attach; SPDY and websocket (v4.channel.k8s.io,
// the ports named by the "ports" or "port" query parameter) for
// port-forward.
//
// What kubectl sends reaches it as SPDY: kubectl ≥ 1.31 opens exec and
// attach as websocket v5 and port-forward as SPDY tunnelled in a
// websocket, and the API server translates both to SPDY before calling
// ServePod, as kube-apiserver does in front of the kubelet. Older
// websocket clients (v4.channel.k8s.io and before) are passed through
// untranslated and served here.
//
// Pods of nodes without an agent in this process go to the fallback set
// with [NodeStreamers.SetFallback] (for example a [NodeProxy] that
// reaches node agents in other processes), or get 503 Service Unavailable.
type NodeStreamers struct {
	mu       sync.RWMutex
	nodes    map[string]agent.PodStreamer
	fallback apiserver.PodStreamer
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

// SetFallback serves the pods of nodes that have no agent added with Add
// through s (typically a [NodeProxy]); nil removes it.
func (n *NodeStreamers) SetFallback(s apiserver.PodStreamer) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.fallback = s
}

func (n *NodeStreamers) get(node string) (agent.PodStreamer, apiserver.PodStreamer) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.nodes[node], n.fallback
}

// ServePod implements apiserver.PodStreamer.
func (n *NodeStreamers) ServePod(w http.ResponseWriter, r *http.Request, pod *corev1.Pod, subresource string) {
	if pod.Spec.NodeName == "" {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("pod %s is not scheduled to a node yet", pod.Name)))
		return
	}
	s, fallback := n.get(pod.Spec.NodeName)
	if s == nil && fallback != nil {
		fallback.ServePod(w, r, pod, subresource)
		return
	}
	if s == nil {
		writeStatus(w, apierrors.NewServiceUnavailable(fmt.Sprintf("node %s of pod %s has no agent in this process", pod.Spec.NodeName, pod.Name)))
		return
	}
	servePod(w, r, s, pod, subresource)
}

// servePod serves one streaming subresource of pod with the agent s.
func servePod(w http.ResponseWriter, r *http.Request, s agent.PodStreamer, pod *corev1.Pod, subresource string) {
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
		// A websocket port-forward names its ports in the query; SPDY
		// names them per stream.
		r = portQuery(r)
		opts, err := portforward.NewV4Options(r)
		if err != nil {
			writeStatus(w, apierrors.NewBadRequest(err.Error()))
			return
		}
		portforward.ServePortForward(w, r, &streamAdapter{s: s, ns: pod.Namespace}, pod.Name, string(pod.UID),
			opts, streamIdleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
	}
}

// portQuery renames the API's PodPortForwardOptions query parameter
// "ports" to the kubelet's "port", as kube-apiserver does when it proxies
// to the kubelet.
func portQuery(r *http.Request) *http.Request {
	q := r.URL.Query()
	if !q.Has("ports") || q.Has(portforward.PortHeader) {
		return r
	}
	for _, p := range q["ports"] {
		q.Add(portforward.PortHeader, p)
	}
	q.Del("ports")
	r2 := r.Clone(r.Context())
	r2.URL.RawQuery = q.Encode()
	r2.Form = nil
	return r2
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

// NodeStreamPathPrefix starts the paths a node's streaming endpoint
// serves: NodeStreamPathPrefix + "<namespace>/<pod>/<subresource>", with
// the query of the API request (pods/log, exec, attach, portforward).
const NodeStreamPathPrefix = "/pods/"

// DefaultNodeStreamPort is the port of a node's streaming endpoint, the
// kubelet's: the node agent publishes it in its Node's
// status.daemonEndpoints.kubeletEndpoint.
const DefaultNodeStreamPort = 10250

// NodeStreamHandler is a node's streaming endpoint, for node agents that
// run in another process than the API server (in Kubernetes, the
// kubelet's server on port 10250). It serves
// NodeStreamPathPrefix<namespace>/<pod>/<subresource> for the pods that
// st says are bound to node, through the agent s, with the protocols of
// [NodeStreamers]; other pods get 404. The API server reaches it through a
// [NodeProxy].
//
// The handler does not authenticate: serve it over TLS that requires a
// client certificate only the API server holds (tls.RequireAndVerifyClientCert),
// as the kubelet does.
func NodeStreamHandler(st store.Interface, node string, s agent.PodStreamer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, NodeStreamPathPrefix)
		parts := strings.Split(rest, "/")
		if !ok || len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
			writeStatus(w, apierrors.NewNotFound(corev1.Resource("pods"), r.URL.Path))
			return
		}
		pod, err := store.Get[*corev1.Pod](r.Context(), st, parts[0], parts[1])
		if err != nil {
			writeStatus(w, statusFor(err))
			return
		}
		if pod.Spec.NodeName != node {
			writeStatus(w, apierrors.NewNotFound(corev1.Resource("pods"), fmt.Sprintf("%s (bound to node %q, this is %q)", pod.Name, pod.Spec.NodeName, node)))
			return
		}
		servePod(w, r, s, pod, parts[2])
	})
}

// NodeProxy is an apiserver.PodStreamer for pods whose node agent runs in
// another process, usually on another machine: like kube-apiserver in
// front of the kubelet, it proxies the request (plain HTTP for logs, the
// SPDY or websocket upgrade for exec, attach and port-forward) to the
// streaming endpoint of the pod's node ([NodeStreamHandler]) at the
// node's InternalIP and status.daemonEndpoints.kubeletEndpoint port, over
// HTTPS. The client's credentials (Authorization and impersonation
// headers) are not passed on; the proxy authenticates to the node with
// the client certificate of its TLS configuration.
type NodeProxy struct {
	st        store.Interface
	transport *http.Transport
	log       *slog.Logger
}

// NewNodeProxy returns a proxy that reads Nodes from st and dials them
// with tlsConfig (the CA of the nodes' serving certificates in RootCAs,
// the API server's client certificate in Certificates). log may be nil.
func NewNodeProxy(st store.Interface, tlsConfig *tls.Config, log *slog.Logger) *NodeProxy {
	if log == nil {
		log = slog.Default()
	}
	tc := tlsConfig.Clone()
	tc.NextProtos = []string{"http/1.1"} // upgrades need HTTP/1.1
	return &NodeProxy{
		st:  st,
		log: log,
		transport: &http.Transport{
			TLSClientConfig:     tc,
			TLSHandshakeTimeout: 10 * time.Second,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// Close drops the proxy's idle connections to the nodes.
func (p *NodeProxy) Close() { p.transport.CloseIdleConnections() }

// NodeStreamURL returns the location of a pod subresource on the
// streaming endpoint of node: https://<InternalIP>:<kubelet port>/pods/...
func NodeStreamURL(node *corev1.Node, pod *corev1.Pod, subresource string, query url.Values) (*url.URL, error) {
	var ip string
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			ip = a.Address
			break
		}
	}
	if ip == "" {
		return nil, fmt.Errorf("node %s has no InternalIP address", node.Name)
	}
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port == 0 {
		port = DefaultNodeStreamPort
	}
	return &url.URL{
		Scheme:   "https",
		Host:     net.JoinHostPort(ip, strconv.Itoa(port)),
		Path:     NodeStreamPathPrefix + pod.Namespace + "/" + pod.Name + "/" + subresource,
		RawQuery: query.Encode(),
	}, nil
}

// ServePod implements apiserver.PodStreamer.
func (p *NodeProxy) ServePod(w http.ResponseWriter, r *http.Request, pod *corev1.Pod, subresource string) {
	if pod.Spec.NodeName == "" {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("pod %s is not scheduled to a node yet", pod.Name)))
		return
	}
	switch subresource {
	case "log", "exec", "attach", "portforward":
	default:
		writeStatus(w, apierrors.NewNotFound(corev1.Resource("pods/"+subresource), pod.Name))
		return
	}
	node, err := store.Get[*corev1.Node](r.Context(), p.st, "", pod.Spec.NodeName)
	if err != nil {
		writeStatus(w, apierrors.NewServiceUnavailable(fmt.Sprintf("node %s of pod %s: %v", pod.Spec.NodeName, pod.Name, err)))
		return
	}
	loc, err := NodeStreamURL(node, pod, subresource, r.URL.Query())
	if err != nil {
		writeStatus(w, apierrors.NewServiceUnavailable(err.Error()))
		return
	}
	r = r.Clone(r.Context())
	for k := range r.Header {
		if k == "Authorization" || strings.HasPrefix(k, "Impersonate-") {
			r.Header.Del(k)
		}
	}
	h := utilproxy.NewUpgradeAwareHandler(loc, p.transport, false, false, proxyResponder{log: p.log, node: node.Name})
	h.FlushInterval = -1 // logs -f: pass every write on at once
	h.ServeHTTP(unwrap(w), r)
}

// proxyResponder answers errors of the node proxy as API Status errors.
type proxyResponder struct {
	log  *slog.Logger
	node string
}

// Error implements utilproxy.ErrorResponder.
func (p proxyResponder) Error(w http.ResponseWriter, _ *http.Request, err error) {
	p.log.Warn("cluster: node stream proxy", "node", p.node, "err", err)
	writeStatus(w, apierrors.NewServiceUnavailable(fmt.Sprintf("error reaching node %s: %v", p.node, err)))
}
