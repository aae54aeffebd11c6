package storeapi

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validation of the fields tugboat relies on, with upstream's field paths
// and messages. Metadata is checked by apimachinery's ValidateObjectMeta.

// MaxDataSize is the largest total size of a ConfigMap's or Secret's data.
const MaxDataSize = corev1.MaxSecretSize

func validateDataKeys[V string | []byte](data map[string]V, fld *field.Path, total *int) field.ErrorList {
	var errs field.ErrorList
	for k, v := range data {
		for _, msg := range validation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(fld.Key(k), k, msg))
		}
		*total += len(v)
	}
	return errs
}

func validateConfigMap(obj runtime.Object, _ *Config) field.ErrorList {
	cm := obj.(*corev1.ConfigMap)
	total := 0
	errs := validateDataKeys(cm.Data, field.NewPath("data"), &total)
	errs = append(errs, validateDataKeys(cm.BinaryData, field.NewPath("binaryData"), &total)...)
	for k := range cm.BinaryData {
		if _, dup := cm.Data[k]; dup {
			errs = append(errs, field.Invalid(field.NewPath("binaryData").Key(k), k, "duplicate of key present in data"))
		}
	}
	if total > MaxDataSize {
		errs = append(errs, field.TooLong(field.NewPath("data"), "", MaxDataSize))
		errs[len(errs)-1].Detail = fmt.Sprintf("ConfigMap data is %d bytes, more than the limit of %d bytes", total, MaxDataSize)
	}
	return errs
}

func validateSecret(obj runtime.Object, _ *Config) field.ErrorList {
	s := obj.(*corev1.Secret)
	total := 0
	errs := validateDataKeys(s.Data, field.NewPath("data"), &total)
	errs = append(errs, validateDataKeys(s.StringData, field.NewPath("stringData"), &total)...)
	if total > MaxDataSize {
		errs = append(errs, field.TooLong(field.NewPath("data"), "", MaxDataSize))
		errs[len(errs)-1].Detail = fmt.Sprintf("Secret data is %d bytes, more than the limit of %d bytes", total, MaxDataSize)
	}
	return errs
}

var (
	restartPolicies = sets.New(string(corev1.RestartPolicyAlways), string(corev1.RestartPolicyOnFailure), string(corev1.RestartPolicyNever))
	dnsPolicies     = sets.New(string(corev1.DNSClusterFirst), string(corev1.DNSClusterFirstWithHostNet), string(corev1.DNSDefault), string(corev1.DNSNone))
	protocols       = sets.New(string(corev1.ProtocolTCP), string(corev1.ProtocolUDP), string(corev1.ProtocolSCTP))
	pullPolicies    = sets.New(string(corev1.PullAlways), string(corev1.PullIfNotPresent), string(corev1.PullNever))
)

