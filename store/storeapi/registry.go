package storeapi

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Kind describes one resource the store serves: its names, scope and the
// behaviour that differs between kinds. Adding a kind is one [Registry.Register]
// call with a Kind.
type Kind struct {
	// GVK is the group, version and kind served, e.g. apps/v1 Deployment.
	GVK schema.GroupVersionKind
	// Resource is the plural lower-case resource name, e.g. "deployments".
	Resource string
	// Singular is the singular resource name, e.g. "deployment".
	Singular string
	// ShortNames are kubectl's abbreviations, e.g. "deploy".
	ShortNames []string
	// Categories group resources for kubectl, e.g. "all".
	Categories []string
	// Namespaced is false for cluster-scoped kinds (Node, Namespace, ...).
	Namespaced bool
	// New returns an empty object of the kind's Go type.
	New func() runtime.Object
	// NewList returns an empty list object (e.g. *corev1.PodList).
	NewList func() runtime.Object
	// NameValidation checks metadata.name; nil means DNS-1123 subdomain.
	NameValidation func(name string, prefix bool) []string
	// Fields returns the field-selector values of obj beyond metadata.name
	// and metadata.namespace; nil means only those two are selectable.
	Fields func(obj runtime.Object) fields.Set
	// FieldKeys lists the keys Fields returns, to reject unsupported ones.
	FieldKeys []string
	// Default applies upstream defaults to a new or updated object.
	Default func(obj runtime.Object)
	// Validate checks the object beyond its metadata.
	Validate func(obj runtime.Object, cfg *Config) field.ErrorList
	// ValidateUpdate checks what may not change between old and obj
	// (immutable fields); nil means no extra rules.
	ValidateUpdate func(obj, old runtime.Object) field.ErrorList
	// PrepareCreate sets what a new object starts with (a Pod's phase
	// Pending, a Namespace's finalizer); it runs on create only, after the
	// UID is assigned and after Default.
	PrepareCreate func(obj runtime.Object)
	// KeepStatusOnCreate keeps the status given on create (Nodes are
	// created with theirs); other kinds start with an empty status.
	KeepStatusOnCreate bool

	hasSpec, hasStatus bool
	goType             reflect.Type
	tableName          string // Table, computed once by Register
	idxTableName       string // its index rows' table
}

// GroupResource returns the kind's group and resource name.
func (k *Kind) GroupResource() schema.GroupResource {
	return schema.GroupResource{Group: k.GVK.Group, Resource: k.Resource}
}

// GroupVersionResource returns the kind's group, version and resource name.
func (k *Kind) GroupVersionResource() schema.GroupVersionResource {
	return k.GVK.GroupVersion().WithResource(k.Resource)
}

// HasStatus reports whether the kind has a status written through UpdateStatus.
func (k *Kind) HasStatus() bool { return k.hasStatus }

// HasSpec reports whether the kind has a spec whose changes bump generation.
func (k *Kind) HasSpec() bool { return k.hasSpec }

// Table returns the name of the table that holds the kind's objects in the
// embedded store: the resource name, qualified by the group when the kind
// has one ("pods", "deployments.apps").
func (k *Kind) Table() string {
	if k.tableName != "" {
		return k.tableName
	}
	return k.tableNameOf()
}

// IndexTable returns the name of the embedded store's table of the kind's
// secondary index rows: [Kind.Table] followed by "#idx".
func (k *Kind) IndexTable() string {
	if k.idxTableName != "" {
		return k.idxTableName
	}
	return k.Table() + "#idx"
}

func (k *Kind) tableNameOf() string {
	if k.GVK.Group == "" {
		return k.Resource
	}
	return k.Resource + "." + k.GVK.Group
}

// Registry maps group/version/kind, resource names, short names and Go types
// to [Kind]s. It is filled before a store is built and read-only afterwards.
type Registry struct {
	mu     sync.RWMutex
	kinds  []*Kind
	byGR   map[schema.GroupResource]*Kind
	byGVK  map[schema.GroupVersionKind]*Kind
	byType map[reflect.Type]*Kind
}

// NewRegistry returns an empty registry; [DefaultRegistry] has every kind
// tugboat serves.
func NewRegistry() *Registry {
	return &Registry{
		byGR:   map[schema.GroupResource]*Kind{},
		byGVK:  map[schema.GroupVersionKind]*Kind{},
		byType: map[reflect.Type]*Kind{},
	}
}

// Register adds a kind. It fails if the resource, kind or Go type is
// registered already or the kind is incomplete.
func (r *Registry) Register(k Kind) error {
	if k.GVK.Kind == "" || k.GVK.Version == "" || k.Resource == "" || k.New == nil || k.NewList == nil {
		return fmt.Errorf("store: kind %v: GVK, Resource, New and NewList are required", k.GVK)
	}
	if k.Singular == "" {
		k.Singular = strings.ToLower(k.GVK.Kind)
	}
	t := reflect.TypeOf(k.New())
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("store: kind %v: New must return a pointer to a struct", k.GVK)
	}
	k.goType = t
	k.tableName = k.tableNameOf()
	k.idxTableName = k.tableName + "#idx"
	_, k.hasSpec = t.Elem().FieldByName("Spec")
	_, k.hasStatus = t.Elem().FieldByName("Status")
	r.mu.Lock()
	defer r.mu.Unlock()
	kp := &k
	if _, dup := r.byGR[kp.GroupResource()]; dup {
		return fmt.Errorf("store: resource %v registered twice", kp.GroupResource())
	}
	if _, dup := r.byGVK[k.GVK]; dup {
		return fmt.Errorf("store: kind %v registered twice", k.GVK)
	}
	if _, dup := r.byType[t]; dup {
		return fmt.Errorf("store: Go type %v registered twice", t)
	}
	r.kinds = append(r.kinds, kp)
	r.byGR[kp.GroupResource()] = kp
	r.byGVK[k.GVK] = kp
	r.byType[t] = kp
	return nil
}

// MustRegister is Register that panics on error, for building registries at start-up.
func (r *Registry) MustRegister(k Kind) {
	if err := r.Register(k); err != nil {
		panic(err)
	}
}

// Kinds returns every registered kind, sorted by group then resource.
func (r *Registry) Kinds() []*Kind {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := append([]*Kind(nil), r.kinds...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].GVK.Group != out[j].GVK.Group {
			return out[i].GVK.Group < out[j].GVK.Group
		}
		return out[i].Resource < out[j].Resource
	})
	return out
}

// ForResource returns the kind of a group/resource, or nil.
func (r *Registry) ForResource(gr schema.GroupResource) *Kind {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byGR[gr]
}

// ForGVK returns the kind of a group/version/kind, or nil.
func (r *Registry) ForGVK(gvk schema.GroupVersionKind) *Kind {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byGVK[gvk]
}

// ForObject returns the kind of obj's Go type, or nil.
func (r *Registry) ForObject(obj runtime.Object) *Kind {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byType[reflect.TypeOf(obj)]
}

// Lookup finds a kind the way kubectl resolves a name on its command line:
// by plural, singular, short name or kind, optionally qualified by group
// ("deployments.apps", "deploy").
func (r *Registry) Lookup(name string) *Kind {
	name = strings.ToLower(name)
	res, group, _ := strings.Cut(name, ".")
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range r.kinds {
		if group != "" && k.GVK.Group != group {
			continue
		}
		if k.Resource == res || k.Singular == res || strings.ToLower(k.GVK.Kind) == res {
			return k
		}
		for _, s := range k.ShortNames {
			if s == res {
				return k
			}
		}
	}
	return nil
}
