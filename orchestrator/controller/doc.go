// Package controller is tugboat's controller framework: the machinery the
// reconcilers in package controllers are built from, over nothing but
// [store.Interface] so the same controllers run against the embedded store
// or the API server's client.
//
//   - [Informer] keeps an indexed local cache of one resource: it lists,
//     then watches from the list's resourceVersion, and lists again on
//     410 Expired, delivering the difference to its [Handler]s. [Factory]
//     shares one informer per resource; [Lister] is a typed view.
//   - [Queue] is a rate-limited, de-duplicating work queue of keys: a key
//     queued twice is processed once, never by two workers at a time, with
//     per-key exponential back-off for failures and delayed adds on a
//     (possibly fake) clock.
//   - [Controller] runs a [Reconciler] — Reconcile(ctx, key) (Result,
//     error), level-triggered and idempotent — on a queue with workers.
//   - [Expectations] stop a controller from acting twice while its own
//     creates and deletes are still on their way to its cache.
//   - [Recorder] writes core/v1 Events, aggregating repeats, as kubectl
//     describe shows them.
//   - [LeaderElector] elects one leader over a coordination/v1 Lease so only
//     one control plane runs the controllers.
//
// Timing goes through k8s.io/utils/clock so tests drive it with a fake clock.
package controller
