package controllers

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

var gvkCronJob = batchv1.SchemeGroupVersion.WithKind("CronJob")

// maxMissedSchedules is how many missed start times are looked at before
// only the latest is taken (upstream reports TooManyMissedTimes at 100).
const maxMissedSchedules = 100

// CronJob is the CronJob reconciler: it creates a Job at each time of the
// cron schedule (in spec.timeZone; when unset, in the controller's own
// zone, Config.Location, time.Local by default, as upstream), honouring
// concurrencyPolicy (Allow, Forbid, Replace), startingDeadlineSeconds and
// suspend, tracks active Jobs and last schedule/success times in status,
// and deletes finished Jobs beyond the successful/failed history limits.
type CronJob struct {
	cfg  Config
	cjs  controller.Lister[*batchv1.CronJob]
	jobs controller.Lister[*batchv1.Job]
	rec  *controller.Recorder
	// Controller runs the reconciler.
	Controller *controller.Controller
}

// NewCronJob builds the CronJob reconciler.
func NewCronJob(cfg Config) *CronJob {
	cfg = cfg.withDefaults()
	r := &CronJob{cfg: cfg, cjs: controller.ListerFor[*batchv1.CronJob](cfg.Informers), jobs: controller.ListerFor[*batchv1.Job](cfg.Informers),
		rec: controller.NewRecorder(cfg.Store, "cronjob-controller", cfg.Clock, cfg.Log)}
	c := controller.New("cronjob", r, cfg.Workers, cfg.Clock, cfg.Log)
	r.Controller = c
	r.cjs.Inf.AddHandler(enqueueHandler(c, nil))
	owner := func(o runtime.Object) { c.EnqueueOwner(o, "CronJob") }
	r.jobs.Inf.AddHandler(controller.Handler{OnAdd: owner, OnUpdate: func(_, o runtime.Object) { owner(o) }, OnDelete: owner})
	return r
}

// Run runs the reconciler and its recorder until ctx ends.
func (r *CronJob) Run(ctx context.Context) error {
	return runWithRecorder(ctx, r.rec, r.Controller)
}

