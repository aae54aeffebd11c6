package store

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestNarrowestLabelRequirement checks that a list with several indexable
// label requirements reads the index entry that matches fewest objects,
// whatever the order or the number of values in the selector.
func TestNarrowestLabelRequirement(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 60; i++ {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("c%d", i),
			Labels: map[string]string{"tier": "web", "app": fmt.Sprintf("a%d", i%20)}}}
		if _, err := Create(ctx, s, cm); err != nil {
			t.Fatal(err)
		}
	}
	k := s.reg.ForResource(schema.GroupResource{Resource: "configmaps"})
	for sel, wantKey := range map[string]string{
		"tier=web,app=a7":              "app",
		"app=a7,tier=web":              "app",
		"tier in (web),app in (a1,a2)": "app",
		"app in (a1,a2,a3,a4,a5,a6,a7,a8,a9,a10,a11,a12,a13,a14,a15,a16,a17,a18,a19,a0),tier=nope": "tier",
	} {
		f, err := s.newFilter(k, "", sel, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := narrowest(s.db.Txn(false), k, f.labelReqs); got.key != wantKey {
			t.Errorf("%q: index on %q, want %q", sel, got.key, wantKey)
		}
		l, err := s.List(ctx, k.GroupResource(), "", metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range l.Items {
			if !f.matches(o) {
				t.Errorf("%q listed %v", sel, o)
			}
		}
	}
}
