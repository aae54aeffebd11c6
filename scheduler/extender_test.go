package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/tugboatdev/tugboat/store"
)

// fakeExtender is an extender served by httptest on 127.0.0.1. Each verb
// runs its handler on the decoded arguments; every call is recorded.
type fakeExtender struct {
	srv        *httptest.Server
	mu         sync.Mutex
	calls      []string // "verb pod"
	args       []extenderv1.ExtenderArgs
	filter     func(args extenderv1.ExtenderArgs) extenderv1.ExtenderFilterResult
	prioritize func(args extenderv1.ExtenderArgs) extenderv1.HostPriorityList
	bind       func(args extenderv1.ExtenderBindingArgs) extenderv1.ExtenderBindingResult
	preempt    func(args extenderv1.ExtenderPreemptionArgs) extenderv1.ExtenderPreemptionResult
	fail       bool
}

func newFakeExtender(t *testing.T) *fakeExtender {
	t.Helper()
	f := &fakeExtender{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	if !strings.HasPrefix(f.srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test extender not on loopback: %s", f.srv.URL)
	}
	return f
}

func (f *fakeExtender) serve(w http.ResponseWriter, r *http.Request) {
	verb := strings.TrimPrefix(r.URL.Path, "/ext/")
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		http.Error(w, "extender down", http.StatusInternalServerError)
		return
	}
	var out any
	dec := json.NewDecoder(r.Body)
	switch verb {
	case "filter", "prioritize":
		var args extenderv1.ExtenderArgs
		if err := dec.Decode(&args); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.record(verb, args.Pod.Name, &args)
		if verb == "filter" {
			out = f.filter(args)
		} else {
			out = f.prioritize(args)
		}
	case "bind":
		var args extenderv1.ExtenderBindingArgs
		if err := dec.Decode(&args); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.record(verb, args.PodName, nil)
		out = f.bind(args)
	case "preempt":
		var args extenderv1.ExtenderPreemptionArgs
		if err := dec.Decode(&args); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.record(verb, args.Pod.Name, nil)
		out = f.preempt(args)
	default:
		http.NotFound(w, r)
		return
	}
	_ = json.NewEncoder(w).Encode(out)
}

func (f *fakeExtender) record(verb, pod string, args *extenderv1.ExtenderArgs) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, verb+" "+pod)
	if args != nil {
		f.args = append(f.args, *args)
	}
}

func (f *fakeExtender) recorded() ([]string, []extenderv1.ExtenderArgs) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls), slices.Clone(f.args)
}

func (f *fakeExtender) config() ExtenderConfig {
	return ExtenderConfig{URLPrefix: f.srv.URL + "/ext", FilterVerb: "filter", PrioritizeVerb: "prioritize", Weight: 5}
}

// names of the nodes in args, whichever way they were sent.
func argNodes(a extenderv1.ExtenderArgs) []string {
	var out []string
	if a.NodeNames != nil {
		out = append(out, *a.NodeNames...)
	}
	if a.Nodes != nil {
		for _, n := range a.Nodes.Items {
			out = append(out, n.Name)
		}
	}
	slices.Sort(out)
	return out
}

