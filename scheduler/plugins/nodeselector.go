package plugins

import (
	"slices"
	"strconv"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

var selectionOps = map[v1.NodeSelectorOperator]selection.Operator{
	v1.NodeSelectorOpIn:           selection.In,
	v1.NodeSelectorOpNotIn:        selection.NotIn,
	v1.NodeSelectorOpExists:       selection.Exists,
	v1.NodeSelectorOpDoesNotExist: selection.DoesNotExist,
	v1.NodeSelectorOpGt:           selection.GreaterThan,
	v1.NodeSelectorOpLt:           selection.LessThan,
}

// nodeRequirement is a NodeSelectorRequirement parsed once.
type nodeRequirement struct {
	key    string
	op     v1.NodeSelectorOperator
	values []string
	num    int64
	field  bool // matchFields (metadata.name)
}

// nodeTerm is a parsed NodeSelectorTerm: all requirements must hold.
type nodeTerm struct {
	reqs  []nodeRequirement
	valid bool
}

// nodeMatcher matches nodes against a pod's nodeSelector and required node
// affinity (or a list of preferred terms) without allocating per node.
// Its semantics are those of k8s.io/component-helpers nodeaffinity: terms
// are ORed, requirements inside a term ANDed, an empty or invalid term
// matches nothing, Gt/Lt compare integers.
type nodeMatcher struct {
	selector map[string]string
	terms    []nodeTerm
	hasTerms bool
}

func parseTerm(t *v1.NodeSelectorTerm) nodeTerm {
	nt := nodeTerm{valid: len(t.MatchExpressions)+len(t.MatchFields) > 0}
	add := func(r v1.NodeSelectorRequirement, field bool) {
		nr := nodeRequirement{key: r.Key, op: r.Operator, field: field}
		switch r.Operator {
		case v1.NodeSelectorOpIn, v1.NodeSelectorOpNotIn:
			if len(r.Values) == 0 {
				nt.valid = false
			}
			nr.values = r.Values
		case v1.NodeSelectorOpExists, v1.NodeSelectorOpDoesNotExist:
			if len(r.Values) != 0 {
				nt.valid = false
			}
		case v1.NodeSelectorOpGt, v1.NodeSelectorOpLt:
			if len(r.Values) != 1 {
				nt.valid = false
				break
			}
			n, err := strconv.ParseInt(r.Values[0], 10, 64)
			if err != nil {
				nt.valid = false
			}
			nr.num = n
		default:
			nt.valid = false
		}
		if field && ((r.Operator != v1.NodeSelectorOpIn && r.Operator != v1.NodeSelectorOpNotIn) || len(r.Values) != 1) {
			nt.valid = false
		}
		nt.reqs = append(nt.reqs, nr)
	}
	for _, r := range t.MatchExpressions {
		add(r, false)
		// Validate key and values as upstream's label selector does.
		if op, ok := selectionOps[r.Operator]; !ok {
			nt.valid = false
		} else if _, err := labels.NewRequirement(r.Key, op, r.Values); err != nil {
			nt.valid = false
		}
	}
	for _, r := range t.MatchFields {
		add(r, true)
	}
	return nt
}

func newNodeMatcher(pod *v1.Pod) *nodeMatcher {
	m := &nodeMatcher{selector: pod.Spec.NodeSelector}
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		m.hasTerms = true
		for i := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			m.terms = append(m.terms, parseTerm(&a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[i]))
		}
	}
	return m
}

func (r *nodeRequirement) matches(name string, labels map[string]string) bool {
	var v string
	var ok bool
	if r.field {
		// metadata.name is the only node field selectable.
		v, ok = name, r.key == "metadata.name"
	} else {
		v, ok = labels[r.key]
	}
	switch r.op {
	case v1.NodeSelectorOpIn:
		return ok && slices.Contains(r.values, v)
	case v1.NodeSelectorOpNotIn:
		return !ok || !slices.Contains(r.values, v)
	case v1.NodeSelectorOpExists:
		return ok
	case v1.NodeSelectorOpDoesNotExist:
		return !ok
	case v1.NodeSelectorOpGt, v1.NodeSelectorOpLt:
		if !ok {
			return false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return false
		}
		if r.op == v1.NodeSelectorOpGt {
			return n > r.num
		}
		return n < r.num
	}
	return false
}

func (t *nodeTerm) matches(name string, labels map[string]string) bool {
	if !t.valid {
		return false
	}
	for i := range t.reqs {
		if !t.reqs[i].matches(name, labels) {
			return false
		}
	}
	return true
}

// match reports whether the node satisfies the nodeSelector and the
// required node affinity.
func (m *nodeMatcher) match(ni *framework.NodeInfo) bool {
	for k, v := range m.selector {
		if lv, ok := ni.Labels[k]; !ok || lv != v {
			return false
		}
	}
	if !m.hasTerms {
		return true
	}
	for i := range m.terms {
		if m.terms[i].matches(ni.Name(), ni.Labels) {
			return true
		}
	}
	return false
}

// preferredTerms are parsed preferred scheduling terms with weights.
type preferredTerms struct {
	terms   []nodeTerm
	weights []int64
}

func newPreferredTerms(ts []v1.PreferredSchedulingTerm) *preferredTerms {
	p := &preferredTerms{}
	for i := range ts {
		if ts[i].Weight == 0 {
			continue
		}
		p.terms = append(p.terms, parseTerm(&ts[i].Preference))
		p.weights = append(p.weights, int64(ts[i].Weight))
	}
	return p
}

func (p *preferredTerms) score(ni *framework.NodeInfo) int64 {
	var s int64
	for i := range p.terms {
		if p.terms[i].matches(ni.Name(), ni.Labels) {
			s += p.weights[i]
		}
	}
	return s
}
