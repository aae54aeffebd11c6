package controller

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
)

// Result tells the runner what to do with a key after a successful Reconcile.
type Result struct {
	// Requeue queues the key again with rate-limited back-off.
	Requeue bool
	// RequeueAfter queues the key again after this long (it wins over Requeue).
	RequeueAfter time.Duration
}

// Reconciler makes the actual state of one object (named by its key,
// "namespace/name" or "name") match its desired state. It must be
// level-triggered and idempotent: it is called again with the same key
// after any change, error or restart, and must read what it needs from
// caches or the store rather than from the event that queued it.
type Reconciler interface {
	Reconcile(ctx context.Context, key string) (Result, error)
}

// ReconcilerFunc adapts a function to [Reconciler].
type ReconcilerFunc func(ctx context.Context, key string) (Result, error)

// Reconcile calls f.
func (f ReconcilerFunc) Reconcile(ctx context.Context, key string) (Result, error) {
	return f(ctx, key)
}

// Controller runs a [Reconciler] on the keys of a [Queue] with a number of
// workers. Errors requeue the key with per-key exponential back-off.
type Controller struct {
	// Name names the controller in logs and events.
	Name string
	// Reconciler does the work.
	Reconciler Reconciler
	// Workers is the number of concurrent reconciles (default 1). One key is
	// never reconciled by two workers at once.
	Workers int
	// Queue holds the keys to reconcile.
	Queue *Queue
	// Log receives the controller's logs.
	Log *slog.Logger
	// MaxRetries drops a key after this many consecutive failures
	// (0 = never drop); a later change queues it again.
	MaxRetries int
}

// New returns a controller with its own queue driven by clk (nil for the real clock).
func New(name string, r Reconciler, workers int, clk clock.Clock, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.Default()
	}
	return &Controller{Name: name, Reconciler: r, Workers: workers, Queue: NewQueue(QueueOptions{Clock: clk}), Log: log.With("controller", name)}
}

// Enqueue queues key.
func (c *Controller) Enqueue(key string) { c.Queue.Add(key) }

// EnqueueObject queues the key of obj.
func (c *Controller) EnqueueObject(obj runtime.Object) { c.Queue.Add(KeyOf(obj)) }

// EnqueueAfter queues key after d.
func (c *Controller) EnqueueAfter(key string, d time.Duration) { c.Queue.AddAfter(key, d) }

// EnqueueOwner queues the key of obj's controller owner when it has kind
// ownerKind (e.g. "ReplicaSet"), in obj's namespace.
func (c *Controller) EnqueueOwner(obj runtime.Object, ownerKind string) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	for _, ref := range acc.GetOwnerReferences() {
		if ref.Controller != nil && *ref.Controller && ref.Kind == ownerKind {
			c.Queue.Add(Key(acc.GetNamespace(), ref.Name))
		}
	}
}

// Run processes keys until ctx ends, then shuts the queue down and waits
// for the workers.
func (c *Controller) Run(ctx context.Context) error {
	workers := max(c.Workers, 1)
	g, gctx := errgroup.WithContext(ctx)
	for range workers {
		g.Go(func() error {
			for c.processNext(gctx) {
			}
			return nil
		})
	}
	<-ctx.Done()
	c.Queue.ShutDown()
	return g.Wait()
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, ok := c.Queue.Get()
	if !ok {
		return false
	}
	defer c.Queue.Done(key)
	// RequeueAfter counts from the start of the reconcile, so time that
	// passes while it runs (or a fake clock stepped meanwhile) is not added.
	started := c.Queue.Now()
	res, err := c.reconcile(ctx, key)
	switch {
	case ctx.Err() != nil:
	case err != nil:
		if c.MaxRetries > 0 && c.Queue.NumRequeues(key) >= c.MaxRetries {
			c.Log.Warn("dropping key after repeated failures", "key", key, "err", err)
			c.Queue.Forget(key)
			break
		}
		c.Log.Debug("reconcile failed", "key", key, "err", err)
		c.Queue.AddRateLimited(key)
	case res.RequeueAfter > 0:
		c.Queue.Forget(key)
		c.Queue.AddAt(key, started.Add(res.RequeueAfter))
	case res.Requeue:
		c.Queue.AddRateLimited(key)
	default:
		c.Queue.Forget(key)
	}
	return true
}

func (c *Controller) reconcile(ctx context.Context, key string) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: panic reconciling %s: %v", c.Name, key, r)
		}
	}()
	return c.Reconciler.Reconcile(ctx, key)
}
