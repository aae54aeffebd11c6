package crilog_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/crilog"
)

// Example writes a container's output in the CRI log format and reads it
// back as `kubectl logs --timestamps --tail=2` would.
func Example() {
	dir, _ := os.MkdirTemp("", "crilog")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app", "0.log")
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w, err := crilog.NewWriter(path, crilog.WriterOptions{Now: func() time.Time { t = t.Add(time.Second); return t }})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Fprint(w.Stream(crilog.Stdout), "starting\nlistening on :8080\n")
	fmt.Fprint(w.Stream(crilog.Stderr), "warning: no config\n")
	w.Close()

	raw, _ := os.ReadFile(path)
	fmt.Print(string(raw))
	fmt.Println("--")
	_ = crilog.Read(context.Background(), path, crilog.ReadOptions{LogOptions: runtime.LogOptions{TailLines: 2, Timestamps: true}}, os.Stdout, os.Stdout)
	// Output:
	// 2026-01-02T03:04:06Z stdout F starting
	// 2026-01-02T03:04:07Z stdout F listening on :8080
	// 2026-01-02T03:04:08Z stderr F warning: no config
	// --
	// 2026-01-02T03:04:07Z listening on :8080
	// 2026-01-02T03:04:08Z warning: no config
}
