package images

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// AnnotationImageName is the index annotation containerd reads to name an
// image imported from an OCI archive. Without it the import is unnamed.
const AnnotationImageName = "io.containerd.image.name"

// File is one entry of an image's filesystem.
type File struct {
	// Path is absolute inside the image, such as "/bin/app".
	Path string
	// Mode holds the permission bits, and fs.ModeDir or fs.ModeSymlink for
	// directories and symbolic links.
	Mode fs.FileMode
	// Data is a regular file's content.
	Data []byte
	// Link is a symbolic link's target.
	Link string
}

// Config is the runtime configuration of a built image.
type Config struct {
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	User       string
}

// epoch is the modification time of every file: builds are reproducible.
var epoch = time.Unix(0, 0).UTC()

// Build returns a single-layer linux/amd64 OCI image holding files (parent
// directories are added) with cfg as its configuration.
func Build(files []File, cfg Config) (v1.Image, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	seen := map[string]bool{}
	var addDirs func(p string) error
	addDirs = func(p string) error {
		d := path.Dir(p)
		if d == "/" || d == "." || seen[d] {
			return nil
		}
		if err := addDirs(d); err != nil {
			return err
		}
		seen[d] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755, ModTime: epoch})
	}
	sorted := slices.Clone(files)
	slices.SortStableFunc(sorted, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	for _, f := range sorted {
		if !path.IsAbs(f.Path) {
			return nil, fmt.Errorf("images: path %q is not absolute", f.Path)
		}
		p := path.Clean(f.Path)
		if err := addDirs(p); err != nil {
			return nil, fmt.Errorf("images: %w", err)
		}
		name := strings.TrimPrefix(p, "/")
		h := &tar.Header{Name: name, Mode: int64(f.Mode.Perm()), ModTime: epoch}
		switch {
		case f.Mode&fs.ModeDir != 0:
			if seen[p] {
				continue
			}
			seen[p] = true
			h.Typeflag, h.Name = tar.TypeDir, name+"/"
		case f.Mode&fs.ModeSymlink != 0:
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f.Link, 0o777
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Data))
		}
		if h.Mode == 0 && h.Typeflag == tar.TypeDir {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("images: %w", err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, fmt.Errorf("images: %w", err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("images: layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer})
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Created = "amd64", "linux", v1.Time{Time: epoch}
	cf.Config = v1.Config{Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd, Env: cfg.Env, WorkingDir: cfg.WorkingDir, User: cfg.User}
	if len(cf.Config.Env) == 0 {
		cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	return img, nil
}

// BaseFiles are the few files every built image gets: /etc/passwd and
// /etc/group with root, nobody and a user 1000, and a world-writable /tmp.
func BaseFiles() []File {
	return []File{
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nuser:x:1000:1000:user:/home/user:/bin/sh\n")},
		{Path: "/etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnobody:x:65534:\nuser:x:1000:\n")},
		{Path: "/tmp", Mode: fs.ModeDir | 0o777},
		{Path: "/root", Mode: fs.ModeDir | 0o700},
	}
}

// BusyboxPath is where Debian's busybox-static installs busybox.
const BusyboxPath = "/bin/busybox"

// BusyboxFiles returns the node's static busybox at /bin/busybox with a
// symbolic link per applet (sh, sleep, wget, nc, ...) plus BaseFiles.
func BusyboxFiles(busybox string) ([]File, error) {
	data, err := os.ReadFile(busybox)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("images: %s --list: %w", busybox, err)
	}
	files := append(BaseFiles(), File{Path: "/bin/busybox", Mode: 0o755, Data: data})
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		files = append(files, File{Path: "/bin/" + applet, Mode: fs.ModeSymlink, Link: "busybox"})
	}
	return files, nil
}

// Busybox builds an image of the node's static busybox whose default
// command is sh.
func Busybox() (v1.Image, error) {
	files, err := BusyboxFiles(BusyboxPath)
	if err != nil {
		return nil, err
	}
	return Build(files, Config{Cmd: []string{"sh"}})
}

// Binary builds an image holding one static executable (such as a Go
// program built with CGO_ENABLED=0) at /app as its entrypoint.
func Binary(executable string, args ...string) (v1.Image, error) {
	data, err := os.ReadFile(executable)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	return Build(append(BaseFiles(), File{Path: "/app", Mode: 0o755, Data: data}), Config{Entrypoint: []string{"/app"}, Cmd: args})
}

// WriteArchive writes img as an OCI image archive (a tar of an OCI layout)
// whose index names it ref through the io.containerd.image.name and
// org.opencontainers.image.ref.name annotations.
func WriteArchive(w io.Writer, ref string, img v1.Image) error {
	dir, err := os.MkdirTemp("", "tugboat-oci-")
	if err != nil {
		return fmt.Errorf("images: %w", err)
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("images: %w", err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		AnnotationImageName:                 ref,
		"org.opencontainers.image.ref.name": ref,
	})); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	return tarDir(w, dir)
}

func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("images: %w", err)
	}
	return tw.Close()
}

// Registry is an OCI registry served over plain HTTP on a loopback port.
type Registry struct {
	// Host is "127.0.0.1:port", the registry part of image references.
	Host string
	srv  *http.Server
	ln   net.Listener
}

// StartRegistry serves an in-memory registry on 127.0.0.1 until Close.
// With user set, every request needs basic auth with user and password.
func StartRegistry(user, password string) (*Registry, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	var h http.Handler = registry.New(registry.Logger(nopLogger()))
	if user != "" {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="tugboat"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	r := &Registry{Host: ln.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, ln: ln}
	go r.srv.Serve(ln)
	return r, nil
}

// Push uploads img as ref (which must name this registry's host).
func (r *Registry) Push(ctx context.Context, ref string, img v1.Image, opts ...remote.Option) error {
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		return fmt.Errorf("images: %w", err)
	}
	if tag.RegistryStr() != r.Host {
		return fmt.Errorf("images: %q is not on registry %s", ref, r.Host)
	}
	if err := remote.Write(tag, img, append([]remote.Option{remote.WithContext(ctx)}, opts...)...); err != nil {
		return fmt.Errorf("images: push %s: %w", ref, err)
	}
	return nil
}

// Close stops the registry.
func (r *Registry) Close() error { return r.srv.Close() }
