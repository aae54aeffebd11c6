package containerd

import (
	"context"
	"fmt"
	"time"

	cgroupsv1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/typeurl/v2"

	"github.com/tugboatdev/tugboat/runtime"
)

// ContainerStats implements runtime.Runtime from the container's cgroup
// (v1) metrics (CPU, memory and pids.current) and the usage of its
// writable layer, the container's active snapshot.
func (r *Runtime) ContainerStats(ctx context.Context, id string) (*runtime.ContainerStats, error) {
	ctx = r.nsctx(ctx)
	c, task, err := r.runningTask(ctx, id)
	if err != nil {
		return nil, err
	}
	m, err := task.Metrics(ctx)
	if err != nil {
		return nil, fmt.Errorf("containerd: stats of %s: %w", id, err)
	}
	v, err := typeurl.UnmarshalAny(m.Data)
	if err != nil {
		return nil, fmt.Errorf("containerd: stats of %s: %w", id, err)
	}
	out := &runtime.ContainerStats{ContainerID: id, Timestamp: time.Now()}
	if m.Timestamp != nil {
		out.Timestamp = m.Timestamp.AsTime()
	}
	switch s := v.(type) {
	case *cgroupsv1.Metrics:
		if s.CPU != nil && s.CPU.Usage != nil {
			out.CPUUsageNanoSeconds = s.CPU.Usage.Total
		}
		if s.Memory != nil && s.Memory.Usage != nil {
			out.MemoryUsageBytes = s.Memory.Usage.Usage
			ws := s.Memory.Usage.Usage
			if inactive := s.Memory.TotalInactiveFile; inactive < ws {
				ws -= inactive
			} else {
				ws = 0
			}
			out.MemoryWorkingSetBytes = ws
		}
		if s.Pids != nil {
			out.Processes = s.Pids.Current
		}
	default:
		return nil, fmt.Errorf("containerd: stats of %s: unsupported metrics type %T", id, v)
	}
	size, inodes, err := r.writableLayerUsage(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("containerd: stats of %s: %w", id, err)
	}
	out.WritableLayerBytes, out.WritableLayerInodes = size, inodes
	return out, nil
}

// writableLayerUsage measures the container's active snapshot (its
// writable upper layer) through the snapshotter, as the CRI plugin does
// for ContainerStats.WritableLayer.
func (r *Runtime) writableLayerUsage(ctx context.Context, c client.Container) (size, inodes uint64, err error) {
	info, err := c.Info(ctx, client.WithoutRefreshedMetadata)
	if err != nil {
		return 0, 0, err
	}
	if info.SnapshotKey == "" {
		return 0, 0, nil // no root filesystem of ours to measure
	}
	sn := info.Snapshotter
	if sn == "" {
		sn = r.opts.Snapshotter
	}
	u, err := r.client.SnapshotService(sn).Usage(ctx, info.SnapshotKey)
	if err != nil {
		return 0, 0, fmt.Errorf("writable layer usage: %w", err)
	}
	if u.Size > 0 {
		size = uint64(u.Size)
	}
	if u.Inodes > 0 {
		inodes = uint64(u.Inodes)
	}
	return size, inodes, nil
}
