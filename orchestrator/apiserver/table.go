package apiserver

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tugboatdev/tugboat/orchestrator/podstatus"
	"github.com/tugboatdev/tugboat/store"
)

// col declares a table column: name, type, priority (0 = default
// columns, 1 = -o wide only) and description.
func col(name, typ string, prio int32, desc string) metav1.TableColumnDefinition {
	format := ""
	if name == "Name" {
		format = "name"
	}
	return metav1.TableColumnDefinition{Name: name, Type: typ, Format: format, Priority: prio, Description: desc}
}

var (
	cName = col("Name", "string", 0, metav1.ObjectMeta{}.SwaggerDoc()["name"])
	cAge  = col("Age", "string", 0, metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"])
)

// printer renders one kind's rows.
type printer struct {
	cols []metav1.TableColumnDefinition
	row  func(obj runtime.Object, now time.Time) []any
}

func age(acc metav1.Object, now time.Time) string {
	t := acc.GetCreationTimestamp()
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

func since(t *metav1.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func selectorString(sel *metav1.LabelSelector) string {
	if sel == nil {
		return "<none>"
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return "<error>"
	}
	return orNone(s.String())
}

func mapSelector(m map[string]string) string {
	if len(m) == 0 {
		return "<none>"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

// Column specs. A kind's table is a list of columns, each its header
// definition and the function computing its cell from the typed object.

// column is one table column of objects of type T.
type column[T any] struct {
	def  metav1.TableColumnDefinition
	cell func(obj T, now time.Time) any
}

// fieldDoc is the description of a field of t.
func fieldDoc(t swaggerDoccer, field string) string { return t.SwaggerDoc()[field] }

// text is a default column of strings.
func text[T any](name, desc string, cell func(T) string) column[T] {
	return column[T]{def: col(name, "string", 0, desc), cell: func(o T, _ time.Time) any { return cell(o) }}
}

// count is a default column of integers shown as typed (Type "string"
// columns carry integers too where kubectl's printers do).
func count[T any](name, typ, desc string, cell func(T) int64) column[T] {
	return column[T]{def: col(name, typ, 0, desc), cell: func(o T, _ time.Time) any { return cell(o) }}
}

// boolColumn is a default column of booleans (Type "boolean" or "string").
func boolColumn[T any](name, typ, desc string, cell func(T) bool) column[T] {
	return column[T]{def: col(name, typ, 0, desc), cell: func(o T, _ time.Time) any { return cell(o) }}
}

// timed is a default string column computed at time now.
func timed[T any](name, desc string, cell func(T, time.Time) string) column[T] {
	return column[T]{def: col(name, "string", 0, desc), cell: func(o T, now time.Time) any { return cell(o, now) }}
}

// wide moves a column to -o wide (priority 1).
func wide[T any](c column[T]) column[T] {
	c.def.Priority = 1
	return c
}

// nameColumn is the NAME column.
func nameColumn[T metav1.Object]() column[T] {
	return column[T]{def: cName, cell: func(o T, _ time.Time) any { return o.GetName() }}
}

// ageColumn is the AGE column.
func ageColumn[T metav1.Object]() column[T] {
	return column[T]{def: cAge, cell: func(o T, now time.Time) any { return age(o, now) }}
}

// templateColumns are the wide CONTAINERS and IMAGES columns of a kind
// with a pod template, and SELECTOR when selector is not nil.
func templateColumns[T any](spec func(T) *corev1.PodSpec, selector func(T) *metav1.LabelSelector, selectorDoc string) []column[T] {
	cols := []column[T]{
		wide(text("Containers", "Names of each container in the template.", func(o T) string { return containerNames(spec(o).Containers) })),
		wide(text("Images", "Images referenced by each container in the template.", func(o T) string { return containerImages(spec(o).Containers) })),
	}
	if selector != nil {
		cols = append(cols, wide(text("Selector", selectorDoc, func(o T) string { return selectorString(selector(o)) })))
	}
	return cols
}

// printerOf makes the printer of a kind from its columns.
func printerOf[T runtime.Object](cols ...[]column[T]) printer {
	all := slices.Concat(cols...)
	p := printer{cols: make([]metav1.TableColumnDefinition, len(all))}
	for i, c := range all {
		p.cols[i] = c.def
	}
	p.row = func(o runtime.Object, now time.Time) []any {
		t := o.(T)
		cells := make([]any, len(all))
		for i, c := range all {
			cells[i] = c.cell(t, now)
		}
		return cells
	}
	return p
}

// cols groups columns for printerOf.
func cols[T any](c ...column[T]) []column[T] { return c }

func printers() map[string]printer {
	return map[string]printer{
		"pods": printerOf(cols(nameColumn[*corev1.Pod](),
			text("Ready", "The aggregate readiness state of this pod for accepting traffic.", func(p *corev1.Pod) string { return podstatus.Of(p).ReadyString() }),
			text("Status", "The aggregate status of the containers in this pod.", func(p *corev1.Pod) string { return podstatus.Of(p).Reason }),
			timed("Restarts", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
				func(p *corev1.Pod, now time.Time) string { return podstatus.Of(p).RestartsString(now) }),
			ageColumn[*corev1.Pod](),
			wide(text("IP", fieldDoc(corev1.PodStatus{}, "podIP"), func(p *corev1.Pod) string { return orNone(p.Status.PodIP) })),
			wide(text("Node", fieldDoc(corev1.PodSpec{}, "nodeName"), func(p *corev1.Pod) string { return orNone(p.Spec.NodeName) })),
			wide(text("Nominated Node", fieldDoc(corev1.PodStatus{}, "nominatedNodeName"), func(p *corev1.Pod) string { return orNone(p.Status.NominatedNodeName) })),
			wide(text("Readiness Gates", fieldDoc(corev1.PodSpec{}, "readinessGates"), readinessGates)),
		)),
		"deployments.apps": printerOf(cols(nameColumn[*appsv1.Deployment](),
			text("Ready", "Number of the pod with ready state", func(d *appsv1.Deployment) string {
				return fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, ptrOr(d.Spec.Replicas, 1))
			}),
			count("Up-to-date", "string", fieldDoc(appsv1.DeploymentStatus{}, "updatedReplicas"), func(d *appsv1.Deployment) int64 { return int64(d.Status.UpdatedReplicas) }),
			count("Available", "string", fieldDoc(appsv1.DeploymentStatus{}, "availableReplicas"), func(d *appsv1.Deployment) int64 { return int64(d.Status.AvailableReplicas) }),
			ageColumn[*appsv1.Deployment](),
		), templateColumns(func(d *appsv1.Deployment) *corev1.PodSpec { return &d.Spec.Template.Spec },
			func(d *appsv1.Deployment) *metav1.LabelSelector { return d.Spec.Selector }, fieldDoc(appsv1.DeploymentSpec{}, "selector"))),
		"replicasets.apps": printerOf(cols(nameColumn[*appsv1.ReplicaSet](),
			count("Desired", "integer", fieldDoc(appsv1.ReplicaSetSpec{}, "replicas"), func(r *appsv1.ReplicaSet) int64 { return int64(ptrOr(r.Spec.Replicas, 1)) }),
			count("Current", "integer", fieldDoc(appsv1.ReplicaSetStatus{}, "replicas"), func(r *appsv1.ReplicaSet) int64 { return int64(r.Status.Replicas) }),
			count("Ready", "integer", fieldDoc(appsv1.ReplicaSetStatus{}, "readyReplicas"), func(r *appsv1.ReplicaSet) int64 { return int64(r.Status.ReadyReplicas) }),
			ageColumn[*appsv1.ReplicaSet](),
		), templateColumns(func(r *appsv1.ReplicaSet) *corev1.PodSpec { return &r.Spec.Template.Spec },
			func(r *appsv1.ReplicaSet) *metav1.LabelSelector { return r.Spec.Selector }, fieldDoc(appsv1.ReplicaSetSpec{}, "selector"))),
		"statefulsets.apps": printerOf(cols(nameColumn[*appsv1.StatefulSet](),
			text("Ready", "Number of the pod with ready state", func(s *appsv1.StatefulSet) string {
				return fmt.Sprintf("%d/%d", s.Status.ReadyReplicas, ptrOr(s.Spec.Replicas, 1))
			}),
			ageColumn[*appsv1.StatefulSet](),
		), templateColumns(func(s *appsv1.StatefulSet) *corev1.PodSpec { return &s.Spec.Template.Spec }, nil, "")),
		"daemonsets.apps": printerOf(cols(nameColumn[*appsv1.DaemonSet](),
			count("Desired", "integer", fieldDoc(appsv1.DaemonSetStatus{}, "desiredNumberScheduled"), func(d *appsv1.DaemonSet) int64 { return int64(d.Status.DesiredNumberScheduled) }),
			count("Current", "integer", fieldDoc(appsv1.DaemonSetStatus{}, "currentNumberScheduled"), func(d *appsv1.DaemonSet) int64 { return int64(d.Status.CurrentNumberScheduled) }),
			count("Ready", "integer", fieldDoc(appsv1.DaemonSetStatus{}, "numberReady"), func(d *appsv1.DaemonSet) int64 { return int64(d.Status.NumberReady) }),
			count("Up-to-date", "integer", fieldDoc(appsv1.DaemonSetStatus{}, "updatedNumberScheduled"), func(d *appsv1.DaemonSet) int64 { return int64(d.Status.UpdatedNumberScheduled) }),
			count("Available", "integer", fieldDoc(appsv1.DaemonSetStatus{}, "numberAvailable"), func(d *appsv1.DaemonSet) int64 { return int64(d.Status.NumberAvailable) }),
			text("Node Selector", fieldDoc(corev1.PodSpec{}, "nodeSelector"), func(d *appsv1.DaemonSet) string { return mapSelector(d.Spec.Template.Spec.NodeSelector) }),
			ageColumn[*appsv1.DaemonSet](),
		), templateColumns(func(d *appsv1.DaemonSet) *corev1.PodSpec { return &d.Spec.Template.Spec },
			func(d *appsv1.DaemonSet) *metav1.LabelSelector { return d.Spec.Selector }, fieldDoc(appsv1.DaemonSetSpec{}, "selector"))),
		"controllerrevisions.apps": printerOf(cols(nameColumn[*appsv1.ControllerRevision](),
			text("Controller", "Controller of the object", controllerOf),
			count("Revision", "integer", fieldDoc(appsv1.ControllerRevision{}, "revision"), func(c *appsv1.ControllerRevision) int64 { return c.Revision }),
			ageColumn[*appsv1.ControllerRevision](),
		)),
		"jobs.batch": printerOf(cols(nameColumn[*batchv1.Job](),
			text("Status", "Status of the job.", jobStatus),
			text("Completions", fieldDoc(batchv1.JobStatus{}, "succeeded"), jobCompletions),
			timed("Duration", "Time required to complete the job.", jobDuration),
			ageColumn[*batchv1.Job](),
		), templateColumns(func(j *batchv1.Job) *corev1.PodSpec { return &j.Spec.Template.Spec },
			func(j *batchv1.Job) *metav1.LabelSelector { return j.Spec.Selector }, fieldDoc(batchv1.JobSpec{}, "selector"))),
		"cronjobs.batch": printerOf(cols(nameColumn[*batchv1.CronJob](),
			text("Schedule", fieldDoc(batchv1.CronJobSpec{}, "schedule"), func(c *batchv1.CronJob) string { return c.Spec.Schedule }),
			text("Timezone", fieldDoc(batchv1.CronJobSpec{}, "timeZone"), func(c *batchv1.CronJob) string { return derefOr(c.Spec.TimeZone, "<none>") }),
			column[*batchv1.CronJob]{def: col("Suspend", "boolean", 0, fieldDoc(batchv1.CronJobSpec{}, "suspend")), cell: func(c *batchv1.CronJob, _ time.Time) any { return cronSuspend(c) }},
			count("Active", "integer", fieldDoc(batchv1.CronJobStatus{}, "active"), func(c *batchv1.CronJob) int64 { return int64(len(c.Status.Active)) }),
			timed("Last Schedule", fieldDoc(batchv1.CronJobStatus{}, "lastScheduleTime"), func(c *batchv1.CronJob, now time.Time) string { return since(c.Status.LastScheduleTime, now) }),
			ageColumn[*batchv1.CronJob](),
		), templateColumns(func(c *batchv1.CronJob) *corev1.PodSpec { return &c.Spec.JobTemplate.Spec.Template.Spec },
			func(c *batchv1.CronJob) *metav1.LabelSelector { return c.Spec.JobTemplate.Spec.Selector }, fieldDoc(batchv1.JobSpec{}, "selector"))),
		"services": printerOf(cols(nameColumn[*corev1.Service](),
			text("Type", fieldDoc(corev1.ServiceSpec{}, "type"), func(s *corev1.Service) string { return string(s.Spec.Type) }),
			text("Cluster-IP", fieldDoc(corev1.ServiceSpec{}, "clusterIP"), func(s *corev1.Service) string { return orNone(s.Spec.ClusterIP) }),
			text("External-IP", fieldDoc(corev1.ServiceSpec{}, "externalIPs"), serviceExternalIP),
			text("Port(s)", fieldDoc(corev1.ServiceSpec{}, "ports"), servicePorts),
			ageColumn[*corev1.Service](),
			wide(text("Selector", fieldDoc(corev1.ServiceSpec{}, "selector"), func(s *corev1.Service) string { return mapSelector(s.Spec.Selector) })),
		)),
		"endpoints": printerOf(cols(nameColumn[*corev1.Endpoints](),
			text("Endpoints", fieldDoc(corev1.Endpoints{}, "subsets"), endpointsAddresses),
			ageColumn[*corev1.Endpoints](),
		)),
		"endpointslices.discovery.k8s.io": printerOf(cols(nameColumn[*discoveryv1.EndpointSlice](),
			text("AddressType", fieldDoc(discoveryv1.EndpointSlice{}, "addressType"), func(e *discoveryv1.EndpointSlice) string { return string(e.AddressType) }),
			text("Ports", fieldDoc(discoveryv1.EndpointSlice{}, "ports"), sliceTextPorts),
			text("Endpoints", fieldDoc(discoveryv1.EndpointSlice{}, "endpoints"), sliceAddresses),
			ageColumn[*discoveryv1.EndpointSlice](),
		)),
		"nodes": printerOf(cols(nameColumn[*corev1.Node](),
			text("Status", "The status of the node", nodeStatus),
			text("Roles", "The roles of the node", nodeRoles),
			ageColumn[*corev1.Node](),
			text("Version", fieldDoc(corev1.NodeSystemInfo{}, "kubeletVersion"), func(n *corev1.Node) string { return n.Status.NodeInfo.KubeletVersion }),
			wide(text("Internal-IP", fieldDoc(corev1.NodeStatus{}, "addresses"), func(n *corev1.Node) string { return nodeAddress(n, corev1.NodeInternalIP) })),
			wide(text("External-IP", fieldDoc(corev1.NodeStatus{}, "addresses"), func(n *corev1.Node) string { return nodeAddress(n, corev1.NodeExternalIP) })),
			wide(text("OS-Image", fieldDoc(corev1.NodeSystemInfo{}, "osImage"), func(n *corev1.Node) string { return orUnknown(n.Status.NodeInfo.OSImage) })),
			wide(text("Kernel-Version", fieldDoc(corev1.NodeSystemInfo{}, "kernelVersion"), func(n *corev1.Node) string { return orUnknown(n.Status.NodeInfo.KernelVersion) })),
			wide(text("Container-Runtime", fieldDoc(corev1.NodeSystemInfo{}, "containerRuntimeVersion"), func(n *corev1.Node) string {
				return orUnknown(n.Status.NodeInfo.ContainerRuntimeVersion)
			})),
		)),
		"namespaces": printerOf(cols(nameColumn[*corev1.Namespace](),
			text("Status", "The status of the namespace", func(n *corev1.Namespace) string { return string(n.Status.Phase) }),
			ageColumn[*corev1.Namespace](),
		)),
		"configmaps": printerOf(cols(nameColumn[*corev1.ConfigMap](),
			count("Data", "string", fieldDoc(corev1.ConfigMap{}, "data"), func(c *corev1.ConfigMap) int64 { return int64(len(c.Data) + len(c.BinaryData)) }),
			ageColumn[*corev1.ConfigMap](),
		)),
		"secrets": printerOf(cols(nameColumn[*corev1.Secret](),
			text("Type", fieldDoc(corev1.Secret{}, "type"), func(s *corev1.Secret) string { return string(s.Type) }),
			count("Data", "string", fieldDoc(corev1.Secret{}, "data"), func(s *corev1.Secret) int64 { return int64(len(s.Data)) }),
			ageColumn[*corev1.Secret](),
		)),
		"serviceaccounts": printerOf(cols(nameColumn[*corev1.ServiceAccount](),
			count("Secrets", "string", fieldDoc(corev1.ServiceAccount{}, "secrets"), func(s *corev1.ServiceAccount) int64 { return int64(len(s.Secrets)) }),
			ageColumn[*corev1.ServiceAccount](),
		)),
		"events": printerOf(cols(
			timed("Last Seen", fieldDoc(corev1.Event{}, "lastTimestamp"), func(e *corev1.Event, now time.Time) string { return eventTime(e.LastTimestamp, e, now) }),
			text("Type", fieldDoc(corev1.Event{}, "type"), func(e *corev1.Event) string { return e.Type }),
			text("Reason", fieldDoc(corev1.Event{}, "reason"), func(e *corev1.Event) string { return e.Reason }),
			text("Object", fieldDoc(corev1.Event{}, "involvedObject"), func(e *corev1.Event) string {
				return strings.ToLower(e.InvolvedObject.Kind) + "/" + e.InvolvedObject.Name
			}),
			wide(text("Subobject", fieldDoc(corev1.ObjectReference{}, "fieldPath"), func(e *corev1.Event) string { return e.InvolvedObject.FieldPath })),
			wide(text("Source", fieldDoc(corev1.Event{}, "source"), eventSource)),
			text("Message", fieldDoc(corev1.Event{}, "message"), func(e *corev1.Event) string { return strings.TrimSpace(e.Message) }),
			wide(timed("First Seen", fieldDoc(corev1.Event{}, "firstTimestamp"), func(e *corev1.Event, now time.Time) string { return eventTime(e.FirstTimestamp, e, now) })),
			wide(count("Count", "string", fieldDoc(corev1.Event{}, "count"), func(e *corev1.Event) int64 { return int64(e.Count) })),
			wide(nameColumn[*corev1.Event]()),
		)),
		"persistentvolumes": printerOf(cols(nameColumn[*corev1.PersistentVolume](),
			text("Capacity", fieldDoc(corev1.PersistentVolumeSpec{}, "capacity"), func(p *corev1.PersistentVolume) string {
				c := p.Spec.Capacity[corev1.ResourceStorage]
				return c.String()
			}),
			text("Access Modes", fieldDoc(corev1.PersistentVolumeSpec{}, "accessModes"), func(p *corev1.PersistentVolume) string { return accessModes(p.Spec.AccessModes) }),
			text("Reclaim Policy", fieldDoc(corev1.PersistentVolumeSpec{}, "persistentVolumeReclaimPolicy"), func(p *corev1.PersistentVolume) string {
				return string(p.Spec.PersistentVolumeReclaimPolicy)
			}),
			text("Status", fieldDoc(corev1.PersistentVolumeStatus{}, "phase"), func(p *corev1.PersistentVolume) string { return string(p.Status.Phase) }),
			text("Claim", fieldDoc(corev1.PersistentVolumeSpec{}, "claimRef"), func(p *corev1.PersistentVolume) string {
				if p.Spec.ClaimRef == nil {
					return ""
				}
				return p.Spec.ClaimRef.Namespace + "/" + p.Spec.ClaimRef.Name
			}),
			text("StorageClass", "StorageClass of the pv", func(p *corev1.PersistentVolume) string { return p.Spec.StorageClassName }),
			text("VolumeAttributesClass", fieldDoc(corev1.PersistentVolumeSpec{}, "volumeAttributesClassName"), func(p *corev1.PersistentVolume) string {
				return derefOr(p.Spec.VolumeAttributesClassName, "<unset>")
			}),
			text("Reason", fieldDoc(corev1.PersistentVolumeStatus{}, "reason"), func(p *corev1.PersistentVolume) string { return p.Status.Reason }),
			ageColumn[*corev1.PersistentVolume](),
			wide(text("VolumeMode", fieldDoc(corev1.PersistentVolumeSpec{}, "volumeMode"), func(p *corev1.PersistentVolume) string { return volumeMode(p.Spec.VolumeMode) })),
		)),
		"persistentvolumeclaims": printerOf(cols(nameColumn[*corev1.PersistentVolumeClaim](),
			text("Status", fieldDoc(corev1.PersistentVolumeClaimStatus{}, "phase"), func(p *corev1.PersistentVolumeClaim) string { return string(p.Status.Phase) }),
			text("Volume", fieldDoc(corev1.PersistentVolumeClaimSpec{}, "volumeName"), func(p *corev1.PersistentVolumeClaim) string { return p.Spec.VolumeName }),
			text("Capacity", fieldDoc(corev1.PersistentVolumeClaimStatus{}, "capacity"), func(p *corev1.PersistentVolumeClaim) string {
				if p.Spec.VolumeName == "" {
					return ""
				}
				q := p.Status.Capacity[corev1.ResourceStorage]
				return q.String()
			}),
			text("Access Modes", fieldDoc(corev1.PersistentVolumeClaimStatus{}, "accessModes"), func(p *corev1.PersistentVolumeClaim) string {
				if p.Spec.VolumeName == "" {
					return ""
				}
				return accessModes(p.Status.AccessModes)
			}),
			text("StorageClass", "StorageClass of the pvc", func(p *corev1.PersistentVolumeClaim) string { return derefOr(p.Spec.StorageClassName, "") }),
			text("VolumeAttributesClass", fieldDoc(corev1.PersistentVolumeClaimSpec{}, "volumeAttributesClassName"), func(p *corev1.PersistentVolumeClaim) string {
				return derefOr(p.Spec.VolumeAttributesClassName, "<unset>")
			}),
			ageColumn[*corev1.PersistentVolumeClaim](),
			wide(text("VolumeMode", fieldDoc(corev1.PersistentVolumeClaimSpec{}, "volumeMode"), func(p *corev1.PersistentVolumeClaim) string { return volumeMode(p.Spec.VolumeMode) })),
		)),
		"poddisruptionbudgets.policy": printerOf(cols(nameColumn[*policyv1.PodDisruptionBudget](),
			text("Min Available", fieldDoc(policyv1.PodDisruptionBudgetSpec{}, "minAvailable"), func(p *policyv1.PodDisruptionBudget) string { return intOrStringOr(p.Spec.MinAvailable, "N/A") }),
			text("Max Unavailable", fieldDoc(policyv1.PodDisruptionBudgetSpec{}, "maxUnavailable"), func(p *policyv1.PodDisruptionBudget) string { return intOrStringOr(p.Spec.MaxUnavailable, "N/A") }),
			count("Allowed Disruptions", "integer", fieldDoc(policyv1.PodDisruptionBudgetStatus{}, "disruptionsAllowed"), func(p *policyv1.PodDisruptionBudget) int64 {
				return int64(p.Status.DisruptionsAllowed)
			}),
			ageColumn[*policyv1.PodDisruptionBudget](),
		)),
		"horizontalpodautoscalers.autoscaling": printerOf(cols(nameColumn[*autoscalingv2.HorizontalPodAutoscaler](),
			text("Reference", fieldDoc(autoscalingv2.HorizontalPodAutoscalerSpec{}, "scaleTargetRef"), func(h *autoscalingv2.HorizontalPodAutoscaler) string {
				return h.Spec.ScaleTargetRef.Kind + "/" + h.Spec.ScaleTargetRef.Name
			}),
			text("Targets", fieldDoc(autoscalingv2.HorizontalPodAutoscalerSpec{}, "metrics"), hpaTargets),
			text("MinPods", fieldDoc(autoscalingv2.HorizontalPodAutoscalerSpec{}, "minReplicas"), func(h *autoscalingv2.HorizontalPodAutoscaler) string {
				if h.Spec.MinReplicas == nil {
					return "<unset>"
				}
				return strconv.Itoa(int(*h.Spec.MinReplicas))
			}),
			count("MaxPods", "string", fieldDoc(autoscalingv2.HorizontalPodAutoscalerSpec{}, "maxReplicas"), func(h *autoscalingv2.HorizontalPodAutoscaler) int64 { return int64(h.Spec.MaxReplicas) }),
			count("Replicas", "string", fieldDoc(autoscalingv2.HorizontalPodAutoscalerStatus{}, "currentReplicas"), func(h *autoscalingv2.HorizontalPodAutoscaler) int64 {
				return int64(h.Status.CurrentReplicas)
			}),
			ageColumn[*autoscalingv2.HorizontalPodAutoscaler](),
		)),
		"leases.coordination.k8s.io": printerOf(cols(nameColumn[*coordinationv1.Lease](),
			text("Holder", fieldDoc(coordinationv1.LeaseSpec{}, "holderIdentity"), func(l *coordinationv1.Lease) string { return derefOr(l.Spec.HolderIdentity, "") }),
			ageColumn[*coordinationv1.Lease](),
		)),
		"rolebindings.rbac.authorization.k8s.io": printerOf(cols(nameColumn[*rbacv1.RoleBinding](),
			text("Role", fieldDoc(rbacv1.RoleBinding{}, "roleRef"), func(b *rbacv1.RoleBinding) string { return b.RoleRef.Kind + "/" + b.RoleRef.Name }),
			ageColumn[*rbacv1.RoleBinding](),
		), subjectColumns("roleBinding", func(b *rbacv1.RoleBinding) []rbacv1.Subject { return b.Subjects })),
		"clusterrolebindings.rbac.authorization.k8s.io": printerOf(cols(nameColumn[*rbacv1.ClusterRoleBinding](),
			text("Role", fieldDoc(rbacv1.ClusterRoleBinding{}, "roleRef"), func(b *rbacv1.ClusterRoleBinding) string { return b.RoleRef.Kind + "/" + b.RoleRef.Name }),
			ageColumn[*rbacv1.ClusterRoleBinding](),
		), subjectColumns("clusterRoleBinding", func(b *rbacv1.ClusterRoleBinding) []rbacv1.Subject { return b.Subjects })),
		"storageclasses.storage.k8s.io": printerOf(cols(
			column[*storagev1.StorageClass]{def: cName, cell: func(s *storagev1.StorageClass, _ time.Time) any {
				if s.Annotations["storageclass.kubernetes.io/is-default-class"] == "true" {
					return s.Name + " (default)"
				}
				return s.Name
			}},
			text("Provisioner", fieldDoc(storagev1.StorageClass{}, "provisioner"), func(s *storagev1.StorageClass) string { return s.Provisioner }),
			text("ReclaimPolicy", fieldDoc(storagev1.StorageClass{}, "reclaimPolicy"), func(s *storagev1.StorageClass) string {
				if s.ReclaimPolicy == nil {
					return "Delete"
				}
				return string(*s.ReclaimPolicy)
			}),
			text("VolumeBindingMode", fieldDoc(storagev1.StorageClass{}, "volumeBindingMode"), func(s *storagev1.StorageClass) string {
				if s.VolumeBindingMode == nil {
					return "Immediate"
				}
				return string(*s.VolumeBindingMode)
			}),
			boolColumn("AllowVolumeExpansion", "string", fieldDoc(storagev1.StorageClass{}, "allowVolumeExpansion"), func(s *storagev1.StorageClass) bool {
				return s.AllowVolumeExpansion != nil && *s.AllowVolumeExpansion
			}),
			ageColumn[*storagev1.StorageClass](),
		)),
		"priorityclasses.scheduling.k8s.io": printerOf(cols(nameColumn[*schedulingv1.PriorityClass](),
			count("Value", "integer", fieldDoc(schedulingv1.PriorityClass{}, "value"), func(p *schedulingv1.PriorityClass) int64 { return int64(p.Value) }),
			boolColumn("Global-Default", "boolean", fieldDoc(schedulingv1.PriorityClass{}, "globalDefault"), func(p *schedulingv1.PriorityClass) bool { return p.GlobalDefault }),
			ageColumn[*schedulingv1.PriorityClass](),
			text("PreemptionPolicy", fieldDoc(schedulingv1.PriorityClass{}, "preemptionPolicy"), func(p *schedulingv1.PriorityClass) string {
				if p.PreemptionPolicy == nil {
					return ""
				}
				return string(*p.PreemptionPolicy)
			}),
		)),
	}
}

// Cells computed from more than one field.

func containerNames(cs []corev1.Container) string {
	n := make([]string, len(cs))
	for i, c := range cs {
		n[i] = c.Name
	}
	return strings.Join(n, ",")
}

func containerImages(cs []corev1.Container) string {
	n := make([]string, len(cs))
	for i, c := range cs {
		n[i] = c.Image
	}
	return strings.Join(n, ",")
}

func derefOr[T ~string](p *T, def string) string {
	if p == nil {
		return def
	}
	return string(*p)
}

func intOrStringOr(v *intstr.IntOrString, def string) string {
	if v == nil {
		return def
	}
	return v.String()
}

func volumeMode(m *corev1.PersistentVolumeMode) string { return derefOr(m, "<unset>") }

func readinessGates(p *corev1.Pod) string {
	n := len(p.Spec.ReadinessGates)
	if n == 0 {
		return "<none>"
	}
	ok := 0
	for _, g := range p.Spec.ReadinessGates {
		for _, c := range p.Status.Conditions {
			if c.Type == g.ConditionType && c.Status == corev1.ConditionTrue {
				ok++
			}
		}
	}
	return fmt.Sprintf("%d/%d", ok, n)
}

func controllerOf(c *appsv1.ControllerRevision) string {
	ref := metav1.GetControllerOf(c)
	if ref == nil {
		return "<none>"
	}
	return strings.ToLower(ref.Kind) + "." + strings.Split(ref.APIVersion, "/")[0] + "/" + ref.Name
}

func jobCompletions(j *batchv1.Job) string {
	if j.Spec.Completions == nil && j.Spec.Parallelism != nil && *j.Spec.Parallelism > 1 {
		return fmt.Sprintf("%d/1 of %d", j.Status.Succeeded, *j.Spec.Parallelism)
	}
	return fmt.Sprintf("%d/%d", j.Status.Succeeded, ptrOr(j.Spec.Completions, 1))
}

func jobDuration(j *batchv1.Job, now time.Time) string {
	switch {
	case j.Status.StartTime == nil:
		return ""
	case j.Status.CompletionTime == nil:
		return duration.HumanDuration(now.Sub(j.Status.StartTime.Time))
	default:
		return duration.HumanDuration(j.Status.CompletionTime.Sub(j.Status.StartTime.Time))
	}
}

func jobStatus(j *batchv1.Job) string {
	if j.DeletionTimestamp != nil {
		return "Terminating"
	}
	status := "Running"
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			status = "Complete"
		case batchv1.JobFailed:
			status = "Failed"
		case batchv1.JobSuspended:
			status = "Suspended"
		case batchv1.JobFailureTarget:
			status = "FailureTarget"
		case batchv1.JobSuccessCriteriaMet:
			status = "SuccessCriteriaMet"
		}
	}
	return status
}

func cronSuspend(c *batchv1.CronJob) string {
	switch {
	case c.Spec.Suspend == nil:
		return "<unset>"
	case *c.Spec.Suspend:
		return "True"
	default:
		return "False"
	}
}

func serviceExternalIP(s *corev1.Service) string {
	switch s.Spec.Type {
	case corev1.ServiceTypeExternalName:
		return s.Spec.ExternalName
	case corev1.ServiceTypeLoadBalancer:
		var ips []string
		for _, in := range s.Status.LoadBalancer.Ingress {
			if in.IP != "" {
				ips = append(ips, in.IP)
			} else if in.Hostname != "" {
				ips = append(ips, in.Hostname)
			}
		}
		ips = append(ips, s.Spec.ExternalIPs...)
		if len(ips) == 0 {
			return "<pending>"
		}
		return strings.Join(ips, ",")
	}
	if len(s.Spec.ExternalIPs) > 0 {
		return strings.Join(s.Spec.ExternalIPs, ",")
	}
	return "<none>"
}

func servicePorts(s *corev1.Service) string {
	var ports []string
	for _, p := range s.Spec.Ports {
		pp := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		if p.NodePort > 0 {
			pp = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
		}
		ports = append(ports, pp)
	}
	if len(ports) == 0 {
		return "<none>"
	}
	return strings.Join(ports, ",")
}

// firstThree joins up to three items and counts the rest, as kubectl
// shows endpoints.
func firstThree(items []string, none string) string {
	switch {
	case len(items) > 3:
		return strings.Join(items[:3], ",") + fmt.Sprintf(" + %d more...", len(items)-3)
	case len(items) > 0:
		return strings.Join(items, ",")
	}
	return none
}

func endpointsAddresses(e *corev1.Endpoints) string {
	var eps []string
	for _, ss := range e.Subsets {
		for _, a := range ss.Addresses {
			if len(ss.Ports) == 0 {
				eps = append(eps, a.IP)
			}
			for _, p := range ss.Ports {
				eps = append(eps, fmt.Sprintf("%s:%d", a.IP, p.Port))
			}
		}
	}
	return firstThree(eps, "<none>")
}

func sliceTextPorts(e *discoveryv1.EndpointSlice) string {
	var ports []string
	for _, p := range e.Ports {
		if p.Port != nil {
			ports = append(ports, strconv.Itoa(int(*p.Port)))
		}
	}
	if len(ports) == 0 {
		return "<unset>"
	}
	return strings.Join(ports, ",")
}

func sliceAddresses(e *discoveryv1.EndpointSlice) string {
	var addrs []string
	for _, ep := range e.Endpoints {
		addrs = append(addrs, ep.Addresses...)
	}
	return firstThree(addrs, "<unset>")
}

func nodeStatus(n *corev1.Node) string {
	ready := "Unknown"
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				ready = "Ready"
			} else {
				ready = "NotReady"
			}
		}
	}
	if n.Spec.Unschedulable {
		return ready + ",SchedulingDisabled"
	}
	return ready
}