func validateContainers(cs []corev1.Container, fld *field.Path, names sets.Set[string], volumes sets.Set[string]) field.ErrorList {
	var errs field.ErrorList
	for i, c := range cs {
		p := fld.Index(i)
		if c.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		} else {
			for _, msg := range validation.IsDNS1123Label(c.Name) {
				errs = append(errs, field.Invalid(p.Child("name"), c.Name, msg))
			}
			if names.Has(c.Name) {
				errs = append(errs, field.Duplicate(p.Child("name"), c.Name))
			}
			names.Insert(c.Name)
		}
		if strings.TrimSpace(c.Image) == "" {
			errs = append(errs, field.Required(p.Child("image"), ""))
		}
		if c.ImagePullPolicy != "" && !pullPolicies.Has(string(c.ImagePullPolicy)) {
			errs = append(errs, field.NotSupported(p.Child("imagePullPolicy"), c.ImagePullPolicy, sets.List(pullPolicies)))
		}
		ports := sets.New[string]()
		for j, port := range c.Ports {
			pp := p.Child("ports").Index(j)
			for _, msg := range validation.IsValidPortNum(int(port.ContainerPort)) {
				errs = append(errs, field.Invalid(pp.Child("containerPort"), port.ContainerPort, msg))
			}
			if port.HostPort != 0 {
				for _, msg := range validation.IsValidPortNum(int(port.HostPort)) {
					errs = append(errs, field.Invalid(pp.Child("hostPort"), port.HostPort, msg))
				}
			}
			if port.Protocol != "" && !protocols.Has(string(port.Protocol)) {
				errs = append(errs, field.NotSupported(pp.Child("protocol"), port.Protocol, sets.List(protocols)))
			}
			if port.Name != "" {
				for _, msg := range validation.IsValidPortName(port.Name) {
					errs = append(errs, field.Invalid(pp.Child("name"), port.Name, msg))
				}
				if ports.Has(port.Name) {
					errs = append(errs, field.Duplicate(pp.Child("name"), port.Name))
				}
				ports.Insert(port.Name)
			}
		}
		for j, e := range c.Env {
			for _, msg := range validation.IsRelaxedEnvVarName(e.Name) {
				errs = append(errs, field.Invalid(p.Child("env").Index(j).Child("name"), e.Name, msg))
			}
		}
		for name, q := range c.Resources.Requests {
			if q.Sign() < 0 {
				errs = append(errs, field.Invalid(p.Child("resources", "requests").Key(string(name)), q.String(), "must be greater than or equal to 0"))
			}
			if l, ok := c.Resources.Limits[name]; ok && q.Cmp(l) > 0 {
				errs = append(errs, field.Invalid(p.Child("resources", "requests").Key(string(name)), q.String(), fmt.Sprintf("must be less than or equal to %s limit of %s", name, l.String())))
			}
		}
		for j, m := range c.VolumeMounts {
			mp := p.Child("volumeMounts").Index(j)
			if !volumes.Has(m.Name) {
				errs = append(errs, field.NotFound(mp.Child("name"), m.Name))
			}
			if m.MountPath == "" {
				errs = append(errs, field.Required(mp.Child("mountPath"), ""))
			}
			if strings.HasPrefix(m.SubPath, "/") || strings.Contains(m.SubPath, "..") {
				errs = append(errs, field.Invalid(mp.Child("subPath"), m.SubPath, "must be a relative path without '..'"))
			}
		}
	}
	return errs
}

func validatePodSpec(spec *corev1.PodSpec, fld *field.Path, allowedRestart ...corev1.RestartPolicy) field.ErrorList {
	return validatePodSpecWithClaims(spec, fld, nil, allowedRestart...)
}

// validatePodSpecWithClaims is validatePodSpec for a template whose
// volumeMounts may also name the StatefulSet's volumeClaimTemplates.
func validatePodSpecWithClaims(spec *corev1.PodSpec, fld *field.Path, claims []string, allowedRestart ...corev1.RestartPolicy) field.ErrorList {
	var errs field.ErrorList
	volumes := sets.New(claims...)
	for i, v := range spec.Volumes {
		for _, msg := range validation.IsDNS1123Label(v.Name) {
			errs = append(errs, field.Invalid(fld.Child("volumes").Index(i).Child("name"), v.Name, msg))
		}
		if volumes.Has(v.Name) {
			errs = append(errs, field.Duplicate(fld.Child("volumes").Index(i).Child("name"), v.Name))
		}
		volumes.Insert(v.Name)
	}
	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(fld.Child("containers"), ""))
	}
	names := sets.New[string]()
	errs = append(errs, validateContainers(spec.InitContainers, fld.Child("initContainers"), names, volumes)...)
	errs = append(errs, validateContainers(spec.Containers, fld.Child("containers"), names, volumes)...)
	if spec.RestartPolicy != "" && !restartPolicies.Has(string(spec.RestartPolicy)) {
		errs = append(errs, field.NotSupported(fld.Child("restartPolicy"), spec.RestartPolicy, sets.List(restartPolicies)))
	}
	if len(allowedRestart) > 0 {
		ok := false
		var allowed []string
		for _, r := range allowedRestart {
			ok = ok || spec.RestartPolicy == r
			allowed = append(allowed, string(r))
		}
		if !ok {
			errs = append(errs, field.NotSupported(fld.Child("restartPolicy"), spec.RestartPolicy, allowed))
		}
	}
	if spec.DNSPolicy != "" && !dnsPolicies.Has(string(spec.DNSPolicy)) {
		errs = append(errs, field.NotSupported(fld.Child("dnsPolicy"), spec.DNSPolicy, sets.List(dnsPolicies)))
	}
	if spec.TerminationGracePeriodSeconds != nil && *spec.TerminationGracePeriodSeconds < 0 {
		errs = append(errs, field.Invalid(fld.Child("terminationGracePeriodSeconds"), *spec.TerminationGracePeriodSeconds, "must be >= 0"))
	}
	if spec.ActiveDeadlineSeconds != nil && *spec.ActiveDeadlineSeconds <= 0 {
		errs = append(errs, field.Invalid(fld.Child("activeDeadlineSeconds"), *spec.ActiveDeadlineSeconds, "must be between 1 and 2147483647, inclusive"))
	}
	if spec.Hostname != "" {
		for _, msg := range validation.IsDNS1123Label(spec.Hostname) {
			errs = append(errs, field.Invalid(fld.Child("hostname"), spec.Hostname, msg))
		}
	}
	if spec.Subdomain != "" {
		for _, msg := range validation.IsDNS1123Label(spec.Subdomain) {
			errs = append(errs, field.Invalid(fld.Child("subdomain"), spec.Subdomain, msg))
		}
	}
	errs = append(errs, metavalidation.ValidateLabels(spec.NodeSelector, fld.Child("nodeSelector"))...)
	return errs
}

