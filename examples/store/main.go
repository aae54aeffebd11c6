// Command store is the first runnable step of tugboat: a durable cluster
// store on its own. It applies manifests (strictly decoded and validated as
// the API server does), prints every stored object, and with -watch streams
// the changes until interrupted. Run it twice with the same -data-dir to see
// the state survive a restart (or a kill -9).
//
//	go run ./examples/store -data-dir /tmp/tugboat -f examples/manifests/nginx-deployment.yaml
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/tugboatdev/tugboat/store"
)

type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

func main() {
	dataDir := flag.String("data-dir", "tugboat-data", "directory of the durable store (empty: in memory)")
	watch := flag.Bool("watch", false, "after applying, print changes until interrupted")
	var manifests files
	flag.Var(&manifests, "f", "manifest file to apply (repeatable)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dataDir, manifests, *watch); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir string, manifests []string, watch bool) error {
	start := time.Now()
	s, err := store.Open(ctx, store.Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	defer s.Close()
	where := dir
	if where == "" {
		where = "memory"
	}
	fmt.Printf("store open at %s in %v: revision %d\n", where, time.Since(start).Round(time.Millisecond), s.Revision())
	for _, path := range manifests {
		if err := apply(ctx, s, path); err != nil {
			return err
		}
	}
	printAll(ctx, s)
	if !watch {
		return nil
	}
	return watchAll(ctx, s)
}

// apply creates the objects of a manifest file, or updates them when they
// exist (a simple kubectl apply).
func apply(ctx context.Context, s *store.Store, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	objs, err := store.DecodeAll(s.Registry(), f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, o := range objs {
		k := s.Registry().ForObject(o)
		acc, _ := meta.Accessor(o)
		if k.Namespaced && acc.GetNamespace() == "" {
			acc.SetNamespace(metav1.NamespaceDefault)
		}
		verb := "created"
		_, err := s.Create(ctx, o, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			verb = "configured"
			_, err = s.Update(ctx, o, metav1.UpdateOptions{})
		}
		if err != nil {
			return fmt.Errorf("%s: %s %s: %w", path, k.Singular, acc.GetName(), err)
		}
		fmt.Printf("%s/%s %s\n", k.Singular, acc.GetName(), verb)
	}
	return nil
}

func printAll(ctx context.Context, s *store.Store) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAMESPACE\tNAME\tRESOURCEVERSION\tAGE")
	for _, k := range s.Registry().Kinds() {
		l, err := s.List(ctx, k.GroupResource(), "", metav1.ListOptions{})
		if err != nil {
			continue
		}
		for _, o := range l.Items {
			acc, _ := meta.Accessor(o)
			age := duration.HumanDuration(time.Since(acc.GetCreationTimestamp().Time))
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.GVK.Kind, acc.GetNamespace(), acc.GetName(), acc.GetResourceVersion(), age)
		}
	}
	tw.Flush()
}

func watchAll(ctx context.Context, s *store.Store) error {
	rv := fmt.Sprint(s.Revision())
	events := make(chan string)
	for _, k := range s.Registry().Kinds() {
		w, err := s.Watch(ctx, k.GroupResource(), "", metav1.ListOptions{ResourceVersion: rv})
		if err != nil {
			return err
		}
		go func() {
			defer w.Stop()
			for e := range w.ResultChan() {
				acc, err := meta.Accessor(e.Object)
				if err != nil {
					continue
				}
				select {
				case events <- fmt.Sprintf("%-8s %s %s/%s rv=%s", e.Type, k.GVK.Kind, acc.GetNamespace(), acc.GetName(), acc.GetResourceVersion()):
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	fmt.Println("watching; Ctrl-C to stop")
	for {
		select {
		case line := <-events:
			fmt.Println(line)
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil
			}
			return ctx.Err()
		}
	}
}
