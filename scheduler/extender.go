package scheduler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

// ExtenderConfig configures an HTTP scheduler extender, with the fields of
// upstream's KubeSchedulerConfiguration "extenders" entries. The extender
// speaks the JSON of k8s.io/kube-scheduler/extender/v1: the scheduler POSTs
// ExtenderArgs to URLPrefix/FilterVerb and URLPrefix/PrioritizeVerb,
// ExtenderBindingArgs to URLPrefix/BindVerb and ExtenderPreemptionArgs to
// URLPrefix/PreemptVerb. An empty verb turns that call off.
type ExtenderConfig struct {
	// URLPrefix is the extender's base URL, e.g. "http://127.0.0.1:8888/scheduler".
	URLPrefix string
	// FilterVerb, PrioritizeVerb, BindVerb and PreemptVerb are appended to
	// URLPrefix for each call.
	FilterVerb, PrioritizeVerb, BindVerb, PreemptVerb string
	// Weight multiplies the extender's node scores (0 to 10); must be
	// positive when PrioritizeVerb is set.
	Weight int64
	// NodeCacheCapable means the extender keeps its own copy of the nodes:
	// it is sent node names only (and preemption victims as UIDs).
	NodeCacheCapable bool
	// ManagedResources are the extended resources the extender manages;
	// when set, the extender is only called for pods that request one.
	ManagedResources []ExtenderManagedResource
	// Ignorable means the scheduler goes on without the extender when it
	// fails or cannot be reached.
	Ignorable bool
	// HTTPTimeout bounds each call (default 30s, as upstream).
	HTTPTimeout time.Duration
	// HTTPClient sends the calls (for TLS or custom transports); nil means
	// a client with HTTPTimeout.
	HTTPClient *http.Client
}

// ExtenderManagedResource is an extended resource an extender manages.
type ExtenderManagedResource struct {
	// Name is the resource name, e.g. "example.com/foo".
	Name string
	// IgnoredByScheduler makes NodeResourcesFit skip the resource (the
	// extender checks it).
	IgnoredByScheduler bool
}

// HTTPExtender is a framework.Extender that calls an extender over HTTP.
type HTTPExtender struct {
	cfg     ExtenderConfig
	client  *http.Client
	managed map[v1.ResourceName]struct{}
}

// NewHTTPExtender checks cfg and returns the extender.
func NewHTTPExtender(cfg ExtenderConfig) (*HTTPExtender, error) {
	if cfg.URLPrefix == "" {
		return nil, errors.New("extender: urlPrefix is empty")
	}
	if cfg.PrioritizeVerb != "" && cfg.Weight <= 0 {
		return nil, fmt.Errorf("extender %s: weight must be positive with a prioritize verb, got %d", cfg.URLPrefix, cfg.Weight)
	}
	if cfg.HTTPTimeout <= 0 {
		cfg.HTTPTimeout = 30 * time.Second
	}
	e := &HTTPExtender{cfg: cfg, client: cfg.HTTPClient, managed: map[v1.ResourceName]struct{}{}}
	if e.client == nil {
		e.client = &http.Client{Timeout: cfg.HTTPTimeout}
	}
	for _, r := range cfg.ManagedResources {
		e.managed[v1.ResourceName(r.Name)] = struct{}{}
	}
	return e, nil
}

// Name implements framework.Extender: the URL prefix.
func (e *HTTPExtender) Name() string { return e.cfg.URLPrefix }

// IsIgnorable implements framework.Extender.
func (e *HTTPExtender) IsIgnorable() bool { return e.cfg.Ignorable }

// Weight implements framework.Extender.
func (e *HTTPExtender) Weight() int64 { return e.cfg.Weight }

// SupportsFilter implements framework.Extender.
func (e *HTTPExtender) SupportsFilter() bool { return e.cfg.FilterVerb != "" }

// SupportsPrioritize implements framework.Extender.
func (e *HTTPExtender) SupportsPrioritize() bool { return e.cfg.PrioritizeVerb != "" }

// IsBinder implements framework.Extender.
func (e *HTTPExtender) IsBinder() bool { return e.cfg.BindVerb != "" }

// SupportsPreemption implements framework.Extender.
func (e *HTTPExtender) SupportsPreemption() bool { return e.cfg.PreemptVerb != "" }

// IsInterested implements framework.Extender: with managed resources, only
// pods whose containers request or limit one of them.
func (e *HTTPExtender) IsInterested(pod *v1.Pod) bool {
	if len(e.managed) == 0 {
		return true
	}
	has := func(cs []v1.Container) bool {
		for i := range cs {
			for name := range cs[i].Resources.Requests {
				if _, ok := e.managed[name]; ok {
					return true
				}
			}
			for name := range cs[i].Resources.Limits {
				if _, ok := e.managed[name]; ok {
					return true
				}
			}
		}
		return false
	}
	return has(pod.Spec.Containers) || has(pod.Spec.InitContainers)
}

