package controllers

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/orchestrator/simnode"
	"github.com/tugboatdev/tugboat/store"
)

const testCAPEM = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"

func TestRootCAPublisher(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 1}, func(c Config) runner { return NewRootCAPublisher(c, []byte(testCAPEM)) })
	mustCreate(e, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}})
	caIn := func(ns string) (bool, string) {
		cm, err := store.Get[*corev1.ConfigMap](e.ctx, e.s, ns, RootCAConfigMapName)
		if err != nil {
			return false, err.Error()
		}
		return cm.Data[RootCAConfigMapKey] == testCAPEM && len(cm.Data) == 1, fmt.Sprint(cm.Data)
	}
	for _, ns := range []string{"default", "kube-system", "team-a"} {
		e.waitFor("kube-root-ca.crt in "+ns, func() (bool, string) { return caIn(ns) })
	}
	// An edit is undone.
	update(e, "team-a", RootCAConfigMapName, func(cm *corev1.ConfigMap) {
		cm.Data[RootCAConfigMapKey] = "tampered"
		cm.Data["extra"] = "x"
	})
	e.waitFor("edit reverted", func() (bool, string) { return caIn("team-a") })
	// A deletion is undone.
	if err := store.Delete[*corev1.ConfigMap](e.ctx, e.s, "team-a", RootCAConfigMapName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("re-created", func() (bool, string) { return caIn("team-a") })
}

func TestRootCAPublisherWithoutCAPublishesNothing(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 1}, func(c Config) runner { return NewRootCAPublisher(c, nil) })
	mustCreate(e, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-b"}})
	ok, desc := e.settle(func() (bool, string) {
		cms, _, err := store.ListOf[*corev1.ConfigMap](e.ctx, e.s, "", metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(cms) == 0, fmt.Sprint(len(cms), " configmaps")
	})
	if !ok {
		t.Fatalf("published without a CA: %s", desc)
	}
}
