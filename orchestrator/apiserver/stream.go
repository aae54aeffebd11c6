package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	portforwardconst "k8s.io/apimachinery/pkg/util/portforward"
	utilproxy "k8s.io/apimachinery/pkg/util/proxy"
	constants "k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/apiserver/pkg/util/proxy"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// The websocket side of pods/exec, attach and portforward.
//
// kubectl ≥ 1.31 and client-go's websocket executor open exec and attach
// as a websocket with the v5.channel.k8s.io subprotocol, and port-forward
// as SPDY tunnelled through a websocket (SPDY/3.1+portforward.k8s.io).
// The node side ([PodStreamer]) speaks SPDY, as the kubelet does. The
// server bridges the two as kube-apiserver does, with its stream
// translator and tunnelling handler (k8s.io/apiserver/pkg/util/proxy):
// the SPDY side is an in-process HTTP connection (a [net.Pipe]) to a
// private http.Server that hands requests to the PodStreamer. No socket is
// opened.

// streamBackendHost is the host of the in-process SPDY backend's URLs. The
// transport dials every address to the in-process pipe; the loopback
// address only guarantees that nothing could leave the machine if it did
// not.
const streamBackendHost = "127.0.0.1:1"

// pipeListener is a net.Listener whose connections are [net.Pipe] ends
// handed over by Dial.
type pipeListener struct {
	conns  chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept implements net.Listener.
func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (l *pipeListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

// Addr implements net.Listener.
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// DialContext connects to the listener.
func (l *pipeListener) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		_ = client.Close()
		_ = server.Close()
		return nil, net.ErrClosed
	case <-ctx.Done():
		_ = client.Close()
		_ = server.Close()
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "apiserver-stream-backend" }

// streamBackend is the in-process SPDY side of websocket streams.
type streamBackend struct {
	ln        *pipeListener
	srv       *http.Server
	transport *http.Transport
}

// backend starts the in-process backend on first use.
func (s *Server) backend() *streamBackend {
	s.backendOnce.Do(func() {
		ln := newPipeListener()
		b := &streamBackend{ln: ln}
		b.srv = &http.Server{
			Handler:           http.HandlerFunc(s.serveBackend),
			ReadHeaderTimeout: 10 * time.Second,
		}
		b.transport = &http.Transport{DialContext: ln.DialContext, DisableKeepAlives: true}
		go func() { _ = b.srv.Serve(ln) }()
		s.streams = b
	})
	return s.streams
}

// closeBackend stops the in-process backend and its hijacked streams'
// server side.
func (s *Server) closeBackend() {
	s.backendOnce.Do(func() {}) // no backend may start after this
	if s.streams != nil {
		_ = s.streams.srv.Close()
		s.streams.transport.CloseIdleConnections()
	}
}

// serveBackend serves the in-process SPDY requests:
// /<namespace>/<pod>/<subresource>?<the client's query>.
func (s *Server) serveBackend(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(parts) != 3 {
		http.Error(w, "bad stream backend path", http.StatusNotFound)
		return
	}
	obj, err := s.st.Get(r.Context(), schema.GroupResource{Resource: "pods"}, parts[0], parts[1], metav1.GetOptions{})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.cfg.Streamer.ServePod(w, r, obj.(*corev1.Pod), parts[2])
}

// backendURL is the in-process location of a pod's streaming subresource.
func backendURL(pod *corev1.Pod, subresource string, query url.Values) *url.URL {
	return &url.URL{
		Scheme:   "http",
		Host:     streamBackendHost,
		Path:     "/" + pod.Namespace + "/" + pod.Name + "/" + subresource,
		RawQuery: query.Encode(),
	}
}

// isV5Exec reports whether r asks for exec or attach over a websocket
// with the v5.channel.k8s.io subprotocol, which the translator serves.
func isV5Exec(r *http.Request) bool {
	if !wsstream.IsWebSocketRequest(r) {
		return false
	}
	for _, p := range wsProtocols(r) {
		if p == constants.StreamProtocolV5Name {
			return true
		}
	}
	return false
}

// isTunneledPortForward reports whether r asks for port-forward as SPDY
// tunnelled through a websocket.
func isTunneledPortForward(r *http.Request) bool {
	if !wsstream.IsWebSocketRequest(r) {
		return false
	}
	for _, p := range wsProtocols(r) {
		if strings.HasPrefix(p, portforwardconst.WebsocketsSPDYTunnelingPrefix) {
			return true
		}
	}
	return false
}

func wsProtocols(r *http.Request) []string {
	var out []string
	for _, v := range r.Header.Values("Sec-Websocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// serveWebsocketStream bridges a websocket exec, attach or port-forward
// request to the PodStreamer's SPDY. It reports false when r is not a
// websocket request it serves (the PodStreamer then answers it).
func (s *Server) serveWebsocketStream(w http.ResponseWriter, r *http.Request, pod *corev1.Pod, subresource string) bool {
	q := r.URL.Query()
	switch {
	case (subresource == "exec" || subresource == "attach") && isV5Exec(r):
		opts := proxy.Options{
			Stdin:  boolQuery(q.Get("stdin")),
			Stdout: boolQuery(q.Get("stdout")),
			Stderr: boolQuery(q.Get("stderr")),
			Tty:    boolQuery(q.Get("tty")),
		}
		if !opts.Stdin && !opts.Stdout && !opts.Stderr {
			s.writeError(w, r, apierrors.NewBadRequest("you must specify at least 1 of stdin, stdout, stderr"))
			return true
		}
		if subresource == "exec" && len(q["command"]) == 0 {
			s.writeError(w, r, apierrors.NewBadRequest("you must specify a command"))
			return true
		}
		b := s.backend()
		proxy.NewStreamTranslatorHandler(backendURL(pod, subresource, q), b.transport, 0, opts).ServeHTTP(w, r)
		return true
	case subresource == "portforward" && isTunneledPortForward(r):
		b := s.backend()
		upgrade := utilproxy.NewUpgradeAwareHandler(backendURL(pod, subresource, q), b.transport, false, true, &streamResponder{s: s})
		upgrade.UseRequestLocation = false
		proxy.NewTunnelingHandler(upgrade).ServeHTTP(w, r)
		return true
	}
	return false
}

// streamResponder reports backend errors of the upgrade proxy.
type streamResponder struct{ s *Server }

// Error implements utilproxy.ErrorResponder.
func (p *streamResponder) Error(w http.ResponseWriter, r *http.Request, err error) {
	p.s.log.Debug("apiserver: stream backend", "err", err)
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		p.s.writeError(w, r, err)
		return
	}
	p.s.writeError(w, r, apierrors.NewInternalError(fmt.Errorf("stream backend: %w", err)))
}

func boolQuery(v string) bool { return v == "1" || strings.EqualFold(v, "true") }
