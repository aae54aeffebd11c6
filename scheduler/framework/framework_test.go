package framework_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

func rl(cpu, mem string) v1.ResourceList {
	out := v1.ResourceList{}
	if cpu != "" {
		out[v1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		out[v1.ResourceMemory] = resource.MustParse(mem)
	}
	return out
}

func TestPodInfoEffectiveRequests(t *testing.T) {
	always := v1.ContainerRestartPolicyAlways
	tests := []struct {
		name    string
		spec    v1.PodSpec
		wantCPU int64
		wantMem int64
	}{
		{"sum of app containers", v1.PodSpec{Containers: []v1.Container{{Resources: v1.ResourceRequirements{Requests: rl("100m", "1Mi")}}, {Resources: v1.ResourceRequirements{Requests: rl("200m", "2Mi")}}}}, 300, 3 << 20},
		{"largest init container wins", v1.PodSpec{
			InitContainers: []v1.Container{{Resources: v1.ResourceRequirements{Requests: rl("500m", "1Mi")}}, {Resources: v1.ResourceRequirements{Requests: rl("100m", "8Mi")}}},
			Containers:     []v1.Container{{Resources: v1.ResourceRequirements{Requests: rl("200m", "2Mi")}}},
		}, 500, 8 << 20},
		{"overhead added", v1.PodSpec{
			Containers: []v1.Container{{Resources: v1.ResourceRequirements{Requests: rl("200m", "2Mi")}}},
			Overhead:   rl("50m", "1Mi"),
		}, 250, 3 << 20},
		{"sidecar init container adds to apps", v1.PodSpec{
			InitContainers: []v1.Container{{RestartPolicy: &always, Resources: v1.ResourceRequirements{Requests: rl("100m", "")}}},
			Containers:     []v1.Container{{Resources: v1.ResourceRequirements{Requests: rl("200m", "")}}},
		}, 300, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pi := framework.NewPodInfo(&v1.Pod{Spec: tt.spec})
			if pi.Requests.MilliCPU != tt.wantCPU || pi.Requests.Memory != tt.wantMem || pi.Requests.AllowedPodNumber != 1 {
				t.Errorf("requests = %dm cpu %d mem %d pods, want %dm %d 1", pi.Requests.MilliCPU, pi.Requests.Memory, pi.Requests.AllowedPodNumber, tt.wantCPU, tt.wantMem)
			}
		})
	}
}

// TestSnapshotAggregatesMatchRecount changes a snapshot at random and
// checks after each step that the incrementally maintained aggregates
// equal those of a snapshot built from scratch.
func TestSnapshotAggregatesMatchRecount(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { testAggregates(t, seed) })
	}
}

