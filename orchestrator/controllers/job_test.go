package controllers

import (
	"fmt"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/orchestrator/simnode"
	"github.com/tugboatdev/tugboat/store"
)

func withJob(c Config) runner { return NewJob(c) }

func job(name string, completions, parallelism *int32) *batchv1.Job {
	return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: batchv1.JobSpec{Completions: completions, Parallelism: parallelism,
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}
}

func (e *env) jobPods(name string, running bool) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range e.pods("default", "batch.kubernetes.io/job-name="+name) {
		if p.DeletionTimestamp == nil && (!running || p.Status.Phase == corev1.PodRunning) {
			out = append(out, p)
		}
	}
	return out
}

func (e *env) getJob(name string) *batchv1.Job {
	j, err := store.Get[*batchv1.Job](e.ctx, e.s, "default", name)
	if err != nil {
		e.t.Fatal(err)
	}
	return j
}

func describeJob(j *batchv1.Job) string {
	s := fmt.Sprintf("active=%d succeeded=%d failed=%d idx=%q", j.Status.Active, j.Status.Succeeded, j.Status.Failed, j.Status.CompletedIndexes)
	if j.Status.FailedIndexes != nil {
		s += fmt.Sprintf(" failedIdx=%q", *j.Status.FailedIndexes)
	}
	for _, c := range j.Status.Conditions {
		s += fmt.Sprintf(" %s=%s(%s)", c.Type, c.Status, c.Reason)
	}
	return s
}

func jobHas(j *batchv1.Job, t batchv1.JobConditionType, reason string) bool {
	c := jobCond(&j.Status, t)
	return c != nil && c.Status == corev1.ConditionTrue && (reason == "" || c.Reason == reason)
}

// succeedRunning succeeds every running pod of job name, waiting for n of them.
func (e *env) succeedRunning(name string, n int) {
	e.t.Helper()
	var ps []*corev1.Pod
	e.waitFor(fmt.Sprintf("%d running pods of %s", n, name), func() (bool, string) {
		ps = e.jobPods(name, true)
		return len(ps) == n, fmt.Sprint(len(ps))
	})
	for _, p := range ps {
		if err := e.agent.Succeed(e.ctx, "default", p.Name); err != nil {
			e.t.Fatal(err)
		}
	}
}

func TestJobFixedCompletionsWithParallelism(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2}, withJob)
	mustCreate(e, job("pi", ptr(int32(5)), ptr(int32(2))))
	for _, n := range []int{2, 2, 1} {
		e.succeedRunning("pi", n)
	}
	e.waitFor("complete", func() (bool, string) {
		j := e.getJob("pi")
		return jobHas(j, batchv1.JobComplete, "") && j.Status.Succeeded == 5 && j.Status.Active == 0 && j.Status.CompletionTime != nil, describeJob(j)
	})
}

func TestJobWorkQueueDoneWhenOneSucceedsAndAllEnd(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2}, withJob)
	mustCreate(e, job("wq", nil, ptr(int32(3))))
	var ps []*corev1.Pod
	e.waitFor("3 running", func() (bool, string) { ps = e.jobPods("wq", true); return len(ps) == 3, fmt.Sprint(len(ps)) })
	if err := e.agent.Succeed(e.ctx, "default", ps[0].Name); err != nil {
		t.Fatal(err)
	}
	if ok, desc := e.settle(func() (bool, string) {
		j := e.getJob("wq")
		return !jobHas(j, batchv1.JobComplete, "") && len(e.jobPods("wq", true)) == 2, describeJob(j)
	}); !ok {
		t.Fatalf("work-queue job after one success: %s", desc)
	}
	for _, p := range ps[1:] {
		if err := e.agent.Succeed(e.ctx, "default", p.Name); err != nil {
			t.Fatal(err)
		}
	}
	e.waitFor("complete", func() (bool, string) {
		j := e.getJob("wq")
		return jobHas(j, batchv1.JobComplete, "") && j.Status.Succeeded == 3, describeJob(j)
	})
}