func validatePod(obj runtime.Object, _ *Config) field.ErrorList {
	p := obj.(*corev1.Pod)
	return validatePodSpec(&p.Spec, field.NewPath("spec"))
}

// validatePodUpdate allows only the pod spec changes upstream allows: images,
// activeDeadlineSeconds, added tolerations, removed scheduling gates and
// the first assignment of spec.nodeName (binding).
func validatePodUpdate(obj, old runtime.Object) field.ErrorList {
	np, op := obj.(*corev1.Pod), old.(*corev1.Pod)
	if op.Spec.NodeName != "" && np.Spec.NodeName != op.Spec.NodeName {
		return field.ErrorList{field.Invalid(field.NewPath("spec", "nodeName"), np.Spec.NodeName, "field is immutable once set")}
	}
	mutable := np.Spec.DeepCopy()
	for i := range mutable.Containers {
		if i < len(op.Spec.Containers) {
			mutable.Containers[i].Image = op.Spec.Containers[i].Image
		}
	}
	for i := range mutable.InitContainers {
		if i < len(op.Spec.InitContainers) {
			mutable.InitContainers[i].Image = op.Spec.InitContainers[i].Image
		}
	}
	mutable.ActiveDeadlineSeconds = op.Spec.ActiveDeadlineSeconds
	mutable.Tolerations = op.Spec.Tolerations
	mutable.SchedulingGates = op.Spec.SchedulingGates
	mutable.NodeName = op.Spec.NodeName
	if !SameObject(mutable, &op.Spec) {
		return field.ErrorList{field.Forbidden(field.NewPath("spec"), "pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations), `spec.schedulingGates` (only removals) or a first `spec.nodeName`")}
	}
	return nil
}

var serviceTypes = sets.New(string(corev1.ServiceTypeClusterIP), string(corev1.ServiceTypeNodePort), string(corev1.ServiceTypeLoadBalancer), string(corev1.ServiceTypeExternalName))

