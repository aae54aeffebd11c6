package containerd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tugboatdev/tugboat/runtime"
)

func TestIsLoopbackHost(t *testing.T) {
	tests := map[string]bool{
		"127.0.0.1:5000": true, "127.1.2.3": true, "localhost:80": true, "localhost": true, "[::1]:5000": true, "[::1]": true,
		"registry.example.com": false, "10.0.0.1:5000": false, "docker.io": false, "127.0.0.1.example.com": false,
	}
	for host, want := range tests {
		if got := isLoopbackHost(host); got != want {
			t.Errorf("isLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func FuzzIsLoopbackHost(f *testing.F) {
	for _, s := range []string{"127.0.0.1:5000", "[::1]:1", "localhost", "example.com:443", "::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		if !isLoopbackHost(host) {
			return
		}
		// Plain HTTP is only ever chosen for loopback names.
		if !strings.Contains(host, "localhost") && !strings.Contains(host, "127.") && !strings.Contains(host, "::1") && !strings.Contains(host, ":") {
			t.Errorf("%q judged loopback", host)
		}
	})
}

func TestSpecMount(t *testing.T) {
	vol := t.TempDir()
	os.MkdirAll(filepath.Join(vol, "a", "b"), 0o755)
	os.Symlink("..", filepath.Join(vol, "a", "up"))
	os.Symlink("/etc", filepath.Join(vol, "out"))
	tests := []struct {
		name    string
		m       runtime.Mount
		want    string // source, or "" for an error
		options []string
	}{
		{name: "bind", m: runtime.Mount{ContainerPath: "/d", HostPath: vol}, want: vol, options: []string{"rbind", "rprivate", "rw"}},
		{name: "read-only", m: runtime.Mount{ContainerPath: "/d", HostPath: vol, ReadOnly: true}, want: vol, options: []string{"rbind", "rprivate", "ro"}},
		{name: "subPath", m: runtime.Mount{ContainerPath: "/d", HostPath: vol, SubPath: "a/b"}, want: filepath.Join(vol, "a", "b"), options: []string{"rbind", "rprivate", "rw"}},
		{name: "subPath symlink inside", m: runtime.Mount{ContainerPath: "/d", HostPath: vol, SubPath: "a/up"}, want: vol, options: []string{"rbind", "rprivate", "rw"}},
		{name: "subPath created", m: runtime.Mount{ContainerPath: "/d", HostPath: vol, SubPath: "new"}, want: filepath.Join(vol, "new"), options: []string{"rbind", "rprivate", "rw"}},
		{name: "subPath escapes by symlink", m: runtime.Mount{ContainerPath: "/d", HostPath: vol, SubPath: "out"}},
		{name: "subPath below an escaping symlink", m: runtime.Mount{ContainerPath: "/d", HostPath: vol, SubPath: "out/tugboat-must-not-exist"}},
		{name: "subPath with dots", m: runtime.Mount{ContainerPath: "/d", HostPath: vol, SubPath: "../x"}},
		{name: "absolute subPath", m: runtime.Mount{ContainerPath: "/d", HostPath: vol, SubPath: "/etc"}},
		{name: "relative container path", m: runtime.Mount{ContainerPath: "d", HostPath: vol}},
		{name: "tmpfs", m: runtime.Mount{ContainerPath: "/t", Tmpfs: true, SizeLimitBytes: 4096}, want: "tmpfs", options: []string{"nosuid", "nodev", "mode=1777", "size=4096"}},
	}
	t.Cleanup(func() {
		if _, err := os.Stat("/etc/tugboat-must-not-exist"); err == nil {
			os.Remove("/etc/tugboat-must-not-exist")
			t.Error("a subPath created a directory outside its volume")
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := specMount(tt.m)
			if tt.want == "" {
				if err == nil {
					t.Errorf("specMount = %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Source != tt.want || got.Destination != tt.m.ContainerPath {
				t.Errorf("source %q dest %q, want %q", got.Source, got.Destination, tt.want)
			}
			if diff := cmp.Diff(tt.options, got.Options); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCapNames(t *testing.T) {
	if diff := cmp.Diff([]string{"CAP_NET_ADMIN", "CAP_SYS_TIME", "CAP_ALL"}, capNames([]string{"NET_ADMIN", "cap_sys_time", "ALL"})); diff != "" {
		t.Error(diff)
	}
}

func TestAcquire(t *testing.T) {
	release, err := acquire(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	release() // unbounded: no-op
	slots := make(chan struct{}, 1)
	release, err = acquire(context.Background(), slots)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := acquire(ctx, slots); !errors.Is(err, context.Canceled) {
		t.Errorf("acquire of a full pool with a cancelled context = %v, want context.Canceled", err)
	}
	release()
	release, err = acquire(context.Background(), slots)
	if err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	release()
	if len(slots) != 0 {
		t.Errorf("slots held after release: %d", len(slots))
	}
}
