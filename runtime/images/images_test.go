package images_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/tugboatdev/tugboat/runtime/images"
)

func TestBuild(t *testing.T) {
	img, err := images.Build([]images.File{
		{Path: "/usr/bin/app", Mode: 0o755, Data: []byte("#!/bin/sh\n")},
		{Path: "/etc/app/conf", Mode: 0o644, Data: []byte("x=1")},
		{Path: "/bin/sh", Mode: fs.ModeSymlink, Link: "app"},
		{Path: "/var/empty", Mode: fs.ModeDir | 0o700},
	}, images.Config{Entrypoint: []string{"/usr/bin/app"}, Cmd: []string{"serve"}, WorkingDir: "/srv", User: "1000"})
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || cf.Config.WorkingDir != "/srv" || cf.Config.User != "1000" ||
		!cmp.Equal(cf.Config.Entrypoint, []string{"/usr/bin/app"}) || !cmp.Equal(cf.Config.Cmd, []string{"serve"}) {
		t.Errorf("config = %+v", cf)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %v, %v", layers, err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %c %o %s", h.Name, h.Typeflag, h.Mode, h.Linkname))
	}
	want := []string{
		"bin/ 5 755 ", "bin/sh 2 777 app",
		"etc/ 5 755 ", "etc/app/ 5 755 ", "etc/app/conf 0 644 ",
		"usr/ 5 755 ", "usr/bin/ 5 755 ", "usr/bin/app 0 755 ",
		"var/ 5 755 ", "var/empty/ 5 700 ",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layer entries (-want +got):\n%s", diff)
	}
	// Builds are reproducible.
	again, _ := images.Build([]images.File{
		{Path: "/usr/bin/app", Mode: 0o755, Data: []byte("#!/bin/sh\n")},
		{Path: "/etc/app/conf", Mode: 0o644, Data: []byte("x=1")},
		{Path: "/bin/sh", Mode: fs.ModeSymlink, Link: "app"},
		{Path: "/var/empty", Mode: fs.ModeDir | 0o700},
	}, images.Config{Entrypoint: []string{"/usr/bin/app"}, Cmd: []string{"serve"}, WorkingDir: "/srv", User: "1000"})
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("digests differ: %s %s", d1, d2)
	}
	if _, err := images.Build([]images.File{{Path: "relative"}}, images.Config{}); err == nil {
		t.Error("relative path accepted")
	}
}

func TestWriteArchiveNamesTheImage(t *testing.T) {
	img, err := images.Build(images.BaseFiles(), images.Config{Cmd: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := images.WriteArchive(&buf, "example.local/app:1", img); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	var index struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == "index.json" {
			if err := json.NewDecoder(tr).Decode(&index); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(index.Manifests) != 1 || index.Manifests[0].Annotations[images.AnnotationImageName] != "example.local/app:1" {
		t.Errorf("index = %+v (files %v)", index, names)
	}
	d, _ := img.Digest()
	if index.Manifests[0].Digest != d.String() {
		t.Errorf("index digest %s, want %s", index.Manifests[0].Digest, d)
	}
}

func TestRegistry(t *testing.T) {
	reg, err := images.StartRegistry("bob", "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if !strings.HasPrefix(reg.Host, "127.0.0.1:") {
		t.Fatalf("registry host %s is not on loopback", reg.Host)
	}
	img, err := images.Build(images.BaseFiles(), images.Config{Cmd: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/app:1"
	ctx := context.Background()
	var terr *transport.Error
	if err := reg.Push(ctx, ref, img); !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Errorf("push without credentials: %v, want 401", err)
	}
	auth := remote.WithAuth(&authn.Basic{Username: "bob", Password: "pw"})
	if err := reg.Push(ctx, ref, img, auth); err != nil {
		t.Fatal(err)
	}
	if err := reg.Push(ctx, "elsewhere.example/app:1", img, auth); err == nil {
		t.Error("push to another registry accepted")
	}
	tag, _ := name.NewTag(ref, name.Insecure)
	got, err := remote.Image(tag, auth)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := got.Digest()
	if d1 != d2 {
		t.Errorf("pulled digest %s, pushed %s", d2, d1)
	}
}

// ExampleBuild builds a one-file image and shows its configuration.
func ExampleBuild() {
	img, err := images.Build(append(images.BaseFiles(),
		images.File{Path: "/app", Mode: 0o755, Data: []byte("#!/bin/sh\necho hi\n")}),
		images.Config{Entrypoint: []string{"/app"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	cf, _ := img.ConfigFile()
	layers, _ := img.Layers()
	mt, _ := img.MediaType()
	fmt.Println(cf.OS, cf.Architecture, cf.Config.Entrypoint, len(layers), mt)
	// Output:
	// linux amd64 [/app] 1 application/vnd.oci.image.manifest.v1+json
}
