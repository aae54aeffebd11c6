package controllers_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/orchestrator/controllers"
	"github.com/tugboatdev/tugboat/orchestrator/simnode"
	"github.com/tugboatdev/tugboat/store"
)

// Run the controllers of a cluster with leader election over an in-memory
// store, with three simulated nodes standing in for real ones, and roll a
// Deployment out.
func ExampleManager() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := store.Open(ctx, store.Config{Logger: log})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	// Three simulated nodes; the test binder stands in for the scheduler.
	nodes := simnode.New(s, simnode.Options{Nodes: 3, TestBinder: true, Log: log})
	go func() { _ = nodes.Run(ctx) }()

	m := controllers.NewManager(controllers.ManagerOptions{Store: s, Log: log, LeaderElection: true, Identity: "example"})
	go func() { _ = m.Run(ctx) }()

	labels := map[string]string{"app": "web"}
	_, err = store.Create(ctx, s, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.25"}}},
			},
		},
	})
	if err != nil {
		panic(err)
	}
	// What `kubectl rollout status` waits for.
	for {
		d, _ := store.Get[*appsv1.Deployment](ctx, s, "default", "web")
		st := d.Status
		if st.ObservedGeneration >= d.Generation && st.UpdatedReplicas == 3 && st.AvailableReplicas == 3 && st.Replicas == 3 {
			fmt.Printf("READY %d/%d UP-TO-DATE %d AVAILABLE %d revision %s\n", st.ReadyReplicas, *d.Spec.Replicas,
				st.UpdatedReplicas, st.AvailableReplicas, d.Annotations[controllers.AnnotationRevision])
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Output:
	// READY 3/3 UP-TO-DATE 3 AVAILABLE 3 revision 1
}

func ptr[T any](v T) *T { return &v }

// Publish the cluster CA as the ConfigMap kube-root-ca.crt in every
// namespace, where ServiceAccount token volumes find it.
func ExampleRootCAPublisher() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := store.Open(ctx, store.Config{Logger: log})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	ca := []byte("-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n")
	m := controllers.NewManager(controllers.ManagerOptions{Store: s, Log: log,
		Controllers: []string{"root-ca-cert-publisher"}, RootCAPEM: ca})
	go func() { _ = m.Run(ctx) }()
	if _, err := store.Create(ctx, s, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}); err != nil {
		panic(err)
	}
	for {
		cm, err := store.Get[*corev1.ConfigMap](ctx, s, "team-a", controllers.RootCAConfigMapName)
		if err == nil {
			fmt.Printf("%s/%s has %s: %v\n", cm.Namespace, cm.Name, controllers.RootCAConfigMapKey, cm.Data[controllers.RootCAConfigMapKey] == string(ca))
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Output:
	// team-a/kube-root-ca.crt has ca.crt: true
}
