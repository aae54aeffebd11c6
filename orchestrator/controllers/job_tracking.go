package controllers

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// podOutcome is what a Job makes of one of its pods.
type podOutcome int

const (
	podRunning     podOutcome = iota // active, or terminating and not (yet) failed
	podSucceeded                     // counts towards completions
	podFailed                        // counts towards backoffLimit
	podIgnored                       // failed, but a podFailurePolicy Ignore rule matched
	podUncountable                   // ended while the Job was suspended
)

// jobCtx is one sync's view of a Job's pods.
type jobCtx struct {
	indexed     bool
	completions int
	suspended   bool
	pods        []*corev1.Pod
	outcome     map[types.UID]podOutcome
	// failJob is the message of a podFailurePolicy FailJob rule matched
	// by a failed pod, per pod.
	failJob map[types.UID]string

	active      []*corev1.Pod // not ended, not being deleted
	terminating []*corev1.Pod // being deleted, not ended
	activeIdx   map[int]bool

	completedIdx     map[int]bool
	failedIdx        map[int]bool
	indexFailures    map[int]int32
	indexLastFailure map[int]time.Time

	ready, restarts int32
	lastFailure     time.Time
	// recentFailures counts the failures since the last success (with
	// restarts of running pods): the re-creation back-off grows with
	// them and starts afresh after a success, as upstream.
	recentFailures int32
	// succeeded and failed are the status counters plus the pods still
	// uncounted; set by track.
	succeeded, failed int32
}

func newJobCtx(job *batchv1.Job, pods []*corev1.Pod) *jobCtx {
	jc := &jobCtx{
		indexed:     job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion,
		completions: int(int32Val(job.Spec.Completions, 1)),
		suspended:   job.Spec.Suspend != nil && *job.Spec.Suspend,
		pods:        pods, outcome: map[types.UID]podOutcome{}, failJob: map[types.UID]string{},
		activeIdx: map[int]bool{}, completedIdx: map[int]bool{}, failedIdx: map[int]bool{},
		indexFailures: map[int]int32{}, indexLastFailure: map[int]time.Time{},
	}
	if jc.indexed {
		if set, err := parseIndexes(job.Status.CompletedIndexes, jc.completions); err == nil {
			jc.completedIdx = set
		}
		if job.Status.FailedIndexes != nil {
			if set, err := parseIndexes(*job.Status.FailedIndexes, jc.completions); err == nil {
				jc.failedIdx = set
			}
		}
	}
	perIndex := job.Spec.BackoffLimitPerIndex
	// Once the Job has an outcome, pods it terminates fail no index.
	outcomeReached := jobCond(&job.Status, batchv1.JobFailureTarget) != nil || jobCond(&job.Status, batchv1.JobSuccessCriteriaMet) != nil
	for _, p := range pods {
		idx, hasIdx := podIndex(p)
		hasIdx = hasIdx && jc.indexed && idx >= 0 && idx < jc.completions
		if hasIdx && perIndex != nil {
			if n, err := strconv.Atoi(p.Annotations[batchv1.JobIndexFailureCountAnnotation]); err == nil {
				jc.indexFailures[idx] = max(jc.indexFailures[idx], int32(n))
			}
		}
		switch {
		case p.Status.Phase == corev1.PodSucceeded:
			jc.outcome[p.UID] = podSucceeded
			if hasIdx && !jc.failedIdx[idx] {
				jc.completedIdx[idx] = true
			}
		case jobPodFailed(job, p):
			if jc.suspended && p.DeletionTimestamp != nil {
				jc.outcome[p.UID] = podUncountable
				continue
			}
			action, msg := podFailurePolicyAction(job, p)
			if action == batchv1.PodFailurePolicyActionIgnore {
				jc.outcome[p.UID] = podIgnored
				continue
			}
			jc.outcome[p.UID] = podFailed
			t := podFinishTime(p)
			if t.After(jc.lastFailure) {
				jc.lastFailure = t
			}
			if action == batchv1.PodFailurePolicyActionFailJob {
				jc.failJob[p.UID] = msg
			}
			if hasIdx {
				n := int32(0)
				if v, err := strconv.Atoi(p.Annotations[batchv1.JobIndexFailureCountAnnotation]); err == nil {
					n = int32(v)
				}
				jc.indexFailures[idx] = max(jc.indexFailures[idx], n+1)
				if t.After(jc.indexLastFailure[idx]) {
					jc.indexLastFailure[idx] = t
				}
				if perIndex != nil && !jc.completedIdx[idx] && !outcomeReached &&
					(action == batchv1.PodFailurePolicyActionFailIndex || jc.indexFailures[idx] > *perIndex) {
					jc.failedIdx[idx] = true
				}
			}
		case p.DeletionTimestamp != nil:
			jc.outcome[p.UID] = podRunning
			jc.terminating = append(jc.terminating, p)
		default:
			jc.outcome[p.UID] = podRunning
			jc.active = append(jc.active, p)
			if isPodReady(p) {
				jc.ready++
			}
			if hasIdx {
				jc.activeIdx[idx] = true
			}
			for _, c := range p.Status.ContainerStatuses {
				jc.restarts += c.RestartCount
				if c.LastTerminationState.Terminated != nil && c.LastTerminationState.Terminated.FinishedAt.After(jc.lastFailure) {
					jc.lastFailure = c.LastTerminationState.Terminated.FinishedAt.Time
				}
			}
		}
	}
	var lastSuccess time.Time
	for _, p := range pods {
		if jc.outcome[p.UID] == podSucceeded {
			if t := podFinishTime(p); t.After(lastSuccess) {
				lastSuccess = t
			}
		}
	}
	jc.recentFailures = jc.restarts
	for _, p := range pods {
		if jc.outcome[p.UID] == podFailed && podFinishTime(p).After(lastSuccess) {
			jc.recentFailures++
		}
	}
	// An index that failed for good is not also completed.
	for i := range jc.failedIdx {
		delete(jc.completedIdx, i)
	}
	return jc
}

