package apiserver_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tugboatdev/tugboat/orchestrator/apiserver"
	"github.com/tugboatdev/tugboat/store"
)

// Serve an in-memory store over HTTPS on loopback, write the admin
// kubeconfig, and drive it with client-go as kubectl would.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, store.Config{})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	dir, _ := os.MkdirTemp("", "tugboat-apiserver")
	defer os.RemoveAll(dir)

	srv, err := apiserver.New(apiserver.Config{Store: st, DataDir: dir})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(ctx, ln)

	kubeconfig := filepath.Join(dir, "kubeconfig") // use with kubectl --kubeconfig
	if err := srv.PKI().WriteKubeconfig(kubeconfig, "https://"+ln.Addr().String(), apiserver.KubeconfigOptions{}); err != nil {
		panic(err)
	}
	cfg, _ := clientcmd.BuildConfigFromFlags("", kubeconfig)
	cs := kubernetes.NewForConfigOrDie(cfg)
	_, err = cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"}, Data: map[string]string{"greeting": "ahoy"},
	}, metav1.CreateOptions{})
	if err != nil {
		panic(err)
	}
	cm, _ := cs.CoreV1().ConfigMaps("default").Get(ctx, "hello", metav1.GetOptions{})
	fmt.Println(cm.Data["greeting"])
	// Output: ahoy
}