// send POSTs args as JSON to the verb and decodes the answer into result.
func (e *HTTPExtender) send(ctx context.Context, verb string, args, result any) error {
	body, err := json.Marshal(args)
	if err != nil {
		return fmt.Errorf("extender %s: %w", e.Name(), err)
	}
	url := strings.TrimRight(e.cfg.URLPrefix, "/") + "/" + verb
	ctx, cancel := context.WithTimeout(ctx, e.cfg.HTTPTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("extender %s: %w", e.Name(), err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("extender %s: %w", e.Name(), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("extender %s: reading %s: %w", e.Name(), verb, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("extender %s: %s returned HTTP %d: %s", e.Name(), verb, resp.StatusCode, bytes.TrimSpace(data))
	}
	if err := json.Unmarshal(data, result); err != nil {
		return fmt.Errorf("extender %s: decoding %s result: %w", e.Name(), verb, err)
	}
	return nil
}

// nodeArgs builds the ExtenderArgs for pod and nodes: node names when the
// extender caches nodes, else the node objects.
func (e *HTTPExtender) nodeArgs(pod *v1.Pod, nodes []*framework.NodeInfo) *extenderv1.ExtenderArgs {
	args := &extenderv1.ExtenderArgs{Pod: pod}
	if e.cfg.NodeCacheCapable {
		names := make([]string, len(nodes))
		for i, n := range nodes {
			names[i] = n.Name()
		}
		args.NodeNames = &names
		return args
	}
	list := &v1.NodeList{Items: make([]v1.Node, 0, len(nodes))}
	for _, n := range nodes {
		if node := n.Node(); node != nil {
			list.Items = append(list.Items, *node)
		}
	}
	args.Nodes = list
	return args
}

// Filter implements framework.Extender.
func (e *HTTPExtender) Filter(ctx context.Context, pod *v1.Pod, nodes []*framework.NodeInfo) ([]*framework.NodeInfo, map[string]string, map[string]string, error) {
	if !e.SupportsFilter() {
		return nodes, nil, nil, nil
	}
	var result extenderv1.ExtenderFilterResult
	if err := e.send(ctx, e.cfg.FilterVerb, e.nodeArgs(pod, nodes), &result); err != nil {
		return nil, nil, nil, err
	}
	if result.Error != "" {
		return nil, nil, nil, fmt.Errorf("extender %s: filter: %s", e.Name(), result.Error)
	}
	byName := make(map[string]*framework.NodeInfo, len(nodes))
	for _, n := range nodes {
		byName[n.Name()] = n
	}
	var names []string
	switch {
	case e.cfg.NodeCacheCapable && result.NodeNames != nil:
		names = *result.NodeNames
	case result.Nodes != nil:
		for i := range result.Nodes.Items {
			names = append(names, result.Nodes.Items[i].Name)
		}
	}
	feasible := make([]*framework.NodeInfo, 0, len(names))
	for _, name := range names {
		n, ok := byName[name]
		if !ok {
			return nil, nil, nil, fmt.Errorf("extender %s: filter returned node %q that was not sent", e.Name(), name)
		}
		feasible = append(feasible, n)
	}
	return feasible, result.FailedNodes, result.FailedAndUnresolvableNodes, nil
}

// Prioritize implements framework.Extender.
func (e *HTTPExtender) Prioritize(ctx context.Context, pod *v1.Pod, nodes []*framework.NodeInfo) (map[string]int64, error) {
	if !e.SupportsPrioritize() {
		return nil, nil
	}
	var result extenderv1.HostPriorityList
	if err := e.send(ctx, e.cfg.PrioritizeVerb, e.nodeArgs(pod, nodes), &result); err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(result))
	for _, hp := range result {
		out[hp.Host] = min(max(hp.Score, extenderv1.MinExtenderPriority), extenderv1.MaxExtenderPriority)
	}
	return out, nil
}

// Bind implements framework.Extender.
func (e *HTTPExtender) Bind(ctx context.Context, pod *v1.Pod, node string) error {
	if !e.IsBinder() {
		return fmt.Errorf("extender %s does not bind", e.Name())
	}
	args := &extenderv1.ExtenderBindingArgs{PodName: pod.Name, PodNamespace: pod.Namespace, PodUID: pod.UID, Node: node}
	var result extenderv1.ExtenderBindingResult
	if err := e.send(ctx, e.cfg.BindVerb, args, &result); err != nil {
		return err
	}
	if result.Error != "" {
		return fmt.Errorf("extender %s: bind: %s", e.Name(), result.Error)
	}
	return nil
}

// ProcessPreemption implements framework.Extender.
func (e *HTTPExtender) ProcessPreemption(ctx context.Context, pod *v1.Pod, candidates map[string]*framework.Victims, snap *framework.Snapshot) (map[string]*framework.Victims, error) {
	if !e.SupportsPreemption() {
		return candidates, nil
	}
	args := &extenderv1.ExtenderPreemptionArgs{Pod: pod}
	if e.cfg.NodeCacheCapable {
		args.NodeNameToMetaVictims = make(map[string]*extenderv1.MetaVictims, len(candidates))
		for node, v := range candidates {
			mv := &extenderv1.MetaVictims{NumPDBViolations: v.NumPDBViolations}
			for _, p := range v.Pods {
				mv.Pods = append(mv.Pods, &extenderv1.MetaPod{UID: string(p.UID)})
			}
			args.NodeNameToMetaVictims[node] = mv
		}
	} else {
		args.NodeNameToVictims = make(map[string]*extenderv1.Victims, len(candidates))
		for node, v := range candidates {
			args.NodeNameToVictims[node] = &extenderv1.Victims{Pods: v.Pods, NumPDBViolations: v.NumPDBViolations}
		}
	}
	var result extenderv1.ExtenderPreemptionResult
	if err := e.send(ctx, e.cfg.PreemptVerb, args, &result); err != nil {
		return nil, err
	}
	out := make(map[string]*framework.Victims, len(result.NodeNameToMetaVictims))
	for node, mv := range result.NodeNameToMetaVictims {
		ni := snap.Get(node)
		if ni == nil || mv == nil {
			return nil, fmt.Errorf("extender %s: preempt returned unknown node %q", e.Name(), node)
		}
		v := &framework.Victims{NumPDBViolations: mv.NumPDBViolations}
		for _, mp := range mv.Pods {
			var found *v1.Pod
			for _, p := range ni.Pods {
				if p.Pod.UID == types.UID(mp.UID) {
					found = p.Pod
					break
				}
			}
			if found == nil {
				return nil, fmt.Errorf("extender %s: preempt named pod UID %s that is not on node %q", e.Name(), mp.UID, node)
			}
			v.Pods = append(v.Pods, found)
		}
		out[node] = v
	}
	return out, nil
}

// extenderPlugin names an extender in a pod's rejecting plugins; no
// profile knows the name, so any event requeues the pod.
func extenderPlugin(e framework.Extender) string { return "Extender " + e.Name() }

// filterWithExtenders runs the extenders interested in the pod over the
// nodes the plugins found feasible, adding their rejections to statuses
// (made when nil). An ignorable extender that fails is skipped; any other
// failure is an error.
func (s *Scheduler) filterWithExtenders(ctx context.Context, pod *v1.Pod, feasible []*framework.NodeInfo, statuses framework.NodeToStatus, plugins map[string]struct{}) ([]*framework.NodeInfo, framework.NodeToStatus, map[string]struct{}, *framework.Status) {
	for _, e := range s.extenders {
		if len(feasible) == 0 {
			break
		}
		if !e.SupportsFilter() || !e.IsInterested(pod) {
			continue
		}
		out, failed, unresolvable, err := e.Filter(ctx, pod, feasible)
		if err != nil {
			if e.IsIgnorable() {
				s.log.Warn("skipping ignorable extender that failed", "extender", e.Name(), "err", err)
				continue
			}
			return nil, nil, nil, framework.AsStatus(err)
		}
		if statuses == nil && len(failed)+len(unresolvable) > 0 {
			statuses = framework.NodeToStatus{}
		}
		if plugins == nil {
			plugins = map[string]struct{}{}
		}
		if len(out) < len(feasible) {
			plugins[extenderPlugin(e)] = struct{}{}
		}
		for node, msg := range unresolvable {
			statuses[node] = framework.NewStatus(framework.UnschedulableAndUnresolvable, msg)
		}
		for node, msg := range failed {
			if _, ok := statuses[node]; !ok {
				statuses[node] = framework.NewStatus(framework.Unschedulable, msg)
			}
		}
		feasible = out
	}
	return feasible, statuses, plugins, nil
}

// scoreWithExtenders adds the weighted scores of the interested extenders
// to totals; errors are logged and ignored, as upstream does.
func (s *Scheduler) scoreWithExtenders(ctx context.Context, pod *v1.Pod, feasible []*framework.NodeInfo, totals []int64) {
	for _, e := range s.extenders {
		if !e.SupportsPrioritize() || !e.IsInterested(pod) {
			continue
		}
		scores, err := e.Prioritize(ctx, pod, feasible)
		if err != nil {
			s.log.Warn("extender prioritize failed; its scores are ignored", "extender", e.Name(), "err", err)
			continue
		}
		w := e.Weight() * (framework.MaxNodeScore / framework.MaxExtenderPriority)
		for i, n := range feasible {
			totals[i] += scores[n.Name()] * w
		}
	}
}

// binderFor returns the first extender that binds pod, or nil.
func (s *Scheduler) binderFor(pod *v1.Pod) framework.Extender {
	for _, e := range s.extenders {
		if e.IsBinder() && e.IsInterested(pod) {
			return e
		}
	}
	return nil
}
