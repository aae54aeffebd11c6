package apiserver

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tugboatdev/tugboat/store"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/tables.golden from the current printers")

// tableSamples are objects for every printer: a bare one and a filled
// one, so that each cell's branches show in the golden file.
func tableSamples(created, earlier metav1.Time) map[string][]runtime.Object {
	om := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: "ns", CreationTimestamp: created}
	}
	three, one := int32(3), int32(1)
	tpl := corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Image: "ia"}, {Name: "b", Image: "ib"}}}}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}
	tz, yes := "Europe/Paris", true
	retain := corev1.PersistentVolumeReclaimRetain
	block := corev1.PersistentVolumeBlock
	sc := "fast"
	wait := storagev1.VolumeBindingWaitForFirstConsumer
	never := corev1.PreemptNever
	holder := "node-1"
	port := int32(80)
	minA, maxU := intstr.FromInt32(1), intstr.FromString("20%")
	util := int32(50)
	job := func(name string, mut func(*batchv1.Job)) *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: om(name), Spec: batchv1.JobSpec{Template: tpl, Selector: sel}}
		mut(j)
		return j
	}
	svc := func(name string, mut func(*corev1.Service)) *corev1.Service {
		s := &corev1.Service{ObjectMeta: om(name), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.10",
			Ports: []corev1.ServicePort{{Port: 53, Protocol: corev1.ProtocolUDP}, {Port: 80, NodePort: 30080, Protocol: corev1.ProtocolTCP}}, Selector: map[string]string{"app": "x", "b": "c"}}}
		mut(s)
		return s
	}
	return map[string][]runtime.Object{
		"pods": {
			&corev1.Pod{ObjectMeta: om("bare")},
			&corev1.Pod{ObjectMeta: om("running"), Spec: corev1.PodSpec{NodeName: "n1", Containers: tpl.Spec.Containers,
				ReadinessGates: []corev1.PodReadinessGate{{ConditionType: "g1"}, {ConditionType: "g2"}}},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.5", NominatedNodeName: "n2",
					Conditions: []corev1.PodCondition{{Type: "g1", Status: corev1.ConditionTrue}},
					ContainerStatuses: []corev1.ContainerStatus{
						{Name: "a", Ready: true, RestartCount: 2, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
							LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: earlier}}},
						{Name: "b", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}}},
		},
		"deployments.apps": {
			&appsv1.Deployment{ObjectMeta: om("bare")},
			&appsv1.Deployment{ObjectMeta: om("web"), Spec: appsv1.DeploymentSpec{Replicas: &three, Selector: sel, Template: tpl},
				Status: appsv1.DeploymentStatus{ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 1}},
		},
		"replicasets.apps": {
			&appsv1.ReplicaSet{ObjectMeta: om("bare")},
			&appsv1.ReplicaSet{ObjectMeta: om("rs"), Spec: appsv1.ReplicaSetSpec{Replicas: &three, Selector: sel, Template: tpl},
				Status: appsv1.ReplicaSetStatus{Replicas: 3, ReadyReplicas: 2}},
		},
		"statefulsets.apps": {
			&appsv1.StatefulSet{ObjectMeta: om("bare")},
			&appsv1.StatefulSet{ObjectMeta: om("db"), Spec: appsv1.StatefulSetSpec{Replicas: &three, Template: tpl}, Status: appsv1.StatefulSetStatus{ReadyReplicas: 1}},
		},
		"daemonsets.apps": {
			&appsv1.DaemonSet{ObjectMeta: om("bare")},
			&appsv1.DaemonSet{ObjectMeta: om("ds"), Spec: appsv1.DaemonSetSpec{Selector: sel, Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Containers: tpl.Spec.Containers, NodeSelector: map[string]string{"zone": "a", "disk": "ssd"}}}},
				Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2, UpdatedNumberScheduled: 1, NumberAvailable: 2}},
		},
		"controllerrevisions.apps": {
			&appsv1.ControllerRevision{ObjectMeta: om("bare")},
			&appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "cr", CreationTimestamp: created, OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", Controller: &yes}}}, Revision: 4},
		},
		"jobs.batch": {
			job("bare", func(*batchv1.Job) {}),
			job("done", func(j *batchv1.Job) {
				j.Spec.Completions = &three
				j.Status = batchv1.JobStatus{Succeeded: 3, StartTime: &earlier, CompletionTime: &created,
					Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}
			}),
			job("parallel", func(j *batchv1.Job) {
				j.Spec.Parallelism = &three
				j.Status = batchv1.JobStatus{Succeeded: 1, StartTime: &earlier}
			}),
			job("failed", func(j *batchv1.Job) {
				j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue}}
			}),
			job("suspended", func(j *batchv1.Job) {
				j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobSuspended, Status: corev1.ConditionTrue}, {Type: batchv1.JobFailureTarget, Status: corev1.ConditionFalse}}
			}),
			job("terminating", func(j *batchv1.Job) { j.DeletionTimestamp = &created }),
		},
		"cronjobs.batch": {
			&batchv1.CronJob{ObjectMeta: om("bare")},
			&batchv1.CronJob{ObjectMeta: om("tick"), Spec: batchv1.CronJobSpec{Schedule: "*/5 * * * *", TimeZone: &tz, Suspend: &yes,
				JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tpl, Selector: sel}}},
				Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{{Name: "j"}}, LastScheduleTime: &earlier}},
		},
		"services": {
			&corev1.Service{ObjectMeta: om("bare")},
			svc("cluster", func(*corev1.Service) {}),
			svc("external", func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"192.0.2.1"} }),
			svc("name", func(s *corev1.Service) {
				s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}
			}),
			svc("lb-pending", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeLoadBalancer }),
			svc("lb", func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeLoadBalancer
				s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.2"}, {Hostname: "lb.example.com"}}
			}),
		},
		"endpoints": {
			&corev1.Endpoints{ObjectMeta: om("bare")},
			&corev1.Endpoints{ObjectMeta: om("few"), Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1"}}}}},
			&corev1.Endpoints{ObjectMeta: om("many"), Subsets: []corev1.EndpointSubset{{
				Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1"}, {IP: "10.0.0.2"}},
				Ports:     []corev1.EndpointPort{{Port: 80}, {Port: 443}}}}},
		},
		"endpointslices.discovery.k8s.io": {
			&discoveryv1.EndpointSlice{ObjectMeta: om("bare")},
			&discoveryv1.EndpointSlice{ObjectMeta: om("es"), AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Port: &port}},
				Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1", "10.0.0.2"}}, {Addresses: []string{"10.0.0.3", "10.0.0.4"}}}},
		},
		"nodes": {
			&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "bare", CreationTimestamp: created}},
			&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", CreationTimestamp: created, Labels: map[string]string{
				"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": "", "kubernetes.io/role": "edge"}},
				Spec: corev1.NodeSpec{Unschedulable: true},
				Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
					Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.1.2"}, {Type: corev1.NodeExternalIP, Address: "198.51.100.2"}},
					NodeInfo:  corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", OSImage: "Debian", KernelVersion: "6.1", ContainerRuntimeVersion: "containerd://1.6"}}},
			&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2", CreationTimestamp: created},
				Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse}}}},
		},
		"namespaces": {
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", CreationTimestamp: created}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
		},
		"configmaps": {
			&corev1.ConfigMap{ObjectMeta: om("cm"), Data: map[string]string{"a": "1"}, BinaryData: map[string][]byte{"b": {1}}},
		},
		"secrets": {
			&corev1.Secret{ObjectMeta: om("s"), Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"a": {1}}},
		},
		"serviceaccounts": {
			&corev1.ServiceAccount{ObjectMeta: om("default"), Secrets: []corev1.ObjectReference{{Name: "t"}}},
		},
		"events": {
			&corev1.Event{ObjectMeta: om("bare")},
			&corev1.Event{ObjectMeta: om("ev"), Type: "Warning", Reason: "BackOff", Message: " restarting \n", Count: 3,
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "p", FieldPath: "spec.containers{a}"},
				Source:         corev1.EventSource{Component: "kubelet", Host: "n1"}, FirstTimestamp: earlier, LastTimestamp: created},
			&corev1.Event{ObjectMeta: om("new"), EventTime: metav1.NewMicroTime(earlier.Time), Source: corev1.EventSource{Component: "scheduler"}},
		},
		"persistentvolumes": {
			&corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "bare", CreationTimestamp: created}},
			&corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv", CreationTimestamp: created}, Spec: corev1.PersistentVolumeSpec{
				Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod},
				ClaimRef:    &corev1.ObjectReference{Namespace: "ns", Name: "c"}, PersistentVolumeReclaimPolicy: retain, StorageClassName: "fast",
				VolumeMode: &block, VolumeAttributesClassName: &sc}, Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound, Reason: "r"}},
		},
		"persistentvolumeclaims": {
			&corev1.PersistentVolumeClaim{ObjectMeta: om("bare")},
			&corev1.PersistentVolumeClaim{ObjectMeta: om("c"), Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pv", StorageClassName: &sc, VolumeMode: &block, VolumeAttributesClassName: &sc},
				Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
		},
		"poddisruptionbudgets.policy": {
			&policyv1.PodDisruptionBudget{ObjectMeta: om("bare")},
			&policyv1.PodDisruptionBudget{ObjectMeta: om("pdb"), Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &minA, MaxUnavailable: &maxU},
				Status: policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 1}},
		},
		"horizontalpodautoscalers.autoscaling": {
			&autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: om("bare")},
			&autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: om("hpa"), Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "web"}, MinReplicas: &one, MaxReplicas: 10,
				Metrics: []autoscalingv2.MetricSpec{
					{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU,
						Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &util}}},
					{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceMemory,
						Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptrTo(resource.MustParse("100Mi"))}}},
					{Type: autoscalingv2.PodsMetricSourceType},
				}},
				Status: autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: 2, CurrentMetrics: []autoscalingv2.MetricStatus{
					{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: &util}}},
					{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{Name: corev1.ResourceMemory, Current: autoscalingv2.MetricValueStatus{AverageValue: ptrTo(resource.MustParse("50Mi"))}}},
				}}},
		},
		"leases.coordination.k8s.io": {
			&coordinationv1.Lease{ObjectMeta: om("bare")},
			&coordinationv1.Lease{ObjectMeta: om("l"), Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder}},
		},
		"rolebindings.rbac.authorization.k8s.io": {
			&rbacv1.RoleBinding{ObjectMeta: om("rb"), RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "r"}, Subjects: []rbacv1.Subject{
				{Kind: rbacv1.UserKind, Name: "u1"}, {Kind: rbacv1.UserKind, Name: "u2"}, {Kind: rbacv1.GroupKind, Name: "g"}, {Kind: rbacv1.ServiceAccountKind, Namespace: "ns", Name: "sa"}}},
		},
		"clusterrolebindings.rbac.authorization.k8s.io": {
			&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "crb", CreationTimestamp: created}, RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "admin"},
				Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, Name: "system:masters"}}},
		},
		"storageclasses.storage.k8s.io": {
			&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "bare", CreationTimestamp: created}},
			&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "std", CreationTimestamp: created, Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
				Provisioner: "local", ReclaimPolicy: &retain, VolumeBindingMode: &wait, AllowVolumeExpansion: &yes},
		},
		"priorityclasses.scheduling.k8s.io": {
			&schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "bare", CreationTimestamp: created}},
			&schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "high", CreationTimestamp: created}, Value: 1000, GlobalDefault: true, PreemptionPolicy: &never},
		},
		"limitranges": {
			&corev1.LimitRange{ObjectMeta: om("no-printer")},
		},
	}
}