// Reconcile syncs one CronJob.
func (r *CronJob) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	ns, name := controller.SplitKey(key)
	// A CronJob acts rarely and must never start a Job twice, so it reads
	// itself and its Jobs from the store, not from caches that may not yet
	// hold the Job it just created.
	cj, err := storeapi.Get[*batchv1.CronJob](ctx, r.cfg.Store, ns, name)
	if apierrors.IsNotFound(err) {
		return controller.Result{}, nil
	}
	if err != nil {
		return controller.Result{}, fmt.Errorf("cronjob %s: %w", key, err)
	}
	if cj.DeletionTimestamp != nil {
		return controller.Result{}, nil
	}
	now := r.cfg.Clock.Now()
	loc := r.cfg.Location
	if cj.Spec.TimeZone != nil {
		l, err := time.LoadLocation(*cj.Spec.TimeZone)
		if err != nil {
			r.rec.Eventf(cj, corev1.EventTypeWarning, "UnknownTimeZone", "invalid timeZone: %q: %v", *cj.Spec.TimeZone, err)
			return controller.Result{}, nil
		}
		loc = l
	}
	sched, perr := cron.ParseStandard(cj.Spec.Schedule)
	err = perr
	if err != nil {
		r.rec.Eventf(cj, corev1.EventTypeWarning, "UnparseableSchedule", "unparseable schedule: %q: %v", cj.Spec.Schedule, err)
		return controller.Result{}, nil
	}
	st := *cj.Status.DeepCopy()
	all, _, err := storeapi.ListOf[*batchv1.Job](ctx, r.cfg.Store, ns, metav1.ListOptions{})
	if err != nil {
		return controller.Result{}, fmt.Errorf("cronjob %s: list jobs: %w", key, err)
	}
	var children []*batchv1.Job
	for _, j := range all {
		if ref := controllerRefOf(j); ref != nil && ref.UID == cj.UID {
			children = append(children, j)
		}
	}
	// Status: active jobs and the last success.
	var active []*batchv1.Job
	var succeeded, failed []*batchv1.Job
	st.Active = nil
	for _, j := range children {
		done, _ := jobFinished(&j.Status)
		switch {
		case !done:
			if j.DeletionTimestamp == nil {
				active = append(active, j)
				st.Active = append(st.Active, corev1.ObjectReference{Kind: "Job", APIVersion: "batch/v1", Namespace: j.Namespace, Name: j.Name, UID: j.UID, ResourceVersion: j.ResourceVersion})
			}
		case jobHasCond(j, batchv1.JobComplete):
			succeeded = append(succeeded, j)
			if ct := j.Status.CompletionTime; ct != nil && (st.LastSuccessfulTime == nil || st.LastSuccessfulTime.Before(ct)) {
				st.LastSuccessfulTime = ct.DeepCopy()
			}
		default:
			failed = append(failed, j)
		}
	}
	sort.Slice(st.Active, func(i, j int) bool { return st.Active[i].Name < st.Active[j].Name })
	if err := r.trimHistory(ctx, succeeded, int(int32Val(cj.Spec.SuccessfulJobsHistoryLimit, 3))); err != nil {
		return controller.Result{}, err
	}
	if err := r.trimHistory(ctx, failed, int(int32Val(cj.Spec.FailedJobsHistoryLimit, 1))); err != nil {
		return controller.Result{}, err
	}
	next := func() controller.Result {
		return controller.Result{RequeueAfter: sched.Next(now.In(loc)).Sub(now) + 100*time.Millisecond}
	}
	if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
		return controller.Result{}, r.writeStatus(ctx, cj, st)
	}
	// The most recent schedule time not yet started.
	earliest := cj.CreationTimestamp.Time
	if st.LastScheduleTime != nil {
		earliest = st.LastScheduleTime.Time
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil {
		if from := now.Add(-time.Duration(*d) * time.Second); from.After(earliest) {
			earliest = from
		}
	}
	var scheduled time.Time
	missed := 0
	for t := sched.Next(earliest.In(loc)); !t.After(now); t = sched.Next(t) {
		scheduled = t
		missed++
		if missed > maxMissedSchedules {
			// Jump to the latest time not after now.
			for t2 := sched.Next(t); !t2.After(now); t2 = sched.Next(t2) {
				scheduled = t2
			}
			r.rec.Eventf(cj, corev1.EventTypeWarning, "TooManyMissedTimes", "too many missed start times: %d. Set or decrease .spec.startingDeadlineSeconds or check clock skew", missed)
			break
		}
	}
	if scheduled.IsZero() {
		if err := r.writeStatus(ctx, cj, st); err != nil {
			return controller.Result{}, err
		}
		return next(), nil
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil && scheduled.Add(time.Duration(*d)*time.Second).Before(now) {
		r.rec.Eventf(cj, corev1.EventTypeWarning, "MissSchedule", "Missed scheduled time to start a job: %s", scheduled.UTC().Format(time.RFC1123Z))
		if err := r.writeStatus(ctx, cj, st); err != nil {
			return controller.Result{}, err
		}
		return next(), nil
	}
	switch cj.Spec.ConcurrencyPolicy {
	case batchv1.ForbidConcurrent:
		if len(active) > 0 {
			if err := r.writeStatus(ctx, cj, st); err != nil {
				return controller.Result{}, err
			}
			return next(), nil
		}
	case batchv1.ReplaceConcurrent:
		bg := metav1.DeletePropagationBackground
		for _, j := range active {
			err := storeapi.Delete[*batchv1.Job](ctx, r.cfg.Store, j.Namespace, j.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
			if err != nil && !apierrors.IsNotFound(err) {
				return controller.Result{}, fmt.Errorf("cronjob %s: replace job %s: %w", key, j.Name, err)
			}
			r.rec.Eventf(cj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted job %s", j.Name)
		}
		st.Active = nil
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: cj.Namespace, Name: fmt.Sprintf("%s-%d", cj.Name, scheduled.Unix()/60),
			Labels:          map[string]string{},
			Annotations:     map[string]string{"batch.kubernetes.io/cronjob-scheduled-timestamp": scheduled.Format(time.RFC3339)},
			OwnerReferences: []metav1.OwnerReference{newControllerRef(cj, gvkCronJob)},
		},
		Spec: *cj.Spec.JobTemplate.Spec.DeepCopy(),
	}
	for k, v := range cj.Spec.JobTemplate.Labels {
		job.Labels[k] = v
	}
	for k, v := range cj.Spec.JobTemplate.Annotations {
		job.Annotations[k] = v
	}
	got, err := storeapi.Create(ctx, r.cfg.Store, job)
	switch {
	case apierrors.IsAlreadyExists(err):
	case err != nil:
		r.rec.Eventf(cj, corev1.EventTypeWarning, "FailedCreate", "Error creating job: %v", err)
		return controller.Result{}, fmt.Errorf("cronjob %s: create job: %w", key, err)
	default:
		r.rec.Eventf(cj, corev1.EventTypeNormal, "SuccessfulCreate", "Created job %s", got.Name)
		st.Active = append(st.Active, corev1.ObjectReference{Kind: "Job", APIVersion: "batch/v1", Namespace: got.Namespace, Name: got.Name, UID: got.UID, ResourceVersion: got.ResourceVersion})
	}
	t := metav1.NewTime(scheduled)
	st.LastScheduleTime = &t
	if err := r.writeStatus(ctx, cj, st); err != nil {
		return controller.Result{}, err
	}
	return next(), nil
}

func jobHasCond(j *batchv1.Job, t batchv1.JobConditionType) bool {
	c := jobCond(&j.Status, t)
	return c != nil && c.Status == corev1.ConditionTrue
}

func (r *CronJob) writeStatus(ctx context.Context, cj *batchv1.CronJob, st batchv1.CronJobStatus) error {
	if equality.Semantic.DeepEqual(cj.Status, st) {
		return nil
	}
	up := cj.DeepCopy()
	up.Status = st
	_, err := storeapi.UpdateStatus(ctx, r.cfg.Store, up)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cronjob %s/%s: update status: %w", cj.Namespace, cj.Name, err)
	}
	return nil
}

// trimHistory deletes the oldest finished jobs beyond limit.
func (r *CronJob) trimHistory(ctx context.Context, jobs []*batchv1.Job, limit int) error {
	if len(jobs) <= limit {
		return nil
	}
	sort.Slice(jobs, func(i, j int) bool {
		ti, tj := jobs[i].Status.StartTime, jobs[j].Status.StartTime
		if ti != nil && tj != nil && !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return jobName(jobs[i]) < jobName(jobs[j])
	})
	bg := metav1.DeletePropagationBackground
	for _, j := range jobs[:len(jobs)-limit] {
		if j.DeletionTimestamp != nil {
			continue
		}
		err := storeapi.Delete[*batchv1.Job](ctx, r.cfg.Store, j.Namespace, j.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("cronjob: delete old job %s: %w", j.Name, err)
		}
	}
	return nil
}

// jobName orders job names by their numeric schedule suffix.
func jobName(j *batchv1.Job) string {
	for i := len(j.Name) - 1; i >= 0; i-- {
		if j.Name[i] == '-' {
			if n, err := strconv.ParseInt(j.Name[i+1:], 10, 64); err == nil {
				return fmt.Sprintf("%020d", n)
			}
			break
		}
	}
	return j.Name
}
