package containerd

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/tugboatdev/tugboat/internal/testenv"
	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/images"
)

func testenvNeedGo(t *testing.T) { testenv.NeedCommand(t, "go") }

func TestPullFromLoopbackRegistry(t *testing.T) {
	reg, err := images.StartRegistry("alice", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	r := newTestRuntime(t, testOpts{})
	ctx := context.Background()
	files, err := images.BusyboxFiles(images.BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	img, err := images.Build(append(files, images.File{Path: "/msg", Mode: 0o644, Data: []byte("pulled over http")}), images.Config{Cmd: []string{"cat", "/msg"}})
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/team/app:v1"
	if err := reg.Push(ctx, ref, img, remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"})); err != nil {
		t.Fatal(err)
	}
	auth := &runtime.AuthConfig{Username: "alice", Password: "s3cret"}

	if _, err := r.PullImage(ctx, ref, nil); !errors.Is(err, runtime.ErrImagePull) || !strings.Contains(err.Error(), "401") {
		t.Errorf("pull without credentials: %v, want ErrImagePull with the registry's 401", err)
	}
	if _, err := r.PullImage(ctx, reg.Host+"/team/missing:v1", auth); !errors.Is(err, runtime.ErrImagePull) || !strings.Contains(err.Error(), "not found") {
		t.Errorf("pull of a missing image: %v, want ErrImagePull naming not found", err)
	}
	pulled, err := r.PullImage(ctx, ref, auth)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.ConfigName()
	if pulled.ID != d.String() || !slices.Contains(pulled.RepoTags, ref) || len(pulled.RepoDigests) != 1 {
		t.Errorf("pulled image = %+v, want ID %s", pulled, d)
	}
	_, ids := runPod(t, r, &runtime.PodSandboxConfig{Name: "pulled"}, &runtime.ContainerConfig{Name: "c", Image: ref})
	waitExit(t, r, ids[0], 10*time.Second)
	if got := logsOf(t, r, ids[0]); got != "pulled over http\n" {
		t.Errorf("output = %q", got)
	}
	byID, err := r.ImageStatus(ctx, pulled.ID)
	if err != nil || !slices.Contains(byID.RepoTags, ref) {
		t.Errorf("status by ID = %+v, %v", byID, err)
	}
	if err := r.RemovePodSandbox(ctx, mustSandbox(t, r)); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveImage(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ImageStatus(ctx, ref); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("status after removal: %v", err)
	}
	if err := r.RemoveImage(ctx, ref); err != nil {
		t.Errorf("removing an absent image: %v", err)
	}
}

// tarDirectory writes dir as a tar stream.
func tarDirectory(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, _ := d.Info()
		h, _ := tar.FileInfoHeader(info, "")
		h.Name = rel
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = tw.Write(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.Close()
	return buf.Bytes()
}

func TestImportArchives(t *testing.T) {
	imagesDir := t.TempDir()
	small, err := images.Build(append(images.BaseFiles(), images.File{Path: "/hello", Mode: 0o644, Data: []byte("air-gapped")}), images.Config{Cmd: []string{"/hello"}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(imagesDir, "airgap.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if err := images.WriteArchive(f, "tugboat.test/airgap:1", small); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// The images directory is imported at start (k3s air-gap style).
	r := newTestRuntime(t, testOpts{imagesDir: imagesDir})
	ctx := context.Background()
	if im, err := r.ImageStatus(ctx, "tugboat.test/airgap:1"); err != nil || im.Size == 0 {
		t.Errorf("air-gap image: %+v, %v", im, err)
	}

	// A docker archive (docker save format).
	other, err := images.Build(append(images.BaseFiles(), images.File{Path: "/other", Mode: 0o644, Data: []byte("docker")}), images.Config{Cmd: []string{"/other"}})
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag("tugboat.test/docker:2")
	var docker bytes.Buffer
	if err := tarball.Write(tag, other, &docker); err != nil {
		t.Fatal(err)
	}
	got, err := r.ImportImage(ctx, &docker)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !slices.Contains(got[0].RepoTags, "tugboat.test/docker:2") {
		t.Errorf("docker archive import = %+v", got)
	}

	// An OCI archive whose index lacks io.containerd.image.name: imported
	// under a digest name instead of being dropped.
	third, err := images.Build(append(images.BaseFiles(), images.File{Path: "/third", Mode: 0o644, Data: []byte("3")}), images.Config{Cmd: []string{"/third"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(third); err != nil {
		t.Fatal(err)
	}
	got, err = r.ImportImage(ctx, bytes.NewReader(tarDirectory(t, dir)))
	if err != nil {
		t.Fatal(err)
	}
	cfgName, _ := third.ConfigName()
	if len(got) != 1 || got[0].ID != cfgName.String() {
		t.Fatalf("unnamed import = %+v", got)
	}
	if _, err := r.ImageStatus(ctx, got[0].ID); err != nil {
		t.Errorf("unnamed image by ID: %v", err)
	}
	list, err := r.ListImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 4 { // busybox, airgap, docker, unnamed
		var names [][]string
		for _, im := range list {
			names = append(names, im.RepoTags)
		}
		t.Errorf("images = %v, want 4", names)
	}
}

func TestStaticGoBinaryImage(t *testing.T) {
	testenvNeedGo(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module hello\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.go"), []byte(`package main

import (
	"fmt"
	"os"
)

func main() { fmt.Println("hello from go", os.Args[1:], os.Getuid()) }
`), 0o644)
	bin := filepath.Join(src, "hello")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	img, err := images.Binary(bin, "default-arg")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := images.WriteArchive(&buf, "tugboat.test/hello-go:1", img); err != nil {
		t.Fatal(err)
	}
	r := newTestRuntime(t, testOpts{})
	if _, err := r.ImportImage(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	_, ids := runPod(t, r, &runtime.PodSandboxConfig{Name: "go"},
		&runtime.ContainerConfig{Name: "default", Image: "tugboat.test/hello-go:1"},
		&runtime.ContainerConfig{Name: "args", Image: "tugboat.test/hello-go:1", Args: []string{"x", "y"}, Security: runtime.SecurityContext{RunAsUser: ptr[int64](65534)}})
	for i, want := range []string{"hello from go [default-arg] 0\n", "hello from go [x y] 65534\n"} {
		if st := waitExit(t, r, ids[i], 10*time.Second); st.ExitCode != 0 {
			t.Errorf("exit %d", st.ExitCode)
		}
		if got := logsOf(t, r, ids[i]); got != want {
			t.Errorf("output = %q, want %q", got, want)
		}
	}
}
