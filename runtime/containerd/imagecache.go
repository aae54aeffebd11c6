package containerd

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// imageInfo is what creating a container needs from an image, read from
// containerd once per image (manifest digest) instead of once per
// container: whether it is unpacked, its entrypoint and cmd, the chain ID
// of its root filesystem, and the process fields (environment, working
// directory, user and supplementary groups) its config gives a container,
// which otherwise cost several content reads and a temporary mount of the
// root filesystem per container.
type imageInfo struct {
	img          client.Image
	target       digest.Digest
	configDigest string
	chainID      string
	entrypoint   []string
	cmd          []string

	mu      sync.Mutex
	derived *specs.Process // image-derived fields, after the first container
}

// imageInfo returns the cached information about ref, refreshing it when
// the name now points at another manifest; the image is unpacked first if
// needed.
func (r *Runtime) imageInfo(ctx context.Context, ref string) (*imageInfo, error) {
	name := normalizeRef(ref)
	rec, err := r.client.ImageService().Get(ctx, name)
	if err != nil {
		return nil, wrapNotFound(err, "image", ref)
	}
	r.mu.Lock()
	ii := r.images[name]
	r.mu.Unlock()
	if ii != nil && ii.target == rec.Target.Digest {
		return ii, nil
	}
	img := client.NewImageWithPlatform(r.client, rec, defaultPlatform())
	if ok, err := img.IsUnpacked(ctx, r.opts.Snapshotter); err == nil && !ok {
		if err := img.Unpack(ctx, r.opts.Snapshotter); err != nil {
			return nil, fmt.Errorf("containerd: unpack %s: %w", ref, err)
		}
	}
	spec, err := img.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("containerd: image config of %s: %w", ref, err)
	}
	cfgDesc, err := img.Config(ctx)
	if err != nil {
		return nil, fmt.Errorf("containerd: image config of %s: %w", ref, err)
	}
	diffIDs, err := img.RootFS(ctx)
	if err != nil {
		return nil, fmt.Errorf("containerd: root filesystem of %s: %w", ref, err)
	}
	ii = &imageInfo{img: img, target: rec.Target.Digest, configDigest: cfgDesc.Digest.String(),
		chainID: identity.ChainID(diffIDs).String(), entrypoint: spec.Config.Entrypoint, cmd: spec.Config.Cmd}
	r.mu.Lock()
	r.images[name] = ii
	r.mu.Unlock()
	return ii, nil
}

// forgetImage drops cached information about an image name.
func (r *Runtime) forgetImage(ref string) {
	r.mu.Lock()
	delete(r.images, normalizeRef(ref))
	r.mu.Unlock()
}

// withImageConfig applies the image's config to a spec as
// oci.WithImageConfig does, from the cache after the first container.
func (ii *imageInfo) withImageConfig() oci.SpecOpts {
	return func(ctx context.Context, cl oci.Client, c *containers.Container, s *oci.Spec) error {
		ii.mu.Lock()
		d := ii.derived
		ii.mu.Unlock()
		if d != nil {
			if s.Process == nil {
				s.Process = &specs.Process{}
			}
			s.Process.Env = slices.Clone(d.Env)
			s.Process.Cwd = d.Cwd
			s.Process.User = d.User
			s.Process.User.AdditionalGids = slices.Clone(d.User.AdditionalGids)
			return nil
		}
		if err := oci.WithImageConfig(ii.img)(ctx, cl, c, s); err != nil {
			return err
		}
		d = &specs.Process{Env: slices.Clone(s.Process.Env), Cwd: s.Process.Cwd, User: s.Process.User}
		d.User.AdditionalGids = slices.Clone(s.Process.User.AdditionalGids)
		ii.mu.Lock()
		ii.derived = d
		ii.mu.Unlock()
		return nil
	}
}

// withNewSnapshot prepares the container's writable snapshot on the
// image's (cached) chain ID, as client.WithNewSnapshot does, and stores
// the snapshot's mounts in *rootfs.
func (r *Runtime) withNewSnapshot(id string, ii *imageInfo, rootfs *[]mount.Mount) client.NewContainerOpts {
	return func(ctx context.Context, cl *client.Client, c *containers.Container) error {
		mounts, err := cl.SnapshotService(r.opts.Snapshotter).Prepare(ctx, id, ii.chainID)
		if err != nil {
			return err
		}
		*rootfs = mounts
		c.Snapshotter = r.opts.Snapshotter
		c.SnapshotKey = id
		c.Image = ii.img.Name()
		return nil
	}
}
