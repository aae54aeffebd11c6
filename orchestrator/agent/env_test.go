package agent

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tugboatdev/tugboat/store"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "alpha", "B": "beta", "EMPTY": ""}
	m := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"$(A)", "alpha"},
		{"x-$(A)-$(B)-y", "x-alpha-beta-y"},
		{"$(MISSING)", "$(MISSING)"},
		{"$$(A)", "$(A)"},
		{"$$$(A)", "$alpha"},
		{"$(A", "$(A"},
		{"$A", "$A"},
		{"$", "$"},
		{"a$", "a$"},
		{"$()", "$()"},
		{"$(EMPTY)x", "x"},
		{"$(A)$(B)", "alphabeta"},
		{"100$$", "100$"},
	} {
		if got := Expand(tc.in, m); got != tc.want {
			t.Errorf("Expand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzExpand(f *testing.F) {
	for _, s := range []string{"$(A)", "$$(A)", "$(", "a$b", "$(A)$(B", "$$$$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		none := func(string) (string, bool) { return "", false }
		out := Expand(s, none)
		// With no variables, only "$$" escapes change the text.
		if !strings.Contains(s, "$$") && out != s {
			t.Fatalf("Expand(%q) with no variables = %q", s, out)
		}
		// Expanding to values without "$" leaves no reference to a known
		// variable behind.
		x := func(k string) (string, bool) { return "X", k == "A" }
		if strings.Contains(s, "$") {
			return
		}
		if Expand(s, x) != s {
			t.Fatalf("text without $ changed: %q", s)
		}
	})
}

func TestServiceEnv(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "redis-main"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.11",
		Ports: []corev1.ServicePort{{Name: "db", Port: 6379, Protocol: corev1.ProtocolTCP}, {Name: "metrics", Port: 9121, Protocol: corev1.ProtocolUDP}}}}
	want := map[string]string{
		"REDIS_MAIN_SERVICE_HOST":         "10.96.0.11",
		"REDIS_MAIN_SERVICE_PORT":         "6379",
		"REDIS_MAIN_SERVICE_PORT_DB":      "6379",
		"REDIS_MAIN_SERVICE_PORT_METRICS": "9121",
		"REDIS_MAIN_PORT":                 "tcp://10.96.0.11:6379",
		"REDIS_MAIN_PORT_6379_TCP":        "tcp://10.96.0.11:6379",
		"REDIS_MAIN_PORT_6379_TCP_PROTO":  "tcp",
		"REDIS_MAIN_PORT_6379_TCP_PORT":   "6379",
		"REDIS_MAIN_PORT_6379_TCP_ADDR":   "10.96.0.11",
		"REDIS_MAIN_PORT_9121_UDP":        "udp://10.96.0.11:9121",
		"REDIS_MAIN_PORT_9121_UDP_PROTO":  "udp",
		"REDIS_MAIN_PORT_9121_UDP_PORT":   "9121",
		"REDIS_MAIN_PORT_9121_UDP_ADDR":   "10.96.0.11",
	}
	if diff := cmp.Diff(want, ServiceEnv(svc)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	headless := svc.DeepCopy()
	headless.Spec.ClusterIP = corev1.ClusterIPNone
	if got := ServiceEnv(headless); len(got) != 0 {
		t.Errorf("headless service gives %v", got)
	}
}

