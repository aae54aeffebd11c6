package agent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// The metrics.k8s.io/v1beta1 wire types, as metrics-server serves them
// (written here so that the module needs no k8s.io/metrics).
type metricsList struct {
	Kind       string          `json:"kind"`
	APIVersion string          `json:"apiVersion"`
	Metadata   metav1.ListMeta `json:"metadata"`
	Items      []any           `json:"items"`
}

type nodeMetrics struct {
	Kind       string              `json:"kind,omitempty"`
	APIVersion string              `json:"apiVersion,omitempty"`
	Metadata   metav1.ObjectMeta   `json:"metadata"`
	Timestamp  metav1.Time         `json:"timestamp"`
	Window     metav1.Duration     `json:"window"`
	Usage      corev1.ResourceList `json:"usage"`
}

type containerMetrics struct {
	Name  string              `json:"name"`
	Usage corev1.ResourceList `json:"usage"`
}

type podMetrics struct {
	Kind       string             `json:"kind,omitempty"`
	APIVersion string             `json:"apiVersion,omitempty"`
	Metadata   metav1.ObjectMeta  `json:"metadata"`
	Timestamp  metav1.Time        `json:"timestamp"`
	Window     metav1.Duration    `json:"window"`
	Containers []containerMetrics `json:"containers"`
}

const metricsAPIVersion = "metrics.k8s.io/v1beta1"

func usage(nanoCores, memBytes uint64) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewScaledQuantity(int64(nanoCores), resource.Nano),
		corev1.ResourceMemory: *resource.NewQuantity(int64(memBytes), resource.BinarySI),
	}
}

// ServeHTTP serves metrics.k8s.io/v1beta1 (`kubectl top`, the
// HorizontalPodAutoscaler) from the registered agents: nodes, nodes/{name},
// pods, namespaces/{ns}/pods and namespaces/{ns}/pods/{name}, with
// labelSelector on lists. The API server mounts it under
// /apis/metrics.k8s.io/v1beta1/.
func (n *Nodes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/apis/"+metricsAPIVersion+"/")
	if !ok || r.Method != http.MethodGet {
		writeStatus(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource")
		return
	}
	sel := labels.Everything()
	if s := r.URL.Query().Get("labelSelector"); s != "" {
		var err error
		if sel, err = labels.Parse(s); err != nil {
			writeStatus(w, http.StatusBadRequest, "BadRequest", err.Error())
			return
		}
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	switch {
	case parts[0] == "nodes" && len(parts) <= 2:
		n.serveNodes(w, r, parts[1:], sel)
	case parts[0] == "pods" && len(parts) == 1:
		n.servePods(w, r, "", "", sel)
	case len(parts) >= 3 && parts[0] == "namespaces" && parts[2] == "pods" && len(parts) <= 4:
		name := ""
		if len(parts) == 4 {
			name = parts[3]
		}
		n.servePods(w, r, parts[1], name, sel)
	default:
		writeStatus(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource")
	}
}

func (n *Nodes) serveNodes(w http.ResponseWriter, r *http.Request, name []string, sel labels.Selector) {
	us, err := n.ListNodeMetrics(r.Context())
	if err != nil {
		writeStatus(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	var items []any
	for _, u := range us {
		if len(name) == 1 && u.Name != name[0] {
			continue
		}
		var lbls map[string]string
		if a := n.Agent(u.Name); a != nil {
			if node := a.Node(); node != nil {
				lbls = node.Labels
			}
		}
		if !sel.Matches(labels.Set(lbls)) {
			continue
		}
		items = append(items, nodeMetrics{Metadata: metav1.ObjectMeta{Name: u.Name, Labels: lbls, CreationTimestamp: metav1.NewTime(u.Timestamp)},
			Timestamp: metav1.NewTime(u.Timestamp), Window: metav1.Duration{Duration: u.Window}, Usage: usage(u.CPUNanoCores, u.MemoryWorkingSetBytes)})
	}
	if len(name) == 1 {
		if len(items) == 0 {
			writeStatus(w, http.StatusNotFound, "NotFound", fmt.Sprintf("nodemetrics.metrics.k8s.io %q not found", name[0]))
			return
		}
		m := items[0].(nodeMetrics)
		m.Kind, m.APIVersion = "NodeMetrics", metricsAPIVersion
		writeJSON(w, m)
		return
	}
	writeJSON(w, metricsList{Kind: "NodeMetricsList", APIVersion: metricsAPIVersion, Items: nonNil(items)})
}

func (n *Nodes) servePods(w http.ResponseWriter, r *http.Request, namespace, name string, sel labels.Selector) {
	us, err := n.ListPodMetrics(r.Context())
	if err != nil {
		writeStatus(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	var items []any
	for _, u := range us {
		if (namespace != "" && u.Namespace != namespace) || (name != "" && u.Name != name) || !sel.Matches(labels.Set(u.Labels)) {
			continue
		}
		pm := podMetrics{Metadata: metav1.ObjectMeta{Name: u.Name, Namespace: u.Namespace, Labels: u.Labels, CreationTimestamp: metav1.NewTime(u.Timestamp)},
			Timestamp: metav1.NewTime(u.Timestamp), Window: metav1.Duration{Duration: u.Window}, Containers: []containerMetrics{}}
		for _, c := range u.Containers {
			pm.Containers = append(pm.Containers, containerMetrics{Name: c.Name, Usage: usage(c.CPUNanoCores, c.MemoryWorkingSetBytes)})
		}
		items = append(items, pm)
	}
	if name != "" {
		if len(items) == 0 {
			writeStatus(w, http.StatusNotFound, "NotFound", fmt.Sprintf("podmetrics.metrics.k8s.io %q not found", namespace+"/"+name))
			return
		}
		m := items[0].(podMetrics)
		m.Kind, m.APIVersion = "PodMetrics", metricsAPIVersion
		writeJSON(w, m)
		return
	}
	writeJSON(w, metricsList{Kind: "PodMetricsList", APIVersion: metricsAPIVersion, Items: nonNil(items)})
}

func nonNil(items []any) []any {
	if items == nil {
		return []any{}
	}
	return items
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status: metav1.StatusFailure, Message: msg, Reason: reason, Code: int32(code)})
}
