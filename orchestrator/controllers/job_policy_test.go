package controllers

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/orchestrator/simnode"
	"github.com/tugboatdev/tugboat/store"
)

func indexedJob(name string, completions, parallelism int32) *batchv1.Job {
	j := job(name, ptr(completions), ptr(parallelism))
	j.Spec.CompletionMode = ptr(batchv1.IndexedCompletion)
	return j
}

// runningPodOfIndex waits for the running pod of an index and returns its name.
func (e *env) runningPodOfIndex(job string, idx int) string {
	e.t.Helper()
	var name string
	e.waitFor(fmt.Sprintf("running pod of %s index %d", job, idx), func() (bool, string) {
		for _, p := range e.jobPods(job, true) {
			if p.Annotations[batchv1.JobCompletionIndexAnnotation] == fmt.Sprint(idx) {
				name = p.Name
				return true, ""
			}
		}
		return false, describeJob(e.getJob(job))
	})
	return name
}

func (e *env) exitPod(name string, code int32) {
	e.t.Helper()
	if err := e.agent.Exit(e.ctx, "default", name, code); err != nil {
		e.t.Fatal(err)
	}
}

// jobSettled reports a finished Job whose pods are all counted and released.
func (e *env) jobSettled(name string) (bool, string) {
	j := e.getJob(name)
	for _, p := range e.pods("default", "batch.kubernetes.io/job-name="+name) {
		if hasTrackingFinalizer(p) {
			return false, "pod " + p.Name + " keeps its finalizer; " + describeJob(j)
		}
	}
	done, _ := jobFinished(&j.Status)
	return done && uncountedLen(&j.Status) == 0, describeJob(j)
}

func TestJobPodFailurePolicyFailJob(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2}, withJob)
	j := job("pfp", ptr(int32(3)), ptr(int32(2)))
	j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
			ContainerName: ptr("c"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}},
	}}
	mustCreate(e, j)
	var ps []*corev1.Pod
	e.waitFor("2 running", func() (bool, string) { ps = e.jobPods("pfp", true); return len(ps) == 2, fmt.Sprint(len(ps)) })
	for _, p := range ps {
		if !hasTrackingFinalizer(p) {
			t.Errorf("pod %s lacks %s", p.Name, batchv1.JobTrackingFinalizer)
		}
	}
	e.exitPod(ps[0].Name, 42)
	e.waitFor("Failed by the policy, other pod terminated", func() (bool, string) {
		j := e.getJob("pfp")
		ok, desc := e.jobSettled("pfp")
		return ok && jobHas(j, batchv1.JobFailureTarget, batchv1.JobReasonPodFailurePolicy) &&
			jobHas(j, batchv1.JobFailed, batchv1.JobReasonPodFailurePolicy) && len(e.jobPods("pfp", true)) == 0, desc
	})
	c := jobCond(&e.getJob("pfp").Status, batchv1.JobFailed)
	want := fmt.Sprintf("Container c for pod default/%s failed with exit code 42 matching FailJob rule at index 0", ps[0].Name)
	if c.Message != want {
		t.Errorf("message %q, want %q", c.Message, want)
	}
	// Both pods count as failed: the one that exited and the one
	// terminated because the Job failed.
	if got := e.getJob("pfp").Status.Failed; got != 2 {
		t.Errorf("failed %d, want 2", got)
	}
}

