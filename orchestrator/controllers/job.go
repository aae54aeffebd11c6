package controllers

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// Job pod re-creation back-off after failures: 10 s, doubled per failure,
// capped at 6 minutes (as upstream).
const (
	JobBackoffBase = 10 * time.Second
	JobBackoffMax  = 6 * time.Minute
)

var gvkJob = batchv1.SchemeGroupVersion.WithKind("Job")

// Job is the Job reconciler: it runs pods until spec.completions succeed
// (fixed count), until one succeeds and all have ended (work queue, no
// completions) or until every index succeeds (Indexed), at most
// spec.parallelism at a time; it fails the Job after backoffLimit
// failures (re-creating pods with exponential back-off meanwhile) or when
// activeDeadlineSeconds passes, suspends it on spec.suspend, and deletes
// finished Jobs (with their pods) ttlSecondsAfterFinished after they end.
type Job struct {
	cfg  Config
	jobs controller.Lister[*batchv1.Job]
	pods controller.Lister[*corev1.Pod]
	exp  *controller.Expectations
	rec  *controller.Recorder
	// Controller runs the reconciler.
	Controller *controller.Controller
}

// NewJob builds the Job reconciler.
func NewJob(cfg Config) *Job {
	cfg = cfg.withDefaults()
	j := &Job{cfg: cfg, jobs: controller.ListerFor[*batchv1.Job](cfg.Informers), pods: controller.ListerFor[*corev1.Pod](cfg.Informers),
		exp: controller.NewExpectations(cfg.Clock), rec: controller.NewRecorder(cfg.Store, "job-controller", cfg.Clock, cfg.Log)}
	c := controller.New("job", j, cfg.Workers, cfg.Clock, cfg.Log)
	j.Controller = c
	j.jobs.Inf.AddHandler(enqueueHandler(c, func(o runtime.Object) { j.exp.Delete(controller.KeyOf(o)) }))
	j.pods.Inf.AddHandler(podOwnerHandler(c, j.exp, "Job", nil))
	return j
}

// Run runs the reconciler and its recorder until ctx ends.
func (j *Job) Run(ctx context.Context) error {
	return runWithRecorder(ctx, j.rec, j.Controller)
}

func jobCond(st *batchv1.JobStatus, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

func jobFinished(st *batchv1.JobStatus) (bool, time.Time) {
	for _, c := range st.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true, c.LastTransitionTime.Time
		}
	}
	return false, time.Time{}
}

func setJobCond(st *batchv1.JobStatus, t batchv1.JobConditionType, s corev1.ConditionStatus, reason, msg string, now time.Time) {
	if c := jobCond(st, t); c != nil {
		if c.Status == s && c.Reason == reason {
			return
		}
		if c.Status != s {
			c.LastTransitionTime = metav1.NewTime(now)
		}
		c.Status, c.Reason, c.Message, c.LastProbeTime = s, reason, msg, metav1.NewTime(now)
		return
	}
	st.Conditions = append(st.Conditions, batchv1.JobCondition{Type: t, Status: s, Reason: reason, Message: msg,
		LastProbeTime: metav1.NewTime(now), LastTransitionTime: metav1.NewTime(now)})
}

func podIndex(p *corev1.Pod) (int, bool) {
	v, ok := p.Annotations[batchv1.JobCompletionIndexAnnotation]
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	return n, err == nil
}

