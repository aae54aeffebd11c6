package controllers

import (
	"fmt"
	"testing"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tugboatdev/tugboat/orchestrator/simnode"
	"github.com/tugboatdev/tugboat/store"
)

func withDisruption(c Config) runner { return NewDisruption(c) }

func TestDisruptionBudgetStatus(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2}, withReplicaSet, withDeployment, withDisruption)
	mustCreate(e, deployment("web", 5, "nginx"))
	e.waitRolledOut("web")
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	num := func(n int32) *intstr.IntOrString { v := intstr.FromInt32(n); return &v }
	tests := []struct {
		name                                   string
		minAvailable, maxUnavailable           *intstr.IntOrString
		wantExpected, wantDesired, wantAllowed int32
	}{
		{"min-50pct", pct("50%"), nil, 5, 3, 2}, // 2.5 rounds up to 3
		{"max-30pct", nil, pct("30%"), 5, 3, 2}, // 1.5 rounds up to 2 unavailable
		{"min-4", num(4), nil, 5, 4, 1},
		{"max-0", nil, num(0), 5, 5, 0},
	}
	for _, tt := range tests {
		mustCreate(e, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: tt.name},
			Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: tt.minAvailable, MaxUnavailable: tt.maxUnavailable,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.waitFor(tt.name+" status", func() (bool, string) {
				p, err := store.Get[*policyv1.PodDisruptionBudget](e.ctx, e.s, "default", tt.name)
				if err != nil {
					return false, err.Error()
				}
				st := p.Status
				return st.ExpectedPods == tt.wantExpected && st.DesiredHealthy == tt.wantDesired && st.CurrentHealthy == 5 &&
					st.DisruptionsAllowed == tt.wantAllowed && st.ObservedGeneration == p.Generation, fmt.Sprintf("%+v", st)
			})
		})
	}
	// One pod becomes unready: budgets tighten.
	p := e.pods("default", "app=web")[0]
	if err := e.agent.SetReady(e.ctx, "default", p.Name, false); err != nil {
		t.Fatal(err)
	}
	e.waitFor("min-4 allows nothing", func() (bool, string) {
		p, _ := store.Get[*policyv1.PodDisruptionBudget](e.ctx, e.s, "default", "min-4")
		return p.Status.CurrentHealthy == 4 && p.Status.DisruptionsAllowed == 0, fmt.Sprintf("%+v", p.Status)
	})
}
