package runtime

import (
	"errors"
	"fmt"
)

// ErrNotFound is wrapped by errors about unknown sandboxes, containers and
// images.
var ErrNotFound = errors.New("not found")

// ErrImagePull is wrapped by errors of PullImage (the kubelet's
// ErrImagePull reason).
var ErrImagePull = errors.New("ErrImagePull")

// ErrInvalid is wrapped by errors about invalid requests, such as starting a
// container twice or a container in a stopped sandbox.
var ErrInvalid = errors.New("invalid request")

// ImagePullError is a pull failure with the registry's message. It wraps
// ErrImagePull and the underlying error.
type ImagePullError struct {
	Ref string
	Err error
}

// Error implements error.
func (e *ImagePullError) Error() string {
	return fmt.Sprintf("%s: pull %q: %v", ErrImagePull.Error(), e.Ref, e.Err)
}

// Unwrap returns ErrImagePull and the cause.
func (e *ImagePullError) Unwrap() []error { return []error{ErrImagePull, e.Err} }

// ResolveCommand applies the Kubernetes rules for a container's command to
// an image's ENTRYPOINT and CMD: command replaces the entrypoint and drops
// the image's CMD; args replace CMD.
func ResolveCommand(entrypoint, cmd, command, args []string) []string {
	if len(command) > 0 {
		return append(append([]string{}, command...), args...)
	}
	if len(args) > 0 {
		return append(append([]string{}, entrypoint...), args...)
	}
	return append(append([]string{}, entrypoint...), cmd...)
}

// LogPathFor returns the kubelet's log file layout for a container,
// "<name>/<attempt>.log", used when ContainerConfig.LogPath is empty.
func LogPathFor(name string, attempt uint32) string {
	return fmt.Sprintf("%s/%d.log", name, attempt)
}