func TestJobPodFailurePolicyIgnoreAndCount(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2}, withJob)
	j := job("pfi", ptr(int32(1)), ptr(int32(1)))
	j.Spec.BackoffLimit = ptr(int32(0))
	j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{
			{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}},
		{Action: batchv1.PodFailurePolicyActionCount, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
			Operator: batchv1.PodFailurePolicyOnExitCodesOpNotIn, Values: []int32{42}}},
	}}
	mustCreate(e, j)
	// A disrupted pod is ignored: no failure counted, replaced at once
	// (no back-off), although backoffLimit is 0.
	first := e.jobPods("pfi", false)
	e.waitFor("running", func() (bool, string) { first = e.jobPods("pfi", true); return len(first) == 1, "" })
	if err := e.agent.SetCondition(e.ctx, "default", first[0].Name, corev1.PodCondition{Type: corev1.DisruptionTarget,
		Status: corev1.ConditionTrue, Reason: "EvictionByEvictionAPI"}); err != nil {
		t.Fatal(err)
	}
	e.exitPod(first[0].Name, 137)
	e.waitFor("replacement without back-off", func() (bool, string) {
		ps := e.jobPods("pfi", true)
		j := e.getJob("pfi")
		return len(ps) == 1 && ps[0].Name != first[0].Name && j.Status.Failed == 0 && !jobHas(j, batchv1.JobFailureTarget, ""), describeJob(j)
	})
	// Exit code 1 matches the Count rule: with backoffLimit 0 the Job fails.
	e.exitPod(e.jobPods("pfi", true)[0].Name, 1)
	e.waitFor("Failed BackoffLimitExceeded", func() (bool, string) {
		j := e.getJob("pfi")
		ok, desc := e.jobSettled("pfi")
		return ok && jobHas(j, batchv1.JobFailed, "BackoffLimitExceeded") && j.Status.Failed == 1, desc
	})
}

func TestJobBackoffLimitPerIndexAndFailIndex(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2}, withJob)
	j := indexedJob("per", 4, 4)
	j.Spec.BackoffLimit = ptr(int32(math.MaxInt32))
	j.Spec.BackoffLimitPerIndex = ptr(int32(1))
	j.Spec.MaxFailedIndexes = ptr(int32(2))
	j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{Action: batchv1.PodFailurePolicyActionFailIndex, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
			Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}},
	}}
	mustCreate(e, j)
	// Index 0: exit 42 fails the index at once.
	e.exitPod(e.runningPodOfIndex("per", 0), 42)
	// Index 1: fails once, is retried after the back-off with the failure
	// count on the new pod, and fails again: beyond backoffLimitPerIndex.
	e.exitPod(e.runningPodOfIndex("per", 1), 1)
	e.waitFor("index 0 failed, index 1 waiting", func() (bool, string) {
		j := e.getJob("per")
		return j.Status.FailedIndexes != nil && *j.Status.FailedIndexes == "0" && j.Status.Failed == 2, describeJob(j)
	})
	e.clk.Step(11 * time.Second)
	second := e.runningPodOfIndex("per", 1)
	p, _ := store.Get[*corev1.Pod](e.ctx, e.s, "default", second)
	if got := p.Annotations[batchv1.JobIndexFailureCountAnnotation]; got != "1" {
		t.Errorf("failure-count annotation of the retry = %q, want 1", got)
	}
	e.exitPod(second, 1)
	e.waitFor("indexes 0,1 failed", func() (bool, string) {
		j := e.getJob("per")
		return j.Status.FailedIndexes != nil && *j.Status.FailedIndexes == "0,1" && !jobHas(j, batchv1.JobFailureTarget, ""), describeJob(j)
	})
	// The others succeed: every index ended, some failed → FailedIndexes.
	for _, i := range []int{2, 3} {
		if err := e.agent.Succeed(e.ctx, "default", e.runningPodOfIndex("per", i)); err != nil {
			t.Fatal(err)
		}
	}
	e.waitFor("Failed FailedIndexes", func() (bool, string) {
		j := e.getJob("per")
		ok, desc := e.jobSettled("per")
		return ok && jobHas(j, batchv1.JobFailed, "FailedIndexes") && j.Status.CompletedIndexes == "2,3" && j.Status.Succeeded == 2, desc
	})
}

