// Package podstatus computes what `kubectl get pods` shows for a pod: the
// STATUS column (Running, Pending, ContainerCreating, CrashLoopBackOff,
// Init:1/2, Completed, Terminating...), READY (ready/total containers,
// counting restartable init containers, the sidecars) and RESTARTS with
// the time of the last restart.
//
// It follows kubectl's pod printer, so the API server's server-side Table
// and the node agent's logs and events say the same thing about a pod.
// It depends on nothing but the k8s.io API types.
package podstatus
