package agent

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// Expand replaces $(VAR) references in s with mapping's values, as
// Kubernetes does for env values, command and args: "$$" is an escaped "$",
// a reference to an unknown variable and an unterminated "$(" are kept as
// written.
func Expand(s string, mapping func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := mapping(name); ok && name != "" {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// buildEnv computes a container's environment: envFrom, then env (with
// $(VAR) expansion against the variables before it and the service
// variables), then the service variables not otherwise set.
func (w *podWorker) buildEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container) ([]runtime.EnvVar, error) {
	var svcEnv map[string]string
	if pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks {
		svcEnv = w.serviceEnv(ctx, pod.Namespace, true)
	} else {
		svcEnv = w.serviceEnv(ctx, pod.Namespace, false)
	}
	vals := map[string]string{}
	var order []string
	put := func(k, v string) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = v
	}
	for _, ef := range c.EnvFrom {
		var data map[string]string
		switch {
		case ef.ConfigMapRef != nil:
			cm, err := storeapi.Get[*corev1.ConfigMap](ctx, w.a.s, pod.Namespace, ef.ConfigMapRef.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && ef.ConfigMapRef.Optional != nil && *ef.ConfigMapRef.Optional {
					continue
				}
				return nil, wrapMissing("configmap", ef.ConfigMapRef.Name, err)
			}
			data = cm.Data
		case ef.SecretRef != nil:
			sec, err := storeapi.Get[*corev1.Secret](ctx, w.a.s, pod.Namespace, ef.SecretRef.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && ef.SecretRef.Optional != nil && *ef.SecretRef.Optional {
					continue
				}
				return nil, wrapMissing("secret", ef.SecretRef.Name, err)
			}
			data = map[string]string{}
			for k, v := range sec.Data {
				data[k] = string(v)
			}
			for k, v := range sec.StringData {
				data[k] = v
			}
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var invalid []string
		for _, k := range keys {
			name := ef.Prefix + k
			if errs := validation.IsCIdentifier(name); len(errs) > 0 { // as the seeds: a dash is not allowed
				invalid = append(invalid, k)
				continue
			}
			put(name, data[k])
		}
		if len(invalid) > 0 {
			kind, name := "configMap", ""
			if ef.ConfigMapRef != nil {
				name = ef.ConfigMapRef.Name
			} else {
				kind, name = "secret", ef.SecretRef.Name
			}
			w.event(pod, corev1.EventTypeWarning, "InvalidEnvironmentVariableNames",
				"Keys [%s] from the EnvFrom %s %s/%s were skipped since they are considered invalid environment variable names.",
				strings.Join(invalid, ", "), kind, pod.Namespace, name)
		}
	}
	lookup := func(name string) (string, bool) {
		if v, ok := vals[name]; ok {
			return v, true
		}
		v, ok := svcEnv[name]
		return v, ok
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			put(e.Name, Expand(e.Value, lookup))
			continue
		}
		v, skip, err := w.envValueFrom(ctx, pod, c, e.ValueFrom)
		if err != nil {
			return nil, err
		}
		if !skip {
			put(e.Name, v)
		}
	}
	svcKeys := make([]string, 0, len(svcEnv))
	for k := range svcEnv {
		svcKeys = append(svcKeys, k)
	}
	sort.Strings(svcKeys)
	out := make([]runtime.EnvVar, 0, len(order)+len(svcKeys))
	for _, k := range order {
		out = append(out, runtime.EnvVar{Name: k, Value: vals[k]})
	}
	for _, k := range svcKeys {
		if _, ok := vals[k]; !ok {
			out = append(out, runtime.EnvVar{Name: k, Value: svcEnv[k]})
		}
	}
	return out, nil
}

func wrapMissing(kind, name string, err error) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s %q not found", kind, name)
	}
	return fmt.Errorf("%s %q: %w", kind, name, err)
}

// envValueFrom resolves one valueFrom; skip reports an optional reference
// that is absent.
func (w *podWorker) envValueFrom(ctx context.Context, pod *corev1.Pod, c *corev1.Container, vf *corev1.EnvVarSource) (string, bool, error) {
	switch {
	case vf.ConfigMapKeyRef != nil:
		r := vf.ConfigMapKeyRef
		opt := r.Optional != nil && *r.Optional
		cm, err := storeapi.Get[*corev1.ConfigMap](ctx, w.a.s, pod.Namespace, r.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && opt {
				return "", true, nil
			}
			return "", false, wrapMissing("configmap", r.Name, err)
		}
		v, ok := cm.Data[r.Key]
		if !ok {
			if b, okb := cm.BinaryData[r.Key]; okb {
				return string(b), false, nil
			}
			if opt {
				return "", true, nil
			}
			return "", false, fmt.Errorf("couldn't find key %s in ConfigMap %s/%s", r.Key, pod.Namespace, r.Name)
		}
		return v, false, nil
	case vf.SecretKeyRef != nil:
		r := vf.SecretKeyRef
		opt := r.Optional != nil && *r.Optional
		sec, err := storeapi.Get[*corev1.Secret](ctx, w.a.s, pod.Namespace, r.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && opt {
				return "", true, nil
			}
			return "", false, wrapMissing("secret", r.Name, err)
		}
		v, ok := sec.Data[r.Key]
		if !ok {
			if s, oks := sec.StringData[r.Key]; oks {
				return s, false, nil
			}
			if opt {
				return "", true, nil
			}
			return "", false, fmt.Errorf("couldn't find key %s in Secret %s/%s", r.Key, pod.Namespace, r.Name)
		}
		return string(v), false, nil
	case vf.FieldRef != nil:
		v, err := w.fieldValue(pod, vf.FieldRef.FieldPath)
		return v, false, err
	case vf.ResourceFieldRef != nil:
		v, err := w.resourceValue(pod, c, vf.ResourceFieldRef)
		return v, false, err
	}
	return "", true, nil
}