// TestTablePrinters renders every printer's columns and rows for the
// samples and compares them with testdata/tables.golden (go test -run
// TestTablePrinters -update rewrites it).
func TestTablePrinters(t *testing.T) {
	reg := store.DefaultRegistry()
	s := &Server{printers: printers(), codecs: mustCodecs(t)}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	samples := tableSamples(metav1.NewTime(now.Add(-49*time.Hour)), metav1.NewTime(now.Add(-50*time.Hour-3*time.Minute)))
	keys := make([]string, 0, len(samples))
	for k := range samples {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, key := range keys {
		res, group, _ := strings.Cut(key, ".")
		k := reg.ForResource(schema.GroupResource{Group: group, Resource: res})
		if k == nil {
			t.Fatalf("no kind for %s", key)
		}
		tab, err := s.table(k, samples[key], url.Values{"includeObject": {"None"}}, now)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		fmt.Fprintf(&b, "## %s\n", key)
		for _, c := range tab.ColumnDefinitions {
			fmt.Fprintf(&b, "column %q %s %q priority=%d: %s\n", c.Name, c.Type, c.Format, c.Priority, c.Description)
		}
		for _, r := range tab.Rows {
			js, err := json.Marshal(r.Cells)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "row %s\n", js)
		}
	}
	golden := filepath.Join("testdata", "tables.golden")
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("tables differ from %s (-want +got):\n%s", golden, diff)
	}
}

func mustCodecs(t *testing.T) *codecs {
	c, err := newCodecs()
	if err != nil {
		t.Fatal(err)
	}
	return c
}