func nodeRoles(n *corev1.Node) string {
	var roles []string
	for k, v := range n.Labels {
		switch {
		case strings.HasPrefix(k, "node-role.kubernetes.io/"):
			if r := strings.TrimPrefix(k, "node-role.kubernetes.io/"); r != "" {
				roles = append(roles, r)
			}
		case k == "kubernetes.io/role" && v != "":
			roles = append(roles, v)
		}
	}
	if len(roles) == 0 {
		return "<none>"
	}
	sort.Strings(roles)
	return strings.Join(roles, ",")
}

func nodeAddress(n *corev1.Node, t corev1.NodeAddressType) string {
	for _, a := range n.Status.Addresses {
		if a.Type == t {
			return a.Address
		}
	}
	return "<none>"
}

// eventTime is an event's first or last timestamp, falling back to its
// eventTime (events.k8s.io events), as an age.
func eventTime(t metav1.Time, e *corev1.Event, now time.Time) string {
	if t.IsZero() {
		t = metav1.NewTime(e.EventTime.Time)
	}
	return since(&t, now)
}

func eventSource(e *corev1.Event) string {
	if e.Source.Host != "" {
		return e.Source.Component + ", " + e.Source.Host
	}
	return e.Source.Component
}

// subjectColumns are the wide USERS, GROUPS and SERVICEACCOUNTS columns of
// a role binding kind (what is "roleBinding" or "clusterRoleBinding").
func subjectColumns[T any](what string, subjects func(T) []rbacv1.Subject) []column[T] {
	of := func(kind string) func(T) string {
		return func(b T) string {
			var out []string
			for _, s := range subjects(b) {
				if s.Kind != kind {
					continue
				}
				if kind == rbacv1.ServiceAccountKind {
					out = append(out, s.Namespace+"/"+s.Name)
				} else {
					out = append(out, s.Name)
				}
			}
			return strings.Join(out, ", ")
		}
	}
	return cols(
		wide(text("Users", "Users in the "+what, of(rbacv1.UserKind))),
		wide(text("Groups", "Groups in the "+what, of(rbacv1.GroupKind))),
		wide(text("ServiceAccounts", "ServiceAccounts in the "+what, of(rbacv1.ServiceAccountKind))),
	)
}

