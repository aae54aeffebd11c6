package plugins

import (
	"context"
	"sort"
	"testing"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

// testCluster is an in-memory framework.Cluster for plugin tests.
type testCluster struct {
	nsLabels  map[string]labels.Set
	pdbs      []*policyv1.PodDisruptionBudget
	deleted   []string
	nominated map[string][]*framework.PodInfo
	spread    labels.Selector
}

func (c *testCluster) NamespaceLabels(ns string) labels.Set { return c.nsLabels[ns] }
func (c *testCluster) PodDisruptionBudgets(string) []*policyv1.PodDisruptionBudget {
	return c.pdbs
}
func (c *testCluster) DeletePod(_ context.Context, victim, _ *v1.Pod) error {
	c.deleted = append(c.deleted, victim.Name)
	return nil
}
func (c *testCluster) NominatedPods(node string) []*framework.PodInfo { return c.nominated[node] }
func (c *testCluster) NominatedPodsByNode() map[string][]*framework.PodInfo {
	if len(c.nominated) == 0 {
		return nil
	}
	return c.nominated
}
func (c *testCluster) ClearNomination(context.Context, *v1.Pod) {}
func (c *testCluster) DefaultSpreadSelector(pod *v1.Pod) labels.Selector {
	if c.spread != nil && c.spread.Matches(labels.Set(pod.Labels)) {
		return c.spread
	}
	return nil
}
func (c *testCluster) Bind(context.Context, *v1.Pod, string) error { return nil }

type env struct {
	fw      *framework.Framework
	snap    *framework.Snapshot
	cluster *testCluster
}

// newEnv builds a framework with the default plugins over a snapshot of
// nodes and (assigned) pods.
func newEnv(t *testing.T, nodes []*v1.Node, pods []*v1.Pod) *env {
	t.Helper()
	c := &testCluster{nsLabels: map[string]labels.Set{}, nominated: map[string][]*framework.PodInfo{}}
	fw, err := framework.New(context.Background(), NewRegistry(), DefaultPlugins(), c)
	if err != nil {
		t.Fatal(err)
	}
	snap := framework.NewSnapshotFrom(nodes, pods)
	snap.NamespaceLabels = c.NamespaceLabels
	fw.SetSnapshot(snap)
	return &env{fw: fw, snap: snap, cluster: c}
}

// filter runs PreFilter and Filter for pod on every node and returns the
// reasons per rejected node ("" key for a PreFilter rejection).
func (e *env) filter(t *testing.T, pod *v1.Pod) (map[string]string, *framework.CycleState) {
	t.Helper()
	ctx := context.Background()
	pi := framework.NewPodInfo(pod)
	state := framework.NewCycleState()
	out := map[string]string{}
	pre, st := e.fw.RunPreFilterPlugins(ctx, state, pi)
	if !st.IsSuccess() {
		out[""] = st.Message()
		return out, state
	}
	for _, ni := range e.snap.List() {
		if pre != nil && pre.NodeNames != nil {
			if _, ok := pre.NodeNames[ni.Name()]; !ok {
				out[ni.Name()] = "prefilter"
				continue
			}
		}
		if st := e.fw.RunFilterPlugins(ctx, state, pi, ni); !st.IsSuccess() {
			out[ni.Name()] = st.Message()
		}
	}
	return out, state
}

// feasible returns the sorted names of the nodes that pass the filters.
func (e *env) feasible(t *testing.T, pod *v1.Pod) []string {
	t.Helper()
	rej, _ := e.filter(t, pod)
	var out []string
	if _, ok := rej[""]; ok {
		return out
	}
	for _, ni := range e.snap.List() {
		if _, ok := rej[ni.Name()]; !ok {
			out = append(out, ni.Name())
		}
	}
	sort.Strings(out)
	return out
}

// scores runs PreScore and Score for one plugin over all nodes (which must
// be feasible) and returns its normalized scores by node.
func (e *env) scores(t *testing.T, pod *v1.Pod, plugin string) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	pi := framework.NewPodInfo(pod)
	state := framework.NewCycleState()
	e.fw.RunPreFilterPlugins(ctx, state, pi)
	nodes := e.snap.List()
	var p framework.ScorePlugin
	for _, pl := range e.fw.Plugins() {
		if pl.Name() == plugin {
			p = pl.(framework.ScorePlugin)
		}
	}
	if pre, ok := p.(framework.PreScorePlugin); ok {
		if st := pre.PreScore(ctx, state, pi, nodes); st.IsSkip() {
			return nil
		} else if !st.IsSuccess() {
			t.Fatalf("PreScore: %v", st)
		}
	}
	raw := make([]int64, len(nodes))
	for i, n := range nodes {
		s, st := p.Score(ctx, state, pi, n)
		if !st.IsSuccess() {
			t.Fatalf("Score: %v", st)
		}
		raw[i] = s
	}
	if ext := p.ScoreExtensions(); ext != nil {
		ext.NormalizeScore(ctx, state, pi, nodes, raw)
	}
	out := map[string]int64{}
	for i, n := range nodes {
		out[n.Name()] = raw[i]
	}
	return out
}

func node(name string, cpu, mem string, lbls map[string]string) *v1.Node {
	l := map[string]string{v1.LabelHostname: name}
	for k, v := range lbls {
		l[k] = v
	}
	rl := v1.ResourceList{
		v1.ResourceCPU:              resource.MustParse(cpu),
		v1.ResourceMemory:           resource.MustParse(mem),
		v1.ResourcePods:             resource.MustParse("110"),
		v1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}, Status: v1.NodeStatus{Allocatable: rl, Capacity: rl}}
}

func pod(name string, cpu, mem string) *v1.Pod {
	req := v1.ResourceList{}
	if cpu != "" {
		req[v1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		req[v1.ResourceMemory] = resource.MustParse(mem)
	}
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "app", Resources: v1.ResourceRequirements{Requests: req}}}},
	}
}

func on(p *v1.Pod, nodeName string) *v1.Pod {
	p.Spec.NodeName = nodeName
	return p
}

func withLabels(p *v1.Pod, kv ...string) *v1.Pod {
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		p.Labels[kv[i]] = kv[i+1]
	}
	return p
}
