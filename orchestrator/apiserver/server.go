package apiserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"github.com/tugboatdev/tugboat/orchestrator/serviceaccount"
	"github.com/tugboatdev/tugboat/store"
)

// Defaults of [Config].
const (
	DefaultMaxBodyBytes   = 3 << 20
	DefaultRequestTimeout = 60 * time.Second
	DefaultMaxInFlight    = 400
	DefaultMaxWatches     = 4000
	DefaultWatchTimeout   = 30 * time.Minute
)

// PodStreamer serves the pod subresources that stream from the node a pod
// runs on: log, exec, attach and portforward. The node agent implements it
// (proxying to the agent of pod.Spec.NodeName); without one those
// subresources answer 503 ServiceUnavailable.
type PodStreamer interface {
	// ServePod handles one request for subresource ("log", "exec",
	// "attach", "portforward") of pod. It owns the response, including
	// protocol upgrades (SPDY, websocket).
	ServePod(w http.ResponseWriter, r *http.Request, pod *corev1.Pod, subresource string)
}

// MetricsProvider serves the metrics.k8s.io/v1beta1 API (NodeMetrics and
// PodMetrics, for kubectl top); the node agent feeds it. The server
// authenticates and authorizes requests under /apis/metrics.k8s.io/v1beta1/
// and hands them to it, and lists the group in discovery. Nil leaves the
// group unregistered.
type MetricsProvider interface {
	http.Handler
}

// Config configures a [Server].
type Config struct {
	// Store is the state served. Required.
	Store store.Interface
	// DataDir holds the PKI (DataDir/pki). Required.
	DataDir string
	// Hosts are extra names and addresses for the serving certificate.
	Hosts []string
	// TokenFile is a --token-auth-file CSV; optional.
	TokenFile string
	// Tokens are bearer tokens in addition to TokenFile's.
	Tokens map[string]UserInfo
	// Authenticators are tried after tokens and client certificates
	// (ServiceAccount tokens plug in here).
	Authenticators []Authenticator
	// Authorizer decides what users may do; nil means [AllowAuthenticated].
	Authorizer Authorizer
	// Streamer serves pods/log, exec, attach and portforward; optional.
	Streamer PodStreamer
	// Metrics serves metrics.k8s.io; optional.
	Metrics MetricsProvider
	// Logger receives request errors; nil means slog.Default().
	Logger *slog.Logger
	// MaxBodyBytes limits request bodies (default 3 MiB).
	MaxBodyBytes int64
	// RequestTimeout bounds non-watch requests (default 60s).
	RequestTimeout time.Duration
	// MaxInFlight bounds concurrent non-watch requests (default 400);
	// beyond it requests get 429.
	MaxInFlight int
	// MaxWatches bounds concurrent watches (default 4000).
	MaxWatches int
	// Version is reported at /version; zero means the k8s.io/api version.
	Version version.Info
	// ServiceAccounts issues and verifies ServiceAccount tokens; optional.
	// When set, bearer ServiceAccount tokens authenticate as
	// system:serviceaccount:<ns>:<name>, POST
	// .../serviceaccounts/<name>/token (kubectl create token) is served,
	// and so are /.well-known/openid-configuration and /openid/v1/jwks.
	ServiceAccounts *serviceaccount.Issuer
	// ServiceAccountAdmission turns on kube-apiserver's ServiceAccount
	// admission for new pods (see serviceaccount.Admit): a default
	// serviceAccountName, an existing account required, and the
	// kube-api-access-xxxxx token volume mounted in every container. Off
	// by default; the namespaces then need their "default" account and
	// kube-root-ca.crt (the ServiceAccount and RootCAPublisher
	// reconcilers of orchestrator/controllers keep them).
	ServiceAccountAdmission bool
	// Collectors are extra Prometheus collectors served on /metrics next
	// to the server's own: the store's (store.Store.Collectors), the
	// service proxy's, and so on.
	Collectors []prometheus.Collector
}

// Server is the tugboat API server: Kubernetes REST conventions over a
// [store.Interface].
type Server struct {
	cfg      Config
	st       store.Interface
	reg      *store.Registry
	codecs   *codecs
	pki      *PKI
	authn    Authenticator
	authz    Authorizer
	log      *slog.Logger
	inflight chan struct{}
	watches  chan struct{}
	metrics  *serverMetrics
	disc     *discovery
	openapi  *openAPI
	mux      *http.ServeMux
	printers map[string]printer

	fieldManagers sync.Map // GVK/subresource -> *managedfields.FieldManager
	// blindFieldManagers compare without managedFields (trackPatch).
	blindFieldManagers sync.Map     // GVK/subresource -> *managedfields.FieldManager
	fields             structFields // JSON fields of the patched Go types
	frames             frameCache   // encoded watch frames shared among watchers

	backendOnce sync.Once
	streams     *streamBackend // in-process SPDY side of websocket streams

	mu  sync.Mutex
	srv *http.Server
}

type serverMetrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inflight *prometheus.GaugeVec
}