func testAggregates(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 2))
	zones := []string{"z1", "z2", "z3"}
	apps := []string{"web", "db"}
	nodes := map[string]*v1.Node{}
	pods := map[string]*v1.Pod{}
	infos := map[string]*framework.NodeInfo{}
	snap := framework.NewSnapshot()
	term := framework.NewPodInfo(&v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default"},
		Spec: v1.PodSpec{Affinity: &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, TopologyKey: "zone",
		}}}}},
	}).RequiredAntiAffinityTerms[0]
	memo := snap.MatchCounts(&term, true)
	gen := int64(0)
	rebuild := func(name string) {
		gen++
		n := nodes[name]
		if n == nil {
			snap.Set(name, nil)
			delete(infos, name)
			return
		}
		ni := framework.NewNodeInfo()
		ni.SetNode(n)
		for _, p := range pods {
			if p.Spec.NodeName == name {
				ni.AddPodInfo(framework.NewPodInfo(p))
			}
		}
		infos[name] = ni
		snap.Set(name, ni.Clone())
	}
	for step := range 400 {
		switch op := rng.IntN(4); {
		case op == 0 || len(nodes) == 0:
			name := fmt.Sprintf("n%d", rng.IntN(12))
			zone := zones[rng.IntN(3)]
			if rng.IntN(2) == 0 {
				zone = name // a hostname-like, single-node domain
			}
			nodes[name] = &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"zone": zone}}}
			if rng.IntN(5) == 0 {
				delete(nodes[name].Labels, "zone")
			}
			rebuild(name)
		case op == 1 && len(nodes) > 1:
			for name := range nodes {
				delete(nodes, name)
				for k, p := range pods {
					if p.Spec.NodeName == name {
						delete(pods, k)
					}
				}
				rebuild(name)
				break
			}
		default:
			var names []string
			for n := range nodes {
				names = append(names, n)
			}
			sort.Strings(names)
			name := names[rng.IntN(len(names))]
			pn := fmt.Sprintf("p%d", step)
			p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: pn, Namespace: "default", UID: types.UID(pn), Labels: map[string]string{"app": apps[rng.IntN(2)]}}, Spec: v1.PodSpec{NodeName: name}}
			if rng.IntN(3) == 0 {
				p.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
					LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, TopologyKey: "zone",
				}}}}
			}
			pods[pn] = p
			rebuild(name)
		}
		snap.Commit(gen)
		var nl []*v1.Node
		for _, n := range nodes {
			nl = append(nl, n)
		}
		var pl []*v1.Pod
		for _, p := range pods {
			pl = append(pl, p)
		}
		fresh := framework.NewSnapshotFrom(nl, pl)
		want := fresh.MatchCounts(&term, true)
		if d := cmp.Diff(want.Counts, memo.Counts); d != "" {
			t.Fatalf("step %d: counts (-fresh +incremental):\n%s", step, d)
		}
		if d := cmp.Diff(want.DomainNodes, memo.DomainNodes); d != "" {
			t.Fatalf("step %d: domain nodes:\n%s", step, d)
		}
		if want.Min() != memo.Min() || want.Total != memo.Total || want.NodesWithKey != memo.NodesWithKey {
			t.Fatalf("step %d: min %d/%d total %d/%d nodes %d/%d", step, want.Min(), memo.Min(), want.Total, memo.Total, want.NodesWithKey, memo.NodesWithKey)
		}
		gotAnti := map[string]map[string]int32{}
		for k, e := range snap.AntiAffinityTerms() {
			gotAnti[k] = e.Counts
		}
		wantAnti := map[string]map[string]int32{}
		for k, e := range fresh.AntiAffinityTerms() {
			wantAnti[k] = e.Counts
		}
		if d := cmp.Diff(wantAnti, gotAnti); d != "" {
			t.Fatalf("step %d: anti-affinity domains:\n%s", step, d)
		}
		for _, ni := range snap.List() {
			v, has := ni.Labels["zone"]
			if c, ok := memo.NodeCount(ni); ok {
				if want := memo.Counts[v]; has && c != want {
					t.Fatalf("step %d: per-node count %d, domain count %d", step, c, want)
				}
			} else if len(memo.DomainNodes) > 0 {
				single := true
				for _, n := range memo.DomainNodes {
					single = single && n == 1
				}
				if single {
					t.Fatalf("step %d: per-node counts unavailable though every domain is one node", step)
				}
			}
			for _, e := range snap.AntiAffinityTerms() {
				if c, ok := e.NodeCount(ni); ok && has && c != e.Counts[v] {
					t.Fatalf("step %d: anti per-node count %d, domain count %d", step, c, e.Counts[v])
				}
			}
		}
		if snap.NumNodes() != len(nodes) {
			t.Fatalf("step %d: %d nodes listed, want %d", step, snap.NumNodes(), len(nodes))
		}
	}
}

// recorder is a plugin at every extension point that records calls.
type recorder struct {
	calls  []string
	permit *framework.Status
	wait   time.Duration
}

