package scheduler

import (
	"context"
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/scheduler/plugins"
)

// BenchmarkQueueingHintsOnBind measures what one binding (an assigned-pod
// add event) costs the queue when 1,000 pods wait as unschedulable: each
// waiting pod's rejecting plugins are asked, with the bound pod, whether
// it may help. Half the pods were rejected by InterPodAffinity (they need
// a pod labelled app=db), half by NodeResourcesFit; the bound pod helps
// none of them, so none moves.
func BenchmarkQueueingHintsOnBind(b *testing.B) {
	ctx := context.Background()
	st := openStore(b)
	s, err := New(ctx, st, Config{Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.queue.Close()
	const waiting = 1000
	for i := range waiting {
		p := makePod("default", fmt.Sprintf("w-%d", i), "100m", "")
		p.UID = types.UID(p.Name)
		rejectedBy := plugins.NodeResourcesFitName
		if i%2 == 0 {
			rejectedBy = plugins.InterPodAffinityName
			p.Spec.Affinity = &v1.Affinity{PodAffinity: &v1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
				TopologyKey:   v1.LabelHostname,
			}}}}
		}
		s.queue.Add(p)
		qp, err := s.queue.Pop(ctx)
		if err != nil {
			b.Fatal(err)
		}
		qp.UnschedulablePlugins = pluginSet(rejectedBy)
		s.queue.AddUnschedulable(qp, s.queue.SchedulingCycle(), false)
	}
	bound := makePod("default", "web", "100m", "")
	bound.Labels = map[string]string{"app": "web"}
	bound.Spec.NodeName = "n1"
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.queue.MoveOnObjectEvent(evAssignedAdd, nil, bound)
	}
	b.StopTimer()
	if _, _, un := s.queue.Stats(); un != waiting {
		b.Fatalf("%d pods unschedulable, want %d (an irrelevant binding moved some)", un, waiting)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/waiting, "ns/waiting-pod")
}
