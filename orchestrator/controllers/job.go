package controllers

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store"
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
	j.jobs.Inf.AddHandler(controller.Handler{OnAdd: c.EnqueueObject, OnUpdate: func(_, o runtime.Object) { c.EnqueueObject(o) },
		OnDelete: func(o runtime.Object) { j.exp.Delete(controller.KeyOf(o)) }})
	j.pods.Inf.AddHandler(podOwnerHandler(c, j.exp, "Job", nil))
	return j
}

// Run runs the reconciler and its recorder until ctx ends.
func (j *Job) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return j.rec.Run(gctx) })
	g.Go(func() error { return j.Controller.Run(gctx) })
	return g.Wait()
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

// formatIndexes renders a sorted set of indexes as "0-2,4".
func formatIndexes(idx []int) string {
	sort.Ints(idx)
	var parts []string
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(idx[i]))
		} else {
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
	if !ok {
		return controller.Result{}, nil
	}
	now := j.cfg.Clock.Now()
	if done, at := jobFinished(&job.Status); done {
		// The finished status is written first; pods still running are
		// terminated after it, so a restart never loses the outcome.
		if err := j.deleteActive(ctx, job); err != nil {
			return controller.Result{}, err
		}
		return j.ttl(ctx, job, at, now)
	}
	if job.DeletionTimestamp != nil || !j.exp.Satisfied(key) {
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
	indexed := job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion
	var active []*corev1.Pod
	var succeeded, failed, ready, restarts int32
	var lastFailure time.Time
	doneIdx := map[int]bool{}
	activeIdx := map[int]bool{}
	for _, p := range pods {
		switch {
		case p.Status.Phase == corev1.PodSucceeded:
			succeeded++
			if i, ok := podIndex(p); ok {
				doneIdx[i] = true
			}
		case p.Status.Phase == corev1.PodFailed:
			failed++
			if t := podFinishTime(p); t.After(lastFailure) {
				lastFailure = t
			}
		case p.DeletionTimestamp == nil:
			active = append(active, p)
			if isPodReady(p) {
				ready++
			}
			if i, ok := podIndex(p); ok {
				activeIdx[i] = true
			}
			for _, c := range p.Status.ContainerStatuses {
				restarts += c.RestartCount
				if c.LastTerminationState.Terminated != nil && c.LastTerminationState.Terminated.FinishedAt.After(lastFailure) {
					lastFailure = c.LastTerminationState.Terminated.FinishedAt.Time
				}
			}
		}
	}
	st.Succeeded = max(st.Succeeded, succeeded)
	st.Failed = max(st.Failed, failed)
	st.Ready = &ready
	if indexed {
		var idx []int
		for i := range doneIdx {
			idx = append(idx, i)
		}
		st.CompletedIndexes = formatIndexes(idx)
	}
	suspended := job.Spec.Suspend != nil && *job.Spec.Suspend
	if suspended {
		setJobCond(&st, batchv1.JobSuspended, corev1.ConditionTrue, "JobSuspended", "Job suspended", now)
		st.StartTime = nil
		st.Active = 0
		return controller.Result{}, j.finishSync(ctx, job, st, active, active)
	}
	if c := jobCond(&st, batchv1.JobSuspended); c != nil && c.Status == corev1.ConditionTrue {
		setJobCond(&st, batchv1.JobSuspended, corev1.ConditionFalse, "JobResumed", "Job resumed", now)
	}
	if st.StartTime == nil {
		t := metav1.NewTime(now)
		st.StartTime = &t
	}
	// Failure: deadline, then back-off limit.
	if ads := job.Spec.ActiveDeadlineSeconds; ads != nil {
		deadline := st.StartTime.Add(time.Duration(*ads) * time.Second)
		if !now.Before(deadline) {
			return controller.Result{}, j.fail(ctx, job, st, active, "DeadlineExceeded", "Job was active longer than specified deadline", now)
		}
	}
	backoffLimit := int32Val(job.Spec.BackoffLimit, 6)
	if st.Failed+restarts > backoffLimit {
		return controller.Result{}, j.fail(ctx, job, st, active, "BackoffLimitExceeded", "Job has reached the specified backoff limit", now)
	}
	parallelism := int32Val(job.Spec.Parallelism, 1)
	// Success.
	complete := false
	switch {
	case indexed:
		complete = int32(len(doneIdx)) >= int32Val(job.Spec.Completions, 1)
	case job.Spec.Completions != nil:
		complete = st.Succeeded >= *job.Spec.Completions
	default:
		complete = st.Succeeded > 0 && len(active) == 0
	}
	if complete {
		setJobCond(&st, batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, "CompletionsReached", "Reached expected number of succeeded pods", now)
		setJobCond(&st, batchv1.JobComplete, corev1.ConditionTrue, "CompletionsReached", "Reached expected number of succeeded pods", now)
		t := metav1.NewTime(now)
		st.CompletionTime = &t
		j.rec.Eventf(job, corev1.EventTypeNormal, "Completed", "Job completed")
		st.Active = 0
		if err := j.finishSync(ctx, job, st, active, nil); err != nil {
			return controller.Result{}, err
		}
		if err := j.deleteActive(ctx, job); err != nil {
			return controller.Result{}, err
		}
		return j.ttl(ctx, job, now, now)
	}
	// How many pods should run.
	var want int32
	var missing []int
	switch {
	case indexed:
		comps := int(int32Val(job.Spec.Completions, 1))
		for i := 0; i < comps; i++ {
			if !doneIdx[i] && !activeIdx[i] {
				missing = append(missing, i)
			}
		}
		want = min(parallelism, int32(len(activeIdx)+len(missing)))
	case job.Spec.Completions != nil:
		want = min(parallelism, *job.Spec.Completions-st.Succeeded)
	default:
		want = parallelism
		if st.Succeeded > 0 {
			// Work queue: after a success no new pods start, and the
			// running ones are left to end on their own.
			want = min(parallelism, int32(len(active)))
		}
	}
	var requeue time.Duration
	var victims []*corev1.Pod
	n := int(want) - len(active)
	if n > 0 && st.Failed+restarts > 0 {
		delay := JobBackoffBase << min(st.Failed+restarts-1, 10)
		delay = min(delay, JobBackoffMax)
		if wait := lastFailure.Add(delay).Sub(now); wait > 0 {
			requeue, n = wait, 0
		}
	}
	if n < 0 {
		victims = append([]*corev1.Pod(nil), active...)
		sortPodsForDeletion(victims)
		victims = victims[:-n]
	}
	if n > 0 {
		if indexed && n > len(missing) {
			n = len(missing)
		}
		j.exp.Expect(key, n, nil)
		ref := newControllerRef(job, gvkJob)
		created := 0
		var cerr error
		for i := range n {
			p := podFromTemplate(&job.Spec.Template, job.Namespace, job.Name+"-", ref)
			if indexed {
				idx := strconv.Itoa(missing[i])
				p.GenerateName = job.Name + "-" + idx + "-"
				p.Annotations[batchv1.JobCompletionIndexAnnotation] = idx
				p.Labels[batchv1.JobCompletionIndexAnnotation] = idx
				for c := range p.Spec.Containers {
					p.Spec.Containers[c].Env = append(p.Spec.Containers[c].Env, corev1.EnvVar{Name: "JOB_COMPLETION_INDEX",
						ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['" + batchv1.JobCompletionIndexAnnotation + "']"}}})
				}
			}
			got, err := store.Create(ctx, j.cfg.Store, p)
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
			return controller.Result{}, fmt.Errorf("job %s: create pod: %w", key, cerr)
		}
		st.Active = int32(len(active) + created)
	} else {
		st.Active = int32(len(active) - len(victims))
	}
	if err := j.finishSync(ctx, job, st, active, victims); err != nil {
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

// finishSync deletes victims and writes the status.
func (j *Job) finishSync(ctx context.Context, job *batchv1.Job, st batchv1.JobStatus, _, victims []*corev1.Pod) error {
	if len(victims) > 0 {
		uids := make([]string, len(victims))
		for i, p := range victims {
			uids[i] = string(p.UID)
		}
		j.exp.Expect(controller.KeyOf(job), 0, uids)
		for _, p := range victims {
			err := store.Delete[*corev1.Pod](ctx, j.cfg.Store, p.Namespace, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}})
			if err != nil {
				j.exp.DeletionObserved(controller.KeyOf(job), string(p.UID))
				if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
					j.exp.Delete(controller.KeyOf(job))
					return fmt.Errorf("job %s/%s: delete pod %s: %w", job.Namespace, job.Name, p.Name, err)
				}
			}
		}
	}
	if equality.Semantic.DeepEqual(job.Status, st) {
		return nil
	}
	up := job.DeepCopy()
	up.Status = st
	_, err := store.UpdateStatus(ctx, j.cfg.Store, up)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("job %s/%s: update status: %w", job.Namespace, job.Name, err)
	}
	return nil
}

func (j *Job) fail(ctx context.Context, job *batchv1.Job, st batchv1.JobStatus, active []*corev1.Pod, reason, msg string, now time.Time) error {
	setJobCond(&st, batchv1.JobFailureTarget, corev1.ConditionTrue, reason, msg, now)
	setJobCond(&st, batchv1.JobFailed, corev1.ConditionTrue, reason, msg, now)
	st.Active = 0
	if err := j.finishSync(ctx, job, st, active, nil); err != nil {
		return err
	}
	j.rec.Eventf(job, corev1.EventTypeWarning, reason, "%s", msg)
	return j.deleteActive(ctx, job)
}

// deleteActive terminates the pods of a finished Job that still run.
func (j *Job) deleteActive(ctx context.Context, job *batchv1.Job) error {
	for _, p := range j.pods.ByIndex(controller.IndexControllerUID, string(job.UID)) {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		err := store.Delete[*corev1.Pod](ctx, j.cfg.Store, p.Namespace, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
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
	err := store.Delete[*batchv1.Job](ctx, j.cfg.Store, job.Namespace, job.Name, metav1.DeleteOptions{PropagationPolicy: &bg,
		Preconditions: &metav1.Preconditions{UID: &job.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return controller.Result{}, fmt.Errorf("job %s/%s: ttl delete: %w", job.Namespace, job.Name, err)
	}
	return controller.Result{}, nil
}
