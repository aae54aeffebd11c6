package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tugboatdev/tugboat/orchestrator/agent"
	"github.com/tugboatdev/tugboat/orchestrator/controllers"
	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/store"
)

// metricsPrefix is the path of the metrics.k8s.io API the handler serves.
const metricsPrefix = "/apis/metrics.k8s.io/v1beta1/"

// NodeMetrics serves the metrics.k8s.io/v1beta1 API (NodeMetrics and
// PodMetrics, what `kubectl top` reads) from the node agents' usage
// figures; it is the API server's MetricsProvider. Pods' labels for
// labelSelector come from the store.
type NodeMetrics struct {
	st    store.Interface
	mu    sync.RWMutex
	nodes map[string]agent.MetricsProvider
}

// NewNodeMetrics returns a handler over st; add agents with Add.
func NewNodeMetrics(st store.Interface) *NodeMetrics {
	return &NodeMetrics{st: st, nodes: map[string]agent.MetricsProvider{}}
}

// Add serves the usage of node from m.
func (n *NodeMetrics) Add(node string, m agent.MetricsProvider) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nodes[node] = m
}

func (n *NodeMetrics) snapshot() map[string]agent.MetricsProvider {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make(map[string]agent.MetricsProvider, len(n.nodes))
	for k, v := range n.nodes {
		out[k] = v
	}
	return out
}

// metricsObject is the JSON form of NodeMetrics and PodMetrics.
type metricsObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Timestamp         metav1.Time         `json:"timestamp"`
	Window            metav1.Duration     `json:"window"`
	Usage             corev1.ResourceList `json:"usage,omitempty"`
	Containers        *[]containerMetrics `json:"containers,omitempty"`
}

type containerMetrics struct {
	Name  string              `json:"name"`
	Usage corev1.ResourceList `json:"usage"`
}

type metricsList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata"`
	Items           []metricsObject `json:"items"`
}

func usage(nanoCores, memBytes uint64) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewScaledQuantity(int64(nanoCores), resource.Nano),
		corev1.ResourceMemory: *resource.NewQuantity(int64(memBytes), resource.BinarySI),
	}
}