func TestJobMaxFailedIndexesExceeded(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2}, withJob)
	j := indexedJob("mfi", 3, 3)
	j.Spec.BackoffLimit = ptr(int32(math.MaxInt32))
	j.Spec.BackoffLimitPerIndex = ptr(int32(0))
	j.Spec.MaxFailedIndexes = ptr(int32(1))
	mustCreate(e, j)
	e.exitPod(e.runningPodOfIndex("mfi", 0), 1)
	e.exitPod(e.runningPodOfIndex("mfi", 2), 1)
	e.waitFor("Failed MaxFailedIndexesExceeded, index 1 terminated", func() (bool, string) {
		j := e.getJob("mfi")
		ok, desc := e.jobSettled("mfi")
		return ok && jobHas(j, batchv1.JobFailed, "MaxFailedIndexesExceeded") && *j.Status.FailedIndexes == "0,2" && len(e.jobPods("mfi", true)) == 0, desc
	})
}

func TestJobSuccessPolicy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rule    batchv1.SuccessPolicyRule
		succeed []int
	}{
		{"leader index", batchv1.SuccessPolicyRule{SucceededIndexes: ptr("0")}, []int{0}},
		{"two of the workers", batchv1.SuccessPolicyRule{SucceededIndexes: ptr("1-4"), SucceededCount: ptr(int32(2))}, []int{3, 4}},
		{"any three", batchv1.SuccessPolicyRule{SucceededCount: ptr(int32(3))}, []int{0, 2, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, simnode.Options{Nodes: 2}, withJob)
			j := indexedJob("sp", 5, 5)
			j.Spec.SuccessPolicy = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{
				{SucceededIndexes: ptr("9")}, // never met: beyond completions
				tc.rule,
			}}
			mustCreate(e, j)
			for _, i := range tc.succeed[:len(tc.succeed)-1] {
				if err := e.agent.Succeed(e.ctx, "default", e.runningPodOfIndex("sp", i)); err != nil {
					t.Fatal(err)
				}
			}
			if ok, desc := e.settle(func() (bool, string) {
				j := e.getJob("sp")
				return !jobHas(j, batchv1.JobSuccessCriteriaMet, ""), describeJob(j)
			}); !ok {
				t.Fatalf("success before the rule is met: %s", desc)
			}
			last := tc.succeed[len(tc.succeed)-1]
			if err := e.agent.Succeed(e.ctx, "default", e.runningPodOfIndex("sp", last)); err != nil {
				t.Fatal(err)
			}
			e.waitFor("Complete by SuccessPolicy, the rest terminated", func() (bool, string) {
				j := e.getJob("sp")
				ok, desc := e.jobSettled("sp")
				return ok && jobHas(j, batchv1.JobSuccessCriteriaMet, batchv1.JobReasonSuccessPolicy) &&
					jobHas(j, batchv1.JobComplete, batchv1.JobReasonSuccessPolicy) && len(e.jobPods("sp", true)) == 0 &&
					j.Status.CompletionTime != nil, desc
			})
			j = e.getJob("sp")
			if got, want := j.Status.Succeeded, int32(len(tc.succeed)); got != want {
				t.Errorf("succeeded %d, want %d", got, want)
			}
			want := map[int]bool{}
			for _, i := range tc.succeed {
				want[i] = true
			}
			got, err := parseIndexes(j.Status.CompletedIndexes, 0)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("completed indexes %q (-want +got):\n%s", j.Status.CompletedIndexes, d)
			}
		})
	}
}

