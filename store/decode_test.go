package store_test

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tugboatdev/tugboat/store"
)

const nginxManifest = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  labels:
    app: nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports:
        - containerPort: 80
---
# a comment-only document is skipped
---
apiVersion: v1
kind: Service
metadata:
  name: nginx-service
spec:
  type: NodePort
  selector:
    app: nginx
  ports:
  - port: 80
    targetPort: 80
    nodePort: 32600
`

func TestDecodeAllAndCreate(t *testing.T) {
	objs, err := store.DecodeAll(store.DefaultRegistry(), strings.NewReader(nginxManifest))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 {
		t.Fatalf("decoded %d objects", len(objs))
	}
	d, ok := objs[0].(*appsv1.Deployment)
	if !ok || *d.Spec.Replicas != 3 || d.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort != 80 {
		t.Fatalf("deployment decoded wrong: %#v", objs[0])
	}
	svc := objs[1].(*corev1.Service)
	if svc.Spec.Ports[0].NodePort != 32600 {
		t.Errorf("nodePort %d", svc.Spec.Ports[0].NodePort)
	}
	s := openMem(t)
	ctx := context.Background()
	for _, o := range objs {
		o.(metav1.Object).SetNamespace("default")
		if _, err := s.Create(ctx, o, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %T: %v", o, err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	reg := store.DefaultRegistry()
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"unknown field", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i, imagePullPolicey: Always}]\n", `unknown field "spec.containers[0].imagePullPolicey"`},
		{"duplicate field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\ndata: {c: d}\n", `duplicate field`},
		{"missing kind", "apiVersion: v1\nmetadata: {name: p}\n", `'Kind' is missing`},
		{"missing apiVersion", "kind: Pod\nmetadata: {name: p}\n", `'apiVersion' is missing`},
		{"missing both", "metadata: {name: p}\n", `'Kind' is missing and 'apiVersion' is missing`},
		{"unknown kind", "apiVersion: v1\nkind: Widget\n", `no kind "Widget"`},
		{"wrong type", "apiVersion: v1\nkind: Pod\nmetadata: {name: 5}\n", `cannot be handled as a Pod`},
		{"bad yaml", "apiVersion: v1\nkind: [\n", `error converting YAML`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := store.Decode(reg, []byte(tc.doc))
			if !apierrors.IsBadRequest(err) {
				t.Fatalf("got %v, want BadRequest", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// FuzzDecodeValidate feeds arbitrary manifests through strict decoding and,
// when they decode, through a create: nothing may panic, and every refusal
// must be a typed Status error.
func FuzzDecodeValidate(f *testing.F) {
	for _, seed := range []string{
		nginxManifest,
		"apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec: {containers: [{name: c, image: busybox}]}\n",
		"apiVersion: batch/v1\nkind: Job\nmetadata: {name: j, namespace: default}\nspec: {completions: 5, parallelism: 2, template: {spec: {restartPolicy: Never, containers: [{name: c, image: i}]}}}\n",
		"apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: cj, namespace: default}\nspec: {schedule: '*/1 * * * *', jobTemplate: {spec: {template: {spec: {restartPolicy: OnFailure, containers: [{name: c, image: i}]}}}}}\n",
		"apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: zk, namespace: default}\nspec: {minAvailable: 50%, selector: {matchLabels: {app: zk}}}\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: default}\nspec: {clusterIP: 10.96.0.20, ports: [{port: 80, targetPort: http}]}\n",
		"{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"s\",\"namespace\":\"default\"},\"data\":{\"k\":\"dg==\"}}",
	} {
		f.Add([]byte(seed))
	}
	s, err := store.Open(context.Background(), store.Config{Logger: quietLogs})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := store.DecodeAll(s.Registry(), strings.NewReader(string(data)))
		if err != nil {
			return
		}
		for _, o := range objs {
			_, err := s.Create(context.Background(), o, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if err != nil {
				if _, ok := err.(apierrors.APIStatus); !ok && !isWrappedStatus(err) {
					t.Fatalf("untyped error for %T: %v", o, err)
				}
			}
		}
	})
}

func isWrappedStatus(err error) bool {
	return apierrors.ReasonForError(err) != metav1.StatusReasonUnknown
}

// FuzzSelectors parses arbitrary label and field selectors; nothing may
// panic, and a selector that parses must evaluate.
func FuzzSelectors(f *testing.F) {
	for _, seed := range [][2]string{
		{"env=prod", "spec.nodeName=n1"},
		{"env in (prod,qa),tier!=fe", "status.phase!=Running"},
		{"!canary,app", "metadata.name==x,metadata.namespace=default"},
		{"env notin (a,b)", "spec.bogus=1"},
		{"a=b,c in (d),e", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	kind := store.DefaultRegistry().Lookup("pods")
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "default", Labels: map[string]string{"env": "prod", "app": "web"}}}
	f.Fuzz(func(t *testing.T, ls, fs string) {
		if sel, err := store.ParseLabelSelector(ls); err == nil {
			sel.Matches(labels.Set(p.Labels))
		} else if !apierrors.IsBadRequest(err) {
			t.Fatalf("label selector error not BadRequest: %v", err)
		}
		if sel, err := store.ParseFieldSelector(kind, fs); err == nil {
			sel.Matches(fields.Set{"metadata.name": "x"})
		} else if !apierrors.IsBadRequest(err) {
			t.Fatalf("field selector error not BadRequest: %v", err)
		}
	})
}