// ServeHTTP implements apiserver.MetricsProvider.
func (n *NodeMetrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeStatus(w, apierrors.NewMethodNotSupported(corev1.Resource("metrics"), r.Method))
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, metricsPrefix)
	if !ok {
		writeStatus(w, apierrors.NewNotFound(corev1.Resource("metrics"), r.URL.Path))
		return
	}
	sel, err := labels.Parse(r.URL.Query().Get("labelSelector"))
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	var out any
	switch {
	case parts[0] == "nodes" && len(parts) <= 2:
		name := ""
		if len(parts) == 2 {
			name = parts[1]
		}
		out, err = n.nodeMetrics(r.Context(), name, sel)
	case parts[0] == "pods" && len(parts) == 1:
		out, err = n.podMetrics(r.Context(), "", "", sel)
	case parts[0] == "namespaces" && len(parts) >= 3 && len(parts) <= 4 && parts[2] == "pods":
		name := ""
		if len(parts) == 4 {
			name = parts[3]
		}
		out, err = n.podMetrics(r.Context(), parts[1], name, sel)
	default:
		err = apierrors.NewNotFound(corev1.Resource("metrics"), rest)
	}
	if err != nil {
		writeStatus(w, statusFor(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// metricsAPIVersion is the apiVersion of the objects served.
const metricsAPIVersion = "metrics.k8s.io/v1beta1"

func (n *NodeMetrics) nodeMetrics(ctx context.Context, name string, sel labels.Selector) (any, error) {
	var items []metricsObject
	nodes := n.snapshot()
	names := make([]string, 0, len(nodes))
	for k := range nodes {
		if name == "" || k == name {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		if !sel.Empty() {
			node, err := store.Get[*corev1.Node](ctx, n.st, "", k)
			if err != nil || !sel.Matches(labels.Set(node.Labels)) {
				continue
			}
		}
		u, err := nodes[k].NodeMetrics(ctx)
		if err != nil {
			return nil, err
		}
		items = append(items, metricsObject{
			TypeMeta:   metav1.TypeMeta{Kind: "NodeMetrics", APIVersion: metricsAPIVersion},
			ObjectMeta: metav1.ObjectMeta{Name: k, CreationTimestamp: metav1.Now()},
			Timestamp:  metav1.NewTime(u.Timestamp),
			Window:     metav1.Duration{Duration: u.Window},
			Usage:      usage(u.CPUNanoCores, u.MemoryWorkingSetBytes),
		})
	}
	if name != "" {
		if len(items) == 0 {
			return nil, apierrors.NewNotFound(schemaGR("nodes"), name)
		}
		return items[0], nil
	}
	return metricsList{TypeMeta: metav1.TypeMeta{Kind: "NodeMetricsList", APIVersion: metricsAPIVersion}, Items: orEmpty(items)}, nil
}

func (n *NodeMetrics) podMetrics(ctx context.Context, ns, name string, sel labels.Selector) (any, error) {
	pods, _, err := store.ListOf[*corev1.Pod](ctx, n.st, ns, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, p := range pods {
		if name == "" || p.Name == name {
			want[p.Namespace+"/"+p.Name] = true
		}
	}
	var items []metricsObject
	for _, m := range n.snapshot() {
		var us []agent.PodUsage
		if name != "" {
			u, err := m.PodMetrics(ctx, ns, name)
			if errors.Is(err, runtime.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if u != nil {
				us = []agent.PodUsage{*u}
			}
		} else if us, err = m.ListPodMetrics(ctx); err != nil {
			return nil, err
		}
		for _, u := range us {
			if !want[u.Namespace+"/"+u.Name] {
				continue
			}
			cs := make([]containerMetrics, 0, len(u.Containers))
			for _, c := range u.Containers {
				cs = append(cs, containerMetrics{Name: c.Name, Usage: usage(c.CPUNanoCores, c.MemoryWorkingSetBytes)})
			}
			items = append(items, metricsObject{
				TypeMeta:   metav1.TypeMeta{Kind: "PodMetrics", APIVersion: metricsAPIVersion},
				ObjectMeta: metav1.ObjectMeta{Namespace: u.Namespace, Name: u.Name, CreationTimestamp: metav1.Now()},
				Timestamp:  metav1.NewTime(u.Timestamp),
				Window:     metav1.Duration{Duration: u.Window},
				Containers: &cs,
			})
		}
	}
	sort.Slice(items, func(i, j int) bool {
		if items[i].Namespace != items[j].Namespace {
			return items[i].Namespace < items[j].Namespace
		}
		return items[i].Name < items[j].Name
	})
	if name != "" {
		if len(items) == 0 {
			return nil, apierrors.NewNotFound(schemaGR("pods"), name)
		}
		return items[0], nil
	}
	return metricsList{TypeMeta: metav1.TypeMeta{Kind: "PodMetricsList", APIVersion: metricsAPIVersion}, Items: orEmpty(items)}, nil
}

// PodCPU returns the CPU usage in millicores of every pod of namespace
// that a node agent has a sample of: the source of the
// HorizontalPodAutoscaler (controllers.MetricsSource).
func (n *NodeMetrics) PodCPU(ctx context.Context, namespace string) (map[string]int64, error) {
	q, err := n.PodUsage(ctx, namespace, corev1.ResourceCPU)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(q))
	for name, v := range q {
		out[name] = v.MilliValue()
	}
	return out, nil
}

// PodUsage returns the usage of resource name (cpu or memory) of every
// pod of namespace that a node agent has a sample of
// (controllers.ResourceMetricsSource).
func (n *NodeMetrics) PodUsage(ctx context.Context, namespace string, name corev1.ResourceName) (map[string]resource.Quantity, error) {
	out := map[string]resource.Quantity{}
	for _, m := range n.snapshot() {
		us, err := m.ListPodMetrics(ctx)
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			if u.Namespace != namespace {
				continue
			}
			var nano, mem uint64
			for _, c := range u.Containers {
				nano += c.CPUNanoCores
				mem += c.MemoryWorkingSetBytes
			}
			if q, ok := usage(nano, mem)[name]; ok {
				out[u.Name] = q
			}
		}
	}
	return out, nil
}

func orEmpty(items []metricsObject) []metricsObject {
	if items == nil {
		return []metricsObject{}
	}
	return items
}

func schemaGR(res string) schema.GroupResource {
	return schema.GroupResource{Group: "metrics.k8s.io", Resource: res}
}

var _ controllers.ResourceMetricsSource = (*NodeMetrics)(nil)

// laterCollector serves, on the API server's /metrics, a collector that
// exists only after the server was built (the service proxy's). Until
// set it collects nothing; it describes nothing, so the registry treats
// it as unchecked.
type laterCollector struct {
	mu sync.Mutex
	c  prometheus.Collector
}

func (l *laterCollector) set(c prometheus.Collector) {
	l.mu.Lock()
	l.c = c
	l.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (l *laterCollector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (l *laterCollector) Collect(ch chan<- prometheus.Metric) {
	l.mu.Lock()
	c := l.c
	l.mu.Unlock()
	if c != nil {
		c.Collect(ch)
	}
}
