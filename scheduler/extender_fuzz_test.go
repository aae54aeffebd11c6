package scheduler

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

// replyTransport answers every request with the same body, without any
// network.
type replyTransport struct{ body []byte }

func (r replyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(bytes.NewReader(r.body)), Header: http.Header{}, Request: req}, nil
}

// FuzzExtenderReplies feeds arbitrary extender replies to every verb: the
// scheduler must return a result or an error, never panic, and never
// return a node it did not send.
func FuzzExtenderReplies(f *testing.F) {
	for _, seed := range []string{
		`{"nodenames":["n1"],"failedNodes":{"n2":"no"}}`,
		`{"nodes":{"items":[{"metadata":{"name":"n2"}}]}}`,
		`{"nodenames":["zz"]}`,
		`[{"host":"n1","score":7},{"host":"n2","score":99}]`,
		`{"nodeNameToMetaVictims":{"n1":{"pods":[{"uid":"u1"}],"numPDBViolations":1}}}`,
		`{"nodeNameToMetaVictims":{"n1":null}}`,
		`{"error":"boom"}`,
		`null`, `[]`, `{`,
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "up"}}
	var nodes []*framework.NodeInfo
	var apiNodes []*v1.Node
	for _, name := range []string{"n1", "n2"} {
		n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
		apiNodes = append(apiNodes, n)
		ni := framework.NewNodeInfo()
		ni.SetNode(n)
		nodes = append(nodes, ni)
	}
	victim := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "v", Namespace: "default", UID: "u1"}, Spec: v1.PodSpec{NodeName: "n1"}}
	snap := framework.NewSnapshotFrom(apiNodes, []*v1.Pod{victim})
	f.Fuzz(func(t *testing.T, body []byte, cacheCapable bool) {
		e, err := NewHTTPExtender(ExtenderConfig{
			URLPrefix: "http://extender.invalid", FilterVerb: "f", PrioritizeVerb: "p", BindVerb: "b", PreemptVerb: "x", Weight: 1,
			NodeCacheCapable: cacheCapable, HTTPClient: &http.Client{Transport: replyTransport{body: body}},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		feasible, _, _, err := e.Filter(ctx, pod, nodes)
		if err == nil {
			for _, n := range feasible {
				if n != nodes[0] && n != nodes[1] {
					t.Fatalf("filter returned a node that was not sent: %q", n.Name())
				}
			}
		}
		if scores, err := e.Prioritize(ctx, pod, nodes); err == nil {
			for h, s := range scores {
				if s < 0 || s > framework.MaxExtenderPriority {
					t.Fatalf("score %d for %q outside [0, 10]", s, h)
				}
			}
		}
		_ = e.Bind(ctx, pod, "n1")
		out, err := e.ProcessPreemption(ctx, pod, map[string]*framework.Victims{"n1": {Pods: []*v1.Pod{victim}}}, snap)
		if err == nil {
			for node, v := range out {
				for _, p := range v.Pods {
					if p.Spec.NodeName != node {
						t.Fatalf("victim %s returned for node %s", p.Name, node)
					}
				}
			}
		}
	})
}
