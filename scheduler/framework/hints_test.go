package framework_test

import (
	"context"
	"errors"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

// hinted is a filter plugin registering node adds with a hint that queues
// only for nodes named "good" and fails for nodes named "broken".
type hinted struct{}

func (hinted) Name() string { return "Hinted" }
func (hinted) Filter(context.Context, *framework.CycleState, *framework.PodInfo, *framework.NodeInfo) *framework.Status {
	return nil
}
func (hinted) EventsToRegisterWithHint() []framework.ClusterEventWithHint {
	return []framework.ClusterEventWithHint{{
		Event: framework.ClusterEvent{Resource: framework.NodeResource, ActionType: framework.Add},
		QueueingHintFn: func(_ *v1.Pod, _, newObj any) (framework.QueueingHint, error) {
			switch newObj.(*v1.Node).Name {
			case "good":
				return framework.Queue, nil
			case "broken":
				return framework.QueueSkip, errors.New("cannot tell")
			}
			return framework.QueueSkip, nil
		},
	}}
}

// plain registers node adds without a hint (EnqueueExtensions).
type plain struct{}

func (plain) Name() string { return "Plain" }
func (plain) Filter(context.Context, *framework.CycleState, *framework.PodInfo, *framework.NodeInfo) *framework.Status {
	return nil
}
func (plain) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{{Resource: framework.NodeResource, ActionType: framework.Add}}
}

// silent registers nothing: it is interested in every event.
type silent struct{}

func (silent) Name() string { return "Silent" }
func (silent) Filter(context.Context, *framework.CycleState, *framework.PodInfo, *framework.NodeInfo) *framework.Status {
	return nil
}

func TestFrameworkQueueingHint(t *testing.T) {
	reg := framework.Registry{
		"Hinted": func(context.Context, framework.Handle) (framework.Plugin, error) { return hinted{}, nil },
		"Plain":  func(context.Context, framework.Handle) (framework.Plugin, error) { return plain{}, nil },
		"Silent": func(context.Context, framework.Handle) (framework.Plugin, error) { return silent{}, nil },
		"Recorder": func(context.Context, framework.Handle) (framework.Plugin, error) {
			return &recorder{}, nil
		},
	}
	fw, err := framework.New(context.Background(), reg, []framework.PluginSpec{{Name: "Hinted"}, {Name: "Plain"}, {Name: "Silent"}, {Name: "Recorder"}}, nilCluster{})
	if err != nil {
		t.Fatal(err)
	}
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}
	node := func(name string) any { return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}} }
	add := framework.ClusterEvent{Resource: framework.NodeResource, ActionType: framework.Add}
	del := framework.ClusterEvent{Resource: framework.AssignedPodResource, ActionType: framework.Delete}
	set := func(names ...string) map[string]struct{} {
		m := map[string]struct{}{}
		for _, n := range names {
			m[n] = struct{}{}
		}
		return m
	}
	tests := []struct {
		name    string
		plugins map[string]struct{}
		ev      framework.ClusterEvent
		newObj  any
		want    bool
	}{
		{"hint says Queue", set("Hinted"), add, node("good"), true},
		{"hint says QueueSkip", set("Hinted"), add, node("other"), false},
		{"hint fails: queue", set("Hinted"), add, node("broken"), true},
		{"no object: queue", set("Hinted"), add, nil, true},
		{"event not registered", set("Hinted"), del, nil, false},
		{"one of two rejectors queues", set("Hinted", "Plain"), add, node("other"), true},
		{"no hint: registered event queues", set("Plain"), add, node("other"), true},
		{"no hint: other event skips", set("Plain"), del, nil, false},
		{"no registration: everything queues", set("Silent"), del, nil, true},
		{"no rejecting plugin: queue", nil, del, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fw.QueueingHint(tt.plugins, pod, tt.ev, nil, tt.newObj); got != tt.want {
				t.Errorf("QueueingHint = %v, want %v", got, tt.want)
			}
		})
	}
	if framework.Queue.String() != "Queue" || framework.QueueSkip.String() != "QueueSkip" {
		t.Error("QueueingHint.String")
	}
}

// infoHinted registers a PodInfo hint that records the PodInfo it got.
type infoHinted struct{ got *[]*framework.PodInfo }

func (infoHinted) Name() string { return "InfoHinted" }
func (infoHinted) Filter(context.Context, *framework.CycleState, *framework.PodInfo, *framework.NodeInfo) *framework.Status {
	return nil
}
func (p infoHinted) EventsToRegisterWithHint() []framework.ClusterEventWithHint {
	return []framework.ClusterEventWithHint{{
		Event: framework.ClusterEvent{Resource: framework.NodeResource, ActionType: framework.Add},
		PodInfoQueueingHintFn: func(pi *framework.PodInfo, _, _ any) (framework.QueueingHint, error) {
			*p.got = append(*p.got, pi)
			if pi.Requests.MilliCPU > 0 {
				return framework.Queue, nil
			}
			return framework.QueueSkip, nil
		},
	}}
}

func TestFrameworkPodInfoQueueingHint(t *testing.T) {
	var got []*framework.PodInfo
	reg := framework.Registry{
		"InfoHinted": func(context.Context, framework.Handle) (framework.Plugin, error) { return infoHinted{got: &got}, nil },
		"Recorder":   func(context.Context, framework.Handle) (framework.Plugin, error) { return &recorder{}, nil },
	}
	fw, err := framework.New(context.Background(), reg, []framework.PluginSpec{{Name: "InfoHinted"}, {Name: "Recorder"}}, nilCluster{})
	if err != nil {
		t.Fatal(err)
	}
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{Requests: rl("100m", "")}}}}}
	pi := framework.NewPodInfo(pod)
	add := framework.ClusterEvent{Resource: framework.NodeResource, ActionType: framework.Add}
	plugins := map[string]struct{}{"InfoHinted": {}}
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}}
	if !fw.QueueingHintForPodInfo(plugins, pi, add, nil, node) {
		t.Error("pod requesting cpu not queued")
	}
	if len(got) != 1 || got[0] != pi {
		t.Errorf("hint did not get the queue's PodInfo: %v", got)
	}
	// Without a PodInfo the framework computes one.
	if !fw.QueueingHint(plugins, pod, add, nil, node) {
		t.Error("pod requesting cpu not queued (computed PodInfo)")
	}
	if len(got) != 2 || got[1] == pi || got[1].Requests.MilliCPU != 100 {
		t.Errorf("computed PodInfo wrong: %+v", got)
	}
}
