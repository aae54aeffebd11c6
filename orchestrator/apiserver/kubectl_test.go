package apiserver

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tugboatdev/tugboat/internal/kubectltest"
)

const deployV1 = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
  labels:
    env: prod
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: demo
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: demo
  labels:
    env: qa
data:
  mode: fast
`

func contains(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// TestKubectlSession runs with /usr/bin/kubectl (v1.32) and the newest kubectl.
func TestKubectlSession(t *testing.T) {
	for _, kb := range kubectltest.Binaries(t) {
		t.Run(kb.Name, func(t *testing.T) { testKubectlSession(t, kb.Path) })
	}
}

func testKubectlSession(t *testing.T, bin string) {
	ts := startServer(t)
	ts.kubectlPath = bin
	k := func(stdin string, args ...string) string { t.Helper(); return ts.mustKubectl(t, stdin, args...) }

	// Discovery.
	out := k("", "api-resources")
	if !regexp.MustCompile(`(?m)^deployments\s+deploy\s+apps/v1\s+true\s+Deployment$`).MatchString(out) {
		t.Errorf("api-resources lacks deployments row:\n%s", out)
	}
	out = k("", "api-resources", "--namespaced=false")
	contains(t, out, "namespaces", "nodes", "clusterroles")
	if strings.Contains(out, "\npods ") {
		t.Errorf("--namespaced=false lists pods:\n%s", out)
	}
	contains(t, k("", "version"), "Server Version: v1.37.2+tugboat")

	contains(t, k("", "create", "namespace", "demo"), "namespace/demo created")

	// apply: create, then re-apply with a change (strategic merge patch).
	contains(t, k(deployV1, "apply", "-f", "-"), "deployment.apps/web created", "service/web created", "configmap/settings created")
	changed := strings.Replace(deployV1, "replicas: 2", "replicas: 3", 1)
	changed = strings.Replace(changed, "mode: fast", "mode: slow", 1)
	out = k(changed, "apply", "-f", "-")
	contains(t, out, "deployment.apps/web configured", "service/web unchanged", "configmap/settings configured")
	contains(t, k("", "get", "deploy", "web", "-n", "demo", "-o", "jsonpath={.spec.replicas}"), "3")
	contains(t, k("", "get", "cm", "settings", "-n", "demo", "-o", "jsonpath={.data.mode}"), "slow")

	// The kubeconfig flow of the seeds: view, contexts, default namespace.
	contains(t, k("", "config", "view"), "certificate-authority-data: DATA+OMITTED", "current-context: tugboat")
	contains(t, k("", "config", "get-contexts"), "tugboat")
	k("", "config", "set-context", "--current", "--namespace=demo")
	contains(t, k("", "get", "cm", "settings", "-o", "name"), "configmap/settings")

	// Tables.
	out = k("", "get", "deploy", "-n", "demo")
	if !regexp.MustCompile(`NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\nweb\s+0/3\s+0\s+0\s+`).MatchString(out) {
		t.Errorf("get deploy table:\n%s", out)
	}
	out = k("", "get", "deploy", "-n", "demo", "-o", "wide")
	contains(t, out, "CONTAINERS", "IMAGES", "SELECTOR", "nginx:1.25", "app=web")
	out = k("", "get", "svc", "-n", "demo")
	if !regexp.MustCompile(`NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE\nweb\s+ClusterIP\s+(10\.\d+\.\d+\.\d+|<none>)\s+<none>\s+80/TCP`).MatchString(out) {
		t.Errorf("get svc table:\n%s", out)
	}
	contains(t, k("", "get", "deploy", "web", "-n", "demo", "-o", "yaml"), "kind: Deployment", "apiVersion: apps/v1", "replicas: 3", "kubectl.kubernetes.io/last-applied-configuration")
	out = k("", "get", "deploy,cm", "-n", "demo", "--show-labels")
	contains(t, out, "LABELS", "env=prod", "env=qa")
	out = k("", "get", "deploy,cm", "-n", "demo", "-L", "env")
	contains(t, out, "ENV", "prod", "qa")
	out = k("", "get", "deploy,cm", "-n", "demo", "-l", "env in (prod,qa)", "-o", "name")
	contains(t, out, "deployment.apps/web", "configmap/settings")
	out = k("", "get", "cm", "-n", "demo", "-l", "env in (prod)", "-o", "name")
	if strings.Contains(out, "settings") {
		t.Errorf("label selector did not filter: %s", out)
	}

	// Pods: field selector, labels, annotations.
	k("", "run", "p1", "--image=busybox", "-n", "demo", "--labels=tier=a")
	k("", "run", "p2", "--image=busybox", "-n", "demo", "--labels=tier=b")
	out = k("", "get", "pods", "-n", "demo", "--field-selector", "metadata.name=p2", "-o", "name")
	if strings.TrimSpace(out) != "pod/p2" {
		t.Errorf("field selector: %q", out)
	}
	out = k("", "get", "pods", "-n", "demo", "-o", "wide")
	if !regexp.MustCompile(`NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES\np1\s+0/1\s+Pending\s+0\s+`).MatchString(out) {
		t.Errorf("get pods -o wide:\n%s", out)
	}
	contains(t, k("", "label", "pod", "p1", "-n", "demo", "tier=z", "--overwrite"), "pod/p1 labeled")
	out, err := ts.kubectl(t, "", "label", "pod", "p1", "-n", "demo", "tier=y")
	if err == nil || !strings.Contains(out, "already has a value (z)") {
		t.Errorf("label without --overwrite: %v %s", err, out)
	}
	contains(t, k("", "annotate", "pod", "p1", "-n", "demo", "owner=team-a"), "pod/p1 annotated")
	contains(t, k("", "get", "pod", "p1", "-n", "demo", "-o", "jsonpath={.metadata.labels.tier}/{.metadata.annotations.owner}"), "z/team-a")

	// edit with EDITOR set to a script.
	script := filepath.Join(ts.dir, "editor.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nsed -i 's/mode: slow/mode: edited/' \"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EDITOR", script)
	contains(t, k("", "edit", "cm", "settings", "-n", "demo"), "configmap/settings edited")
	contains(t, k("", "get", "cm", "settings", "-n", "demo", "-o", "jsonpath={.data.mode}"), "edited")

	// scale through the scale subresource.
	contains(t, k("", "scale", "deploy", "web", "-n", "demo", "--replicas=5"), "deployment.apps/web scaled")
	contains(t, k("", "get", "deploy", "web", "-n", "demo", "-o", "jsonpath={.spec.replicas}"), "5")

	// Errors shown as kubectl shows upstream ones.
	bad := strings.Replace(deployV1[:strings.Index(deployV1, "---")], "replicas: 2", "replicas: 2\n  replicaz: 1", 1)
	bad = strings.Replace(bad, "name: web\n  namespace", "name: web2\n  namespace", 1)
	out, err = ts.kubectl(t, bad, "apply", "-f", "-")
	if err == nil || !strings.Contains(out, `strict decoding error: unknown field "spec.replicaz"`) {
		t.Errorf("unknown field: %v\n%s", err, out)
	}
	out, err = ts.kubectl(t, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n  namespace: demo\n", "create", "-f", "-")
	if err == nil || !strings.Contains(out, `The ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"`) {
		t.Errorf("invalid name: %v\n%s", err, out)
	}
	out, err = ts.kubectl(t, "", "get", "pod", "nope", "-n", "demo")
	if err == nil || !strings.Contains(out, `Error from server (NotFound): pods "nope" not found`) {
		t.Errorf("not found: %v\n%s", err, out)
	}

	// explain reads the OpenAPI v3 documents.
	out = k("", "explain", "pod.spec")
	contains(t, out, "KIND:       Pod", "FIELD: spec <PodSpec>", "containers\t<[]Container> -required-", "nodeName\t<string>")

	// Server-side apply.
	ssa := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  namespace: demo\ndata:\n  a: \"1\"\n"
	contains(t, k(ssa, "apply", "--server-side", "-f", "-"), "configmap/ssa serverside-applied")
	contains(t, k(strings.Replace(ssa, `a: "1"`, `a: "2"`, 1), "apply", "--server-side", "-f", "-"), "configmap/ssa serverside-applied")
	out = k("", "get", "cm", "ssa", "-n", "demo", "-o", "yaml", "--show-managed-fields")
	contains(t, out, "manager: kubectl", "operation: Apply", `a: "2"`)
	out, err = ts.kubectl(t, strings.Replace(ssa, `a: "1"`, `a: "3"`, 1), "apply", "--server-side", "--field-manager=other", "-f", "-")
	if err == nil || !strings.Contains(out, "conflict") {
		t.Errorf("SSA conflict not reported: %v\n%s", err, out)
	}

	// delete -f, and delete waiting on a finalizer.
	contains(t, k(changed, "delete", "-f", "-"), `deployment.apps "web" deleted`, `service "web" deleted`)
	k("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  namespace: demo\n  finalizers: [example.com/hold]\n", "create", "-f", "-")
	done := make(chan string, 1)
	go func() {
		out, _ := ts.kubectl(t, "", "delete", "cm", "held", "-n", "demo", "--timeout=30s")
		done <- out
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := k("", "get", "cm", "held", "-n", "demo", "-o", "jsonpath={.metadata.deletionTimestamp}")
		if strings.TrimSpace(out) != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("deletionTimestamp never set")
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case out := <-done:
		t.Fatalf("delete returned while a finalizer was pending: %s", out)
	case <-time.After(300 * time.Millisecond):
	}
	k("", "patch", "cm", "held", "-n", "demo", "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
	select {
	case out := <-done:
		contains(t, out, `configmap "held" deleted`)
	case <-time.After(30 * time.Second):
		t.Fatal("delete did not finish after the finalizer was removed")
	}
}