func orUnknown(s string) string {
	if s == "" {
		return "<unknown>"
	}
	return s
}

func accessModes(ms []corev1.PersistentVolumeAccessMode) string {
	var out []string
	for _, m := range ms {
		switch m {
		case corev1.ReadWriteOnce:
			out = append(out, "RWO")
		case corev1.ReadOnlyMany:
			out = append(out, "ROX")
		case corev1.ReadWriteMany:
			out = append(out, "RWX")
		case corev1.ReadWriteOncePod:
			out = append(out, "RWOP")
		}
	}
	return strings.Join(out, ",")
}

func hpaTargets(h *autoscalingv2.HorizontalPodAutoscaler) string {
	var parts []string
	for i, m := range h.Spec.Metrics {
		if m.Type != autoscalingv2.ResourceMetricSourceType || m.Resource == nil {
			parts = append(parts, "<unknown>/<unknown>")
			continue
		}
		cur := "<unknown>"
		if i < len(h.Status.CurrentMetrics) && h.Status.CurrentMetrics[i].Resource != nil {
			cm := h.Status.CurrentMetrics[i].Resource.Current
			if cm.AverageUtilization != nil {
				cur = fmt.Sprintf("%d%%", *cm.AverageUtilization)
			} else if cm.AverageValue != nil {
				cur = cm.AverageValue.String()
			}
		}
		tgt := "<unset>"
		if m.Resource.Target.AverageUtilization != nil {
			tgt = fmt.Sprintf("%d%%", *m.Resource.Target.AverageUtilization)
		} else if m.Resource.Target.AverageValue != nil {
			tgt = m.Resource.Target.AverageValue.String()
		}
		parts = append(parts, fmt.Sprintf("%s: %s/%s", m.Resource.Name, cur, tgt))
	}
	if len(parts) == 0 {
		return "<none>"
	}
	return strings.Join(parts, ", ")
}

