// Package store holds a tugboat cluster's state: the API objects, typed with
// the upstream Kubernetes Go types (k8s.io/api), in go-memdb tables behind
// the one state interface, [Interface], that every other component uses.
//
// # Reading and writing
//
// [Open] returns a [Store]. Write with Create, Update (spec and metadata),
// UpdateStatus (status only), Patch (JSON patch, JSON merge patch,
// strategic merge patch) and Delete; read with Get, List and Watch. The
// generic helpers [Get], [ListOf], [WatchOf], [Create], [CreateOwned],
// [Update], [UpdateStatus], [Patch] and [Delete] take and return the typed
// objects:
//
//	pod, err := store.Get[*corev1.Pod](ctx, s, "default", "web-0")
//
// Errors are apimachinery Status errors (NotFound, AlreadyExists, Conflict,
// Invalid, Expired/Gone, Forbidden, BadRequest, ...), the same values the API
// server sends to kubectl.
//
// The interface, the typed helpers and the registry of kinds live in
// package [github.com/tugboatdev/tugboat/store/storeapi], which this
// package re-exports under the same names. A component that talks to a
// store but never opens one (the node agent, the controllers, the API
// server's client) imports storeapi, so that its binary does not link
// the store's implementation.
//
// # What the store does for every kind
//
//   - metadata: UID, creationTimestamp, generateName, generation (bumped
//     on spec changes only) and a global monotonic resourceVersion; stale
//     resourceVersions conflict;
//   - defaults and validation as upstream (names per kind, labels,
//     annotation and data size limits, the fields the seeds rely on);
//   - namespaces: default, kube-system, kube-public and kube-node-lease
//     exist from the start; objects need an existing, non-terminating
//     namespace; a deleted namespace is emptied before it goes;
//   - deletion: finalizers, graceful deletion of pods that run on a node,
//     ownerReferences with Background, Foreground and Orphan propagation
//     (the garbage collector runs inside the store);
//   - selectors: label selectors (=, ==, !=, in, notin, exists, !exists) and
//     field selectors per kind, served from memdb indexes (namespace,
//     labels, owner, spec.nodeName) rather than scans;
//   - watch: every change in commit order from a resourceVersion, with
//     filters, bookmarks and watch-list initial events, from an in-memory
//     event window; too old a resourceVersion, or a watcher too slow to keep
//     up, gets 410 Expired.
//
// # Durability
//
// Every write is a transaction that gets the next revision under one lock,
// is appended to a durable log and only then applied to memdb in revision
// order, like a replicated state machine's apply loop (a later step can put
// hashicorp/raft in front of the same apply). The log is
// github.com/hashicorp/raft-wal (one entry per transaction, the revision as
// its index) written with group commit: every transaction that queued
// while one fsync ran goes into the next. Snapshots of the whole state are
// written beside it (a bbolt file) and the log before them is deleted.
// With Config.Dir empty the store lives in memory only, for tests and
// simulations.
//
// # Cost of a write
//
// Each kind has two memdb tables: the objects, indexed by namespace/name
// only, and their secondary index entries (labels, owner UIDs, a pod's
// node) as rows of their own. A write rewrites only the index rows whose
// values changed, so a status update or a binding does not touch the
// label and owner indexes. Batches of transactions that queue up while
// memdb applies are applied in one memdb transaction.
//
// [Interface.Create] copies the object twice: the caller's object into the
// stored one, and the stored one (shared with lists and watchers) into the
// result. A caller that builds a fresh object for each create can hand it
// over instead with [CreateOwned] (see [OwnedCreator]) and get the stored,
// read-only object back, which saves both copies.
//
// The state lives on the Go heap, and the garbage collector marks all of
// it in every cycle: with the default GOGC of 100 that is about a third
// of the CPU of a write-heavy store. A process that is mostly the store
// can set Config.GCPercent (for example 400) with Config.MemoryLimit as a
// bound, or GOGC and GOMEMLIMIT in its environment; BENCHMARKS.md has the
// measured effect.
//
// The [Registry] maps group/version/kind, resource names and short names to
// [Kind]s; adding a kind is one [Registry.Register] call.
package store
