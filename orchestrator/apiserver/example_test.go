package apiserver_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tugboatdev/tugboat/orchestrator/apiserver"
	"github.com/tugboatdev/tugboat/orchestrator/serviceaccount"
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

// Give pods identities: the server issues ServiceAccount tokens (kubectl
// create token) and accepts them as system:serviceaccount users; with the
// admission on, new pods get the token volume.
func Example_serviceAccounts() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, store.Config{})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	dir, _ := os.MkdirTemp("", "tugboat-apiserver")
	defer os.RemoveAll(dir)

	key, err := serviceaccount.LoadOrCreateKey(filepath.Join(dir, "pki", "sa.key"))
	if err != nil {
		panic(err)
	}
	issuer, err := serviceaccount.New(serviceaccount.Config{Store: st, Key: key})
	if err != nil {
		panic(err)
	}
	srv, err := apiserver.New(apiserver.Config{Store: st, DataDir: dir, ServiceAccounts: issuer, ServiceAccountAdmission: true})
	if err != nil {
		panic(err)
	}
	// Every namespace needs its "default" account and kube-root-ca.crt
	// (in a cluster, the controllers keep them; here, once by hand).
	if err := serviceaccount.EnsureNamespace(ctx, st, "default", srv.PKI().CAPEM); err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(ctx, ln)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := srv.PKI().WriteKubeconfig(kubeconfig, "https://"+ln.Addr().String(), apiserver.KubeconfigOptions{}); err != nil {
		panic(err)
	}
	cfg, _ := clientcmd.BuildConfigFromFlags("", kubeconfig)
	cs := kubernetes.NewForConfigOrDie(cfg)

	pod, err := cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}}, metav1.CreateOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println(pod.Spec.ServiceAccountName, pod.Spec.Containers[0].VolumeMounts[0].MountPath)

	tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, "default", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		panic(err)
	}
	user, err := issuer.Authenticate(ctx, tr.Status.Token)
	if err != nil {
		panic(err)
	}
	fmt.Println(user.Name)
	// Output:
	// default /var/run/secrets/kubernetes.io/serviceaccount
	// system:serviceaccount:default:default
}
