package remote_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tugboatdev/tugboat/orchestrator/apiserver"
	"github.com/tugboatdev/tugboat/orchestrator/remote"
	"github.com/tugboatdev/tugboat/store"
)

// A component written against store.Interface runs unchanged on another
// host: give it a remote.Client built from the API server's kubeconfig.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The control plane: an embedded store behind the API server.
	st, err := store.Open(ctx, store.Config{})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	dir, _ := os.MkdirTemp("", "tugboat-remote")
	defer os.RemoveAll(dir)
	srv, err := apiserver.New(apiserver.Config{Store: st, DataDir: dir})
	if err != nil {
		panic(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ctx, ln)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	_ = srv.PKI().WriteKubeconfig(kubeconfig, "https://"+ln.Addr().String(), apiserver.KubeconfigOptions{})

	// Elsewhere: the same typed helpers, over HTTP.
	cfg, _ := clientcmd.BuildConfigFromFlags("", kubeconfig)
	var s store.Interface
	s, err = remote.New(cfg, remote.Options{})
	if err != nil {
		panic(err)
	}
	_, err = store.Create(ctx, s, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default"}, Data: map[string]string{"k": "v"}})
	if err != nil {
		panic(err)
	}
	cm, err := store.Get[*corev1.ConfigMap](ctx, st, "default", "cfg") // read back from the embedded store
	if err != nil {
		panic(err)
	}
	fmt.Println(cm.Data["k"])
	// Output: v
}
