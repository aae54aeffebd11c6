package apiserver

import (
	"mime"
	"net"
	"net/http"
	"sort"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"github.com/tugboatdev/tugboat/store"
)

var (
	allVerbs    = []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	statusVerbs = []string{"get", "patch", "update"}
)

// subresource is one subresource served for a kind.
type subresource struct {
	name  string
	kind  schema.GroupVersionKind
	verbs []string
}

func subresourcesOf(k *store.Kind) []subresource {
	var out []subresource
	if k.HasStatus() {
		out = append(out, subresource{"status", k.GVK, statusVerbs})
	}
	switch k.GroupResource() {
	case schema.GroupResource{Group: "apps", Resource: "deployments"}, schema.GroupResource{Group: "apps", Resource: "replicasets"},
		schema.GroupResource{Group: "apps", Resource: "statefulsets"}:
		out = append(out, subresource{"scale", schema.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}, statusVerbs})
	case schema.GroupResource{Resource: "serviceaccounts"}:
		out = append(out, subresource{"token", schema.GroupVersionKind{Group: "authentication.k8s.io", Version: "v1", Kind: "TokenRequest"}, []string{"create"}})
	case schema.GroupResource{Resource: "pods"}:
		out = append(out,
			subresource{"attach", schema.GroupVersionKind{Version: "v1", Kind: "PodAttachOptions"}, []string{"create", "get"}},
			subresource{"binding", schema.GroupVersionKind{Version: "v1", Kind: "Binding"}, []string{"create"}},
			subresource{"eviction", schema.GroupVersionKind{Group: "policy", Version: "v1", Kind: "Eviction"}, []string{"create"}},
			subresource{"exec", schema.GroupVersionKind{Version: "v1", Kind: "PodExecOptions"}, []string{"create", "get"}},
			subresource{"log", schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, []string{"get"}},
			subresource{"portforward", schema.GroupVersionKind{Version: "v1", Kind: "PodPortForwardOptions"}, []string{"create", "get"}},
		)
	}
	return out
}

// discovery serves the discovery documents built from a registry.
type discovery struct {
	reg    *store.Registry
	groups []string                              // API groups, "" first
	byGV   map[schema.GroupVersion][]*store.Kind // kinds per group version
	gvs    map[string][]schema.GroupVersion      // versions per group
	// extra are resources served by delegates (metrics.k8s.io).
	extra map[schema.GroupVersion][]metav1.APIResource
}

// metricsGV is the group version a MetricsProvider serves.
var metricsGV = schema.GroupVersion{Group: "metrics.k8s.io", Version: "v1beta1"}

// metricsResources are the resources of metrics.k8s.io/v1beta1.
func metricsResources() []metav1.APIResource {
	return []metav1.APIResource{
		{Name: "nodes", Namespaced: false, Kind: "NodeMetrics", Verbs: []string{"get", "list"}},
		{Name: "pods", Namespaced: true, Kind: "PodMetrics", Verbs: []string{"get", "list"}},
	}
}

func newDiscovery(reg *store.Registry, extra map[schema.GroupVersion][]metav1.APIResource) *discovery {
	d := &discovery{reg: reg, byGV: map[schema.GroupVersion][]*store.Kind{}, gvs: map[string][]schema.GroupVersion{}, extra: extra}
	for gv := range extra {
		d.gvs[gv.Group] = append(d.gvs[gv.Group], gv)
		d.byGV[gv] = nil
	}
	for _, k := range reg.Kinds() {
		gv := k.GVK.GroupVersion()
		if _, ok := d.byGV[gv]; !ok {
			d.gvs[gv.Group] = append(d.gvs[gv.Group], gv)
		}
		d.byGV[gv] = append(d.byGV[gv], k)
	}
	for g, gvs := range d.gvs {
		d.groups = append(d.groups, g)
		// Versions in kube-apiserver's priority order (v2 before v1
		// before v1beta1): the first is the preferred one.
		sort.SliceStable(gvs, func(i, j int) bool {
			return version.CompareKubeAwareVersionStrings(gvs[i].Version, gvs[j].Version) > 0
		})
	}
	sort.Slice(d.groups, func(i, j int) bool { return d.groups[i] < d.groups[j] })
	return d
}