func newMetrics() *serverMetrics {
	m := &serverMetrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_request_total", Help: "Requests by verb, group, resource and HTTP code.",
		}, []string{"verb", "group", "resource", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "apiserver_request_duration_seconds", Help: "Request latency by verb and resource (watches excluded).",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"verb", "group", "resource"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apiserver_current_inflight_requests", Help: "Requests being served, by kind (readOnly/mutating/watch).",
		}, []string{"request_kind"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.inflight,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// New builds a server: it loads or creates the PKI in cfg.DataDir and
// reads the token file.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("apiserver: Config.Store is required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("apiserver: Config.DataDir is required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.MaxWatches <= 0 {
		cfg.MaxWatches = DefaultMaxWatches
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Authorizer == nil {
		cfg.Authorizer = AllowAuthenticated{}
	}
	if cfg.Version.GitVersion == "" {
		cfg.Version = defaultVersion()
	}
	c, err := newCodecs()
	if err != nil {
		return nil, err
	}
	if err := addHPAConversions(c.scheme); err != nil {
		return nil, err
	}
	pki, err := LoadOrCreatePKI(filepath.Join(cfg.DataDir, "pki"), cfg.Hosts)
	if err != nil {
		return nil, err
	}
	tokens := map[string]UserInfo{}
	if cfg.TokenFile != "" {
		ta, err := LoadTokenFile(cfg.TokenFile)
		if err != nil {
			return nil, err
		}
		for k, v := range ta.tokens {
			tokens[k] = v
		}
	}
	for k, v := range cfg.Tokens {
		tokens[k] = v
	}
	authn := unionAuth{CertAuthenticator{}, NewTokenAuthenticator(tokens)}
	if cfg.ServiceAccounts != nil {
		authn = append(authn, serviceAccountAuthenticator{iss: cfg.ServiceAccounts})
	}
	authn = append(authn, cfg.Authenticators...)
	s := &Server{
		cfg: cfg, st: cfg.Store, reg: cfg.Store.Registry(), codecs: c, pki: pki,
		authn: authn, authz: cfg.Authorizer, log: cfg.Logger,
		inflight: make(chan struct{}, cfg.MaxInFlight),
		watches:  make(chan struct{}, cfg.MaxWatches),
		metrics:  newMetrics(),
	}
	for _, c := range cfg.Collectors {
		if err := s.metrics.reg.Register(c); err != nil {
			return nil, fmt.Errorf("apiserver: metrics collector: %w", err)
		}
	}
	var extra map[schema.GroupVersion][]metav1.APIResource
	if cfg.Metrics != nil {
		extra = map[schema.GroupVersion][]metav1.APIResource{metricsGV: metricsResources()}
	}
	if k2, _ := hpaV1Kind(s.reg); k2 != nil {
		if extra == nil {
			extra = map[schema.GroupVersion][]metav1.APIResource{}
		}
		extra[hpaV1Group] = hpaV1Resources(k2)
	}
	s.disc = newDiscovery(s.reg, extra)
	s.openapi = newOpenAPI(s.reg)
	if _, k1 := hpaV1Kind(s.reg); k1 != nil {
		s.openapi.extra = append(s.openapi.extra, k1)
	}
	s.printers = printers()
	s.mux = s.routes()
	return s, nil
}

func defaultVersion() version.Info {
	return version.Info{
		Major: "1", Minor: "37", GitVersion: "v1.37.2+tugboat", GitCommit: "tugboat",
		GitTreeState: "clean", BuildDate: "2026-01-01T00:00:00Z", GoVersion: goVersion(), Compiler: "gc", Platform: platform(),
	}
}

// PKI returns the server's certificates.
func (s *Server) PKI() *PKI { return s.pki }

// TLSConfig returns the server's TLS configuration: the serving
// certificate, and client certificates verified against the CA when sent.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{s.pki.Serving},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    s.pki.CertPool(),
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}
}

// Handler returns the HTTP handler with authentication, authorization and
// limits applied.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Serve serves TLS on ln until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return fmt.Errorf("apiserver: serve: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		s.closeBackend()
		<-errc
		return nil
	}
}

// userKey is the context key of the authenticated user.
type userKey struct{}

// UserFrom returns the authenticated user of a request context.
func UserFrom(ctx context.Context) *UserInfo {
	u, _ := ctx.Value(userKey{}).(*UserInfo)
	return u
}

func isHealthPath(p string) bool {
	switch p {
	case "/healthz", "/livez", "/readyz", "/version":
		return true
	}
	return strings.HasPrefix(p, "/healthz/") || strings.HasPrefix(p, "/livez/") || strings.HasPrefix(p, "/readyz/")
}

// statusWriter records the response code for metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

// WriteHeader records the code.
func (w *statusWriter) WriteHeader(c int) {
	if w.code == 0 {
		w.code = c
	}
	w.ResponseWriter.WriteHeader(c)
}

