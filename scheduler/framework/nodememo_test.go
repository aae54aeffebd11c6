package framework

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func memoNode(name string, lbls map[string]string) *NodeInfo {
	ni := NewNodeInfo()
	ni.SetNode(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}})
	return ni
}

func TestNodeMemo(t *testing.T) {
	s := NewSnapshot()
	s.Set("a", memoNode("a", map[string]string{"zone": "1"}))
	s.Set("b", memoNode("b", map[string]string{"zone": "2"}))
	s.Commit(1)
	m := s.NodeMemo("zone=1")
	a, b := s.Get("a"), s.Get("b")
	if _, known := m.Get(a); known {
		t.Fatal("a fresh memo knows a verdict")
	}
	m.Put(a, true)
	m.Put(b, false)
	check := func(step string, ni *NodeInfo, wantVerdict, wantKnown bool) {
		t.Helper()
		if v, known := m.Get(ni); v != wantVerdict || known != wantKnown {
			t.Errorf("%s: Get(%s) = %v, %v; want %v, %v", step, ni.Name(), v, known, wantVerdict, wantKnown)
		}
	}
	check("after Put", a, true, true)
	check("after Put", b, false, true)
	if s.NodeMemo("zone=1") != m {
		t.Error("NodeMemo returned another memo for the same key")
	}
	if _, known := s.NodeMemo("zone=2").Get(a); known {
		t.Error("another key shares verdicts")
	}

	// A new version of a with the same labels (a pod was added) keeps
	// the verdict; new labels void it.
	a2 := a.Clone()
	a2.AddPodInfo(NewPodInfo(&v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "p"}}))
	s.Set("a", a2)
	s.Commit(2)
	check("same labels", s.Get("a"), true, true)
	s.Set("a", memoNode("a", map[string]string{"zone": "2"}))
	s.Commit(3)
	check("labels changed", s.Get("a"), false, false)

	// A clone (nominated pods, preemption) gets no verdict and keeps
	// none.
	c := b.Clone()
	if _, known := m.Get(c); known {
		t.Error("a clone got a memoized verdict")
	}
	m.Put(c, true)
	check("Put on a clone", b, false, true)

	// A removed node's slot given to another node voids the verdict.
	s.Set("b", nil)
	s.Commit(4)
	s.Set("c", memoNode("c", map[string]string{"zone": "2"}))
	s.Commit(5)
	ci := s.Get("c")
	if ci.Index != b.Index {
		t.Fatalf("slot not reused: c has %d, b had %d", ci.Index, b.Index)
	}
	check("reused slot", ci, false, false)

	// A memo created before a node was added covers it.
	s.Set("d", memoNode("d", nil))
	s.Commit(6)
	m = s.NodeMemo("zone=1")
	m.Put(s.Get("d"), true)
	check("new node", s.Get("d"), true, true)
}

func TestNodeMemoBounded(t *testing.T) {
	s := NewSnapshotFrom([]*v1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "a"}}}, nil)
	for i := range 3 * maxNodeMemos {
		s.NodeMemo(string(rune('a'+i%26)) + string(rune(i)))
		if len(s.nodeMemos) > maxNodeMemos {
			t.Fatalf("%d memos kept, want at most %d", len(s.nodeMemos), maxNodeMemos)
		}
	}
}
