package perf

import (
	"context"
	"errors"
	"fmt"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/scheduler/framework"
	"github.com/tugboatdev/tugboat/store"
)

// Check reports a violated constraint of a workload, given every node and
// pod after the run; nil means the constraint holds.
type Check func(nodes []*v1.Node, pods []*v1.Pod) error

// MaxReported bounds the violations [VerifyPlacement] lists in its error.
const MaxReported = 10

// BindKey is the key of a pod in the binding counts [Verify] and
// [VerifyPlacement] take: "namespace/name".
func BindKey(namespace, name string) string {
	return namespace + "/" + name
}

// Verify lists the nodes and pods of st and checks the run's placement:
// see [VerifyPlacement].
func Verify(ctx context.Context, st store.Interface, binds map[string]int, check Check) error {
	nodes, _, err := store.ListOf[*v1.Node](ctx, st, "", metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	pods, _, err := store.ListOf[*v1.Pod](ctx, st, "", metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	return VerifyPlacement(nodes, pods, binds, check)
}

// VerifyPlacement checks that every pod is bound, by exactly one
// successful binding (binds counts them per [BindKey]), that every pod is
// bound to one of nodes, that no node holds more cpu, memory or pods than
// it has allocatable (effective requests as the scheduler computes them),
// and the workload's own constraint (check, when not nil). The error joins
// up to [MaxReported] violations; nil means the placement is correct.
func VerifyPlacement(nodes []*v1.Node, pods []*v1.Pod, binds map[string]int, check Check) error {
	var errs []error
	report := func(err error) {
		if len(errs) < MaxReported {
			errs = append(errs, err)
		}
	}
	type use struct{ cpu, mem, n int64 }
	used := map[string]*use{}
	for _, p := range pods {
		key := BindKey(p.Namespace, p.Name)
		if p.Spec.NodeName == "" {
			report(fmt.Errorf("pod %s is not bound", key))
			continue
		}
		if n := binds[key]; n != 1 {
			report(fmt.Errorf("pod %s was bound %d times, want exactly once", key, n))
		}
		u := used[p.Spec.NodeName]
		if u == nil {
			u = &use{}
			used[p.Spec.NodeName] = u
		}
		r := framework.NewPodInfo(p).Requests
		u.cpu += r.MilliCPU
		u.mem += r.Memory
		u.n++
	}
	known := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		known[n.Name] = true
		u := used[n.Name]
		if u == nil {
			continue
		}
		a := n.Status.Allocatable
		if u.cpu > a.Cpu().MilliValue() || u.mem > a.Memory().Value() || u.n > a.Pods().Value() {
			report(fmt.Errorf("node %s is over-committed: cpu %dm, memory %d, %d pods (allocatable %v, %v, %v)",
				n.Name, u.cpu, u.mem, u.n, a.Cpu(), a.Memory(), a.Pods()))
		}
	}
	for name := range used {
		if !known[name] {
			report(fmt.Errorf("pods are bound to %s, which is not a node", name))
		}
	}
	if check != nil {
		if err := check(nodes, pods); err != nil {
			report(err)
		}
	}
	return errors.Join(errs...)
}

// CheckAntiAffinity is the [Check] of the PodAntiAffinity workload: it
// reports two pods labelled color=green ([AntiAffinityPod]) on one node.
func CheckAntiAffinity(_ []*v1.Node, pods []*v1.Pod) error {
	seen := map[string]string{}
	for _, p := range pods {
		if p.Labels["color"] != "green" || p.Spec.NodeName == "" {
			continue
		}
		if other, ok := seen[p.Spec.NodeName]; ok {
			return fmt.Errorf("anti-affinity violated: %s and %s on %s", other, p.Name, p.Spec.NodeName)
		}
		seen[p.Spec.NodeName] = p.Name
	}
	return nil
}

// CheckSpread is the [Check] of the TopologySpreading workload: it reports
// a skew above 1 over the [SpreadZones] among the bound pods labelled
// foo=bar ([SpreadPod]).
func CheckSpread(nodes []*v1.Node, pods []*v1.Pod) error {
	zone := map[string]string{}
	for _, n := range nodes {
		zone[n.Name] = n.Labels[v1.LabelTopologyZone]
	}
	count := map[string]int{}
	for _, p := range pods {
		if p.Labels["foo"] == "bar" && p.Spec.NodeName != "" {
			count[zone[p.Spec.NodeName]]++
		}
	}
	lo, hi := -1, 0
	for _, z := range SpreadZones() {
		if lo < 0 || count[z] < lo {
			lo = count[z]
		}
		hi = max(hi, count[z])
	}
	if hi-lo > 1 {
		return fmt.Errorf("topology spread violated: pods per zone %v", count)
	}
	return nil
}

// CheckNodeAffinity is the [Check] of the NodeAffinity workload: it
// reports a bound pod with node affinity ([NodeAffinityPod]) on a node
// outside [AffinityZone].
func CheckNodeAffinity(nodes []*v1.Node, pods []*v1.Pod) error {
	zone := map[string]string{}
	for _, n := range nodes {
		zone[n.Name] = n.Labels[LegacyZoneLabel]
	}
	for _, p := range pods {
		if p.Spec.Affinity != nil && p.Spec.Affinity.NodeAffinity != nil && p.Spec.NodeName != "" && zone[p.Spec.NodeName] != AffinityZone {
			return fmt.Errorf("node affinity violated: %s on %s (zone %q)", p.Name, p.Spec.NodeName, zone[p.Spec.NodeName])
		}
	}
	return nil
}
