package plugins

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

// FuzzNodeMatcher checks the allocation-free node matcher against the
// upstream component-helpers implementation on arbitrary requirements
// and labels.
func FuzzNodeMatcher(f *testing.F) {
	f.Add("zone", "In", "a", "zone", "a", "n1", false)
	f.Add("cores", "Gt", "4", "cores", "8", "n1", false)
	f.Add("cores", "Lt", "x", "cores", "3", "n1", false)
	f.Add("metadata.name", "In", "n1", "", "", "n1", true)
	f.Add("k", "DoesNotExist", "", "k", "v", "n", false)
	f.Add("k", "NotIn", "a", "j", "v", "n", false)
	f.Fuzz(func(t *testing.T, key, op, value, labelKey, labelValue, nodeName string, field bool) {
		if nodeName == "" {
			return // nodes always have names; upstream then ignores matchFields
		}
		var values []string
		if value != "" {
			values = []string{value}
		}
		req := v1.NodeSelectorRequirement{Key: key, Operator: v1.NodeSelectorOperator(op), Values: values}
		term := v1.NodeSelectorTerm{}
		if field {
			term.MatchFields = []v1.NodeSelectorRequirement{req}
		} else {
			term.MatchExpressions = []v1.NodeSelectorRequirement{req}
		}
		pod := &v1.Pod{Spec: v1.PodSpec{Affinity: &v1.Affinity{NodeAffinity: &v1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{term}},
		}}}}
		node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName, Labels: map[string]string{}}}
		if labelKey != "" {
			node.Labels[labelKey] = labelValue
		}
		want, _ := nodeaffinity.GetRequiredNodeAffinity(pod).Match(node)
		ni := framework.NewNodeInfo()
		ni.SetNode(node)
		if got := newNodeMatcher(pod).match(ni); got != want {
			t.Errorf("req %+v field=%v labels %v name %q: got %v, upstream %v", req, field, node.Labels, nodeName, got, want)
		}
	})
}