// Every ended pod is counted exactly once and released; a pod deleted
// while running counts as failed (it never succeeded), once.
func TestJobFinalizerTracking(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2}, withJob)
	mustCreate(e, job("trk", ptr(int32(3)), ptr(int32(3))))
	var ps []*corev1.Pod
	e.waitFor("3 running", func() (bool, string) { ps = e.jobPods("trk", true); return len(ps) == 3, "" })
	if err := store.Delete[*corev1.Pod](e.ctx, e.s, "default", ps[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("deleted pod counted as failed and gone", func() (bool, string) {
		j := e.getJob("trk")
		_, err := store.Get[*corev1.Pod](e.ctx, e.s, "default", ps[0].Name)
		return j.Status.Failed == 1 && uncountedLen(&j.Status) == 0 && err != nil, describeJob(j)
	})
	e.clk.Step(11 * time.Second) // back-off before the replacement
	for _, p := range ps[1:] {
		if err := e.agent.Succeed(e.ctx, "default", p.Name); err != nil {
			t.Fatal(err)
		}
	}
	e.succeedRunning("trk", 1)
	e.waitFor("complete", func() (bool, string) {
		ok, desc := e.jobSettled("trk")
		return ok && jobHas(e.getJob("trk"), batchv1.JobComplete, batchv1.JobReasonCompletionsReached), desc
	})
	if ok, desc := e.settle(func() (bool, string) {
		j := e.getJob("trk")
		return j.Status.Succeeded == 3 && j.Status.Failed == 1, describeJob(j)
	}); !ok {
		t.Fatalf("counts: %s, want succeeded 3 failed 1", desc)
	}
}

// A Job restarted with pods recorded as uncounted counts them once: those
// already released move into the counters, the others are released first.
func TestJobTrackingResumesFromUncounted(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 1}) // no Job controller yet
	j := mustCreate(e, job("resume", ptr(int32(2)), ptr(int32(2))))
	ref := newControllerRef(j, gvkJob)
	mk := func(name string, finalizer bool) *corev1.Pod {
		p := podFromTemplate(&j.Spec.Template, "default", "", ref)
		p.Name = name
		if finalizer {
			p.Finalizers = []string{batchv1.JobTrackingFinalizer}
		}
		p = mustCreate(e, p)
		e.waitFor(name+" running", func() (bool, string) {
			q, _ := store.Get[*corev1.Pod](e.ctx, e.s, "default", name)
			return q.Status.Phase == corev1.PodRunning, string(q.Status.Phase)
		})
		if err := e.agent.Succeed(e.ctx, "default", name); err != nil {
			t.Fatal(err)
		}
		return p
	}
	released, held := mk("resume-a", false), mk("resume-b", true)
	up := e.getJob("resume").DeepCopy()
	up.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{Succeeded: []types.UID{released.UID, held.UID}}
	if _, err := store.UpdateStatus(e.ctx, e.s, up); err != nil {
		t.Fatal(err)
	}
	r := NewJob(e.cfg)
	e.cfg.Informers.Start(e.ctx, e.g)
	e.g.Go(func() error { return r.Run(e.ctx) })
	e.waitFor("complete with 2 succeeded", func() (bool, string) {
		ok, desc := e.jobSettled("resume")
		j := e.getJob("resume")
		return ok && j.Status.Succeeded == 2 && jobHas(j, batchv1.JobComplete, ""), desc
	})
	if ok, desc := e.settle(func() (bool, string) { j := e.getJob("resume"); return j.Status.Succeeded == 2, describeJob(j) }); !ok {
		t.Fatalf("counted twice: %s", desc)
	}
}

func TestParseIndexes(t *testing.T) {
	for _, tc := range []struct {
		in    string
		limit int
		want  string
		bad   bool
	}{
		{"", 10, "", false},
		{"0-2,4,7-9", 0, "0-2,4,7-9", false},
		{"0-2,4,7-9", 8, "0-2,4,7", false},
		{"3", 3, "", false},
		{"1-", 0, "", true},
		{"2-1", 0, "", true},
		{"a", 0, "", true},
		{"01", 0, "", true},
		{"-1", 0, "", true},
	} {
		got, err := parseIndexes(tc.in, tc.limit)
		if (err != nil) != tc.bad {
			t.Errorf("parseIndexes(%q): err %v", tc.in, err)
			continue
		}
		if err == nil && formatIndexSet(got) != tc.want {
			t.Errorf("parseIndexes(%q, %d) = %q, want %q", tc.in, tc.limit, formatIndexSet(got), tc.want)
		}
	}
}

