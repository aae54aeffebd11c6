package scheduler

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/scheduler/framework"
	"github.com/tugboatdev/tugboat/scheduler/plugins"
	"github.com/tugboatdev/tugboat/store"
)

// withoutPlugin returns the default plugins minus one.
func withoutPlugin(name string) []framework.PluginSpec {
	return slices.DeleteFunc(plugins.DefaultPlugins(), func(p framework.PluginSpec) bool { return p.Name == name })
}

// TestMultipleProfiles runs two profiles in one scheduler: the default one
// and "ignore-taints" without TaintToleration. Each schedules the pods
// naming it with its own plugins, both see each other's placements (one
// cache), events name the profile, and a pod naming no profile is left
// alone.
func TestMultipleProfiles(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	tainted := makeNode("n1", "1", "4Gi", 110, nil)
	tainted.Spec.Taints = []v1.Taint{{Key: "dedicated", Value: "x", Effect: v1.TaintEffectNoSchedule}}
	mustCreate(t, st, tainted)
	mustCreate(t, st, makeNode("n2", "1", "4Gi", 110, nil))
	s := startScheduler(t, st, Config{Logger: discardLogger(), Profiles: []Profile{
		{SchedulerName: DefaultSchedulerName},
		{SchedulerName: "ignore-taints", Plugins: withoutPlugin(plugins.TaintTolerationName)},
	}})
	if diff := cmp.Diff([]string{"default-scheduler", "ignore-taints"}, s.SchedulerNames()); diff != "" {
		t.Errorf("SchedulerNames (-want +got):\n%s", diff)
	}
	if s.ProfileFramework("ignore-taints") == nil || s.ProfileFramework("nobody") != nil {
		t.Error("ProfileFramework does not match the profiles")
	}

	// The default profile respects the taint: d1 goes to n2.
	mustCreate(t, st, makePod("default", "d1", "600m", ""))
	waitFor(t, "d1 bound", bound(t, st, "default", "d1"))
	if got := getPod(t, st, "default", "d1").Spec.NodeName; got != "n2" {
		t.Fatalf("d1 on %s, want n2 (n1 is tainted)", got)
	}
	// The other profile ignores the taint and sees that n2 is full.
	t1 := makePod("default", "t1", "600m", "")
	t1.Spec.SchedulerName = "ignore-taints"
	mustCreate(t, st, t1)
	nobody := makePod("default", "nobody", "100m", "")
	nobody.Spec.SchedulerName = "nobody"
	mustCreate(t, st, nobody)
	waitFor(t, "t1 bound", bound(t, st, "default", "t1"))
	if got := getPod(t, st, "default", "t1").Spec.NodeName; got != "n1" {
		t.Errorf("t1 on %s, want n1 (n2 is full, the profile ignores taints)", got)
	}
	// A later default pod: only n2 is allowed and has 400m left.
	mustCreate(t, st, makePod("default", "d2", "300m", ""))
	waitFor(t, "d2 bound", bound(t, st, "default", "d2"))
	if got := getPod(t, st, "default", "d2").Spec.NodeName; got != "n2" {
		t.Errorf("d2 on %s, want n2", got)
	}

	// The pod naming no profile is untouched.
	p := getPod(t, st, "default", "nobody")
	if p.Spec.NodeName != "" || len(p.Status.Conditions) != 0 {
		t.Errorf("pod of an unknown scheduler was touched: node %q conditions %v", p.Spec.NodeName, p.Status.Conditions)
	}
	for _, q := range s.Queue().PendingPods() {
		if q.Name == "nobody" {
			t.Error("pod of an unknown scheduler is queued")
		}
	}

	// Scheduled events name the profile that bound the pod.
	waitFor(t, "Scheduled events", func() (bool, error) {
		evs, _, err := store.ListOf[*v1.Event](ctx, st, "default", metav1.ListOptions{})
		got := map[string]string{}
		for _, e := range evs {
			if e.Reason == "Scheduled" {
				got[e.InvolvedObject.Name] = e.Source.Component + "/" + e.ReportingController
			}
		}
		return cmp.Equal(got, map[string]string{
			"d1": "default-scheduler/default-scheduler",
			"t1": "ignore-taints/ignore-taints",
			"d2": "default-scheduler/default-scheduler",
		}), err
	})
}

// TestProfileWeights checks that each profile scores with its own weights:
// with ImageLocality weighted heavily a pod goes to the node that has its
// image, with ImageLocality disabled it follows LeastAllocated.
func TestProfileWeights(t *testing.T) {
	st := openStore(t)
	withImage := makeNode("has-image", "4", "8Gi", 110, nil)
	withImage.Status.Images = []v1.ContainerImage{{Names: []string{"registry.example/app:1"}, SizeBytes: 800 << 20}}
	mustCreate(t, st, withImage)
	mustCreate(t, st, makeNode("empty", "4", "8Gi", 110, nil))
	// Fill has-image so LeastAllocated prefers "empty".
	filler := makePod("default", "filler", "3", "6Gi")
	filler.Spec.NodeName = "has-image"
	mustCreate(t, st, filler)
	images := plugins.DefaultPlugins()
	for i := range images {
		if images[i].Name == plugins.ImageLocalityName {
			images[i].Weight = 100
		}
	}
	startScheduler(t, st, Config{Logger: discardLogger(), Profiles: []Profile{
		{SchedulerName: "image-lover", Plugins: images},
		{SchedulerName: "spreader", Plugins: withoutPlugin(plugins.ImageLocalityName)},
	}})
	for _, name := range []string{"image-lover", "spreader"} {
		p := makePod("default", name, "100m", "100Mi")
		p.Spec.SchedulerName = name
		mustCreate(t, st, p)
		waitFor(t, name+" bound", bound(t, st, "default", name))
	}
	got := map[string]string{}
	for _, name := range []string{"image-lover", "spreader"} {
		got[name] = getPod(t, st, "default", name).Spec.NodeName
	}
	if diff := cmp.Diff(map[string]string{"image-lover": "has-image", "spreader": "empty"}, got); diff != "" {
		t.Errorf("placements (-want +got):\n%s", diff)
	}
}

func TestProfilesMustBeDistinct(t *testing.T) {
	st := openStore(t)
	_, err := New(context.Background(), st, Config{Logger: discardLogger(), Profiles: []Profile{{SchedulerName: "a"}, {SchedulerName: "a"}}})
	if err == nil || !strings.Contains(err.Error(), `two profiles named "a"`) {
		t.Errorf("New with duplicate profiles: err %v", err)
	}
}
