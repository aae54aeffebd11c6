// Package simulated implements runtime.Runtime without processes, for
// control-plane tests and scale simulations: a container "runs" for a
// scripted time on a (possibly fake) clock, exits with a scripted code (or
// is OOM-killed), and becomes ready for exec probes after a scripted delay.
// Sandboxes get IPs from a pod CIDR but no network exists.
//
// Behaviour comes from Options.Script, called once per created container,
// so a test can key behaviour on pod labels, image or container name.
package simulated
