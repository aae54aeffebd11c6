// Package cache holds the scheduler's view of nodes and the pods placed on
// them, including pods assumed by the scheduler whose binding has not been
// confirmed by the store yet (assume-then-bind). A failed binding is undone
// with ForgetPod. UpdateSnapshot copies into a framework.Snapshot only the
// nodes changed since the snapshot's generation.
package cache