func TestContainerEnvironment(t *testing.T) {
	e := newEnv(t, envOpts{})
	mustCreate(t, e, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cfg"},
		Data: map[string]string{"mode": "fast", "FOO": "foo", "CONFIG_FOO-BAR": "skipped", "1BAD": "kept: the prefix makes it valid"}})
	mustCreate(t, e, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "creds"},
		Data: map[string][]byte{"password": []byte("s3cret")}})
	mustCreate(t, e, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.20", Ports: []corev1.ServicePort{{Port: 5432, Protocol: corev1.ProtocolTCP}}}})
	p := simplePod("env", corev1.Container{Name: "app", Image: "app:1",
		Command: []string{"/bin/run", "--mode=$(MODE)"},
		Args:    []string{"$(GREETING)", "$$(MODE)", "$(UNKNOWN)", "$(DB_SERVICE_HOST)"},
		EnvFrom: []corev1.EnvFromSource{{Prefix: "CONFIG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
		Env: []corev1.EnvVar{
			{Name: "MODE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "mode"}}},
			{Name: "GREETING", Value: "hello-$(MODE)"},
			{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "password"}}},
			{Name: "OPTIONAL", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "x", Optional: ptr(true)}}},
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "POD_NS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			{Name: "APP_LABEL", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
			{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
			{Name: "SA", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.serviceAccountName"}}},
			{Name: "HOST_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.hostIP"}}},
			{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "MEM_LIMIT_MI", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
			{Name: "CPU_REQ", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "requests.cpu", Divisor: resource.MustParse("1m")}}},
		},
		Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"memory": resource.MustParse("128Mi")}, Requests: corev1.ResourceList{"cpu": resource.MustParse("250m")}},
	})
	e.createPod(p)
	e.waitStatus("default", "env", "Running")
	cfg := e.rec.last("app")
	env := map[string]string{}
	for _, v := range cfg.Env {
		env[v.Name] = v.Value
	}
	want := map[string]string{
		"CONFIG_mode": "fast", "CONFIG_FOO": "foo", "MODE": "fast", "GREETING": "hello-fast", "PASSWORD": "s3cret",
		"POD_NAME": "env", "POD_NS": "default", "APP_LABEL": "env", "NODE": testNode, "SA": "default",
		"HOST_IP": "127.0.0.1", "CONFIG_1BAD": "kept: the prefix makes it valid", "MEM_LIMIT_MI": "128", "CPU_REQ": "250",
		"DB_SERVICE_HOST": "10.96.0.20", "DB_SERVICE_PORT": "5432", "DB_PORT": "tcp://10.96.0.20:5432",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	if !strings.HasPrefix(env["POD_IP"], "127.10.") {
		t.Errorf("POD_IP = %q", env["POD_IP"])
	}
	for _, k := range []string{"OPTIONAL", "CONFIG_CONFIG_FOO-BAR"} {
		if _, ok := env[k]; ok {
			t.Errorf("env has %s", k)
		}
	}
	if diff := cmp.Diff([]string{"/bin/run", "--mode=fast"}, cfg.Command); diff != "" {
		t.Errorf("command (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"hello-fast", "$(MODE)", "$(UNKNOWN)", "10.96.0.20"}, cfg.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	msgs := e.waitEvent("env", "InvalidEnvironmentVariableNames")
	if !strings.Contains(msgs[0], "Keys [CONFIG_FOO-BAR] from the EnvFrom configMap default/cfg were skipped since they are considered invalid environment variable names.") {
		t.Errorf("event = %q", msgs[0])
	}

	// enableServiceLinks false: no variables for the namespace's services.
	p = simplePod("nolinks")
	p.Spec.EnableServiceLinks = ptr(false)
	e.createPod(p)
	e.waitStatus("default", "nolinks", "Running")
	for _, v := range e.rec.last("app").Env {
		if strings.HasPrefix(v.Name, "DB_") {
			t.Errorf("enableServiceLinks=false still gives %s", v.Name)
		}
	}

	// A missing secret key: CreateContainerConfigError until it appears.
	p = simplePod("missing", corev1.Container{Name: "app", Image: "app:1", Env: []corev1.EnvVar{
		{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "later"}, Key: "k"}}}}})
	e.createPod(p)
	got := e.waitStatus("default", "missing", "CreateContainerConfigError")
	if m := got.Status.ContainerStatuses[0].State.Waiting.Message; m != `secret "later" not found` {
		t.Errorf("message = %q", m)
	}
	mustCreate(t, e, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "later"}, Data: map[string][]byte{"k": []byte("v")}})
	e.waitStatus("default", "missing", "Running")
}

func mustCreate[T runtime.Object](t *testing.T, e *testEnv, obj T) T {
	t.Helper()
	out, err := store.Create(e.ctx, e.s, obj)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
