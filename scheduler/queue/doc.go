// Package queue is the scheduling queue: an active heap ordered by pod
// priority then age, a backoff heap for pods that failed recently
// (exponential backoff, 1s doubling to 10s by default, as upstream), and the
// unschedulable pods that wait for a cluster event which could make them fit
// (node added or changed, pod deleted, taint removed). Only events that a
// plugin which rejected the pod registered for move it, and with
// [Config.QueueingHint] only when that plugin's queueing hint says the
// changed object may help this pod ([Queue.MoveOnObjectEvent]). Events
// that arrive while a pod is being scheduled are kept with their objects,
// so a pod that then fails goes to backoff only if one of them may help it.
// Nothing polls: a timer fires when the earliest backoff expires.
package queue
