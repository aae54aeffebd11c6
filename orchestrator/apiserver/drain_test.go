package apiserver

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestKubectlDrainWaitsOnPDB checks that kubectl drain is held back by a
// PodDisruptionBudget that allows no disruption (429 from pods/eviction)
// and succeeds once the budget allows one.
func TestKubectlDrainWaitsOnPDB(t *testing.T) {
	ts := startServer(t)
	ctx := context.Background()
	cs := clientset(t, ts.rest, true)
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := testPod("default", "guarded", map[string]string{"app": "g"})
	p.Spec.NodeName = "n1"
	if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	one := intstr.FromInt32(1)
	pdb, err := cs.PolicyV1().PodDisruptionBudgets("default").Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "g"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "g"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := ts.kubectl(t, "", "drain", "n1", "--force", "--timeout=3s")
	if err == nil || !strings.Contains(out, "Cannot evict pod as it would violate the pod's disruption budget") {
		t.Fatalf("drain with a blocking PDB: %v\n%s", err, out)
	}
	if n, _ := cs.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{}); !n.Spec.Unschedulable {
		t.Error("drain did not cordon the node")
	}
	pdb.Status = policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 1, ObservedGeneration: pdb.Generation, CurrentHealthy: 2, DesiredHealthy: 1}
	if _, err := cs.PolicyV1().PodDisruptionBudgets("default").UpdateStatus(ctx, pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	out = ts.mustKubectl(t, "", "drain", "n1", "--force", "--timeout=20s", "--grace-period=0")
	if !strings.Contains(out, "pod/guarded evicted") || !strings.Contains(out, "node/n1 drained") {
		t.Errorf("drain:\n%s", out)
	}
}