func (r *recorder) Name() string { return "Recorder" }
func (r *recorder) PreFilter(context.Context, *framework.CycleState, *framework.PodInfo) (*framework.PreFilterResult, *framework.Status) {
	r.calls = append(r.calls, "PreFilter")
	return nil, nil
}
func (r *recorder) PreFilterExtensions() framework.PreFilterExtensions { return nil }
func (r *recorder) Filter(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, n *framework.NodeInfo) *framework.Status {
	r.calls = append(r.calls, "Filter "+n.Name())
	if n.Name() == "bad" {
		return framework.NewStatus(framework.Unschedulable, "bad node")
	}
	return nil
}
func (r *recorder) PostFilter(context.Context, *framework.CycleState, *framework.PodInfo, framework.NodeToStatus) (*framework.PostFilterResult, *framework.Status) {
	r.calls = append(r.calls, "PostFilter")
	return nil, framework.NewStatus(framework.Unschedulable)
}
func (r *recorder) PreScore(context.Context, *framework.CycleState, *framework.PodInfo, []*framework.NodeInfo) *framework.Status {
	r.calls = append(r.calls, "PreScore")
	return nil
}
func (r *recorder) Score(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, n *framework.NodeInfo) (int64, *framework.Status) {
	r.calls = append(r.calls, "Score "+n.Name())
	return int64(len(n.Name())), nil
}
func (r *recorder) ScoreExtensions() framework.ScoreExtensions { return r }
func (r *recorder) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, _ []*framework.NodeInfo, s []int64) *framework.Status {
	r.calls = append(r.calls, "NormalizeScore")
	for i := range s {
		s[i] *= 10
	}
	return nil
}
func (r *recorder) Reserve(context.Context, *framework.CycleState, *framework.PodInfo, string) *framework.Status {
	r.calls = append(r.calls, "Reserve")
	return nil
}
func (r *recorder) Unreserve(context.Context, *framework.CycleState, *framework.PodInfo, string) {
	r.calls = append(r.calls, "Unreserve")
}
func (r *recorder) Permit(context.Context, *framework.CycleState, *framework.PodInfo, string) (*framework.Status, time.Duration) {
	r.calls = append(r.calls, "Permit")
	return r.permit, r.wait
}
func (r *recorder) Bind(context.Context, *framework.CycleState, *framework.PodInfo, string) *framework.Status {
	r.calls = append(r.calls, "Bind")
	return nil
}

type nilCluster struct{}

func (nilCluster) NamespaceLabels(string) labels.Set                           { return nil }
func (nilCluster) PodDisruptionBudgets(string) []*policyv1.PodDisruptionBudget { return nil }
func (nilCluster) DeletePod(context.Context, *v1.Pod, *v1.Pod) error           { return nil }
func (nilCluster) NominatedPods(string) []*framework.PodInfo                   { return nil }
func (nilCluster) NominatedPodsByNode() map[string][]*framework.PodInfo        { return nil }
func (nilCluster) ClearNomination(context.Context, *v1.Pod)                    {}
func (nilCluster) DefaultSpreadSelector(*v1.Pod) labels.Selector               { return nil }
func (nilCluster) Bind(context.Context, *v1.Pod, string) error                 { return nil }