// TestKubectlGetWatch runs with /usr/bin/kubectl (v1.32) and the newest kubectl.
func TestKubectlGetWatch(t *testing.T) {
	for _, kb := range kubectltest.Binaries(t) {
		t.Run(kb.Name, func(t *testing.T) { testKubectlGetWatch(t, kb.Path) })
	}
}

func testKubectlGetWatch(t *testing.T, bin string) {
	ts := startServer(t)
	ts.kubectlPath = bin
	ts.mustKubectl(t, "", "create", "namespace", "w")
	ts.mustKubectl(t, "", "create", "configmap", "c1", "-n", "w", "--from-literal=a=1")
	testenvOut := make(chan string, 1)
	go func() {
		out, _ := ts.kubectl(t, "", "get", "cm", "-n", "w", "-w", "--request-timeout=3s")
		testenvOut <- out
	}()
	time.Sleep(1200 * time.Millisecond)
	ts.mustKubectl(t, "", "create", "configmap", "c2", "-n", "w", "--from-literal=a=1", "--from-literal=b=2")
	out := <-testenvOut
	if !regexp.MustCompile(`NAME\s+DATA\s+AGE\nc1\s+1\s+\S+\n`).MatchString(out) || !regexp.MustCompile(`(?m)^c2\s+2\s+`).MatchString(out) {
		t.Errorf("get -w output:\n%s", out)
	}
}