// fieldValue resolves a downward API field path.
func (w *podWorker) fieldValue(pod *corev1.Pod, path string) (string, error) {
	if k, ok := subscript(path, "metadata.labels"); ok {
		return pod.Labels[k], nil
	}
	if k, ok := subscript(path, "metadata.annotations"); ok {
		return pod.Annotations[k], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		return w.a.nodeIP, nil
	case "status.podIP", "status.podIPs":
		return w.getPodIP(), nil
	}
	return "", fmt.Errorf("unsupported fieldPath %q", path)
}

func subscript(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix+"[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return "", false
	}
	rest = strings.TrimSuffix(rest, "]")
	if uq, err := strconv.Unquote(strings.ReplaceAll(rest, "'", `"`)); err == nil {
		return uq, true
	}
	return rest, true
}

// formatMap renders labels or annotations as the downward API does:
// key="value" lines, sorted.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s=%s", k, strconv.Quote(m[k]))
	}
	return b.String()
}

// resourceValue resolves a resourceFieldRef; an unset limit is the node's
// allocatable.
func (w *podWorker) resourceValue(pod *corev1.Pod, c *corev1.Container, r *corev1.ResourceFieldSelector) (string, error) {
	if r.ContainerName != "" {
		if cc := containerSpec(pod, r.ContainerName); cc != nil {
			c = cc
		}
	}
	if c == nil {
		return "", fmt.Errorf("resourceFieldRef %s: no container", r.Resource)
	}
	kind, name, ok := strings.Cut(r.Resource, ".")
	if !ok {
		return "", fmt.Errorf("unsupported resource %q", r.Resource)
	}
	var q resource.Quantity
	var found bool
	switch kind {
	case "limits":
		q, found = c.Resources.Limits[corev1.ResourceName(name)]
	case "requests":
		q, found = c.Resources.Requests[corev1.ResourceName(name)]
	default:
		return "", fmt.Errorf("unsupported resource %q", r.Resource)
	}
	if !found && kind == "limits" {
		if n := w.a.Node(); n != nil {
			q, found = n.Status.Allocatable[corev1.ResourceName(name)]
		}
	}
	if !found {
		if name == "cpu" && kind == "requests" {
			return "0", nil
		}
		q = resource.Quantity{}
	}
	divisor := r.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if name == "cpu" {
		v := int64(math.Ceil(float64(q.MilliValue()) / float64(divisor.MilliValue())))
		return strconv.FormatInt(v, 10), nil
	}
	v := int64(math.Ceil(float64(q.Value()) / float64(divisor.Value())))
	return strconv.FormatInt(v, 10), nil
}

// serviceEnv returns the service environment variables of a namespace
// (links true: all its services; always the master "kubernetes" service of
// the default namespace).
func (w *podWorker) serviceEnv(ctx context.Context, namespace string, links bool) map[string]string {
	out := map[string]string{}
	var svcs []*corev1.Service
	if links {
		l, _, err := storeapi.ListOf[*corev1.Service](ctx, w.a.s, namespace, metav1.ListOptions{})
		if err == nil {
			svcs = append(svcs, l...)
		}
	}
	if namespace != metav1.NamespaceDefault || !links {
		if k, err := storeapi.Get[*corev1.Service](ctx, w.a.s, metav1.NamespaceDefault, "kubernetes"); err == nil {
			svcs = append(svcs, k)
		}
	}
	for _, s := range svcs {
		for k, v := range ServiceEnv(s) {
			out[k] = v
		}
	}
	return out
}

// ServiceEnv returns the environment variables Kubernetes gives containers
// for one service: {SVC}_SERVICE_HOST, {SVC}_SERVICE_PORT(_{NAME}) and the
// Docker-link style {SVC}_PORT... variables. Headless services and services
// without a clusterIP give none.
func ServiceEnv(s *corev1.Service) map[string]string {
	ip := s.Spec.ClusterIP
	if ip == "" || ip == corev1.ClusterIPNone || len(s.Spec.Ports) == 0 {
		return nil
	}
	name := strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
	out := map[string]string{
		name + "_SERVICE_HOST": ip,
		name + "_SERVICE_PORT": strconv.Itoa(int(s.Spec.Ports[0].Port)),
	}
	for _, p := range s.Spec.Ports {
		if p.Name != "" {
			out[name+"_SERVICE_PORT_"+strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_"))] = strconv.Itoa(int(p.Port))
		}
	}
	host := ip
	if strings.Contains(ip, ":") {
		host = "[" + ip + "]"
	}
	first := s.Spec.Ports[0]
	proto := strings.ToLower(string(first.Protocol))
	if proto == "" {
		proto = "tcp"
	}
	out[name+"_PORT"] = fmt.Sprintf("%s://%s:%d", proto, host, first.Port)
	for _, p := range s.Spec.Ports {
		pr := strings.ToLower(string(p.Protocol))
		if pr == "" {
			pr = "tcp"
		}
		prefix := fmt.Sprintf("%s_PORT_%d_%s", name, p.Port, strings.ToUpper(pr))
		out[prefix] = fmt.Sprintf("%s://%s:%d", pr, host, p.Port)
		out[prefix+"_PROTO"] = pr
		out[prefix+"_PORT"] = strconv.Itoa(int(p.Port))
		out[prefix+"_ADDR"] = ip
	}
	return out
}