func TestFrameworkRunsEveryExtensionPoint(t *testing.T) {
	ctx := context.Background()
	r := &recorder{}
	reg := framework.Registry{"Recorder": func(context.Context, framework.Handle) (framework.Plugin, error) { return r, nil }}
	fw, err := framework.New(ctx, reg, []framework.PluginSpec{{Name: "Recorder", Weight: 2}}, nilCluster{})
	if err != nil {
		t.Fatal(err)
	}
	snap := framework.NewSnapshotFrom([]*v1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "bad"}}, {ObjectMeta: metav1.ObjectMeta{Name: "good"}}, {ObjectMeta: metav1.ObjectMeta{Name: "longer"}}}, nil)
	fw.SetSnapshot(snap)
	pi := framework.NewPodInfo(&v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "u"}})
	state := framework.NewCycleState()
	if _, st := fw.RunPreFilterPlugins(ctx, state, pi); !st.IsSuccess() {
		t.Fatal(st)
	}
	var feasible []*framework.NodeInfo
	statuses := framework.NodeToStatus{}
	for _, n := range snap.List() {
		if st := fw.RunFilterPlugins(ctx, state, pi, n); st.IsSuccess() {
			feasible = append(feasible, n)
		} else {
			statuses[n.Name()] = st
		}
	}
	fw.RunPostFilterPlugins(ctx, state, pi, statuses)
	fw.RunPreScorePlugins(ctx, state, pi, feasible)
	totals := make([]int64, len(feasible))
	if st := fw.RunScorePlugins(ctx, state, pi, feasible, totals); !st.IsSuccess() {
		t.Fatal(st)
	}
	if d := cmp.Diff([]int64{80, 120}, totals); d != "" {
		t.Errorf("weighted normalized totals (-want +got):\n%s", d)
	}
	fw.RunReservePluginsReserve(ctx, state, pi, "longer")
	if st := fw.RunPermitPlugins(ctx, state, pi, "longer"); !st.IsSuccess() {
		t.Fatal(st)
	}
	if st := fw.RunBindPlugins(ctx, state, pi, "longer"); !st.IsSuccess() {
		t.Fatal(st)
	}
	want := []string{"PreFilter", "Filter bad", "Filter good", "Filter longer", "PostFilter", "PreScore", "Score good", "Score longer", "NormalizeScore", "Reserve", "Permit", "Bind"}
	if d := cmp.Diff(want, r.calls); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
}

func TestPermitWait(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		act  func(wp framework.WaitingPod)
		wait time.Duration
		want framework.Code
	}{
		{"allowed", func(wp framework.WaitingPod) { wp.Allow("Recorder") }, time.Minute, framework.Success},
		{"rejected", func(wp framework.WaitingPod) { wp.Reject("Recorder", "no") }, time.Minute, framework.Unschedulable},
		{"timeout", func(framework.WaitingPod) {}, time.Millisecond, framework.Unschedulable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{permit: framework.NewStatus(framework.Wait), wait: tc.wait}
			reg := framework.Registry{"Recorder": func(context.Context, framework.Handle) (framework.Plugin, error) { return r, nil }}
			fw, err := framework.New(ctx, reg, []framework.PluginSpec{{Name: "Recorder"}}, nilCluster{})
			if err != nil {
				t.Fatal(err)
			}
			pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "u"}}
			pi := framework.NewPodInfo(pod)
			if st := fw.RunPermitPlugins(ctx, framework.NewCycleState(), pi, "n"); st.Code() != framework.Wait {
				t.Fatalf("permit = %v, want Wait", st)
			}
			wp := fw.GetWaitingPod("u")
			if wp == nil {
				t.Fatal("no waiting pod")
			}
			tc.act(wp)
			if got := fw.WaitOnPermit(ctx, pod).Code(); got != tc.want {
				t.Errorf("WaitOnPermit = %v, want %v", got, tc.want)
			}
			if fw.GetWaitingPod("u") != nil {
				t.Error("waiting pod not removed")
			}
		})
	}
}

func TestNewRejectsUnknownOrDuplicatePlugins(t *testing.T) {
	ctx := context.Background()
	r := &recorder{}
	reg := framework.Registry{"Recorder": func(context.Context, framework.Handle) (framework.Plugin, error) { return r, nil }}
	if _, err := framework.New(ctx, reg, []framework.PluginSpec{{Name: "Nope"}}, nilCluster{}); err == nil {
		t.Error("unknown plugin accepted")
	}
	if _, err := framework.New(ctx, reg, []framework.PluginSpec{{Name: "Recorder"}, {Name: "Recorder"}}, nilCluster{}); err == nil {
		t.Error("duplicate plugin accepted")
	}
}
