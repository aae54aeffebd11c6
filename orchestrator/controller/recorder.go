package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/clock"

	store "github.com/tugboatdev/tugboat/store/storeapi"
)

// Recorder writes core/v1 Events about objects, as `kubectl describe` and
// `kubectl get events` show them. Repeats of the same event (same object,
// type, reason and message) raise the count of one Event instead of making
// new ones. Writes are asynchronous: Eventf never blocks a reconcile, and
// when the buffer is full the event is dropped (as upstream does).
type Recorder struct {
	s         store.Interface
	component string
	host      string
	clk       clock.Clock
	log       *slog.Logger
	ch        chan *corev1.Event

	mu   sync.Mutex
	seen map[string]*corev1.Event
}

// NewRecorder returns a recorder reporting as component (e.g.
// "deployment-controller"). Call Run to start writing.
func NewRecorder(s store.Interface, component string, clk clock.Clock, log *slog.Logger) *Recorder {
	if clk == nil {
		clk = clock.RealClock{}
	}
	if log == nil {
		log = slog.Default()
	}
	return &Recorder{s: s, component: component, clk: clk, log: log, ch: make(chan *corev1.Event, 1000), seen: map[string]*corev1.Event{}}
}

// Eventf records an event about obj of type eventType (corev1.EventTypeNormal
// or corev1.EventTypeWarning).
func (r *Recorder) Eventf(obj runtime.Object, eventType, reason, format string, args ...any) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk.Kind == "" {
		if k := r.s.Registry().ForObject(obj); k != nil {
			gvk = k.GVK
		}
	}
	now := metav1.NewTime(r.clk.Now())
	ns := acc.GetNamespace()
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s.%s", acc.GetName(), rand.String(10))},
		InvolvedObject: corev1.ObjectReference{
			Kind: gvk.Kind, APIVersion: gvk.GroupVersion().String(), Namespace: acc.GetNamespace(),
			Name: acc.GetName(), UID: acc.GetUID(), ResourceVersion: acc.GetResourceVersion(),
		},
		Reason: reason, Message: fmt.Sprintf(format, args...), Type: eventType,
		Source:         corev1.EventSource{Component: r.component},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: r.component, ReportingInstance: r.component,
	}
	select {
	case r.ch <- ev:
	default:
		r.log.Debug("event dropped: buffer full", "reason", reason, "object", acc.GetName())
	}
}

// Run writes recorded events until ctx ends.
func (r *Recorder) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-r.ch:
			r.write(ctx, ev)
		}
	}
}

func (r *Recorder) write(ctx context.Context, ev *corev1.Event) {
	io := ev.InvolvedObject
	key := fmt.Sprintf("%s/%s/%s/%s/%s/%s", io.Kind, io.Namespace, io.Name, ev.Type, ev.Reason, ev.Message)
	r.mu.Lock()
	prev := r.seen[key]
	r.mu.Unlock()
	if prev != nil && r.clk.Since(prev.LastTimestamp.Time) < time.Hour {
		up := prev.DeepCopy()
		up.Count++
		up.LastTimestamp = ev.LastTimestamp
		up.InvolvedObject.ResourceVersion = io.ResourceVersion
		if got, err := store.Update(ctx, r.s, up); err == nil {
			r.mu.Lock()
			r.seen[key] = got
			r.mu.Unlock()
			return
		} else if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			r.log.Debug("event update failed", "err", err)
			return
		}
	}
	got, err := store.Create(ctx, r.s, ev)
	if err != nil {
		r.log.Debug("event create failed", "reason", ev.Reason, "err", err)
		return
	}
	r.mu.Lock()
	if len(r.seen) > 4096 {
		r.seen = map[string]*corev1.Event{}
	}
	r.seen[key] = got
	r.mu.Unlock()
}
