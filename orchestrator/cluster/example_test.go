package cluster_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/orchestrator/cluster"
	"github.com/tugboatdev/tugboat/store"
)

// A cluster of two simulated nodes embedded in a program: a Deployment
// created through the Go store API is scheduled and its pods run on the
// simulated nodes. With Simulated false (and root) the same program runs
// real containers on containerd; kubectl works through c.KubeconfigPath().
func Example() {
	dir, err := os.MkdirTemp("", "tugboat-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	c, err := cluster.New(cluster.Config{
		DataDir:         dir,
		Simulated:       true,
		Nodes:           2,
		APIAddress:      "127.0.0.1:0",
		RegistryAddress: "off",
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	<-c.Ready()

	st := c.Store()
	replicas := int32(4)
	labels := map[string]string{"app": "web"}
	_, err = store.Create(ctx, st, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "web", Image: "127.0.0.1:5000/demo/web:1.0",
				}}},
			},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for {
		pods, _, err := store.ListOf[*corev1.Pod](ctx, st, "default", metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			fmt.Println(err)
			return
		}
		running := 0
		for _, p := range pods {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		if running == 4 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	nodes, _, _ := store.ListOf[*corev1.Node](ctx, st, "", metav1.ListOptions{})
	fmt.Println("nodes:", len(nodes))
	fmt.Println("running pods: 4")
	cancel()
	fmt.Println("stopped:", <-done)
	// Output:
	// nodes: 2
	// running pods: 4
	// stopped: <nil>
}