func validateService(obj runtime.Object, cfg *Config) field.ErrorList {
	s := obj.(*corev1.Service)
	spec, fld := &s.Spec, field.NewPath("spec")
	var errs field.ErrorList
	if !serviceTypes.Has(string(spec.Type)) {
		errs = append(errs, field.NotSupported(fld.Child("type"), spec.Type, sets.List(serviceTypes)))
	}
	if spec.Type == corev1.ServiceTypeExternalName {
		for _, msg := range validation.IsDNS1123Subdomain(strings.TrimSuffix(spec.ExternalName, ".")) {
			errs = append(errs, field.Invalid(fld.Child("externalName"), spec.ExternalName, msg))
		}
	} else if len(spec.Ports) == 0 && spec.ClusterIP != corev1.ClusterIPNone {
		errs = append(errs, field.Required(fld.Child("ports"), ""))
	}
	names := sets.New[string]()
	for i, p := range spec.Ports {
		pp := fld.Child("ports").Index(i)
		if len(spec.Ports) > 1 && p.Name == "" {
			errs = append(errs, field.Required(pp.Child("name"), ""))
		}
		if p.Name != "" {
			for _, msg := range validation.IsDNS1123Label(p.Name) {
				errs = append(errs, field.Invalid(pp.Child("name"), p.Name, msg))
			}
			if names.Has(p.Name) {
				errs = append(errs, field.Duplicate(pp.Child("name"), p.Name))
			}
			names.Insert(p.Name)
		}
		for _, msg := range validation.IsValidPortNum(int(p.Port)) {
			errs = append(errs, field.Invalid(pp.Child("port"), p.Port, msg))
		}
		if !protocols.Has(string(p.Protocol)) {
			errs = append(errs, field.NotSupported(pp.Child("protocol"), p.Protocol, sets.List(protocols)))
		}
		if p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal != 0 {
			for _, msg := range validation.IsValidPortNum(p.TargetPort.IntValue()) {
				errs = append(errs, field.Invalid(pp.Child("targetPort"), p.TargetPort.IntVal, msg))
			}
		} else if p.TargetPort.Type == intstr.String {
			for _, msg := range validation.IsValidPortName(p.TargetPort.StrVal) {
				errs = append(errs, field.Invalid(pp.Child("targetPort"), p.TargetPort.StrVal, msg))
			}
		}
		if p.NodePort != 0 {
			if spec.Type != corev1.ServiceTypeNodePort && spec.Type != corev1.ServiceTypeLoadBalancer {
				errs = append(errs, field.Forbidden(pp.Child("nodePort"), "may not be used when `type` is 'ClusterIP'"))
			}
			for _, msg := range validation.IsValidPortNum(int(p.NodePort)) {
				errs = append(errs, field.Invalid(pp.Child("nodePort"), p.NodePort, msg))
			}
		}
	}
	if ip := spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
		addr, err := netip.ParseAddr(ip)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(fld.Child("clusterIP"), ip, "must be a valid IP address (e.g. 10.96.0.10) or \"None\""))
		case !cfg.ServiceCIDR.Contains(addr) && !cfg.SecondaryServiceCIDR.Contains(addr):
			errs = append(errs, field.Invalid(fld.Child("clusterIP"), ip, fmt.Sprintf("provided IP is not in the valid range. The range of valid IPs is %s", serviceRanges(cfg))))
		}
	}
	for i, ip := range spec.ExternalIPs {
		if _, err := netip.ParseAddr(ip); err != nil {
			errs = append(errs, field.Invalid(fld.Child("externalIPs").Index(i), ip, "must be a valid IP address"))
		}
	}
	switch spec.SessionAffinity {
	case corev1.ServiceAffinityNone, corev1.ServiceAffinityClientIP:
	default:
		errs = append(errs, field.NotSupported(fld.Child("sessionAffinity"), spec.SessionAffinity, []string{string(corev1.ServiceAffinityClientIP), string(corev1.ServiceAffinityNone)}))
	}
	if c := spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		if t := *c.ClientIP.TimeoutSeconds; t <= 0 || t > maxClientIPAffinitySeconds {
			errs = append(errs, field.Invalid(fld.Child("sessionAffinityConfig", "clientIP", "timeoutSeconds"), t, fmt.Sprintf("must be greater than 0 and less than %d", maxClientIPAffinitySeconds)))
		}
	}
	errs = append(errs, metavalidation.ValidateLabels(spec.Selector, fld.Child("selector"))...)
	return errs
}

// serviceRanges names the configured Service CIDRs for messages.
func serviceRanges(cfg *Config) string {
	if cfg.SecondaryServiceCIDR.IsValid() {
		return cfg.ServiceCIDR.String() + "," + cfg.SecondaryServiceCIDR.String()
	}
	return cfg.ServiceCIDR.String()
}

// validateServiceUpdate keeps an allocated clusterIP: it may not change
// (an update that leaves it out keeps it; see serviceAlloc).
func validateServiceUpdate(obj, old runtime.Object) field.ErrorList {
	ns, os := obj.(*corev1.Service), old.(*corev1.Service)
	if os.Spec.ClusterIP != "" && ns.Spec.ClusterIP != "" && ns.Spec.ClusterIP != os.Spec.ClusterIP && ns.Spec.Type != corev1.ServiceTypeExternalName && os.Spec.Type != corev1.ServiceTypeExternalName {
		return field.ErrorList{field.Invalid(field.NewPath("spec", "clusterIP"), ns.Spec.ClusterIP, "field is immutable")}
	}
	return nil
}

