package agent

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/tugboatdev/tugboat/runtime"
)

// PodStreamer is what the API server needs from a node to serve `kubectl
// logs`, `exec`, `attach` and `port-forward` of a pod. The [Agent]
// implements it. An empty container name means the pod's only container.
type PodStreamer interface {
	// Logs writes a container's log per opts (follow, previous, tailLines,
	// sinceSeconds/sinceTime, timestamps, limitBytes).
	Logs(ctx context.Context, namespace, pod, container string, opts *corev1.PodLogOptions, out io.Writer) error
	// Exec runs a command in a running container and returns its exit
	// code.
	Exec(ctx context.Context, namespace, pod, container string, opts runtime.ExecOptions) (int, error)
	// Attach connects to a running container's main process.
	Attach(ctx context.Context, namespace, pod, container string, opts runtime.AttachOptions) error
	// PortForward connects stream to a TCP port inside the pod's network
	// namespace.
	PortForward(ctx context.Context, namespace, pod string, port int32, stream io.ReadWriter) error
}

var _ PodStreamer = (*Agent)(nil)

// findContainer returns the runtime container serving a pod's container:
// the newest attempt, or the one before it with previous.
func (a *Agent) findContainer(ctx context.Context, namespace, pod, container string, previous bool) (*runtime.ContainerStatus, error) {
	w := a.workerByName(namespace, pod)
	if w == nil {
		return nil, fmt.Errorf("agent: pod %s/%s is not on node %s: %w", namespace, pod, a.cfg.NodeName, runtime.ErrNotFound)
	}
	spec := w.currentPod()
	if container == "" {
		if len(spec.Spec.Containers) != 1 {
			var names []string
			for _, c := range spec.Spec.Containers {
				names = append(names, c.Name)
			}
			return nil, fmt.Errorf("a container name must be specified for pod %s, choose one of: [%s]: %w", pod, strings.Join(names, " "), runtime.ErrInvalid)
		}
		container = spec.Spec.Containers[0].Name
	}
	if containerSpec(spec, container) == nil {
		return nil, fmt.Errorf("container %s is not valid for pod %s: %w", container, pod, runtime.ErrInvalid)
	}
	pc, err := w.listContainers(ctx)
	if err != nil {
		return nil, err
	}
	var c *runtime.ContainerStatus
	if previous {
		c = pc.previous(container)
		if c == nil {
			return nil, fmt.Errorf("previous terminated container %q in pod %q not found: %w", container, pod, runtime.ErrNotFound)
		}
	} else if c = pc.latest(container); c == nil {
		return nil, fmt.Errorf("container %q in pod %q is waiting to start: %w", container, pod, runtime.ErrInvalid)
	}
	return c, nil
}

// Logs implements [PodStreamer].
func (a *Agent) Logs(ctx context.Context, namespace, pod, container string, opts *corev1.PodLogOptions, out io.Writer) error {
	if opts == nil {
		opts = &corev1.PodLogOptions{}
	}
	c, err := a.findContainer(ctx, namespace, pod, container, opts.Previous)
	if err != nil {
		return err
	}
	lo := runtime.LogOptions{Follow: opts.Follow, Timestamps: opts.Timestamps, TailLines: -1}
	if opts.TailLines != nil {
		lo.TailLines = *opts.TailLines
	}
	if opts.LimitBytes != nil {
		lo.LimitBytes = *opts.LimitBytes
	}
	if opts.SinceSeconds != nil {
		lo.Since = a.clk.Now().Add(-time.Duration(*opts.SinceSeconds) * time.Second)
	} else if opts.SinceTime != nil {
		lo.Since = opts.SinceTime.Time
	}
	return a.rt.ContainerLogs(ctx, c.ID, lo, out, out)
}

// Exec implements [PodStreamer].
func (a *Agent) Exec(ctx context.Context, namespace, pod, container string, opts runtime.ExecOptions) (int, error) {
	c, err := a.findContainer(ctx, namespace, pod, container, false)
	if err != nil {
		return 0, err
	}
	return a.rt.Exec(ctx, c.ID, opts)
}

// Attach implements [PodStreamer].
func (a *Agent) Attach(ctx context.Context, namespace, pod, container string, opts runtime.AttachOptions) error {
	c, err := a.findContainer(ctx, namespace, pod, container, false)
	if err != nil {
		return err
	}
	return a.rt.Attach(ctx, c.ID, opts)
}

// PortForward implements [PodStreamer].
func (a *Agent) PortForward(ctx context.Context, namespace, pod string, port int32, stream io.ReadWriter) error {
	w := a.workerByName(namespace, pod)
	if w == nil {
		return fmt.Errorf("agent: pod %s/%s is not on node %s: %w", namespace, pod, a.cfg.NodeName, runtime.ErrNotFound)
	}
	sb := w.currentSandbox()
	if sb == "" {
		return fmt.Errorf("agent: pod %s/%s has no sandbox yet: %w", namespace, pod, runtime.ErrInvalid)
	}
	return a.rt.PortForward(ctx, sb, port, stream)
}
