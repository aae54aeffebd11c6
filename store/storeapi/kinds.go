package storeapi

import (
	"strconv"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// DefaultRegistry returns the registry of every kind tugboat serves. It is
// built once and must not be changed; build your own with [NewRegistry] and
// [RegisterDefaults] to add kinds.
var DefaultRegistry = sync.OnceValue(func() *Registry {
	r := NewRegistry()
	RegisterDefaults(r)
	return r
})

func gvk(group, version, kind string) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: group, Version: version, Kind: kind}
}

// selectable builds a Fields function and its key list from named getters.
func selectable[T runtime.Object](getters map[string]func(T) string) (func(runtime.Object) fields.Set, []string) {
	keys := make([]string, 0, len(getters))
	for k := range getters {
		keys = append(keys, k)
	}
	return func(obj runtime.Object) fields.Set {
		t, ok := obj.(T)
		set := fields.Set{}
		if !ok {
			return set
		}
		for k, g := range getters {
			set[k] = g(t)
		}
		return set
	}, keys
}

func typed1[T runtime.Object](f func(T)) func(runtime.Object) {
	return func(o runtime.Object) {
		if t, ok := o.(T); ok {
			f(t)
		}
	}
}

// RegisterDefaults registers the built-in kinds: core/v1, apps/v1, batch/v1,
// discovery.k8s.io/v1, policy/v1, coordination.k8s.io/v1,
// rbac.authorization.k8s.io/v1, storage.k8s.io/v1, scheduling.k8s.io/v1 and
// autoscaling/v2.
func RegisterDefaults(r *Registry) {
	all := []string{"all"}
	podFields, podKeys := selectable(map[string]func(*corev1.Pod) string{
		"spec.nodeName":            func(p *corev1.Pod) string { return p.Spec.NodeName },
		"spec.restartPolicy":       func(p *corev1.Pod) string { return string(p.Spec.RestartPolicy) },
		"spec.schedulerName":       func(p *corev1.Pod) string { return p.Spec.SchedulerName },
		"spec.serviceAccountName":  func(p *corev1.Pod) string { return p.Spec.ServiceAccountName },
		"spec.hostNetwork":         func(p *corev1.Pod) string { return strconv.FormatBool(p.Spec.HostNetwork) },
		"status.phase":             func(p *corev1.Pod) string { return string(p.Status.Phase) },
		"status.podIP":             func(p *corev1.Pod) string { return p.Status.PodIP },
		"status.nominatedNodeName": func(p *corev1.Pod) string { return p.Status.NominatedNodeName },
	})
	nodeFields, nodeKeys := selectable(map[string]func(*corev1.Node) string{
		"spec.unschedulable": func(n *corev1.Node) string { return strconv.FormatBool(n.Spec.Unschedulable) },
	})
	nsFields, nsKeys := selectable(map[string]func(*corev1.Namespace) string{
		"status.phase": func(n *corev1.Namespace) string { return string(n.Status.Phase) },
	})
	secretFields, secretKeys := selectable(map[string]func(*corev1.Secret) string{
		"type": func(s *corev1.Secret) string { return string(s.Type) },
	})
	svcFields, svcKeys := selectable(map[string]func(*corev1.Service) string{
		"spec.clusterIP": func(s *corev1.Service) string { return s.Spec.ClusterIP },
		"spec.type":      func(s *corev1.Service) string { return string(s.Spec.Type) },
	})
	evFields, evKeys := selectable(map[string]func(*corev1.Event) string{
		"involvedObject.kind":            func(e *corev1.Event) string { return e.InvolvedObject.Kind },
		"involvedObject.namespace":       func(e *corev1.Event) string { return e.InvolvedObject.Namespace },
		"involvedObject.name":            func(e *corev1.Event) string { return e.InvolvedObject.Name },
		"involvedObject.uid":             func(e *corev1.Event) string { return string(e.InvolvedObject.UID) },
		"involvedObject.apiVersion":      func(e *corev1.Event) string { return e.InvolvedObject.APIVersion },
		"involvedObject.resourceVersion": func(e *corev1.Event) string { return e.InvolvedObject.ResourceVersion },
		"involvedObject.fieldPath":       func(e *corev1.Event) string { return e.InvolvedObject.FieldPath },
		"reason":                         func(e *corev1.Event) string { return e.Reason },
		"reportingComponent":             func(e *corev1.Event) string { return e.ReportingController },
		"source":                         func(e *corev1.Event) string { return e.Source.Component },
		"type":                           func(e *corev1.Event) string { return e.Type },
	})
	rsFields, rsKeys := selectable(map[string]func(*appsv1.ReplicaSet) string{
		"status.replicas": func(r *appsv1.ReplicaSet) string { return strconv.Itoa(int(r.Status.Replicas)) },
	})
	jobFields, jobKeys := selectable(map[string]func(*batchv1.Job) string{
		"status.successful": func(j *batchv1.Job) string { return strconv.Itoa(int(j.Status.Succeeded)) },
	})

	kinds := []Kind{
		{GVK: gvk("", "v1", "Namespace"), Resource: "namespaces", ShortNames: []string{"ns"},
			New: func() runtime.Object { return &corev1.Namespace{} }, NewList: func() runtime.Object { return &corev1.NamespaceList{} },
			NameValidation: apivalidation.ValidateNamespaceName, Fields: nsFields, FieldKeys: nsKeys,
			PrepareCreate: typed1(func(n *corev1.Namespace) {
				n.Status.Phase = corev1.NamespaceActive
				n.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
			})},
		{GVK: gvk("", "v1", "Node"), Resource: "nodes", ShortNames: []string{"no"}, KeepStatusOnCreate: true,
			New: func() runtime.Object { return &corev1.Node{} }, NewList: func() runtime.Object { return &corev1.NodeList{} },
			Fields: nodeFields, FieldKeys: nodeKeys},
		{GVK: gvk("", "v1", "Pod"), Resource: "pods", ShortNames: []string{"po"}, Categories: all, Namespaced: true,
			New: func() runtime.Object { return &corev1.Pod{} }, NewList: func() runtime.Object { return &corev1.PodList{} },
			Fields: podFields, FieldKeys: podKeys, Default: typed1(defaultPod), PrepareCreate: typed1(prepareCreatePod),
			Validate: validatePod, ValidateUpdate: validatePodUpdate},
		{GVK: gvk("", "v1", "Service"), Resource: "services", ShortNames: []string{"svc"}, Categories: all, Namespaced: true,
			New: func() runtime.Object { return &corev1.Service{} }, NewList: func() runtime.Object { return &corev1.ServiceList{} },
			NameValidation: apivalidation.NameIsDNS1035Label, Fields: svcFields, FieldKeys: svcKeys,
			Default: typed1(defaultService), Validate: validateService, ValidateUpdate: validateServiceUpdate},
		{GVK: gvk("", "v1", "Endpoints"), Resource: "endpoints", ShortNames: []string{"ep"}, Namespaced: true,
			New: func() runtime.Object { return &corev1.Endpoints{} }, NewList: func() runtime.Object { return &corev1.EndpointsList{} }},
		{GVK: gvk("discovery.k8s.io", "v1", "EndpointSlice"), Resource: "endpointslices", Namespaced: true,
			New: func() runtime.Object { return &discoveryv1.EndpointSlice{} }, NewList: func() runtime.Object { return &discoveryv1.EndpointSliceList{} }},
		{GVK: gvk("", "v1", "ConfigMap"), Resource: "configmaps", ShortNames: []string{"cm"}, Namespaced: true,
			New: func() runtime.Object { return &corev1.ConfigMap{} }, NewList: func() runtime.Object { return &corev1.ConfigMapList{} },
			Validate: validateConfigMap},
		{GVK: gvk("", "v1", "Secret"), Resource: "secrets", Namespaced: true,
			New: func() runtime.Object { return &corev1.Secret{} }, NewList: func() runtime.Object { return &corev1.SecretList{} },
			Fields: secretFields, FieldKeys: secretKeys, Default: typed1(defaultSecret), Validate: validateSecret},
		{GVK: gvk("", "v1", "ServiceAccount"), Resource: "serviceaccounts", ShortNames: []string{"sa"}, Namespaced: true,
			New: func() runtime.Object { return &corev1.ServiceAccount{} }, NewList: func() runtime.Object { return &corev1.ServiceAccountList{} }},
		{GVK: gvk("", "v1", "PersistentVolume"), Resource: "persistentvolumes", ShortNames: []string{"pv"},
			New: func() runtime.Object { return &corev1.PersistentVolume{} }, NewList: func() runtime.Object { return &corev1.PersistentVolumeList{} },
			Default: typed1(defaultPV), PrepareCreate: typed1(func(p *corev1.PersistentVolume) { p.Status.Phase = corev1.VolumePending })},
		{GVK: gvk("", "v1", "PersistentVolumeClaim"), Resource: "persistentvolumeclaims", ShortNames: []string{"pvc"}, Namespaced: true,
			New: func() runtime.Object { return &corev1.PersistentVolumeClaim{} }, NewList: func() runtime.Object { return &corev1.PersistentVolumeClaimList{} },
			Default: typed1(defaultPVC), PrepareCreate: typed1(func(p *corev1.PersistentVolumeClaim) { p.Status.Phase = corev1.ClaimPending })},
		{GVK: gvk("", "v1", "Event"), Resource: "events", ShortNames: []string{"ev"}, Namespaced: true,
			New: func() runtime.Object { return &corev1.Event{} }, NewList: func() runtime.Object { return &corev1.EventList{} },
			Fields: evFields, FieldKeys: evKeys},
		{GVK: gvk("", "v1", "ResourceQuota"), Resource: "resourcequotas", ShortNames: []string{"quota"}, Namespaced: true,
			New: func() runtime.Object { return &corev1.ResourceQuota{} }, NewList: func() runtime.Object { return &corev1.ResourceQuotaList{} }},
		{GVK: gvk("", "v1", "LimitRange"), Resource: "limitranges", ShortNames: []string{"limits"}, Namespaced: true,
			New: func() runtime.Object { return &corev1.LimitRange{} }, NewList: func() runtime.Object { return &corev1.LimitRangeList{} }},
		{GVK: gvk("apps", "v1", "ReplicaSet"), Resource: "replicasets", ShortNames: []string{"rs"}, Categories: all, Namespaced: true,
			New: func() runtime.Object { return &appsv1.ReplicaSet{} }, NewList: func() runtime.Object { return &appsv1.ReplicaSetList{} },
			Fields: rsFields, FieldKeys: rsKeys, Default: typed1(defaultReplicaSet), Validate: validateReplicaSet, ValidateUpdate: validateSelectorUpdate},
		{GVK: gvk("apps", "v1", "Deployment"), Resource: "deployments", ShortNames: []string{"deploy"}, Categories: all, Namespaced: true,
			New: func() runtime.Object { return &appsv1.Deployment{} }, NewList: func() runtime.Object { return &appsv1.DeploymentList{} },
			Default: typed1(defaultDeployment), Validate: validateDeployment, ValidateUpdate: validateSelectorUpdate},
		{GVK: gvk("apps", "v1", "StatefulSet"), Resource: "statefulsets", ShortNames: []string{"sts"}, Categories: all, Namespaced: true,
			New: func() runtime.Object { return &appsv1.StatefulSet{} }, NewList: func() runtime.Object { return &appsv1.StatefulSetList{} },
			Default: typed1(defaultStatefulSet), Validate: validateStatefulSet, ValidateUpdate: validateSelectorUpdate},
		{GVK: gvk("apps", "v1", "DaemonSet"), Resource: "daemonsets", ShortNames: []string{"ds"}, Categories: all, Namespaced: true,
			New: func() runtime.Object { return &appsv1.DaemonSet{} }, NewList: func() runtime.Object { return &appsv1.DaemonSetList{} },
			Default: typed1(defaultDaemonSet), Validate: validateDaemonSet, ValidateUpdate: validateSelectorUpdate},
		{GVK: gvk("apps", "v1", "ControllerRevision"), Resource: "controllerrevisions", Namespaced: true,
			New: func() runtime.Object { return &appsv1.ControllerRevision{} }, NewList: func() runtime.Object { return &appsv1.ControllerRevisionList{} }},
		{GVK: gvk("batch", "v1", "Job"), Resource: "jobs", Categories: all, Namespaced: true,
			New: func() runtime.Object { return &batchv1.Job{} }, NewList: func() runtime.Object { return &batchv1.JobList{} },
			Fields: jobFields, FieldKeys: jobKeys, Default: typed1(defaultJob), PrepareCreate: typed1(prepareCreateJob),
			Validate: validateJob, ValidateUpdate: validateJobUpdate},
		{GVK: gvk("batch", "v1", "CronJob"), Resource: "cronjobs", ShortNames: []string{"cj"}, Categories: all, Namespaced: true,
			New: func() runtime.Object { return &batchv1.CronJob{} }, NewList: func() runtime.Object { return &batchv1.CronJobList{} },
			Default: typed1(defaultCronJob), Validate: validateCronJob},
		{GVK: gvk("policy", "v1", "PodDisruptionBudget"), Resource: "poddisruptionbudgets", ShortNames: []string{"pdb"}, Namespaced: true,
			New: func() runtime.Object { return &policyv1.PodDisruptionBudget{} }, NewList: func() runtime.Object { return &policyv1.PodDisruptionBudgetList{} },
			Validate: validatePDB},
		{GVK: gvk("coordination.k8s.io", "v1", "Lease"), Resource: "leases", Namespaced: true,
			New: func() runtime.Object { return &coordinationv1.Lease{} }, NewList: func() runtime.Object { return &coordinationv1.LeaseList{} }},
		{GVK: gvk("rbac.authorization.k8s.io", "v1", "Role"), Resource: "roles", Namespaced: true, NameValidation: path.ValidatePathSegmentName,
			New: func() runtime.Object { return &rbacv1.Role{} }, NewList: func() runtime.Object { return &rbacv1.RoleList{} }},
		{GVK: gvk("rbac.authorization.k8s.io", "v1", "ClusterRole"), Resource: "clusterroles", NameValidation: path.ValidatePathSegmentName,
			New: func() runtime.Object { return &rbacv1.ClusterRole{} }, NewList: func() runtime.Object { return &rbacv1.ClusterRoleList{} }},
		{GVK: gvk("rbac.authorization.k8s.io", "v1", "RoleBinding"), Resource: "rolebindings", Namespaced: true, NameValidation: path.ValidatePathSegmentName,
			New: func() runtime.Object { return &rbacv1.RoleBinding{} }, NewList: func() runtime.Object { return &rbacv1.RoleBindingList{} }},
		{GVK: gvk("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"), Resource: "clusterrolebindings", NameValidation: path.ValidatePathSegmentName,
			New: func() runtime.Object { return &rbacv1.ClusterRoleBinding{} }, NewList: func() runtime.Object { return &rbacv1.ClusterRoleBindingList{} }},
		{GVK: gvk("storage.k8s.io", "v1", "StorageClass"), Resource: "storageclasses", ShortNames: []string{"sc"},
			New: func() runtime.Object { return &storagev1.StorageClass{} }, NewList: func() runtime.Object { return &storagev1.StorageClassList{} },
			Default: typed1(defaultStorageClass)},
		{GVK: gvk("scheduling.k8s.io", "v1", "PriorityClass"), Resource: "priorityclasses", ShortNames: []string{"pc"},
			New: func() runtime.Object { return &schedulingv1.PriorityClass{} }, NewList: func() runtime.Object { return &schedulingv1.PriorityClassList{} },
			Default: typed1(func(p *schedulingv1.PriorityClass) {
				if p.PreemptionPolicy == nil {
					pp := corev1.PreemptLowerPriority
					p.PreemptionPolicy = &pp
				}
			}), Validate: validatePriorityClass},
		{GVK: gvk("autoscaling", "v2", "HorizontalPodAutoscaler"), Resource: "horizontalpodautoscalers", ShortNames: []string{"hpa"}, Categories: all, Namespaced: true,
			New: func() runtime.Object { return &autoscalingv2.HorizontalPodAutoscaler{} }, NewList: func() runtime.Object { return &autoscalingv2.HorizontalPodAutoscalerList{} },
			Default: typed1(defaultHPA)},
	}
	for _, k := range kinds {
		r.MustRegister(k)
	}
}