// validateSelector checks a workload's selector: required, non-empty and
// matching the pod template's labels.
func validateSelector(sel *metav1.LabelSelector, tmplLabels map[string]string, fld *field.Path) field.ErrorList {
	if sel == nil {
		return field.ErrorList{field.Required(fld.Child("selector"), "")}
	}
	errs := metavalidation.ValidateLabelSelector(sel, metavalidation.LabelSelectorValidationOptions{}, fld.Child("selector"))
	if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
		errs = append(errs, field.Invalid(fld.Child("selector"), sel, "empty selector is invalid for deployment"))
	}
	if len(errs) > 0 {
		return errs
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err == nil && !s.Matches(labels.Set(tmplLabels)) {
		errs = append(errs, field.Invalid(fld.Child("template", "metadata", "labels"), tmplLabels, "`selector` does not match template `labels`"))
	}
	return errs
}

func validateReplicas(r *int32, fld *field.Path) field.ErrorList {
	if r != nil && *r < 0 {
		return field.ErrorList{field.Invalid(fld.Child("replicas"), *r, "must be greater than or equal to 0")}
	}
	return nil
}

func validateTemplate(t *corev1.PodTemplateSpec, fld *field.Path, restart ...corev1.RestartPolicy) field.ErrorList {
	errs := metavalidation.ValidateLabels(t.Labels, fld.Child("template", "metadata", "labels"))
	return append(errs, validatePodSpec(&t.Spec, fld.Child("template", "spec"), restart...)...)
}

func validateIntOrPercent(v *intstr.IntOrString, fld *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	if v.Type == intstr.String {
		if msgs := validation.IsValidPercent(v.StrVal); len(msgs) > 0 {
			return field.ErrorList{field.Invalid(fld, v.StrVal, strings.Join(msgs, "; "))}
		}
		return nil
	}
	if v.IntVal < 0 {
		return field.ErrorList{field.Invalid(fld, v.IntVal, "must be greater than or equal to 0")}
	}
	return nil
}

func isZero(v *intstr.IntOrString) bool {
	return v == nil || (v.Type == intstr.Int && v.IntVal == 0) || (v.Type == intstr.String && v.StrVal == "0%")
}

func validateReplicaSet(obj runtime.Object, _ *Config) field.ErrorList {
	r := obj.(*appsv1.ReplicaSet)
	fld := field.NewPath("spec")
	errs := validateReplicas(r.Spec.Replicas, fld)
	errs = append(errs, validateSelector(r.Spec.Selector, r.Spec.Template.Labels, fld)...)
	return append(errs, validateTemplate(&r.Spec.Template, fld, corev1.RestartPolicyAlways)...)
}