func FuzzParseIndexes(f *testing.F) {
	for _, s := range []string{"", "0", "0-2,4", "1-0", "5-5,6", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		set, err := parseIndexes(s, 1000)
		if err != nil {
			return
		}
		// Formatting and parsing again gives the same set.
		again, err := parseIndexes(formatIndexSet(set), 1000)
		if err != nil {
			t.Fatalf("reparse of %q: %v", formatIndexSet(set), err)
		}
		if d := cmp.Diff(set, again); d != "" {
			t.Fatalf("round trip of %q: %s", s, d)
		}
	})
}

// The re-creation back-off doubles with each failure (10 s, 20 s, …) and
// starts again at 10 s after a pod succeeds, as the seeds describe.
func TestJobBackoffResetsAfterSuccess(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 1}, withJob)
	mustCreate(e, job("bo", ptr(int32(3)), ptr(int32(1))))
	running := func() string {
		var name string
		e.waitFor("a running pod", func() (bool, string) {
			ps := e.jobPods("bo", true)
			if len(ps) == 1 {
				name = ps[0].Name
			}
			return len(ps) == 1, describeJob(e.getJob("bo"))
		})
		return name
	}
	noPodFor := func(what string) {
		if ok, desc := e.settle(func() (bool, string) { return len(e.jobPods("bo", true)) == 0, describeJob(e.getJob("bo")) }); !ok {
			t.Fatalf("replacement %s: %s", what, desc)
		}
	}
	e.exitPod(running(), 1)
	noPodFor("before 10 s")
	e.clk.Step(11 * time.Second)
	e.exitPod(running(), 1)
	e.clk.Step(11 * time.Second)
	noPodFor("before 20 s after the second failure")
	e.clk.Step(10 * time.Second)
	if err := e.agent.Succeed(e.ctx, "default", running()); err != nil {
		t.Fatal(err)
	}
	// A success: the next pod comes at once, and the next failure waits 10 s only.
	e.exitPod(running(), 1)
	e.clk.Step(11 * time.Second)
	running()
}

// The upstream pattern: pods evicted by a NoExecute taint carry the
// DisruptionTarget condition, and a podFailurePolicy Ignore rule on it
// keeps such evictions from counting against backoffLimit.
func TestJobIgnoresTaintEvictionByPolicy(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2}, withJob, withNodeLifecycle)
	j := job("evictable", ptr(int32(1)), ptr(int32(1)))
	j.Spec.BackoffLimit = ptr(int32(0))
	j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget}}},
	}}
	mustCreate(e, j)
	var first *corev1.Pod
	e.waitFor("running", func() (bool, string) {
		ps := e.jobPods("evictable", true)
		if len(ps) == 1 {
			first = ps[0]
		}
		return len(ps) == 1, ""
	})
	update(e, "", first.Spec.NodeName, func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "maintenance", Effect: corev1.TaintEffectNoExecute})
	})
	e.waitFor("evicted pod ignored, replaced on the other node", func() (bool, string) {
		j := e.getJob("evictable")
		for _, p := range e.jobPods("evictable", true) {
			if p.Spec.NodeName != first.Spec.NodeName {
				return j.Status.Failed == 0 && !jobHas(j, batchv1.JobFailureTarget, ""), describeJob(j)
			}
		}
		return false, describeJob(j)
	})
	e.succeedRunningOn("evictable", first.Spec.NodeName)
	e.waitFor("complete without a counted failure", func() (bool, string) {
		j := e.getJob("evictable")
		ok, desc := e.jobSettled("evictable")
		return ok && jobHas(j, batchv1.JobComplete, "") && j.Status.Failed == 0 && j.Status.Succeeded == 1, desc
	})
}

// succeedRunningOn succeeds the running pods of job that are not on node.
func (e *env) succeedRunningOn(job, notNode string) {
	e.t.Helper()
	for _, p := range e.jobPods(job, true) {
		if p.Spec.NodeName != notNode {
			if err := e.agent.Succeed(e.ctx, "default", p.Name); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}