// TestExtenderFilterAndPrioritize: the extender rejects n1 and strongly
// prefers n3, which the plugins alone would not pick (it is the busiest).
func TestExtenderFilterAndPrioritize(t *testing.T) {
	for _, cacheCapable := range []bool{false, true} {
		t.Run(map[bool]string{false: "node objects", true: "node names"}[cacheCapable], func(t *testing.T) {
			st := openStore(t)
			for _, n := range []string{"n1", "n2", "n3"} {
				mustCreate(t, st, makeNode(n, "4", "8Gi", 110, nil))
			}
			busy := makePod("default", "busy", "3", "")
			busy.Spec.NodeName = "n3"
			mustCreate(t, st, busy)
			ext := newFakeExtender(t)
			ext.filter = func(a extenderv1.ExtenderArgs) extenderv1.ExtenderFilterResult {
				var keep []string
				for _, n := range argNodes(a) {
					if n != "n1" {
						keep = append(keep, n)
					}
				}
				res := extenderv1.ExtenderFilterResult{FailedNodes: extenderv1.FailedNodesMap{"n1": "n1 is reserved"}}
				if a.NodeNames != nil {
					res.NodeNames = &keep
				} else {
					res.Nodes = &v1.NodeList{}
					for _, n := range a.Nodes.Items {
						if n.Name != "n1" {
							res.Nodes.Items = append(res.Nodes.Items, n)
						}
					}
				}
				return res
			}
			ext.prioritize = func(a extenderv1.ExtenderArgs) extenderv1.HostPriorityList {
				var out extenderv1.HostPriorityList
				for _, n := range argNodes(a) {
					score := int64(0)
					if n == "n3" {
						score = 10
					}
					out = append(out, extenderv1.HostPriority{Host: n, Score: score})
				}
				return out
			}
			cfg := ext.config()
			cfg.NodeCacheCapable = cacheCapable
			startScheduler(t, st, Config{Logger: discardLogger(), Extenders: []ExtenderConfig{cfg}})
			mustCreate(t, st, makePod("default", "p", "100m", ""))
			waitFor(t, "pod bound", bound(t, st, "default", "p"))
			if got := getPod(t, st, "default", "p").Spec.NodeName; got != "n3" {
				t.Errorf("pod on %s, want n3 (the extender's choice)", got)
			}
			calls, args := ext.recorded()
			if diff := cmp.Diff([]string{"filter p", "prioritize p"}, calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if len(args) != 2 {
				t.Fatalf("%d recorded args", len(args))
			}
			if diff := cmp.Diff([]string{"n1", "n2", "n3"}, argNodes(args[0])); diff != "" {
				t.Errorf("filter got nodes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"n2", "n3"}, argNodes(args[1])); diff != "" {
				t.Errorf("prioritize got nodes (-want +got):\n%s", diff)
			}
			if sentNames := args[0].NodeNames != nil; sentNames != cacheCapable || (args[0].Nodes != nil) == cacheCapable {
				t.Errorf("nodeCacheCapable %v: sent names %v, objects %v", cacheCapable, args[0].NodeNames != nil, args[0].Nodes != nil)
			}
		})
	}
}

// TestExtenderRejectsAll: the extender's reasons end up in the pod's
// PodScheduled condition.
func TestExtenderRejectsAll(t *testing.T) {
	st := openStore(t)
	for _, n := range []string{"n1", "n2"} {
		mustCreate(t, st, makeNode(n, "4", "8Gi", 110, nil))
	}
	mustCreate(t, st, makeNode("small", "50m", "8Gi", 110, nil)) // rejected by NodeResourcesFit
	ext := newFakeExtender(t)
	ext.filter = func(a extenderv1.ExtenderArgs) extenderv1.ExtenderFilterResult {
		if got := argNodes(a); !slices.Equal(got, []string{"n1", "n2"}) {
			return extenderv1.ExtenderFilterResult{Error: fmt.Sprintf("got nodes %v", got)}
		}
		return extenderv1.ExtenderFilterResult{
			Nodes:                      &v1.NodeList{},
			FailedNodes:                extenderv1.FailedNodesMap{"n1": "licence missing"},
			FailedAndUnresolvableNodes: extenderv1.FailedNodesMap{"n2": "wrong rack"},
		}
	}
	cfg := ext.config()
	cfg.PrioritizeVerb = ""
	startScheduler(t, st, Config{Logger: discardLogger(), Extenders: []ExtenderConfig{cfg}})
	mustCreate(t, st, makePod("default", "p", "100m", ""))
	want := "0/3 nodes are available: 1 Insufficient cpu, 1 licence missing, 1 wrong rack."
	waitFor(t, "failure recorded", func() (bool, error) {
		c := scheduledCondition(getPod(t, st, "default", "p"))
		return c != nil && c.Reason == v1.PodReasonUnschedulable && strings.HasPrefix(c.Message, want), nil
	})
}

// TestExtenderBinds: an extender with a bind verb binds the pods (here by
// writing spec.nodeName itself), instead of the Bind plugins.
func TestExtenderBinds(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	mustCreate(t, st, makeNode("n1", "4", "8Gi", 110, nil))
	ext := newFakeExtender(t)
	var got []extenderv1.ExtenderBindingArgs
	var mu sync.Mutex
	ext.bind = func(a extenderv1.ExtenderBindingArgs) extenderv1.ExtenderBindingResult {
		mu.Lock()
		got = append(got, a)
		mu.Unlock()
		p, err := store.Get[*v1.Pod](ctx, st, a.PodNamespace, a.PodName)
		if err != nil {
			return extenderv1.ExtenderBindingResult{Error: err.Error()}
		}
		p.Spec.NodeName = a.Node
		if _, err := st.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			return extenderv1.ExtenderBindingResult{Error: err.Error()}
		}
		return extenderv1.ExtenderBindingResult{}
	}
	startScheduler(t, st, Config{Logger: discardLogger(), Extenders: []ExtenderConfig{{URLPrefix: ext.srv.URL + "/ext", BindVerb: "bind"}}})
	mustCreate(t, st, makePod("default", "p", "100m", ""))
	waitFor(t, "pod bound", bound(t, st, "default", "p"))
	p := getPod(t, st, "default", "p")
	mu.Lock()
	defer mu.Unlock()
	want := []extenderv1.ExtenderBindingArgs{{PodName: "p", PodNamespace: "default", PodUID: p.UID, Node: "n1"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("binding args (-want +got):\n%s", diff)
	}
}

// TestExtenderManagedResources: the extender is called only for pods that
// request its resource, and NodeResourcesFit ignores that resource (no
// node advertises it).
func TestExtenderManagedResources(t *testing.T) {
	st := openStore(t)
	mustCreate(t, st, makeNode("n1", "4", "8Gi", 110, nil))
	ext := newFakeExtender(t)
	ext.filter = func(a extenderv1.ExtenderArgs) extenderv1.ExtenderFilterResult {
		return extenderv1.ExtenderFilterResult{NodeNames: a.NodeNames}
	}
	cfg := ext.config()
	cfg.PrioritizeVerb = ""
	cfg.NodeCacheCapable = true
	cfg.ManagedResources = []ExtenderManagedResource{{Name: "example.com/foo", IgnoredByScheduler: true}}
	startScheduler(t, st, Config{Logger: discardLogger(), Extenders: []ExtenderConfig{cfg}})
	plain := makePod("default", "plain", "100m", "")
	mustCreate(t, st, plain)
	waitFor(t, "plain bound", bound(t, st, "default", "plain"))
	foo := makePod("default", "foo", "100m", "")
	foo.Spec.Containers[0].Resources.Requests["example.com/foo"] = resource.MustParse("1")
	foo.Spec.Containers[0].Resources.Limits = v1.ResourceList{"example.com/foo": resource.MustParse("1")}
	mustCreate(t, st, foo)
	waitFor(t, "foo bound", bound(t, st, "default", "foo"))
	calls, _ := ext.recorded()
	if diff := cmp.Diff([]string{"filter foo"}, calls); diff != "" {
		t.Errorf("extender calls (-want +got):\n%s", diff)
	}
}

// TestExtenderFailure: a failing ignorable extender is skipped; a failing
// one that is not ignorable makes the attempt a scheduler error.
func TestExtenderFailure(t *testing.T) {
	for _, ignorable := range []bool{true, false} {
		t.Run(map[bool]string{true: "ignorable", false: "not ignorable"}[ignorable], func(t *testing.T) {
			st := openStore(t)
			mustCreate(t, st, makeNode("n1", "4", "8Gi", 110, nil))
			mustCreate(t, st, makeNode("n2", "4", "8Gi", 110, nil))
			ext := newFakeExtender(t)
			ext.fail = true
			cfg := ext.config()
			cfg.Ignorable = ignorable
			s := startScheduler(t, st, Config{Logger: discardLogger(), Extenders: []ExtenderConfig{cfg}})
			mustCreate(t, st, makePod("default", "p", "100m", ""))
			if ignorable {
				waitFor(t, "pod bound", bound(t, st, "default", "p"))
				return
			}
			waitFor(t, "scheduler error recorded", func() (bool, error) {
				c := scheduledCondition(getPod(t, st, "default", "p"))
				return c != nil && c.Reason == v1.PodReasonSchedulerError && strings.Contains(c.Message, "HTTP 500"), nil
			})
			if s.Stats().Errors == 0 {
				t.Error("no scheduler error counted")
			}
			if getPod(t, st, "default", "p").Spec.NodeName != "" {
				t.Error("pod bound although its extender failed")
			}
		})
	}
}

// TestExtenderPreemption: two nodes each hold a low-priority pod; the
// extender only accepts preempting on n2, so the victim there goes and the
// one on n1 stays.
func TestExtenderPreemption(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	mustCreate(t, st, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "high"}, Value: 1000})
	for _, n := range []string{"n1", "n2"} {
		mustCreate(t, st, makeNode(n, "1", "4Gi", 110, nil))
		low := makePod("default", "low-"+n, "800m", "")
		low.Spec.NodeName = n
		low.Spec.TerminationGracePeriodSeconds = new(int64)
		mustCreate(t, st, low)
	}
	ext := newFakeExtender(t)
	var sent map[string]*extenderv1.MetaVictims
	var mu sync.Mutex
	ext.preempt = func(a extenderv1.ExtenderPreemptionArgs) extenderv1.ExtenderPreemptionResult {
		mu.Lock()
		defer mu.Unlock()
		sent = a.NodeNameToMetaVictims
		return extenderv1.ExtenderPreemptionResult{NodeNameToMetaVictims: map[string]*extenderv1.MetaVictims{"n2": a.NodeNameToMetaVictims["n2"]}}
	}
	startScheduler(t, st, Config{Logger: discardLogger(), InitialBackoff: 1, MaxBackoff: 1, Extenders: []ExtenderConfig{{
		URLPrefix: ext.srv.URL + "/ext", PreemptVerb: "preempt", NodeCacheCapable: true,
	}}})
	high := makePod("default", "high", "800m", "")
	high.Spec.PriorityClassName = "high"
	mustCreate(t, st, high)
	waitFor(t, "high bound", bound(t, st, "default", "high"))
	if got := getPod(t, st, "default", "high").Spec.NodeName; got != "n2" {
		t.Errorf("high on %s, want n2", got)
	}
	if _, err := store.Get[*v1.Pod](ctx, st, "default", "low-n2"); !apierrors.IsNotFound(err) {
		t.Errorf("victim on n2 still exists: %v", err)
	}
	getPod(t, st, "default", "low-n1") // must still exist
	mu.Lock()
	defer mu.Unlock()
	var nodes []string
	for n, v := range sent {
		nodes = append(nodes, n)
		if len(v.Pods) != 1 || v.Pods[0].UID == "" {
			t.Errorf("victims sent for %s: %+v", n, v.Pods)
		}
	}
	slices.Sort(nodes)
	if diff := cmp.Diff([]string{"n1", "n2"}, nodes); diff != "" {
		t.Errorf("candidate nodes sent (-want +got):\n%s", diff)
	}
}

func TestNewHTTPExtenderChecksConfig(t *testing.T) {
	for _, tt := range []struct {
		cfg  ExtenderConfig
		want string
	}{
		{ExtenderConfig{}, "urlPrefix is empty"},
		{ExtenderConfig{URLPrefix: "http://127.0.0.1:1", PrioritizeVerb: "p"}, "weight must be positive"},
	} {
		if _, err := NewHTTPExtender(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewHTTPExtender(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}
