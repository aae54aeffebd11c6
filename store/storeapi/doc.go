// Package storeapi is the client side of tugboat's state: the one state
// interface, [Interface], that every component reads and writes cluster
// state through, the typed helpers over it ([Get], [ListOf], [WatchOf],
// [Create], [CreateOwned], [Update], [UpdateStatus], [Patch], [Delete]),
// and the [Registry] of the [Kind]s served, with their defaults,
// validation and strict manifest decoding ([Decode], [DecodeAll]).
//
// The embedded store, package [github.com/tugboatdev/tugboat/store],
// implements [Interface], and so does the API server's HTTP client,
// package [github.com/tugboatdev/tugboat/orchestrator/remote]. Package
// store re-exports everything here under the same names (its types are
// aliases of these), so store.Interface and storeapi.Interface are one
// type and code written against either works with both.
//
// This package exists so that a program that only talks to a store, such
// as the node process that runs a node agent against a remote API server,
// does not link the store's implementation: go-memdb, the durable log
// (hashicorp/raft, raft-wal, bbolt) and its Prometheus metrics. It
// depends on the upstream API types and apimachinery only. Import it
// instead of package store wherever a component needs [Interface] and
// its helpers but never opens a store itself.
//
// Reading and writing with the typed helpers:
//
//	pod, err := storeapi.Get[*corev1.Pod](ctx, s, "default", "web-0")
//	pods, rv, err := storeapi.ListOf[*corev1.Pod](ctx, s, "", metav1.ListOptions{LabelSelector: "app=web"})
//
// Errors are apimachinery Status errors; test them with apierrors.IsNotFound,
// IsAlreadyExists, IsConflict, IsInvalid and the like.
package storeapi
