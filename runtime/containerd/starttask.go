package containerd

import (
	"context"
	"fmt"
	"time"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/typeurl/v2"
)

// A container's start talks to containerd directly instead of through the
// client's Container and Task objects: the client's NewTask reads the
// container record three times and asks the snapshotter for the root
// file system's mounts, and LoadContainer reads the record once more,
// although CreateContainer has just written the record and received the
// mounts from the snapshotter. StartContainer takes both from what
// CreateContainer kept, so a start is three calls to containerd (create,
// wait, start) instead of eight.

// createdContainer is what CreateContainer kept of a container for its
// start: its record and the mounts of its root file system.
type createdContainer struct {
	rec    containers.Container
	rootfs []mount.Mount
}

// keepCreated remembers a created container until its start or removal.
func (r *Runtime) keepCreated(rec containers.Container, rootfs []mount.Mount) {
	r.mu.Lock()
	r.created[rec.ID] = &createdContainer{rec: rec, rootfs: rootfs}
	r.mu.Unlock()
}

// forgetCreated drops what keepCreated remembered of a container (its
// record changed, or it is gone).
func (r *Runtime) forgetCreated(id string) {
	r.mu.Lock()
	delete(r.created, id)
	r.mu.Unlock()
}

// containerForStart returns the record and root file system mounts of the
// container id: those CreateContainer kept or, for a container this
// Runtime did not create, containerd's.
func (r *Runtime) containerForStart(ctx context.Context, id string) (containers.Container, []mount.Mount, error) {
	r.mu.Lock()
	cc := r.created[id]
	delete(r.created, id)
	r.mu.Unlock()
	if cc != nil {
		return cc.rec, cc.rootfs, nil
	}
	rec, err := r.client.ContainerService().Get(ctx, id)
	if err != nil {
		return containers.Container{}, nil, wrapNotFound(err, "container", id)
	}
	var rootfs []mount.Mount
	if rec.SnapshotKey != "" {
		if rootfs, err = r.client.SnapshotService(rec.Snapshotter).Mounts(ctx, rec.SnapshotKey); err != nil {
			return containers.Container{}, nil, fmt.Errorf("containerd: root file system of %s: %w", id, err)
		}
	}
	return rec, rootfs, nil
}

// runcOptions are the runc shim's options for the runtime's tasks: runc
// keeps its state in the run directory (a tmpfs) instead of containerd's
// default /run/containerd/runc. The shim records them in the task's bundle,
// so a later shim cleanup finds the state again.
func (r *Runtime) runcOptions() *options.Options {
	return &options.Options{Root: r.runPath(runcRootSubdir)}
}

// createTask creates the task of container rec with its root file system
// and I/O, as the client's Container.NewTask does.
func (r *Runtime) createTask(ctx context.Context, rec *containers.Container, rootfs []mount.Mount, cfg cio.Config) error {
	req := &tasksapi.CreateTaskRequest{
		ContainerID: rec.ID,
		Terminal:    cfg.Terminal,
		Stdin:       cfg.Stdin,
		Stdout:      cfg.Stdout,
		Stderr:      cfg.Stderr,
	}
	for _, m := range rootfs {
		req.Rootfs = append(req.Rootfs, &types.Mount{Type: m.Type, Source: m.Source, Target: m.Target, Options: m.Options})
	}
	if rec.Runtime.Name == "" || rec.Runtime.Name == plugins.RuntimeRuncV2 {
		opts := r.runcOptions()
		if rec.Runtime.Options != nil && rec.Runtime.Options.GetValue() != nil {
			if err := typeurl.UnmarshalTo(rec.Runtime.Options, opts); err != nil {
				return fmt.Errorf("runtime options: %w", err)
			}
			if opts.Root == "" {
				opts.Root = r.runPath(runcRootSubdir)
			}
		}
		o, err := typeurl.MarshalAny(opts)
		if err != nil {
			return err
		}
		req.Options = typeurl.MarshalProto(o)
	}
	if _, err := r.client.TaskService().Create(ctx, req); err != nil {
		return errgrpc.ToNative(err)
	}
	return nil
}

// waitTask waits for the exit of container id's task, as the client's
// Task.Wait does; an error (containerd restarting, the Runtime closing)
// arrives as an ExitStatus with its Error set.
func (r *Runtime) waitTask(id string) <-chan client.ExitStatus {
	c := make(chan client.ExitStatus, 1)
	go func() {
		resp, err := r.client.TaskService().Wait(r.bg, &tasksapi.WaitRequest{ContainerID: id})
		if err != nil {
			c <- *client.NewExitStatus(client.UnknownExitStatus, time.Time{}, errgrpc.ToNative(err))
			return
		}
		c <- *client.NewExitStatus(resp.ExitStatus, resp.ExitedAt.AsTime(), nil)
	}()
	return c
}

// containerTask loads container id and its task.
func (r *Runtime) containerTask(ctx context.Context, id string) (client.Container, client.Task, error) {
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	return c, task, nil
}

// killTask kills and deletes container id's task after a failed start.
func (r *Runtime) killTask(ctx context.Context, id string) {
	c, task, err := r.containerTask(ctx, id)
	if err != nil {
		return
	}
	if err := deleteTask(ctx, c, task, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
		r.logger.Warn("deleting the task of a container that failed to start", "container", id, "err", err)
	}
}
