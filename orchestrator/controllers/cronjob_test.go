package controllers

import (
	"fmt"
	"sort"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/orchestrator/simnode"
	"github.com/tugboatdev/tugboat/store"
)

func withCronJob(c Config) runner { return NewCronJob(c) }

func cronJob(name, schedule string, policy batchv1.ConcurrencyPolicy) *batchv1.CronJob {
	return &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: batchv1.CronJobSpec{Schedule: schedule, ConcurrencyPolicy: policy,
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyOnFailure, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}}}
}

func (e *env) cronJobs(cj string) []*batchv1.Job {
	js, _, err := store.ListOf[*batchv1.Job](e.ctx, e.s, "default", metav1.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*batchv1.Job
	for _, j := range js {
		if ref := metav1.GetControllerOf(j); ref != nil && ref.Name == cj && j.DeletionTimestamp == nil {
			out = append(out, j)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

func jobNames(js []*batchv1.Job) []string {
	var s []string
	for _, j := range js {
		s = append(s, j.Name)
	}
	return s
}

// completeJob marks a Job complete as the Job controller would.
func (e *env) completeJob(name string) {
	e.t.Helper()
	j := e.getJob(name).DeepCopy()
	now := metav1.NewTime(e.clk.Now())
	j.Status.StartTime = &now
	j.Status.CompletionTime = &now
	j.Status.Succeeded = 1
	j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now})
	if _, err := store.UpdateStatus(e.ctx, e.s, j); err != nil {
		e.t.Fatal(err)
	}
}

func TestCronJobForbidAndHistory(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 1}, withCronJob)
	cj := cronJob("tick", "*/1 * * * *", batchv1.ForbidConcurrent)
	cj.Spec.SuccessfulJobsHistoryLimit = ptr(int32(1))
	mustCreate(e, cj)
	start := e.clk.Now()
	e.clk.Step(61 * time.Second)
	first := fmt.Sprintf("tick-%d", start.Add(time.Minute).Unix()/60)
	e.waitFor("first job", func() (bool, string) {
		js := e.cronJobs("tick")
		return len(js) == 1 && js[0].Name == first, fmt.Sprint(jobNames(js))
	})
	e.clk.Step(60 * time.Second)
	if ok, desc := e.settle(func() (bool, string) { js := e.cronJobs("tick"); return len(js) == 1, fmt.Sprint(jobNames(js)) }); !ok {
		t.Fatalf("Forbid started a second job: %s", desc)
	}
	e.waitFor("status.active", func() (bool, string) {
		c, _ := store.Get[*batchv1.CronJob](e.ctx, e.s, "default", "tick")
		return len(c.Status.Active) == 1 && c.Status.LastScheduleTime != nil, fmt.Sprint(c.Status)
	})
	e.completeJob(first)
	e.clk.Step(60 * time.Second)
	e.waitFor("second job", func() (bool, string) {
		js := e.cronJobs("tick")
		return len(js) == 2, fmt.Sprint(jobNames(js))
	})
	second := e.cronJobs("tick")[1].Name
	e.completeJob(second)
	// The history keeps one success: the first goes, the second stays (a
	// missed 12:03 start may legitimately run now that nothing is active).
	e.waitFor("history trimmed to the last success", func() (bool, string) {
		js := e.cronJobs("tick")
		hasFirst, hasSecond := false, false
		for _, j := range js {
			hasFirst = hasFirst || j.Name == first
			hasSecond = hasSecond || j.Name == second
		}
		return !hasFirst && hasSecond, fmt.Sprint(jobNames(js))
	})
}

func TestCronJobReplace(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 1}, withCronJob)
	mustCreate(e, cronJob("rep", "*/1 * * * *", batchv1.ReplaceConcurrent))
	e.clk.Step(61 * time.Second)
	var first string
	e.waitFor("first job", func() (bool, string) {
		js := e.cronJobs("rep")
		if len(js) == 1 {
			first = js[0].Name
		}
		return len(js) == 1, fmt.Sprint(jobNames(js))
	})
	e.clk.Step(60 * time.Second)
	e.waitFor("replaced", func() (bool, string) {
		js := e.cronJobs("rep")
		return len(js) == 1 && js[0].Name != first, fmt.Sprint(jobNames(js))
	})
}