func validateDeployment(obj runtime.Object, _ *Config) field.ErrorList {
	d := obj.(*appsv1.Deployment)
	fld := field.NewPath("spec")
	errs := validateReplicas(d.Spec.Replicas, fld)
	errs = append(errs, validateSelector(d.Spec.Selector, d.Spec.Template.Labels, fld)...)
	errs = append(errs, validateTemplate(&d.Spec.Template, fld, corev1.RestartPolicyAlways)...)
	switch d.Spec.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if d.Spec.Strategy.RollingUpdate != nil {
			errs = append(errs, field.Forbidden(fld.Child("strategy", "rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"))
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		ru, rp := d.Spec.Strategy.RollingUpdate, fld.Child("strategy", "rollingUpdate")
		errs = append(errs, validateIntOrPercent(ru.MaxSurge, rp.Child("maxSurge"))...)
		errs = append(errs, validateIntOrPercent(ru.MaxUnavailable, rp.Child("maxUnavailable"))...)
		if isZero(ru.MaxSurge) && isZero(ru.MaxUnavailable) {
			errs = append(errs, field.Invalid(rp.Child("maxUnavailable"), ru.MaxUnavailable.String(), "may not be 0 when `maxSurge` is 0"))
		}
	default:
		errs = append(errs, field.NotSupported(fld.Child("strategy", "type"), d.Spec.Strategy.Type, []string{string(appsv1.RecreateDeploymentStrategyType), string(appsv1.RollingUpdateDeploymentStrategyType)}))
	}
	if d.Spec.ProgressDeadlineSeconds != nil && *d.Spec.ProgressDeadlineSeconds <= d.Spec.MinReadySeconds {
		errs = append(errs, field.Invalid(fld.Child("progressDeadlineSeconds"), *d.Spec.ProgressDeadlineSeconds, "must be greater than minReadySeconds"))
	}
	return errs
}

func validateStatefulSet(obj runtime.Object, _ *Config) field.ErrorList {
	s := obj.(*appsv1.StatefulSet)
	fld := field.NewPath("spec")
	errs := validateReplicas(s.Spec.Replicas, fld)
	errs = append(errs, validateSelector(s.Spec.Selector, s.Spec.Template.Labels, fld)...)
	var claims []string
	for _, c := range s.Spec.VolumeClaimTemplates {
		claims = append(claims, c.Name)
	}
	errs = append(errs, metavalidation.ValidateLabels(s.Spec.Template.Labels, fld.Child("template", "metadata", "labels"))...)
	errs = append(errs, validatePodSpecWithClaims(&s.Spec.Template.Spec, fld.Child("template", "spec"), claims, corev1.RestartPolicyAlways)...)
	switch s.Spec.PodManagementPolicy {
	case appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement:
	default:
		errs = append(errs, field.NotSupported(fld.Child("podManagementPolicy"), s.Spec.PodManagementPolicy, []string{string(appsv1.OrderedReadyPodManagement), string(appsv1.ParallelPodManagement)}))
	}
	if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil && *ru.Partition < 0 {
		errs = append(errs, field.Invalid(fld.Child("updateStrategy", "rollingUpdate", "partition"), *ru.Partition, "must be greater than or equal to 0"))
	}
	return errs
}

func validateDaemonSet(obj runtime.Object, _ *Config) field.ErrorList {
	d := obj.(*appsv1.DaemonSet)
	fld := field.NewPath("spec")
	errs := validateSelector(d.Spec.Selector, d.Spec.Template.Labels, fld)
	return append(errs, validateTemplate(&d.Spec.Template, fld, corev1.RestartPolicyAlways)...)
}

// validateSelectorUpdate keeps an apps/v1 workload's selector immutable.
func validateSelectorUpdate(obj, old runtime.Object) field.ErrorList {
	sel := func(o runtime.Object) *metav1.LabelSelector {
		switch t := o.(type) {
		case *appsv1.Deployment:
			return t.Spec.Selector
		case *appsv1.ReplicaSet:
			return t.Spec.Selector
		case *appsv1.StatefulSet:
			return t.Spec.Selector
		case *appsv1.DaemonSet:
			return t.Spec.Selector
		}
		return nil
	}
	if !equality.Semantic.DeepEqual(sel(obj), sel(old)) {
		return field.ErrorList{field.Invalid(field.NewPath("spec", "selector"), sel(obj), "field is immutable")}
	}
	return nil
}

func validateJobSpec(s *batchv1.JobSpec, fld *field.Path, withSelector bool) field.ErrorList {
	var errs field.ErrorList
	for name, v := range map[string]*int32{"parallelism": s.Parallelism, "completions": s.Completions, "backoffLimit": s.BackoffLimit} {
		if v != nil && *v < 0 {
			errs = append(errs, field.Invalid(fld.Child(name), *v, "must be greater than or equal to 0"))
		}
	}
	if s.ActiveDeadlineSeconds != nil && *s.ActiveDeadlineSeconds <= 0 {
		errs = append(errs, field.Invalid(fld.Child("activeDeadlineSeconds"), *s.ActiveDeadlineSeconds, "must be greater than 0"))
	}
	if s.TTLSecondsAfterFinished != nil && *s.TTLSecondsAfterFinished < 0 {
		errs = append(errs, field.Invalid(fld.Child("ttlSecondsAfterFinished"), *s.TTLSecondsAfterFinished, "must be greater than or equal to 0"))
	}
	if s.CompletionMode != nil && *s.CompletionMode == batchv1.IndexedCompletion && s.Completions == nil {
		errs = append(errs, field.Required(fld.Child("completions"), "when completion mode is Indexed"))
	}
	if withSelector {
		errs = append(errs, validateSelector(s.Selector, s.Template.Labels, fld)...)
	}
	return append(errs, validateTemplate(&s.Template, fld, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever)...)
}

func validateJob(obj runtime.Object, _ *Config) field.ErrorList {
	j := obj.(*batchv1.Job)
	return validateJobSpec(&j.Spec, field.NewPath("spec"), true)
}

// validateJobUpdate keeps a Job's selector, completions mode and (unless
// suspended) its pod template immutable.
func validateJobUpdate(obj, old runtime.Object) field.ErrorList {
	nj, oj := obj.(*batchv1.Job), old.(*batchv1.Job)
	var errs field.ErrorList
	fld := field.NewPath("spec")
	if !equality.Semantic.DeepEqual(nj.Spec.Selector, oj.Spec.Selector) {
		errs = append(errs, field.Invalid(fld.Child("selector"), nj.Spec.Selector, "field is immutable"))
	}
	if !equality.Semantic.DeepEqual(nj.Spec.CompletionMode, oj.Spec.CompletionMode) {
		errs = append(errs, field.Invalid(fld.Child("completionMode"), nj.Spec.CompletionMode, "field is immutable"))
	}
	suspended := oj.Spec.Suspend != nil && *oj.Spec.Suspend
	if !suspended && !SameObject(&nj.Spec.Template, &oj.Spec.Template) {
		errs = append(errs, field.Invalid(fld.Child("template"), "", "field is immutable"))
	}
	return errs
}

func validateCronJob(obj runtime.Object, _ *Config) field.ErrorList {
	c := obj.(*batchv1.CronJob)
	fld := field.NewPath("spec")
	var errs field.ErrorList
	if c.Spec.Schedule == "" {
		errs = append(errs, field.Required(fld.Child("schedule"), ""))
	} else if strings.Contains(c.Spec.Schedule, "TZ") {
		errs = append(errs, field.Invalid(fld.Child("schedule"), c.Spec.Schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
	} else if _, err := cron.ParseStandard(c.Spec.Schedule); err != nil {
		errs = append(errs, field.Invalid(fld.Child("schedule"), c.Spec.Schedule, err.Error()))
	}
	if tz := c.Spec.TimeZone; tz != nil {
		if _, err := time.LoadLocation(*tz); err != nil || *tz == "" || strings.EqualFold(*tz, "local") {
			errs = append(errs, field.Invalid(fld.Child("timeZone"), *tz, "unknown time zone"))
		}
	}
	switch c.Spec.ConcurrencyPolicy {
	case batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent:
	default:
		errs = append(errs, field.NotSupported(fld.Child("concurrencyPolicy"), c.Spec.ConcurrencyPolicy, []string{"Allow", "Forbid", "Replace"}))
	}
	if c.Spec.StartingDeadlineSeconds != nil && *c.Spec.StartingDeadlineSeconds < 0 {
		errs = append(errs, field.Invalid(fld.Child("startingDeadlineSeconds"), *c.Spec.StartingDeadlineSeconds, "must be greater than or equal to 0"))
	}
	return append(errs, validateJobSpec(&c.Spec.JobTemplate.Spec, fld.Child("jobTemplate", "spec"), false)...)
}

func validatePDB(obj runtime.Object, _ *Config) field.ErrorList {
	p := obj.(*policyv1.PodDisruptionBudget)
	fld := field.NewPath("spec")
	var errs field.ErrorList
	if p.Spec.MinAvailable != nil && p.Spec.MaxUnavailable != nil {
		errs = append(errs, field.Invalid(fld, p.Spec, "minAvailable and maxUnavailable cannot be both set"))
	}
	errs = append(errs, validateIntOrPercent(p.Spec.MinAvailable, fld.Child("minAvailable"))...)
	errs = append(errs, validateIntOrPercent(p.Spec.MaxUnavailable, fld.Child("maxUnavailable"))...)
	if p.Spec.Selector != nil {
		errs = append(errs, metavalidation.ValidateLabelSelector(p.Spec.Selector, metavalidation.LabelSelectorValidationOptions{}, fld.Child("selector"))...)
	}
	return errs
}

// maxClientIPAffinitySeconds is the longest session affinity timeout (one day).
const maxClientIPAffinitySeconds = 86400

// HighestUserPriority is the largest value a user-defined PriorityClass may have.
const HighestUserPriority = 1_000_000_000

func validatePriorityClass(obj runtime.Object, _ *Config) field.ErrorList {
	p := obj.(*schedulingv1.PriorityClass)
	if p.Value > HighestUserPriority && !strings.HasPrefix(p.Name, "system-") {
		return field.ErrorList{field.Forbidden(field.NewPath("value"), fmt.Sprintf("maximum allowed value of a user defined priority is %d", HighestUserPriority))}
	}
	return nil
}