// jobPodFailed reports whether a pod counts as failed: phase Failed, or
// (as upstream, so orphaned pods that never reach a phase are counted)
// being deleted before succeeding, unless the Job only replaces failed
// pods (podReplacementPolicy Failed) or has a podFailurePolicy.
func jobPodFailed(job *batchv1.Job, p *corev1.Pod) bool {
	if p.Status.Phase == corev1.PodFailed {
		return true
	}
	if jobReplacesOnlyFailed(job) || job.Spec.PodFailurePolicy != nil {
		return false
	}
	return p.DeletionTimestamp != nil && p.Status.Phase != corev1.PodSucceeded
}

// podFailurePolicyAction returns the action of the first podFailurePolicy
// rule a failed pod matches (Count when none does) and a message saying why.
func podFailurePolicyAction(job *batchv1.Job, p *corev1.Pod) (batchv1.PodFailurePolicyAction, string) {
	pfp := job.Spec.PodFailurePolicy
	if pfp == nil || p.Status.Phase != corev1.PodFailed {
		return batchv1.PodFailurePolicyActionCount, ""
	}
	for i, rule := range pfp.Rules {
		if r := rule.OnExitCodes; r != nil {
			statuses := append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
			for _, cs := range statuses {
				if r.ContainerName != nil && *r.ContainerName != cs.Name {
					continue
				}
				t := cs.State.Terminated
				if t == nil || t.ExitCode == 0 {
					continue
				}
				in := slices.Contains(r.Values, t.ExitCode)
				if (r.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn) == in {
					return rule.Action, fmt.Sprintf("Container %s for pod %s/%s failed with exit code %d matching %s rule at index %d",
						cs.Name, p.Namespace, p.Name, t.ExitCode, rule.Action, i)
				}
			}
		}
		for _, pat := range rule.OnPodConditions {
			want := pat.Status
			if want == "" {
				want = corev1.ConditionTrue
			}
			for _, c := range p.Status.Conditions {
				if c.Type == pat.Type && c.Status == want {
					return rule.Action, fmt.Sprintf("Pod %s/%s has condition %s matching %s rule at index %d", p.Namespace, p.Name, c.Type, rule.Action, i)
				}
			}
		}
	}
	return batchv1.PodFailurePolicyActionCount, ""
}

func hasTrackingFinalizer(p *corev1.Pod) bool {
	return slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer)
}

