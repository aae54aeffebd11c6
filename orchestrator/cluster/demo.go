package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tugboatdev/tugboat/runtime/images"
)

// Demo image repositories and tags, as examples/manifests name them
// (with the registry host in front).
const (
	DemoWebRepo     = "demo/web"
	DemoBusyboxRepo = "demo/busybox"
)

// webScript is the demo web server: busybox httpd serving a page with the
// pod's hostname and the image's version, logging each request. The shell
// stays PID 1 and exits on SIGTERM (a PID 1 without a handler ignores it),
// so a deleted pod goes at once instead of after its grace period.
const webScript = `mkdir -p /www && ` +
	`printf '<html><body><h1>tugboat demo web %s</h1><p>hostname: %s</p></body></html>\n' "$VERSION" "$(hostname)" > /www/index.html && ` +
	`printf 'version=%s hostname=%s\n' "$VERSION" "$(hostname)" > /www/version && ` +
	`echo "demo web $VERSION serving http on :80 as $(hostname)" && ` +
	`httpd -f -v -p 80 -h /www & pid=$!; ` +
	`trap 'kill $pid; exit 0' TERM; wait $pid`

// DemoImages returns the references of the demo images on host.
func DemoImages(host string) []string {
	return []string{
		host + "/" + DemoWebRepo + ":1.0",
		host + "/" + DemoWebRepo + ":2.0",
		host + "/" + DemoBusyboxRepo + ":1.35",
	}
}

// WebImage builds the demo web server image of version: the node's static
// busybox running httpd on port 80, serving "/" (an HTML page) and
// "/version" (one text line), both naming the version and the pod's
// hostname.
func WebImage(version string) (v1.Image, error) {
	files, err := images.BusyboxFiles(images.BusyboxPath)
	if err != nil {
		return nil, fmt.Errorf("cluster: demo web image: %w", err)
	}
	img, err := images.Build(files, images.Config{
		Entrypoint: []string{"/bin/sh", "-c", webScript},
		Env:        []string{"PATH=/bin", "VERSION=" + version},
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: demo web image: %w", err)
	}
	return img, nil
}

// pushDemoImages builds the demo images and pushes them to the registry on
// host.
func pushDemoImages(ctx context.Context, host string) error {
	reg := &pusher{host: host}
	for _, v := range []string{"1.0", "2.0"} {
		img, err := WebImage(v)
		if err != nil {
			return err
		}
		if err := reg.push(ctx, host+"/"+DemoWebRepo+":"+v, img); err != nil {
			return err
		}
	}
	bb, err := images.Busybox()
	if err != nil {
		return fmt.Errorf("cluster: demo busybox image: %w", err)
	}
	return reg.push(ctx, host+"/"+DemoBusyboxRepo+":1.35", bb)
}

// startRegistry serves an in-memory OCI registry on addr (loopback) and
// returns its host:port and a stop function.
func startRegistry(ctx context.Context, addr string) (string, func(), error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil, fmt.Errorf("cluster: registry address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", nil, fmt.Errorf("cluster: registry address %q is not on loopback", addr)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("cluster: registry: %w", err)
	}
	srv := &http.Server{
		Handler:           registry.New(registry.Logger(log.New(io.Discard, "", 0))),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err
		}
	}()
	return ln.Addr().String(), func() { srv.Close() }, nil
}

// pusher uploads images to a plain-HTTP loopback registry.
type pusher struct{ host string }

func (p *pusher) push(ctx context.Context, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("cluster: push %s: %w", ref, err)
	}
	return nil
}
