package agent

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/simulated"
)

func TestMetricsAPI(t *testing.T) {
	e := newEnv(t, envOpts{script: func(*runtime.PodSandboxConfig, *runtime.ContainerConfig) simulated.Behavior {
		return simulated.Behavior{CPUMilli: 100, MemoryBytes: 32 << 20}
	}})
	e.createPod(simplePod("m1"))
	e.createPod(simplePod("m2"))
	e.waitStatus("default", "m1", "Running")
	e.waitStatus("default", "m2", "Running")
	time.Sleep(100 * time.Millisecond)
	var nodes Nodes
	nodes.Add(e.agent)
	srv := httptest.NewServer(&nodes)
	t.Cleanup(srv.Close)
	get := func(path string, wantCode int) map[string]any {
		t.Helper()
		resp, err := http.Get(srv.URL + "/apis/metrics.k8s.io/v1beta1/" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != wantCode {
			t.Fatalf("GET %s: %d %v", path, resp.StatusCode, out)
		}
		return out
	}
	list := get("namespaces/default/pods", 200)
	if list["kind"] != "PodMetricsList" || len(list["items"].([]any)) != 2 {
		t.Fatalf("pods: %v", list)
	}
	one := get("namespaces/default/pods/m1", 200)
	ctr := one["containers"].([]any)[0].(map[string]any)
	u := ctr["usage"].(map[string]any)
	if one["kind"] != "PodMetrics" || ctr["name"] != "app" || u["memory"] != "32Mi" {
		t.Errorf("pod m1: %v", one)
	}
	if q := resource.MustParse(u["cpu"].(string)); q.MilliValue() < 80 || q.MilliValue() > 120 {
		t.Errorf("cpu = %s, want about 100m", q.String())
	}
	if sel := get("pods?labelSelector=app%3Dm2", 200); len(sel["items"].([]any)) != 1 {
		t.Errorf("labelSelector: %v", sel)
	}
	nl := get("nodes", 200)
	items := nl["items"].([]any)
	if nl["kind"] != "NodeMetricsList" || len(items) != 1 || items[0].(map[string]any)["metadata"].(map[string]any)["name"] != testNode {
		t.Errorf("nodes: %v", nl)
	}
	st := get("nodes/absent", 404)
	if diff := cmp.Diff(map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{}, "status": "Failure",
		"message": `nodemetrics.metrics.k8s.io "absent" not found`, "reason": "NotFound", "code": float64(404)}, st); diff != "" {
		t.Errorf("404 (-want +got):\n%s", diff)
	}
}