// tableKey names a printer: "pods", "deployments.apps".
func tableKey(k *store.Kind) string {
	if k.GVK.Group == "" {
		return k.Resource
	}
	return k.Resource + "." + k.GVK.Group
}

// table renders objects of kind k as a server-side Table, as kubectl get
// asks for with Accept: application/json;as=Table;v=v1;g=meta.k8s.io.
// Kinds without a printer get NAME and CREATED AT.
func (s *Server) table(k *store.Kind, objs []runtime.Object, q url.Values, now time.Time) (*metav1.Table, error) {
	p, ok := s.printers[tableKey(k)]
	if !ok {
		p = printer{
			cols: []metav1.TableColumnDefinition{cName, col("Created At", "date", 0, metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"])},
			row: func(o runtime.Object, _ time.Time) []any {
				acc, _ := meta.Accessor(o)
				return []any{acc.GetName(), acc.GetCreationTimestamp().UTC().Format(time.RFC3339)}
			},
		}
	}
	include := metav1.IncludeMetadata
	if v := q.Get("includeObject"); v != "" {
		include = metav1.IncludeObjectPolicy(v)
		switch include {
		case metav1.IncludeNone, metav1.IncludeMetadata, metav1.IncludeObject:
		default:
			return nil, apierrors.NewBadRequest(fmt.Sprintf("includeObject must be None, Metadata or Object, got %q", v))
		}
	}
	t := &metav1.Table{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "Table"}}
	if q.Get("noHeaders") == "" {
		t.ColumnDefinitions = p.cols
	}
	t.Rows = make([]metav1.TableRow, 0, len(objs))
	for _, o := range objs {
		row := metav1.TableRow{Cells: p.row(o, now)}
		switch include {
		case metav1.IncludeMetadata:
			row.Object = runtime.RawExtension{Object: partialMetadata(o)}
		case metav1.IncludeObject:
			if k.GVK == hpaV1GVK {
				v1, err := hpaV1Object(o) // rows are printed from the stored v2 form
				if err != nil {
					return nil, err
				}
				o = v1
			}
			wk, err := s.codecs.withKind(o)
			if err != nil {
				return nil, err
			}
			row.Object = runtime.RawExtension{Object: wk}
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}
