package apiserver_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tugboatdev/tugboat/orchestrator/apiserver"
	"github.com/tugboatdev/tugboat/store"
)

// A HorizontalPodAutoscaler created through autoscaling/v1 (as kubectl
// v1.32's "kubectl autoscale" does) is stored as autoscaling/v2 and reads
// back in either version.
func Example_autoscalingV1() {
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
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := srv.PKI().WriteKubeconfig(kubeconfig, "https://"+ln.Addr().String(), apiserver.KubeconfigOptions{}); err != nil {
		panic(err)
	}
	cfg, _ := clientcmd.BuildConfigFromFlags("", kubeconfig)
	cs := kubernetes.NewForConfigOrDie(cfg)

	minReplicas, cpu := int32(10), int32(80)
	_, err = cs.AutoscalingV1().HorizontalPodAutoscalers("default").Create(ctx, &autoscalingv1.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx-deployment"},
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "nginx-deployment"},
			MinReplicas:    &minReplicas, MaxReplicas: 15, TargetCPUUtilizationPercentage: &cpu,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		panic(err)
	}
	h, err := cs.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctx, "nginx-deployment", metav1.GetOptions{})
	if err != nil {
		panic(err)
	}
	m := h.Spec.Metrics[0]
	fmt.Printf("v2: %s %s %s %d%%\n", m.Type, m.Resource.Name, m.Resource.Target.Type, *m.Resource.Target.AverageUtilization)
	// Output: v2: Resource cpu Utilization 80%
}
