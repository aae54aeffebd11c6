package containerd

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/tugboatdev/tugboat/runtime"
)

// normalizeRef expands short references as Docker does
// (busybox -> docker.io/library/busybox:latest); refs it cannot parse are
// returned unchanged.
func normalizeRef(ref string) string {
	n, err := reference.ParseDockerRef(ref)
	if err != nil {
		return ref
	}
	return n.String()
}

func (r *Runtime) resolver(auth *runtime.AuthConfig) docker.ResolverOptions {
	authOpts := []docker.AuthorizerOpt{}
	if auth != nil {
		a := *auth
		authOpts = append(authOpts, docker.WithAuthCreds(func(string) (string, string, error) {
			if a.IdentityToken != "" {
				return "", a.IdentityToken, nil
			}
			return a.Username, a.Password, nil
		}))
	}
	plain := r.opts.PlainHTTP
	return docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(
		docker.WithAuthorizer(docker.NewDockerAuthorizer(authOpts...)),
		docker.WithPlainHTTP(func(host string) (bool, error) { return plain(host), nil }),
	)}
}

// PullImage implements runtime.Runtime.
func (r *Runtime) PullImage(ctx context.Context, ref string, auth *runtime.AuthConfig) (*runtime.Image, error) {
	ctx = r.nsctx(ctx)
	name := normalizeRef(ref)
	img, err := r.client.Pull(ctx, name,
		client.WithPullUnpack,
		client.WithPullSnapshotter(r.opts.Snapshotter),
		client.WithResolver(docker.NewResolver(r.resolver(auth))),
	)
	if err != nil {
		return nil, &runtime.ImagePullError{Ref: ref, Err: err}
	}
	return r.report(ctx, img.Metadata())
}

// ImportImage implements runtime.Runtime. Images without a name in the
// archive (an OCI index entry lacking io.containerd.image.name) are named
// "import-<digest>".
func (r *Runtime) ImportImage(ctx context.Context, archive io.Reader) ([]*runtime.Image, error) {
	ctx = r.nsctx(ctx)
	imgs, err := r.client.Import(ctx, archive,
		client.WithDigestRef(func(d digest.Digest) string { return "import-" + d.Encoded() }),
		client.WithSkipDigestRef(func(name string) bool { return name != "" }),
		client.WithAllPlatforms(false),
	)
	if err != nil {
		return nil, fmt.Errorf("containerd: import: %w", err)
	}
	var out []*runtime.Image
	for _, im := range imgs {
		if err := client.NewImageWithPlatform(r.client, im, defaultPlatform()).Unpack(ctx, r.opts.Snapshotter); err != nil {
			return nil, fmt.Errorf("containerd: unpack %s: %w", im.Name, err)
		}
		rep, err := r.report(ctx, im)
		if err != nil {
			return nil, err
		}
		out = append(out, rep)
	}
	return out, nil
}

// importDir imports every *.tar archive in dir (air-gap images).
func (r *Runtime) importDir(ctx context.Context, dir string) error {
	matches, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	for _, m := range matches {
		f, err := os.Open(m)
		if err != nil {
			return fmt.Errorf("containerd: %w", err)
		}
		imgs, err := r.ImportImage(ctx, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("containerd: import %s: %w", m, err)
		}
		for _, im := range imgs {
			r.logger.Info("imported image", "file", m, "image", im.RepoTags)
		}
	}
	return nil
}

// report describes an image record.
func (r *Runtime) report(ctx context.Context, im images.Image) (*runtime.Image, error) {
	img := client.NewImageWithPlatform(r.client, im, defaultPlatform())
	cfg, err := img.Config(ctx)
	if err != nil {
		return nil, fmt.Errorf("containerd: image %s: %w", im.Name, err)
	}
	size, _ := img.Size(ctx)
	out := &runtime.Image{ID: cfg.Digest.String(), Size: size}
	out.RepoTags, out.RepoDigests = names(im)
	return out, nil
}

func names(im images.Image) (tags, digests []string) {
	if strings.HasPrefix(im.Name, "import-") {
		return nil, nil
	}
	n, err := reference.ParseNormalizedNamed(im.Name)
	if err != nil {
		return []string{im.Name}, nil
	}
	if _, ok := n.(reference.Digested); !ok {
		tags = append(tags, im.Name)
	}
	digests = append(digests, n.Name()+"@"+im.Target.Digest.String())
	return tags, digests
}

// ImageStatus implements runtime.Runtime; ref may also be an image ID.
func (r *Runtime) ImageStatus(ctx context.Context, ref string) (*runtime.Image, error) {
	ctx = r.nsctx(ctx)
	im, err := r.client.ImageService().Get(ctx, normalizeRef(ref))
	if err == nil {
		return r.report(ctx, im)
	}
	if !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("containerd: image %s: %w", ref, err)
	}
	all, err := r.ListImages(ctx)
	if err != nil {
		return nil, err
	}
	for _, im := range all {
		if im.ID == ref || slices.Contains(im.RepoDigests, ref) {
			return im, nil
		}
	}
	return nil, notFound("image", ref)
}

// ListImages implements runtime.Runtime; records of one image (same ID)
// are merged.
func (r *Runtime) ListImages(ctx context.Context) ([]*runtime.Image, error) {
	ctx = r.nsctx(ctx)
	recs, err := r.client.ImageService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("containerd: list images: %w", err)
	}
	byID := map[string]*runtime.Image{}
	var out []*runtime.Image
	for _, rec := range recs {
		im, err := r.report(ctx, rec)
		if err != nil {
			r.logger.Debug("skipping image", "name", rec.Name, "err", err)
			continue
		}
		if prev, ok := byID[im.ID]; ok {
			prev.RepoTags = append(prev.RepoTags, im.RepoTags...)
			prev.RepoDigests = append(prev.RepoDigests, im.RepoDigests...)
			continue
		}
		byID[im.ID] = im
		out = append(out, im)
	}
	slices.SortFunc(out, func(a, b *runtime.Image) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// RemoveImage implements runtime.Runtime: every name of the image goes.
func (r *Runtime) RemoveImage(ctx context.Context, ref string) error {
	ctx = r.nsctx(ctx)
	im, err := r.ImageStatus(ctx, ref)
	if err != nil {
		if errdefs.IsNotFound(err) || isNotFound(err) {
			return nil
		}
		return err
	}
	recs, err := r.client.ImageService().List(ctx)
	if err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	for _, rec := range recs {
		rep, err := r.report(ctx, rec)
		if err != nil || rep.ID != im.ID {
			continue
		}
		r.forgetImage(rec.Name)
		if err := r.client.ImageService().Delete(ctx, rec.Name, images.SynchronousDelete()); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("containerd: remove image %s: %w", rec.Name, err)
		}
	}
	return nil
}
