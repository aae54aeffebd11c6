package scheduler

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/store"
)

// TestQueueingHintsThroughStore checks per-object queueing hints end to
// end: a pod rejected by NodeAffinity stays unschedulable when nodes it
// cannot use are added, and is retried and bound when a node is relabelled
// to match its nodeSelector.
func TestQueueingHintsThroughStore(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	mustCreate(t, st, makeNode("n1", "4", "8Gi", 110, nil))
	s := startScheduler(t, st, Config{Logger: discardLogger(), InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	p := makePod("default", "wants-ssd", "100m", "")
	p.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	mustCreate(t, st, p)
	waitFor(t, "pod unschedulable", func() (bool, error) {
		_, _, un := s.Queue().Stats()
		return s.Stats().Unschedulable == 1 && un == 1, nil
	})

	// Irrelevant events: nodes without the label. The node informer
	// handles events in order, so once the cache holds n3, the event of
	// n2 has been fully handled.
	mustCreate(t, st, makeNode("n2", "4", "8Gi", 110, map[string]string{"disk": "hdd"}))
	mustCreate(t, st, makeNode("n3", "4", "8Gi", 110, nil))
	waitFor(t, "nodes cached", func() (bool, error) { return s.Cache().NodeCount() == 3, nil })
	if active, backoff, un := s.Queue().Stats(); un != 1 || active+backoff != 0 {
		t.Errorf("after irrelevant node adds: queue active %d backoff %d unschedulable %d, want the pod still unschedulable", active, backoff, un)
	}
	if n := s.Stats().Unschedulable; n != 1 {
		t.Errorf("pod was retried %d times after irrelevant events", n-1)
	}

	// A relevant event: n2 becomes an ssd node.
	n2, err := store.Get[*v1.Node](ctx, st, "", "n2")
	if err != nil {
		t.Fatal(err)
	}
	n2.Labels["disk"] = "ssd"
	if _, err := st.Update(ctx, n2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pod bound", bound(t, st, "default", "wants-ssd"))
	if got := getPod(t, st, "default", "wants-ssd").Spec.NodeName; got != "n2" {
		t.Errorf("pod bound to %s, want n2", got)
	}
	if n := s.Stats().Unschedulable; n != 1 {
		t.Errorf("%d failed attempts, want 1", n)
	}
}

// TestQueueingHintsPodEvents checks per-object hints for pod events: a pod
// that needs a db pod on its node (required pod affinity) is not retried
// when an unrelated assigned pod is deleted or added, and is bound once a
// db pod lands on a node.
func TestQueueingHintsPodEvents(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	mustCreate(t, st, makeNode("n1", "4", "8Gi", 110, nil))
	web := makePod("default", "web", "100m", "")
	web.Labels = map[string]string{"app": "web"}
	web.Spec.NodeName = "n1"
	mustCreate(t, st, web)
	s := startScheduler(t, st, Config{Logger: discardLogger(), InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	p := makePod("default", "needs-db", "100m", "")
	p.Spec.Affinity = &v1.Affinity{PodAffinity: &v1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
		TopologyKey:   v1.LabelHostname,
	}}}}
	mustCreate(t, st, p)
	waitFor(t, "pod unschedulable", func() (bool, error) {
		_, _, un := s.Queue().Stats()
		return s.Stats().Unschedulable == 1 && un == 1, nil
	})
	// Irrelevant: the web pod goes away, another web pod arrives.
	if _, err := st.Delete(ctx, podsResource, "default", "web", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	web2 := makePod("default", "web2", "100m", "")
	web2.Labels = map[string]string{"app": "web"}
	web2.Spec.NodeName = "n1"
	mustCreate(t, st, web2)
	// The pod informer handles events in order: once the cache holds web2,
	// both events have been handled.
	waitFor(t, "web2 cached", func() (bool, error) {
		return s.Cache().PodCount() == 1 && s.Cache().GetPod(getPod(t, st, "default", "web2").UID) != nil, nil
	})
	if active, backoff, un := s.Queue().Stats(); un != 1 || active+backoff != 0 {
		t.Errorf("after irrelevant pod events: queue active %d backoff %d unschedulable %d, want the pod still unschedulable", active, backoff, un)
	}
	if n := s.Stats().Unschedulable; n != 1 {
		t.Errorf("pod was retried %d times after irrelevant events", n-1)
	}
	// Relevant: a db pod lands on n1.
	db := makePod("default", "db", "100m", "")
	db.Labels = map[string]string{"app": "db"}
	db.Spec.NodeName = "n1"
	mustCreate(t, st, db)
	waitFor(t, "pod bound", bound(t, st, "default", "needs-db"))
	if n := s.Stats().Unschedulable; n != 1 {
		t.Errorf("%d failed attempts, want 1", n)
	}
}
