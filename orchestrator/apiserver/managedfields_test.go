package apiserver

import (
	"strings"
	"testing"
)

func TestManagedFieldsOnWrites(t *testing.T) {
	ts := startServer(t)
	ts.mustKubectl(t, "", "create", "configmap", "mf", "--from-literal=a=1")
	out := ts.mustKubectl(t, "", "get", "cm", "mf", "-o", "yaml", "--show-managed-fields")
	contains(t, out, "manager: kubectl-create", "operation: Update", "f:a: {}")
	// A server-side apply that changes a field kubectl-create set conflicts.
	ssa := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mf\n  namespace: default\ndata:\n  a: \"2\"\n"
	out, err := ts.kubectl(t, ssa, "apply", "--server-side", "-f", "-")
	if err == nil || !strings.Contains(out, `conflict with "kubectl-create"`) {
		t.Errorf("want a conflict naming kubectl-create: %v\n%s", err, out)
	}
	out = ts.mustKubectl(t, ssa, "apply", "--server-side", "--force-conflicts", "-f", "-")
	contains(t, out, "configmap/mf serverside-applied")
	contains(t, ts.mustKubectl(t, "", "get", "cm", "mf", "-o", "jsonpath={.data.a}"), "2")
	// A replace (PUT) keeps earlier managers and takes over what it changed.
	yaml := ts.mustKubectl(t, "", "get", "cm", "mf", "-o", "yaml")
	ts.mustKubectl(t, strings.Replace(yaml, `a: "2"`, `a: "3"`, 1), "replace", "-f", "-")
	out = ts.mustKubectl(t, "", "get", "cm", "mf", "-o", "yaml", "--show-managed-fields")
	// The applier owned only data.a, which the replace took over.
	contains(t, out, "manager: kubectl-replace", "manager: kubectl-create")
	if strings.Contains(out, "operation: Apply") {
		t.Errorf("the applier still owns fields after losing data.a:\n%s", out)
	}
}
