package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// TestQuickstart runs the program through its walk-through and checks
// every step it prints and the kubeconfig it writes.
func TestQuickstart(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"-exit", "-data-dir", dir}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	t.Log(out.String())
	for _, want := range []string{
		"==> cluster ready: node node-1",
		"kubeconfig: " + dir + "/admin.kubeconfig",
		"try: kubectl --kubeconfig " + dir + "/admin.kubeconfig get pods -o wide",
		"==> created deployment nginx-deployment",
		"==> created service nginx-service: ClusterIP 10.",
		"==> scaled to 4 replicas",
		"==> rolled out: 4 pods run nginx:1.16.1",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output misses %q", want)
		}
	}
	if n := strings.Count(out.String(), "Running"); n != 3+4+4 {
		t.Errorf("%d pod lines Running, want 11", n)
	}
	cfg, err := clientcmd.LoadFromFile(dir + "/admin.kubeconfig")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		if !strings.HasPrefix(c.Server, "https://127.0.0.1:") {
			t.Errorf("kubeconfig server %q, want https on loopback", c.Server)
		}
	}
	if _, err := os.Stat(dir + "/node-1"); err != nil {
		t.Errorf("agent root directory: %v", err)
	}
}