func TestJobIndexed(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2}, withJob)
	j := job("idx", ptr(int32(3)), ptr(int32(3)))
	mode := batchv1.IndexedCompletion
	j.Spec.CompletionMode = &mode
	mustCreate(e, j)
	var ps []*corev1.Pod
	e.waitFor("3 running", func() (bool, string) { ps = e.jobPods("idx", true); return len(ps) == 3, fmt.Sprint(len(ps)) })
	seen := map[string]bool{}
	for _, p := range ps {
		seen[p.Annotations[batchv1.JobCompletionIndexAnnotation]] = true
	}
	if len(seen) != 3 || !seen["0"] || !seen["1"] || !seen["2"] {
		t.Fatalf("indexes %v", seen)
	}
	for _, p := range ps {
		if p.Annotations[batchv1.JobCompletionIndexAnnotation] != "1" {
			if err := e.agent.Succeed(e.ctx, "default", p.Name); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.waitFor("completed indexes 0,2", func() (bool, string) {
		j := e.getJob("idx")
		return j.Status.CompletedIndexes == "0,2", describeJob(j)
	})
	e.succeedRunning("idx", 1)
	e.waitFor("complete 0-2", func() (bool, string) {
		j := e.getJob("idx")
		return jobHas(j, batchv1.JobComplete, "") && j.Status.CompletedIndexes == "0-2", describeJob(j)
	})
}

func TestJobBackoffLimitAndRecreationBackoff(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2}, withJob)
	j := job("flaky", ptr(int32(1)), ptr(int32(1)))
	j.Spec.BackoffLimit = ptr(int32(1))
	mustCreate(e, j)
	failOne := func() {
		var ps []*corev1.Pod
		e.waitFor("a running pod", func() (bool, string) { ps = e.jobPods("flaky", true); return len(ps) == 1, fmt.Sprint(len(ps)) })
		if err := e.agent.Fail(e.ctx, "default", ps[0].Name); err != nil {
			t.Fatal(err)
		}
	}
	failOne()
	// No replacement before the 10 s back-off.
	if ok, desc := e.settle(func() (bool, string) {
		return len(e.jobPods("flaky", false)) == 1, describeJob(e.getJob("flaky"))
	}); !ok {
		t.Fatalf("replacement before back-off: %s", desc)
	}
	e.clk.Step(11 * time.Second)
	failOne()
	e.waitFor("Failed BackoffLimitExceeded", func() (bool, string) {
		j := e.getJob("flaky")
		return jobHas(j, batchv1.JobFailed, "BackoffLimitExceeded") && j.Status.Failed == 2, describeJob(j)
	})
}

func TestJobActiveDeadlineAndTTL(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2}, withJob)
	j := job("slow", ptr(int32(1)), ptr(int32(2)))
	j.Spec.Completions = ptr(int32(4))
	j.Spec.ActiveDeadlineSeconds = ptr(int64(30))
	j.Spec.TTLSecondsAfterFinished = ptr(int32(100))
	mustCreate(e, j)
	e.waitFor("2 running", func() (bool, string) { n := len(e.jobPods("slow", true)); return n == 2, fmt.Sprint(n) })
	e.clk.Step(31 * time.Second)
	e.waitFor("Failed DeadlineExceeded, pods gone", func() (bool, string) {
		j := e.getJob("slow")
		return jobHas(j, batchv1.JobFailed, "DeadlineExceeded") && len(e.jobPods("slow", false)) == 0, describeJob(j)
	})
	e.clk.Step(101 * time.Second)
	e.waitFor("deleted by TTL", func() (bool, string) {
		_, err := store.Get[*batchv1.Job](e.ctx, e.s, "default", "slow")
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

func TestJobTTLZeroDeletesAtOnceWithPods(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2}, withJob)
	j := job("once", nil, nil)
	j.Spec.TTLSecondsAfterFinished = ptr(int32(0))
	mustCreate(e, j)
	e.succeedRunning("once", 1)
	e.waitFor("job and pods deleted", func() (bool, string) {
		_, err := store.Get[*batchv1.Job](e.ctx, e.s, "default", "once")
		n := len(e.pods("default", "batch.kubernetes.io/job-name=once"))
		return apierrors.IsNotFound(err) && n == 0, fmt.Sprint(err, n)
	})
}

func TestJobSuspend(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2}, withJob)
	mustCreate(e, job("s", ptr(int32(2)), ptr(int32(2))))
	e.waitFor("2 running", func() (bool, string) { n := len(e.jobPods("s", true)); return n == 2, fmt.Sprint(n) })
	update(e, "default", "s", func(j *batchv1.Job) { j.Spec.Suspend = ptr(true) })
	e.waitFor("suspended, no pods", func() (bool, string) {
		j := e.getJob("s")
		return jobHas(j, batchv1.JobSuspended, "") && len(e.jobPods("s", false)) == 0 && j.Status.Active == 0, describeJob(j)
	})
	update(e, "default", "s", func(j *batchv1.Job) { j.Spec.Suspend = ptr(false) })
	e.succeedRunning("s", 2)
	e.waitFor("complete", func() (bool, string) { j := e.getJob("s"); return jobHas(j, batchv1.JobComplete, ""), describeJob(j) })
}

func TestFormatIndexes(t *testing.T) {
	for _, tt := range []struct {
		in   []int
		want string
	}{{nil, ""}, {[]int{0}, "0"}, {[]int{2, 0, 1, 4, 6, 7}, "0-2,4,6,7"}, {[]int{1, 2}, "1,2"}} {
		if got := formatIndexes(tt.in); got != tt.want {
			t.Errorf("formatIndexes(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestJobOnFailureRestartsCountTowardsBackoffLimit(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 1}, withJob)
	j := job("restarty", ptr(int32(1)), ptr(int32(1)))
	j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	j.Spec.BackoffLimit = ptr(int32(1))
	mustCreate(e, j)
	var ps []*corev1.Pod
	e.waitFor("running", func() (bool, string) { ps = e.jobPods("restarty", true); return len(ps) == 1, fmt.Sprint(len(ps)) })
	for range 2 {
		if err := e.agent.Fail(e.ctx, "default", ps[0].Name); err != nil {
			t.Fatal(err)
		}
	}
	e.waitFor("Failed BackoffLimitExceeded after two restarts", func() (bool, string) {
		j := e.getJob("restarty")
		return jobHas(j, batchv1.JobFailed, "BackoffLimitExceeded") && len(e.jobPods("restarty", false)) == 0, describeJob(j)
	})
}