func TestCronJobTimeZone(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 1}, withCronJob)
	cj := cronJob("morning", "0 9 * * *", batchv1.AllowConcurrent)
	cj.Spec.TimeZone = ptr("Asia/Shanghai")
	mustCreate(e, cj)
	// Now is 12:00 UTC = 20:00 in Shanghai; 09:00 there is 01:00 UTC tomorrow.
	e.clk.Step(12*time.Hour + 59*time.Minute)
	if ok, desc := e.settle(func() (bool, string) { js := e.cronJobs("morning"); return len(js) == 0, fmt.Sprint(jobNames(js)) }); !ok {
		t.Fatalf("job before 09:00 Shanghai: %s", desc)
	}
	e.clk.Step(2 * time.Minute)
	e.waitFor("job at 01:00 UTC", func() (bool, string) {
		js := e.cronJobs("morning")
		want := time.Date(2026, 1, 2, 1, 0, 0, 0, time.UTC)
		return len(js) == 1 && js[0].Name == fmt.Sprintf("morning-%d", want.Unix()/60), fmt.Sprint(jobNames(js))
	})
}

// Without spec.timeZone the schedule is read in the controller's zone
// (kube-controller-manager's local time), which Config.Location injects.
func TestCronJobControllerLocalZone(t *testing.T) {
	if got := (Config{Informers: &controller.Factory{}}).withDefaults().Location; got != time.Local {
		t.Errorf("default location %v, want time.Local", got)
	}
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, simnode.Options{Nodes: 1}, func(c Config) runner { c.Location = tokyo; return NewCronJob(c) })
	mustCreate(e, cronJob("local", "0 9 * * *", batchv1.AllowConcurrent))
	// Now is 12:00 UTC = 21:00 in Tokyo; 09:00 there is 00:00 UTC tomorrow
	// (09:00 UTC, the answer in UTC, would come 9 hours later).
	e.clk.Step(11*time.Hour + 59*time.Minute)
	if ok, desc := e.settle(func() (bool, string) { js := e.cronJobs("local"); return len(js) == 0, fmt.Sprint(jobNames(js)) }); !ok {
		t.Fatalf("job before 09:00 Tokyo: %s", desc)
	}
	e.clk.Step(2 * time.Minute)
	e.waitFor("job at 00:00 UTC", func() (bool, string) {
		js := e.cronJobs("local")
		want := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
		return len(js) == 1 && js[0].Name == fmt.Sprintf("local-%d", want.Unix()/60), fmt.Sprint(jobNames(js))
	})
}

func TestCronJobSuspendAndStartingDeadline(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 1}, withCronJob)
	cj := cronJob("late", "*/5 * * * *", batchv1.AllowConcurrent)
	cj.Spec.Suspend = ptr(true)
	cj.Spec.StartingDeadlineSeconds = ptr(int64(30))
	mustCreate(e, cj)
	e.clk.Step(6 * time.Minute)
	if ok, desc := e.settle(func() (bool, string) { js := e.cronJobs("late"); return len(js) == 0, fmt.Sprint(jobNames(js)) }); !ok {
		t.Fatalf("suspended cronjob started a job: %s", desc)
	}
	// Resumed one minute after 12:05: that start is past its 30 s deadline.
	update(e, "default", "late", func(c *batchv1.CronJob) { c.Spec.Suspend = ptr(false) })
	if ok, desc := e.settle(func() (bool, string) { js := e.cronJobs("late"); return len(js) == 0, fmt.Sprint(jobNames(js)) }); !ok {
		t.Fatalf("missed start beyond startingDeadlineSeconds ran: %s", desc)
	}
	e.clk.Step(4*time.Minute + time.Second)
	e.waitFor("12:10 job", func() (bool, string) { js := e.cronJobs("late"); return len(js) == 1, fmt.Sprint(jobNames(js)) })
}