func (d *discovery) resourceList(gv schema.GroupVersion) *metav1.APIResourceList {
	l := &metav1.APIResourceList{GroupVersion: gv.String(), APIResources: append([]metav1.APIResource(nil), d.extra[gv]...)}
	for _, k := range d.byGV[gv] {
		l.APIResources = append(l.APIResources, metav1.APIResource{
			Name: k.Resource, SingularName: k.Singular, Namespaced: k.Namespaced, Kind: k.GVK.Kind,
			Verbs: allVerbs, ShortNames: k.ShortNames, Categories: k.Categories,
		})
		for _, sr := range subresourcesOf(k) {
			ar := metav1.APIResource{Name: k.Resource + "/" + sr.name, Namespaced: k.Namespaced, Kind: sr.kind.Kind, Verbs: sr.verbs}
			if sr.kind.GroupVersion() != gv {
				ar.Group, ar.Version = sr.kind.Group, sr.kind.Version
			}
			l.APIResources = append(l.APIResources, ar)
		}
	}
	return l
}

func (d *discovery) group(g string) metav1.APIGroup {
	ag := metav1.APIGroup{Name: g}
	for _, gv := range d.gvs[g] {
		ag.Versions = append(ag.Versions, metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version})
	}
	ag.PreferredVersion = ag.Versions[0]
	return ag
}

func (d *discovery) aggregated(core bool) *apidiscoveryv2.APIGroupDiscoveryList {
	out := &apidiscoveryv2.APIGroupDiscoveryList{}
	for _, g := range d.groups {
		if (g == "") != core {
			continue
		}
		gd := apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: g}}
		for _, gv := range d.gvs[g] {
			vd := apidiscoveryv2.APIVersionDiscovery{Version: gv.Version, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
			for _, r := range d.extra[gv] {
				if parent, sub, ok := strings.Cut(r.Name, "/"); ok {
					// A subresource of the extra resource before it.
					if n := len(vd.Resources); n > 0 && vd.Resources[n-1].Resource == parent {
						vd.Resources[n-1].Subresources = append(vd.Resources[n-1].Subresources, apidiscoveryv2.APISubresourceDiscovery{
							Subresource: sub, Verbs: r.Verbs,
							ResponseKind: &metav1.GroupVersionKind{Group: gv.Group, Version: gv.Version, Kind: r.Kind},
						})
					}
					continue
				}
				scope := apidiscoveryv2.ScopeCluster
				if r.Namespaced {
					scope = apidiscoveryv2.ScopeNamespace
				}
				vd.Resources = append(vd.Resources, apidiscoveryv2.APIResourceDiscovery{Resource: r.Name, Scope: scope, Verbs: r.Verbs,
					ResponseKind:     &metav1.GroupVersionKind{Group: gv.Group, Version: gv.Version, Kind: r.Kind},
					SingularResource: r.SingularName, ShortNames: r.ShortNames, Categories: r.Categories})
			}
			for _, k := range d.byGV[gv] {
				scope := apidiscoveryv2.ScopeCluster
				if k.Namespaced {
					scope = apidiscoveryv2.ScopeNamespace
				}
				gvk := k.GVK
				rd := apidiscoveryv2.APIResourceDiscovery{
					Resource: k.Resource, ResponseKind: &metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
					Scope: scope, SingularResource: k.Singular, Verbs: allVerbs, ShortNames: k.ShortNames, Categories: k.Categories,
				}
				for _, sr := range subresourcesOf(k) {
					rd.Subresources = append(rd.Subresources, apidiscoveryv2.APISubresourceDiscovery{
						Subresource:  sr.name,
						ResponseKind: &metav1.GroupVersionKind{Group: sr.kind.Group, Version: sr.kind.Version, Kind: sr.kind.Kind},
						Verbs:        sr.verbs,
					})
				}
				vd.Resources = append(vd.Resources, rd)
			}
			gd.Versions = append(gd.Versions, vd)
		}
		out.Items = append(out.Items, gd)
	}
	return out
}