// Write records an implicit 200.
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush flushes a streaming response.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (upgrades).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack hands the connection over for protocol upgrades (SPDY and
// websocket streams).
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.code == 0 {
		w.code = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("apiserver: panic serving request", "method", r.Method, "path", r.URL.Path, "panic", p)
			s.writeError(w, r, apierrors.NewInternalError(fmt.Errorf("panic: %v", p)))
		}
	}()
	if !isHealthPath(r.URL.Path) {
		user, ok, err := s.authn.Authenticate(r)
		if !ok {
			msg := "Unauthorized"
			if err != nil {
				s.log.Debug("apiserver: authentication failed", "err", err, "remote", r.RemoteAddr)
			}
			s.writeError(w, r, apierrors.NewUnauthorized(msg))
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), userKey{}, user))
	}
	info := parseRequest(r)
	if !isHealthPath(r.URL.Path) {
		attrs := Attributes{User: UserFrom(r.Context()), Verb: info.verb, Group: info.group, Version: info.version,
			Resource: info.resource, Subresource: info.subresource, Namespace: info.namespace, Name: info.name}
		if !info.resourceRequest {
			attrs.Path = r.URL.Path
			attrs.Verb = strings.ToLower(r.Method)
		}
		ok, reason, err := s.authz.Authorize(r.Context(), attrs)
		if err != nil || !ok {
			if reason == "" && err != nil {
				reason = err.Error()
			}
			s.writeError(w, r, forbidden(attrs, reason))
			return
		}
	}
	sw := &statusWriter{ResponseWriter: w}
	start := time.Now()
	long := info.verb == "watch" || info.subresource == "log" || info.subresource == "exec" ||
		info.subresource == "attach" || info.subresource == "portforward"
	kind := "readOnly"
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		kind = "mutating"
	}
	if long {
		kind = "watch"
	}
	if !isHealthPath(r.URL.Path) {
		sem := s.inflight
		if long {
			sem = s.watches
		}
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
		default:
			w.Header().Set("Retry-After", "1")
			s.writeError(sw, r, apierrors.NewTooManyRequests("too many requests in flight, please try again later", 1))
			s.metrics.requests.WithLabelValues(info.verb, info.group, info.resource, "429").Inc()
			return
		}
	}
	g := s.metrics.inflight.WithLabelValues(kind)
	g.Inc()
	defer g.Dec()
	if !long {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
	}
	if info.resourceRequest && info.group == metricsGV.Group && s.cfg.Metrics != nil {
		s.cfg.Metrics.ServeHTTP(sw, r)
	} else if info.resourceRequest {
		s.serveResource(sw, r, info)
	} else {
		s.mux.ServeHTTP(sw, r)
	}
	code := sw.code
	if code == 0 {
		code = http.StatusOK
	}
	s.metrics.requests.WithLabelValues(info.verb, info.group, info.resource, strconv.Itoa(code)).Inc()
	if !long {
		s.metrics.latency.WithLabelValues(info.verb, info.group, info.resource).Observe(time.Since(start).Seconds())
	}
}

func forbidden(a Attributes, reason string) error {
	user := "system:anonymous"
	if a.User != nil {
		user = a.User.Name
	}
	msg := fmt.Sprintf("User %q cannot %s resource %q in API group %q", user, a.Verb, a.Resource, a.Group)
	if a.Path != "" {
		msg = fmt.Sprintf("User %q cannot %s path %q", user, a.Verb, a.Path)
	}
	if a.Namespace != "" {
		msg += fmt.Sprintf(" in the namespace %q", a.Namespace)
	}
	if reason != "" {
		msg += ": " + reason
	}
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: msg,
		Details: &metav1.StatusDetails{Name: a.Name, Group: a.Group, Kind: a.Resource},
	}}
}

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write([]byte("ok"))
	}
	for _, p := range []string{"/healthz", "/livez", "/readyz"} {
		mux.HandleFunc(p, ok)
		mux.HandleFunc(p+"/", ok)
	}
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) { s.writeJSON(w, http.StatusOK, s.cfg.Version) })
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/api", s.disc.serveAPI(s))
	mux.HandleFunc("/api/", s.disc.serveAPI(s))
	mux.HandleFunc("/apis", s.disc.serveAPIs(s))
	mux.HandleFunc("/apis/", s.disc.serveAPIs(s))
	if s.cfg.ServiceAccounts != nil {
		mux.HandleFunc(serviceaccount.DiscoveryPath, s.serveOpenIDConfiguration)
		mux.HandleFunc(serviceaccount.JWKSURI, s.serveJWKS)
	}
	mux.HandleFunc("/openapi/v2", s.openapi.serveV2(s))
	mux.HandleFunc("/openapi/v3", s.openapi.serveV3Index(s))
	mux.HandleFunc("/openapi/v3/", s.openapi.serveV3(s))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, apierrors.NewGenericServerResponse(http.StatusNotFound, r.Method, schema.GroupResource{}, "", "the server could not find the requested resource", 0, false))
	})
	return mux
}
