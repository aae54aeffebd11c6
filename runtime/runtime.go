package runtime

import (
	"context"
	"io"
	"time"
)

// Runtime runs the pods of one node. It is shaped after the Kubernetes
// Container Runtime Interface (CRI): a pod sandbox owns the network namespace
// (and hostname, /etc/hosts, /etc/resolv.conf) that the pod's containers
// share; containers are created in a sandbox, started, stopped and removed;
// exec, attach, port-forward and logs stream into them; images are pulled,
// imported, listed and removed.
//
// Implementations are safe for concurrent use. Errors for unknown sandboxes,
// containers or images wrap ErrNotFound.
type Runtime interface {
	SandboxManager
	ContainerManager
	StreamingManager
	ImageManager

	// Events streams container lifecycle events until ctx ends. The channel is
	// closed when ctx is done or the runtime is closed.
	Events(ctx context.Context) (<-chan ContainerEvent, error)

	// Close releases the runtime's resources. Running pods are left running
	// so that a new runtime over the same state re-adopts them.
	Close() error
}

// SandboxManager manages pod sandboxes.
type SandboxManager interface {
	// RunPodSandbox creates and starts a sandbox (network namespace with pod
	// networking, hostname, hosts and resolv.conf files; where the
	// implementation supports them, the pod's IPC namespace and /dev/shm,
	// its shared PID namespace and its pod-level cgroup) and returns its ID.
	RunPodSandbox(ctx context.Context, cfg *PodSandboxConfig) (string, error)
	// StopPodSandbox stops all containers of the sandbox (killing them at
	// once) and tears down its network. It is idempotent.
	StopPodSandbox(ctx context.Context, id string) error
	// RemovePodSandbox removes a sandbox and all its containers. Removing an
	// unknown sandbox is not an error.
	RemovePodSandbox(ctx context.Context, id string) error
	// PodSandboxStatus reports one sandbox. A sandbox that can no longer
	// run containers (its namespaces did not survive a host reboot) is
	// NotReady: the agent makes a new one.
	PodSandboxStatus(ctx context.Context, id string) (*PodSandbox, error)
	// ListPodSandboxes reports all sandboxes.
	ListPodSandboxes(ctx context.Context) ([]*PodSandbox, error)
}

// ContainerManager manages containers inside sandboxes.
type ContainerManager interface {
	// CreateContainer creates a container in the sandbox and returns its ID.
	// The image must be present (see ImageManager.PullImage).
	CreateContainer(ctx context.Context, sandboxID string, cfg *ContainerConfig) (string, error)
	// StartContainer starts a created container.
	StartContainer(ctx context.Context, id string) error
	// StopContainer sends SIGTERM, waits up to grace, then sends SIGKILL and
	// waits for the exit. Stopping an exited container is a no-op.
	StopContainer(ctx context.Context, id string, grace time.Duration) error
	// RemoveContainer removes a container, killing it if needed. Its log
	// file is kept (it belongs to the sandbox's log directory).
	RemoveContainer(ctx context.Context, id string) error
	// ContainerStatus reports one container.
	ContainerStatus(ctx context.Context, id string) (*ContainerStatus, error)
	// ListContainers reports the containers matching the filter.
	ListContainers(ctx context.Context, filter ContainerFilter) ([]*ContainerStatus, error)
	// ContainerStats reports the resource usage of a running container.
	ContainerStats(ctx context.Context, id string) (*ContainerStats, error)
}

// StreamingManager streams into sandboxes and containers.
type StreamingManager interface {
	// Exec runs a command in a running container and returns its exit code.
	// A non-zero exit is not an error.
	Exec(ctx context.Context, containerID string, opts ExecOptions) (int, error)
	// Attach connects to the main process of a running container: its
	// output from now on, and its stdin if the container was created with
	// Stdin. It returns when the container exits or ctx ends.
	Attach(ctx context.Context, containerID string, opts AttachOptions) error
	// PortForward connects stream to TCP port on the loopback address of the
	// sandbox's network namespace and copies both ways until either side
	// closes.
	PortForward(ctx context.Context, sandboxID string, port int32, stream io.ReadWriter) error
	// ContainerLogs writes the container's log to stdout and stderr
	// according to opts. It works for exited containers too, which is how
	// `kubectl logs --previous` is served: the agent keeps the previous
	// attempt's container until it is garbage collected.
	ContainerLogs(ctx context.Context, containerID string, opts LogOptions, stdout, stderr io.Writer) error
}

// ImageManager manages the node's images.
type ImageManager interface {
	// PullImage pulls (and unpacks) an image. Failures wrap ErrImagePull and
	// carry the registry's message.
	PullImage(ctx context.Context, ref string, auth *AuthConfig) (*Image, error)
	// ImportImage imports an OCI or docker image archive (tar) and returns
	// the images it contained.
	ImportImage(ctx context.Context, archive io.Reader) ([]*Image, error)
	// ImageStatus reports an image by reference or ID; an absent image
	// yields an error wrapping ErrNotFound.
	ImageStatus(ctx context.Context, ref string) (*Image, error)
	// ListImages lists all images.
	ListImages(ctx context.Context) ([]*Image, error)
	// RemoveImage removes an image; removing an absent image is not an error.
	RemoveImage(ctx context.Context, ref string) error
}