// wantsAggregated reports whether the Accept header asks for
// apidiscovery.k8s.io/v2 APIGroupDiscoveryList (before a plain type).
func wantsAggregated(accept string) (mediaType, bool) {
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if params["as"] == "APIGroupDiscoveryList" && params["g"] == "apidiscovery.k8s.io" && params["v"] == "v2" &&
			(mt == mediaJSON || mt == mediaProtobuf) {
			return mediaType{typ: mt, as: "APIGroupDiscoveryList", g: "apidiscovery.k8s.io", v: "v2"}, true
		}
		if params["as"] == "" && (mt == mediaJSON || mt == mediaProtobuf || mt == "*/*" || mt == mediaYAML) {
			return mediaType{}, false
		}
	}
	return mediaType{}, false
}

func serverAddress(r *http.Request) []metav1.ServerAddressByClientCIDR {
	host := r.Host
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(host, "443")
	}
	return []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: host}}
}

func (d *discovery) serveAPI(s *Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		parts := splitPath(r.URL.Path)
		switch len(parts) {
		case 1:
			if m, ok := wantsAggregated(r.Header.Get("Accept")); ok {
				w.Header().Set("Vary", "Accept")
				s.writeObject(w, http.StatusOK, d.aggregated(true), m)
				return
			}
			m, _ := negotiate(r.Header.Get("Accept"), nil)
			w.Header().Set("Vary", "Accept")
			s.writeObject(w, http.StatusOK, &metav1.APIVersions{Versions: []string{"v1"}, ServerAddressByClientCIDRs: serverAddress(r)}, m)
		case 2:
			gv := schema.GroupVersion{Version: parts[1]}
			if _, ok := d.byGV[gv]; !ok {
				s.writeError(w, r, notFoundResource(requestInfo{}))
				return
			}
			m, _ := negotiate(r.Header.Get("Accept"), nil)
			s.writeObject(w, http.StatusOK, d.resourceList(gv), m)
		default:
			s.writeError(w, r, notFoundResource(requestInfo{}))
		}
	}
}

func (d *discovery) serveAPIs(s *Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		parts := splitPath(r.URL.Path)
		m, _ := negotiate(r.Header.Get("Accept"), nil)
		switch len(parts) {
		case 1:
			w.Header().Set("Vary", "Accept")
			if am, ok := wantsAggregated(r.Header.Get("Accept")); ok {
				s.writeObject(w, http.StatusOK, d.aggregated(false), am)
				return
			}
			gl := &metav1.APIGroupList{}
			for _, g := range d.groups {
				if g != "" {
					gl.Groups = append(gl.Groups, d.group(g))
				}
			}
			s.writeObject(w, http.StatusOK, gl, m)
		case 2:
			if _, ok := d.gvs[parts[1]]; !ok || parts[1] == "" {
				s.writeError(w, r, notFoundResource(requestInfo{}))
				return
			}
			g := d.group(parts[1])
			s.writeObject(w, http.StatusOK, &g, m)
		case 3:
			gv := schema.GroupVersion{Group: parts[1], Version: parts[2]}
			if _, ok := d.byGV[gv]; !ok {
				s.writeError(w, r, notFoundResource(requestInfo{}))
				return
			}
			s.writeObject(w, http.StatusOK, d.resourceList(gv), m)
		default:
			s.writeError(w, r, notFoundResource(requestInfo{}))
		}
	}
}