// track counts the Job's ended pods exactly once, as upstream does with
// the batch.kubernetes.io/job-tracking finalizer: an ended pod still
// holding the finalizer is first recorded in
// status.uncountedTerminatedPods (written before anything else), then its
// finalizer is removed, and once the informer shows it without finalizer
// (or gone) it moves from there into status.succeeded/failed. A restart
// at any point neither loses nor doubles a count. It also records a
// podFailurePolicy FailJob match as the FailureTarget condition.
func (j *Job) track(ctx context.Context, job *batchv1.Job, jc *jobCtx, st *batchv1.JobStatus) (*batchv1.Job, error) {
	u := &batchv1.UncountedTerminatedPods{}
	if st.UncountedTerminatedPods != nil {
		u = st.UncountedTerminatedPods.DeepCopy()
	}
	uncounted := map[types.UID]bool{}
	for _, uid := range append(append([]types.UID(nil), u.Succeeded...), u.Failed...) {
		uncounted[uid] = true
	}
	byUID := map[types.UID]*corev1.Pod{}
	for _, p := range jc.pods {
		byUID[p.UID] = p
	}
	// Move counted pods whose finalizer is gone into the counters.
	move := func(uids []types.UID, counter *int32) []types.UID {
		var keep []types.UID
		for _, uid := range uids {
			if p, ok := byUID[uid]; ok && hasTrackingFinalizer(p) {
				keep = append(keep, uid)
				continue
			}
			*counter++
		}
		return keep
	}
	u.Succeeded = move(u.Succeeded, &st.Succeeded)
	u.Failed = move(u.Failed, &st.Failed)
	// Record newly ended pods.
	var release []*corev1.Pod
	recorded := false
	succeededIdx := map[int]bool{}
	if jc.indexed {
		if set, err := parseIndexes(job.Status.CompletedIndexes, jc.completions); err == nil {
			succeededIdx = set
		}
	}
	for _, p := range jc.pods {
		if !hasTrackingFinalizer(p) {
			continue
		}
		if uncounted[p.UID] {
			release = append(release, p)
			continue
		}
		switch jc.outcome[p.UID] {
		case podSucceeded:
			// In an Indexed Job only the first success of an index counts.
			if idx, ok := podIndex(p); !jc.indexed || ok && idx < jc.completions && !succeededIdx[idx] && !jc.failedIdx[idx] {
				succeededIdx[idx] = true
				u.Succeeded = append(u.Succeeded, p.UID)
				recorded = true
			}
			release = append(release, p)
		case podFailed:
			u.Failed = append(u.Failed, p.UID)
			recorded = true
			release = append(release, p)
			if msg, ok := jc.failJob[p.UID]; ok && jobCond(st, batchv1.JobFailureTarget) == nil {
				setJobCond(st, batchv1.JobFailureTarget, corev1.ConditionTrue, batchv1.JobReasonPodFailurePolicy, msg, j.cfg.Clock.Now())
			}
		case podIgnored, podUncountable:
			release = append(release, p)
		}
	}
	st.UncountedTerminatedPods = u
	if recorded {
		if jc.indexed {
			// Completed indexes are recorded together with their pods.
			all := map[int]bool{}
			for i := range succeededIdx {
				all[i] = true
			}
			st.CompletedIndexes = formatIndexSet(all)
		}
		up := job.DeepCopy()
		up.Status = *st
		got, err := storeapi.UpdateStatus(ctx, j.cfg.Store, up)
		if err != nil {
			return job, fmt.Errorf("job %s/%s: record finished pods: %w", job.Namespace, job.Name, err)
		}
		job = got
		*st = *got.Status.DeepCopy()
	}
	for _, p := range release {
		if err := j.removeFinalizer(ctx, p); err != nil {
			return job, fmt.Errorf("job %s/%s: %w", job.Namespace, job.Name, err)
		}
	}
	jc.succeeded = st.Succeeded + int32(len(st.UncountedTerminatedPods.Succeeded))
	jc.failed = st.Failed + int32(len(st.UncountedTerminatedPods.Failed))
	return job, nil
}

// removeFinalizer drops the tracking finalizer from a pod.
func (j *Job) removeFinalizer(ctx context.Context, p *corev1.Pod) error {
	if !hasTrackingFinalizer(p) {
		return nil
	}
	_, err := writeRetry(ctx, j.cfg.Store, p, false, func(up *corev1.Pod) {
		up.Finalizers = slices.DeleteFunc(up.Finalizers, func(f string) bool { return f == batchv1.JobTrackingFinalizer })
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("remove finalizer of pod %s: %w", p.Name, err)
	}
	return nil
}

// releaseOrphans removes the tracking finalizer from the pods of Job
// namespace/name when that Job is gone (uid empty) or being deleted.
func (j *Job) releaseOrphans(ctx context.Context, namespace, name string, uid types.UID, _ bool) error {
	for _, p := range j.pods.List(namespace, nil) {
		ref := controllerRefOf(p)
		if ref == nil || ref.Kind != "Job" || ref.Name != name || !hasTrackingFinalizer(p) || (uid != "" && ref.UID != uid) {
			continue
		}
		if err := j.removeFinalizer(ctx, p); err != nil {
			return fmt.Errorf("job %s/%s: %w", namespace, name, err)
		}
	}
	return nil
}

// releaseAll removes the tracking finalizer from every pod of a finished Job.
func (j *Job) releaseAll(ctx context.Context, job *batchv1.Job) error {
	for _, p := range j.pods.ByIndex(controller.IndexControllerUID, string(job.UID)) {
		if err := j.removeFinalizer(ctx, p); err != nil {
			return fmt.Errorf("job %s/%s: %w", job.Namespace, job.Name, err)
		}
	}
	return nil
}

// formatIndexSet renders a set of indexes as "0-2,4".
func formatIndexSet(set map[int]bool) string {
	idx := make([]int, 0, len(set))
	for i, ok := range set {
		if ok {
			idx = append(idx, i)
		}
	}
	return formatIndexes(idx)
}

// parseIndexes parses an index list such as "0-2,4,7-9" (as in
// status.completedIndexes and successPolicy succeededIndexes), keeping
// indexes below limit (no limit when limit <= 0).
func parseIndexes(s string, limit int) (map[int]bool, error) {
	out := map[int]bool{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 || strconv.Itoa(a) != lo {
			return nil, fmt.Errorf("index list %q: bad index %q", s, lo)
		}
		b := a
		if isRange {
			b, err = strconv.Atoi(hi)
			if err != nil || b < a || strconv.Itoa(b) != hi {
				return nil, fmt.Errorf("index list %q: bad range %q", s, part)
			}
		}
		if limit > 0 {
			b = min(b, limit-1)
		} else if b-a > 1<<20 {
			return nil, fmt.Errorf("index list %q: range %q too large", s, part)
		}
		for i := a; i <= b; i++ {
			out[i] = true
		}
	}
	return out, nil
}