const moreKinds = `apiVersion: batch/v1
kind: Job
metadata:
  name: pi
  namespace: kinds
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: pi
        image: perl
        command: ["perl", "-e", "print 1"]
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: tick
  namespace: kinds
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: t
            image: busybox
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
  namespace: kinds
spec:
  minAvailable: 1
  selector:
    matchLabels:
      app: web
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
  namespace: kinds
spec:
  serviceName: db
  replicas: 2
  selector:
    matchLabels:
      app: db
  template:
    metadata:
      labels:
        app: db
    spec:
      containers:
      - name: db
        image: redis
---
apiVersion: v1
kind: Node
metadata:
  name: node-1
  labels:
    node-role.kubernetes.io/worker: ""
`

// TestKubectlTables runs with /usr/bin/kubectl (v1.32) and the newest kubectl.
func TestKubectlTables(t *testing.T) {
	for _, kb := range kubectltest.Binaries(t) {
		t.Run(kb.Name, func(t *testing.T) { testKubectlTables(t, kb.Path) })
	}
}

func testKubectlTables(t *testing.T, bin string) {
	ts := startServer(t)
	ts.kubectlPath = bin
	ts.mustKubectl(t, "", "create", "namespace", "kinds")
	contains(t, ts.mustKubectl(t, moreKinds, "apply", "-f", "-"), "job.batch/pi created", "cronjob.batch/tick created",
		"poddisruptionbudget.policy/web created", "statefulset.apps/db created", "node/node-1 created")
	tests := []struct {
		args []string
		re   string
	}{
		{[]string{"get", "jobs", "-n", "kinds"}, `NAME\s+STATUS\s+COMPLETIONS\s+DURATION\s+AGE\npi\s+Running\s+0/1\s+`},
		{[]string{"get", "cronjobs", "-n", "kinds"}, `NAME\s+SCHEDULE\s+TIMEZONE\s+SUSPEND\s+ACTIVE\s+LAST SCHEDULE\s+AGE\ntick\s+\*/5 \* \* \* \*\s+<none>\s+False\s+0\s+<unknown>\s+`},
		{[]string{"get", "pdb", "-n", "kinds"}, `NAME\s+MIN AVAILABLE\s+MAX UNAVAILABLE\s+ALLOWED DISRUPTIONS\s+AGE\nweb\s+1\s+N/A\s+0\s+`},
		{[]string{"get", "sts", "-n", "kinds"}, `NAME\s+READY\s+AGE\ndb\s+0/2\s+`},
		{[]string{"get", "nodes"}, `NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\nnode-1\s+Unknown\s+worker\s+`},
		{[]string{"get", "ns", "kinds"}, `NAME\s+STATUS\s+AGE\nkinds\s+Active\s+`},
		{[]string{"get", "all", "-n", "kinds", "-o", "name"}, `job.batch/pi`},
	}
	for _, tc := range tests {
		out := ts.mustKubectl(t, "", tc.args...)
		if !regexp.MustCompile(tc.re).MatchString(out) {
			t.Errorf("kubectl %s:\n%s\nwant match %s", strings.Join(tc.args, " "), out, tc.re)
		}
	}
}