// formatIndexes renders a set of indexes as upstream does: "0-2,4,6,7"
// (runs of three or more as ranges).
func formatIndexes(idx []int) string {
	sort.Ints(idx)
	var parts []string
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		switch j {
		case i:
			parts = append(parts, strconv.Itoa(idx[i]))
		case i + 1: // two neighbours are listed, as upstream does
			parts = append(parts, strconv.Itoa(idx[i]), strconv.Itoa(idx[j]))
		default:
			parts = append(parts, fmt.Sprintf("%d-%d", idx[i], idx[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func podFinishTime(p *corev1.Pod) time.Time {
	var t time.Time
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Terminated != nil && c.State.Terminated.FinishedAt.After(t) {
			t = c.State.Terminated.FinishedAt.Time
		}
		if c.LastTerminationState.Terminated != nil && c.LastTerminationState.Terminated.FinishedAt.After(t) {
			t = c.LastTerminationState.Terminated.FinishedAt.Time
		}
	}
	if t.IsZero() {
		t = p.CreationTimestamp.Time
	}
	return t
}

// Reconcile syncs one Job.
func (j *Job) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	ns, name := controller.SplitKey(key)
	job, ok := j.jobs.Get(ns, name)
	if !ok || job.DeletionTimestamp != nil {
		// Pods of a Job that is gone (or going) keep no tracking finalizer.
		var uid types.UID
		if ok {
			uid = job.UID
		}
		return controller.Result{}, j.releaseOrphans(ctx, ns, name, uid, ok)
	}
	now := j.cfg.Clock.Now()
	if done, at := jobFinished(&job.Status); done {
		// The finished status is written first; pods still running are
		// terminated after it, so a restart never loses the outcome.
		if err := j.deleteActive(ctx, job); err != nil {
			return controller.Result{}, err
		}
		if err := j.releaseAll(ctx, job); err != nil {
			return controller.Result{}, err
		}
		return j.ttl(ctx, job, at, now)
	}
	if !j.exp.Satisfied(key) {
		return controller.Result{}, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return controller.Result{}, nil
	}
	pods, err := claim(ctx, j.cfg.Store, job, gvkJob, sel, j.pods.List(ns, sel))
	if err != nil {
		return controller.Result{}, err
	}
	st := *job.Status.DeepCopy()
	jc := newJobCtx(job, pods)
	// Count finished pods: record them as uncounted in status, drop their
	// tracking finalizers, then move them into the counters.
	if job, err = j.track(ctx, job, jc, &st); err != nil {
		return controller.Result{}, err
	}
	st.Ready = ptr(jc.ready)
	st.Terminating = ptr(int32(len(jc.terminating)))
	if jc.indexed {
		st.CompletedIndexes = formatIndexSet(jc.completedIdx)
		if job.Spec.BackoffLimitPerIndex != nil {
			st.FailedIndexes = ptr(formatIndexSet(jc.failedIdx))
		}
	}
	if c := jobCond(&st, batchv1.JobSuspended); jc.suspended || (c != nil && c.Status == corev1.ConditionTrue) {
		if jc.suspended {
			setJobCond(&st, batchv1.JobSuspended, corev1.ConditionTrue, "JobSuspended", "Job suspended", now)
			st.StartTime = nil
			st.Active = 0
			return controller.Result{}, j.finishSync(ctx, job, st, jc.active)
		}
		setJobCond(&st, batchv1.JobSuspended, corev1.ConditionFalse, "JobResumed", "Job resumed", now)
	}
	if st.StartTime == nil {
		t := metav1.NewTime(now)
		st.StartTime = &t
	}
	// Has the Job reached an outcome? Then its remaining pods are
	// terminated, and it finishes once none is left uncounted.
	if jobCond(&st, batchv1.JobFailureTarget) == nil && jobCond(&st, batchv1.JobSuccessCriteriaMet) == nil {
		if reason, msg := j.failureReason(job, jc, &st, now); reason != "" {
			setJobCond(&st, batchv1.JobFailureTarget, corev1.ConditionTrue, reason, msg, now)
		} else if reason, msg := successReason(job, jc, &st); reason != "" {
			setJobCond(&st, batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, reason, msg, now)
		}
	}
	if c := jobCond(&st, batchv1.JobFailureTarget); c != nil && c.Status == corev1.ConditionTrue {
		return controller.Result{}, j.finishing(ctx, job, jc, st, batchv1.JobFailed, c.Reason, c.Message, now)
	}
	if c := jobCond(&st, batchv1.JobSuccessCriteriaMet); c != nil && c.Status == corev1.ConditionTrue {
		return controller.Result{}, j.finishing(ctx, job, jc, st, batchv1.JobComplete, c.Reason, c.Message, now)
	}
	requeue, victims, err := j.manage(ctx, key, job, jc, &st, now)
	if err != nil {
		return controller.Result{}, err
	}
	if err := j.finishSync(ctx, job, st, victims); err != nil {
		return controller.Result{}, err
	}
	if ads := job.Spec.ActiveDeadlineSeconds; ads != nil {
		d := st.StartTime.Add(time.Duration(*ads) * time.Second).Sub(now)
		if requeue == 0 || d < requeue {
			requeue = d
		}
	}
	return controller.Result{RequeueAfter: requeue}, nil
}

// manage creates missing pods (with back-off after failures) and removes
// pods beyond parallelism; it returns when to look again and the pods to delete.
func (j *Job) manage(ctx context.Context, key string, job *batchv1.Job, jc *jobCtx, st *batchv1.JobStatus, now time.Time) (time.Duration, []*corev1.Pod, error) {
	parallelism := int32Val(job.Spec.Parallelism, 1)
	// Pods being terminated still hold their place when the Job only
	// replaces failed pods (podReplacementPolicy Failed, the default with
	// a podFailurePolicy).
	occupied := len(jc.active)
	if jobReplacesOnlyFailed(job) {
		occupied += len(jc.terminating)
	}
	var want int32
	var missing []int
	var requeue time.Duration
	switch {
	case jc.indexed:
		busy := map[int]bool{}
		for i := range jc.activeIdx {
			busy[i] = true
		}
		if jobReplacesOnlyFailed(job) {
			for _, p := range jc.terminating {
				if i, ok := podIndex(p); ok {
					busy[i] = true
				}
			}
		}
		for i := 0; i < jc.completions; i++ {
			if jc.completedIdx[i] || jc.failedIdx[i] || busy[i] {
				continue
			}
			if job.Spec.BackoffLimitPerIndex != nil {
				if n := jc.indexFailures[i]; n > 0 {
					if wait := jc.indexLastFailure[i].Add(jobBackoff(n)).Sub(now); wait > 0 {
						if requeue == 0 || wait < requeue {
							requeue = wait
						}
						continue
					}
				}
			}
			missing = append(missing, i)
		}
		want = min(parallelism, int32(len(busy)+len(missing)))
	case job.Spec.Completions != nil:
		want = min(parallelism, *job.Spec.Completions-jc.succeeded)
	default:
		want = parallelism
		if jc.succeeded > 0 {
			// Work queue: after a success no new pods start, and the
			// running ones are left to end on their own.
			want = min(parallelism, int32(len(jc.active)))
		}
	}
	n := int(want) - occupied
	if failures := jc.recentFailures; n > 0 && failures > 0 && job.Spec.BackoffLimitPerIndex == nil {
		if wait := jc.lastFailure.Add(jobBackoff(failures)).Sub(now); wait > 0 {
			requeue, n = wait, 0
		}
	}
	var victims []*corev1.Pod
	if extra := len(jc.active) - int(want); extra > 0 {
		victims = append([]*corev1.Pod(nil), jc.active...)
		sortPodsForDeletion(victims)
		victims = victims[:extra]
	}
	if n <= 0 {
		st.Active = int32(len(jc.active) - len(victims))
		return requeue, victims, nil
	}
	if jc.indexed && n > len(missing) {
		n = len(missing)
	}
	j.exp.Expect(key, n, nil)
	ref := newControllerRef(job, gvkJob)
	created := 0
	var cerr error
	for i := range n {
		p := podFromTemplate(&job.Spec.Template, job.Namespace, job.Name+"-", ref)
		p.Finalizers = append(p.Finalizers, batchv1.JobTrackingFinalizer)
		if jc.indexed {
			ix := missing[i]
			idx := strconv.Itoa(ix)
			p.GenerateName = job.Name + "-" + idx + "-"
			p.Annotations[batchv1.JobCompletionIndexAnnotation] = idx
			p.Labels[batchv1.JobCompletionIndexAnnotation] = idx
			if p.Spec.Hostname == "" {
				p.Spec.Hostname = job.Name + "-" + idx
			}
			if job.Spec.BackoffLimitPerIndex != nil {
				p.Annotations[batchv1.JobIndexFailureCountAnnotation] = strconv.Itoa(int(jc.indexFailures[ix]))
			}
			for c := range p.Spec.Containers {
				p.Spec.Containers[c].Env = append(p.Spec.Containers[c].Env, corev1.EnvVar{Name: "JOB_COMPLETION_INDEX",
					ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['" + batchv1.JobCompletionIndexAnnotation + "']"}}})
			}
		}
		got, err := storeapi.Create(ctx, j.cfg.Store, p)
		if err != nil {
			cerr = err
			break
		}
		created++
		j.rec.Eventf(job, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", got.Name)
	}
	if created < n {
		j.exp.LowerCreations(key, n-created)
	}
	if cerr != nil {
		return 0, nil, fmt.Errorf("job %s: create pod: %w", key, cerr)
	}
	st.Active = int32(len(jc.active) + created)
	return requeue, nil, nil
}

// jobBackoff is the re-creation delay after failures failures: 10 s,
// doubled each time, at most 6 minutes.
func jobBackoff(failures int32) time.Duration {
	if failures <= 0 {
		return 0
	}
	return min(JobBackoffBase<<min(failures-1, 10), JobBackoffMax)
}

// jobReplacesOnlyFailed reports podReplacementPolicy Failed (the only
// one allowed with a podFailurePolicy).
func jobReplacesOnlyFailed(job *batchv1.Job) bool {
	if p := job.Spec.PodReplacementPolicy; p != nil {
		return *p == batchv1.Failed
	}
	return job.Spec.PodFailurePolicy != nil
}

// failureReason returns why the Job has failed, if it has: the active
// deadline, the back-off limit, too many failed indexes, or every index
// ended with some failed.
func (j *Job) failureReason(job *batchv1.Job, jc *jobCtx, st *batchv1.JobStatus, now time.Time) (string, string) {
	if ads := job.Spec.ActiveDeadlineSeconds; ads != nil {
		if !now.Before(st.StartTime.Add(time.Duration(*ads) * time.Second)) {
			return "DeadlineExceeded", "Job was active longer than specified deadline"
		}
	}
	if job.Spec.BackoffLimit != nil && jc.failed+jc.restarts > *job.Spec.BackoffLimit ||
		job.Spec.BackoffLimit == nil && job.Spec.BackoffLimitPerIndex == nil && jc.failed+jc.restarts > 6 {
		return "BackoffLimitExceeded", "Job has reached the specified backoff limit"
	}
	if jc.indexed && job.Spec.BackoffLimitPerIndex != nil {
		if m := job.Spec.MaxFailedIndexes; m != nil && int32(len(jc.failedIdx)) > *m {
			return "MaxFailedIndexesExceeded", "Job has exceeded the specified maximal number of failed indexes"
		}
		if len(jc.failedIdx) > 0 && len(jc.failedIdx)+len(jc.completedIdx) >= jc.completions {
			return "FailedIndexes", "Job has failed indexes"
		}
	}
	return "", ""
}

// successReason returns why the Job has succeeded, if it has: its
// successPolicy (Indexed Jobs) or reaching its completions.
func successReason(job *batchv1.Job, jc *jobCtx, st *batchv1.JobStatus) (string, string) {
	if jc.indexed && job.Spec.SuccessPolicy != nil {
		for _, rule := range job.Spec.SuccessPolicy.Rules {
			if successRuleMet(rule, jc.completedIdx, jc.completions) {
				return batchv1.JobReasonSuccessPolicy, "Matched rules at index " + strconv.Itoa(successRuleIndex(job.Spec.SuccessPolicy, rule))
			}
		}
	}
	complete := false
	switch {
	case jc.indexed:
		complete = len(jc.completedIdx) >= jc.completions
	case job.Spec.Completions != nil:
		complete = jc.succeeded >= *job.Spec.Completions
	default:
		complete = jc.succeeded > 0 && len(jc.active) == 0
	}
	if complete {
		return batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods"
	}
	return "", ""
}

func successRuleIndex(sp *batchv1.SuccessPolicy, rule batchv1.SuccessPolicyRule) int {
	for i := range sp.Rules {
		if equality.Semantic.DeepEqual(sp.Rules[i], rule) {
			return i
		}
	}
	return 0
}

// successRuleMet reports whether the succeeded indexes satisfy one
// successPolicy rule: with succeededIndexes, all of them succeeded (or
// succeededCount of them); with only succeededCount, that many indexes.
func successRuleMet(rule batchv1.SuccessPolicyRule, done map[int]bool, completions int) bool {
	if rule.SucceededIndexes == nil {
		return rule.SucceededCount != nil && int32(len(done)) >= *rule.SucceededCount
	}
	want, err := parseIndexes(*rule.SucceededIndexes, completions)
	if err != nil || len(want) == 0 {
		return false
	}
	have := 0
	for i := range want {
		if done[i] {
			have++
		}
	}
	if rule.SucceededCount != nil {
		return int32(have) >= *rule.SucceededCount
	}
	return have == len(want)
}

// finishing terminates the remaining pods of a Job that reached an
// outcome and adds the final condition (Complete or Failed) once every
// pod has ended and been counted, as upstream does since v1.31.
func (j *Job) finishing(ctx context.Context, job *batchv1.Job, jc *jobCtx, st batchv1.JobStatus, final batchv1.JobConditionType, reason, msg string, now time.Time) error {
	st.Active = 0
	if len(jc.active) > 0 || len(jc.terminating) > 0 || uncountedLen(&st) > 0 {
		return j.finishSync(ctx, job, st, jc.active)
	}
	setJobCond(&st, final, corev1.ConditionTrue, reason, msg, now)
	if final == batchv1.JobComplete {
		t := metav1.NewTime(now)
		st.CompletionTime = &t
		j.rec.Eventf(job, corev1.EventTypeNormal, "Completed", "Job completed")
	} else {
		j.rec.Eventf(job, corev1.EventTypeWarning, reason, "%s", msg)
	}
	if err := j.finishSync(ctx, job, st, nil); err != nil {
		return err
	}
	if _, err := j.ttl(ctx, job, now, now); err != nil {
		return err
	}
	if job.Spec.TTLSecondsAfterFinished != nil && *job.Spec.TTLSecondsAfterFinished > 0 {
		j.Controller.EnqueueAfter(controller.KeyOf(job), time.Duration(*job.Spec.TTLSecondsAfterFinished)*time.Second)
	}
	return nil
}

func uncountedLen(st *batchv1.JobStatus) int {
	if u := st.UncountedTerminatedPods; u != nil {
		return len(u.Succeeded) + len(u.Failed)
	}
	return 0
}

// finishSync writes the status, then deletes victims: an outcome
// (FailureTarget, SuccessCriteriaMet) is recorded before the pods it ends
// go, so a restart in between never loses it.
func (j *Job) finishSync(ctx context.Context, job *batchv1.Job, st batchv1.JobStatus, victims []*corev1.Pod) error {
	if !equality.Semantic.DeepEqual(job.Status, st) {
		up := job.DeepCopy()
		up.Status = st
		if _, err := storeapi.UpdateStatus(ctx, j.cfg.Store, up); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("job %s/%s: update status: %w", job.Namespace, job.Name, err)
		}
	}
	if len(victims) > 0 {
		uids := make([]string, len(victims))
		for i, p := range victims {
			uids[i] = string(p.UID)
		}
		j.exp.Expect(controller.KeyOf(job), 0, uids)
		for _, p := range victims {
			if _, err := deletePodByUID(ctx, j.cfg.Store, j.exp, controller.KeyOf(job), p); err != nil {
				j.exp.Delete(controller.KeyOf(job))
				return fmt.Errorf("job %s/%s: delete pod %s: %w", job.Namespace, job.Name, p.Name, err)
			}
		}
	}
	return nil
}

// deleteActive terminates the pods of a finished Job that still run.
func (j *Job) deleteActive(ctx context.Context, job *batchv1.Job) error {
	for _, p := range j.pods.ByIndex(controller.IndexControllerUID, string(job.UID)) {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if _, err := deletePodByUID(ctx, j.cfg.Store, nil, "", p); err != nil {
			return fmt.Errorf("job %s/%s: terminate pod %s: %w", job.Namespace, job.Name, p.Name, err)
		}
	}
	return nil
}

// ttl deletes a finished Job (and, through garbage collection, its pods)
// ttlSecondsAfterFinished after it finished.
func (j *Job) ttl(ctx context.Context, job *batchv1.Job, finished, now time.Time) (controller.Result, error) {
	if job.Spec.TTLSecondsAfterFinished == nil || job.DeletionTimestamp != nil {
		return controller.Result{}, nil
	}
	if job.Status.CompletionTime != nil && job.Status.CompletionTime.After(finished) {
		finished = job.Status.CompletionTime.Time
	}
	expire := finished.Add(time.Duration(*job.Spec.TTLSecondsAfterFinished) * time.Second)
	if now.Before(expire) {
		return controller.Result{RequeueAfter: expire.Sub(now)}, nil
	}
	bg := metav1.DeletePropagationBackground
	err := storeapi.Delete[*batchv1.Job](ctx, j.cfg.Store, job.Namespace, job.Name, metav1.DeleteOptions{PropagationPolicy: &bg,
		Preconditions: &metav1.Preconditions{UID: &job.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return controller.Result{}, fmt.Errorf("job %s/%s: ttl delete: %w", job.Namespace, job.Name, err)
	}
	return controller.Result{}, nil
}
