// Package images builds small runnable OCI images without Docker (from
// files, a static Go binary or the node's static busybox), writes them as
// OCI archives that containerd imports with their names, and runs an OCI
// registry on loopback for tests and examples, all with
// github.com/google/go-containerregistry.
package images
