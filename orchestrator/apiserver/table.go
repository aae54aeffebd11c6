package apiserver

import (
	"fmt"
	"net/url"
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

func containersImages(cs []corev1.Container) (string, string) {
	var n, i []string
	for _, c := range cs {
		n = append(n, c.Name)
		i = append(i, c.Image)
	}
	return strings.Join(n, ","), strings.Join(i, ",")
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

// podStatus computes the STATUS column of kubectl get pods.
func podStatus(p *corev1.Pod) (reason string, ready, total, restarts int, lastRestart *metav1.Time) {
	reason = string(p.Status.Phase)
	if p.Status.Reason != "" {
		reason = p.Status.Reason
	}
	total = len(p.Spec.Containers)
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonSchedulingGated {
			reason = corev1.PodReasonSchedulingGated
		}
	}
	initializing := false
	for i, c := range p.Status.InitContainerStatuses {
		restarts += int(c.RestartCount)
		if c.LastTerminationState.Terminated != nil {
			t := c.LastTerminationState.Terminated.FinishedAt
			if lastRestart == nil || t.After(lastRestart.Time) {
				lastRestart = &t
			}
		}
		switch {
		case c.State.Terminated != nil && c.State.Terminated.ExitCode == 0:
			continue
		case c.State.Terminated != nil:
			if c.State.Terminated.Reason == "" {
				if c.State.Terminated.Signal != 0 {
					reason = fmt.Sprintf("Init:Signal:%d", c.State.Terminated.Signal)
				} else {
					reason = fmt.Sprintf("Init:ExitCode:%d", c.State.Terminated.ExitCode)
				}
			} else {
				reason = "Init:" + c.State.Terminated.Reason
			}
			initializing = true
		case c.State.Waiting != nil && c.State.Waiting.Reason != "" && c.State.Waiting.Reason != "PodInitializing":
			reason = "Init:" + c.State.Waiting.Reason
			initializing = true
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(p.Spec.InitContainers))
			initializing = true
		}
		break
	}
	if !initializing {
		restarts = 0
		hasRunning := false
		for i := len(p.Status.ContainerStatuses) - 1; i >= 0; i-- {
			c := p.Status.ContainerStatuses[i]
			restarts += int(c.RestartCount)
			if c.LastTerminationState.Terminated != nil {
				t := c.LastTerminationState.Terminated.FinishedAt
				if lastRestart == nil || t.After(lastRestart.Time) {
					lastRestart = &t
				}
			}
			switch {
			case c.State.Waiting != nil && c.State.Waiting.Reason != "":
				reason = c.State.Waiting.Reason
			case c.State.Terminated != nil && c.State.Terminated.Reason != "":
				reason = c.State.Terminated.Reason
			case c.State.Terminated != nil && c.State.Terminated.Signal != 0:
				reason = fmt.Sprintf("Signal:%d", c.State.Terminated.Signal)
			case c.State.Terminated != nil:
				reason = fmt.Sprintf("ExitCode:%d", c.State.Terminated.ExitCode)
			case c.Ready && c.State.Running != nil:
				hasRunning = true
				ready++
			}
		}
		if reason == "Completed" && hasRunning {
			reason = "Running"
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue {
					reason = "NotReady"
				}
			}
		}
	}
	if p.DeletionTimestamp != nil {
		if p.Status.Reason == "NodeLost" {
			reason = "Unknown"
		} else {
			reason = "Terminating"
		}
	}
	if reason == "" {
		reason = "Pending"
	}
	return reason, ready, total, restarts, lastRestart
}

func printers() map[string]printer {
	return map[string]printer{
		"pods": {
			cols: []metav1.TableColumnDefinition{cName,
				col("Ready", "string", 0, "The aggregate readiness state of this pod for accepting traffic."),
				col("Status", "string", 0, "The aggregate status of the containers in this pod."),
				col("Restarts", "string", 0, "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
				cAge,
				col("IP", "string", 1, corev1.PodStatus{}.SwaggerDoc()["podIP"]),
				col("Node", "string", 1, corev1.PodSpec{}.SwaggerDoc()["nodeName"]),
				col("Nominated Node", "string", 1, corev1.PodStatus{}.SwaggerDoc()["nominatedNodeName"]),
				col("Readiness Gates", "string", 1, corev1.PodSpec{}.SwaggerDoc()["readinessGates"]),
			},
			row: func(o runtime.Object, now time.Time) []any {
				p := o.(*corev1.Pod)
				reason, ready, total, restarts, last := podStatus(p)
				rs := strconv.Itoa(restarts)
				if restarts > 0 && last != nil {
					rs = fmt.Sprintf("%d (%s ago)", restarts, duration.HumanDuration(now.Sub(last.Time)))
				}
				gates := "<none>"
				if n := len(p.Spec.ReadinessGates); n > 0 {
					ok := 0
					for _, g := range p.Spec.ReadinessGates {
						for _, c := range p.Status.Conditions {
							if c.Type == g.ConditionType && c.Status == corev1.ConditionTrue {
								ok++
							}
						}
					}
					gates = fmt.Sprintf("%d/%d", ok, n)
				}
				return []any{p.Name, fmt.Sprintf("%d/%d", ready, total), reason, rs, age(p, now),
					orNone(p.Status.PodIP), orNone(p.Spec.NodeName), orNone(p.Status.NominatedNodeName), gates}
			},
		},
		"deployments.apps": {
			cols: []metav1.TableColumnDefinition{cName,
				col("Ready", "string", 0, "Number of the pod with ready state"),
				col("Up-to-date", "string", 0, appsv1.DeploymentStatus{}.SwaggerDoc()["updatedReplicas"]),
				col("Available", "string", 0, appsv1.DeploymentStatus{}.SwaggerDoc()["availableReplicas"]),
				cAge,
				col("Containers", "string", 1, "Names of each container in the template."),
				col("Images", "string", 1, "Images referenced by each container in the template."),
				col("Selector", "string", 1, appsv1.DeploymentSpec{}.SwaggerDoc()["selector"]),
			},
			row: func(o runtime.Object, now time.Time) []any {
				d := o.(*appsv1.Deployment)
				n, i := containersImages(d.Spec.Template.Spec.Containers)
				return []any{d.Name, fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, ptrOr(d.Spec.Replicas, 1)),
					int64(d.Status.UpdatedReplicas), int64(d.Status.AvailableReplicas), age(d, now), n, i, selectorString(d.Spec.Selector)}
			},
		},
		"replicasets.apps": {
			cols: []metav1.TableColumnDefinition{cName,
				col("Desired", "integer", 0, appsv1.ReplicaSetSpec{}.SwaggerDoc()["replicas"]),
				col("Current", "integer", 0, appsv1.ReplicaSetStatus{}.SwaggerDoc()["replicas"]),
				col("Ready", "integer", 0, appsv1.ReplicaSetStatus{}.SwaggerDoc()["readyReplicas"]),
				cAge,
				col("Containers", "string", 1, "Names of each container in the template."),
				col("Images", "string", 1, "Images referenced by each container in the template."),
				col("Selector", "string", 1, appsv1.ReplicaSetSpec{}.SwaggerDoc()["selector"]),
			},
			row: func(o runtime.Object, now time.Time) []any {
				r := o.(*appsv1.ReplicaSet)
				n, i := containersImages(r.Spec.Template.Spec.Containers)
				return []any{r.Name, int64(ptrOr(r.Spec.Replicas, 1)), int64(r.Status.Replicas), int64(r.Status.ReadyReplicas), age(r, now), n, i, selectorString(r.Spec.Selector)}
			},
		},
		"statefulsets.apps": {
			cols: []metav1.TableColumnDefinition{cName,
				col("Ready", "string", 0, "Number of the pod with ready state"),
				cAge,
				col("Containers", "string", 1, "Names of each container in the template."),
				col("Images", "string", 1, "Images referenced by each container in the template."),
			},
			row: func(o runtime.Object, now time.Time) []any {
				s := o.(*appsv1.StatefulSet)
				n, i := containersImages(s.Spec.Template.Spec.Containers)
				return []any{s.Name, fmt.Sprintf("%d/%d", s.Status.ReadyReplicas, ptrOr(s.Spec.Replicas, 1)), age(s, now), n, i}
			},
		},
		"daemonsets.apps": {
			cols: []metav1.TableColumnDefinition{cName,
				col("Desired", "integer", 0, appsv1.DaemonSetStatus{}.SwaggerDoc()["desiredNumberScheduled"]),
				col("Current", "integer", 0, appsv1.DaemonSetStatus{}.SwaggerDoc()["currentNumberScheduled"]),
				col("Ready", "integer", 0, appsv1.DaemonSetStatus{}.SwaggerDoc()["numberReady"]),
				col("Up-to-date", "integer", 0, appsv1.DaemonSetStatus{}.SwaggerDoc()["updatedNumberScheduled"]),
				col("Available", "integer", 0, appsv1.DaemonSetStatus{}.SwaggerDoc()["numberAvailable"]),
				col("Node Selector", "string", 0, corev1.PodSpec{}.SwaggerDoc()["nodeSelector"]),
				cAge,
				col("Containers", "string", 1, "Names of each container in the template."),
				col("Images", "string", 1, "Images referenced by each container in the template."),
				col("Selector", "string", 1, appsv1.DaemonSetSpec{}.SwaggerDoc()["selector"]),
			},
			row: func(o runtime.Object, now time.Time) []any {
				d := o.(*appsv1.DaemonSet)
				n, i := containersImages(d.Spec.Template.Spec.Containers)
				return []any{d.Name, int64(d.Status.DesiredNumberScheduled), int64(d.Status.CurrentNumberScheduled), int64(d.Status.NumberReady),
					int64(d.Status.UpdatedNumberScheduled), int64(d.Status.NumberAvailable), mapSelector(d.Spec.Template.Spec.NodeSelector), age(d, now), n, i, selectorString(d.Spec.Selector)}
			},
		},
		"controllerrevisions.apps": {
			cols: []metav1.TableColumnDefinition{cName,
				col("Controller", "string", 0, "Controller of the object"),
				col("Revision", "integer", 0, appsv1.ControllerRevision{}.SwaggerDoc()["revision"]), cAge},
			row: func(o runtime.Object, now time.Time) []any {
				c := o.(*appsv1.ControllerRevision)
				ctl := "<none>"
				if ref := metav1.GetControllerOf(c); ref != nil {
					ctl = strings.ToLower(ref.Kind) + "." + strings.Split(ref.APIVersion, "/")[0] + "/" + ref.Name
				}
				return []any{c.Name, ctl, c.Revision, age(c, now)}
			},
		},
		"jobs.batch": {
			cols: []metav1.TableColumnDefinition{cName,
				col("Status", "string", 0, "Status of the job."),
				col("Completions", "string", 0, batchv1.JobStatus{}.SwaggerDoc()["succeeded"]),
				col("Duration", "string", 0, "Time required to complete the job."),
				cAge,
				col("Containers", "string", 1, "Names of each container in the template."),
				col("Images", "string", 1, "Images referenced by each container in the template."),
				col("Selector", "string", 1, batchv1.JobSpec{}.SwaggerDoc()["selector"]),
			},
			row: func(o runtime.Object, now time.Time) []any {
				j := o.(*batchv1.Job)
				completions := fmt.Sprintf("%d/%d", j.Status.Succeeded, ptrOr(j.Spec.Completions, 1))
				if j.Spec.Completions == nil && j.Spec.Parallelism != nil && *j.Spec.Parallelism > 1 {
					completions = fmt.Sprintf("%d/1 of %d", j.Status.Succeeded, *j.Spec.Parallelism)
				}
				dur := ""
				switch {
				case j.Status.StartTime == nil:
				case j.Status.CompletionTime == nil:
					dur = duration.HumanDuration(now.Sub(j.Status.StartTime.Time))
				default:
					dur = duration.HumanDuration(j.Status.CompletionTime.Sub(j.Status.StartTime.Time))
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
				if j.DeletionTimestamp != nil {
					status = "Terminating"
				}
				n, i := containersImages(j.Spec.Template.Spec.Containers)
				return []any{j.Name, status, completions, dur, age(j, now), n, i, selectorString(j.Spec.Selector)}
			},
		},
		"cronjobs.batch": {
			cols: []metav1.TableColumnDefinition{cName,
				col("Schedule", "string", 0, batchv1.CronJobSpec{}.SwaggerDoc()["schedule"]),
				col("Timezone", "string", 0, batchv1.CronJobSpec{}.SwaggerDoc()["timeZone"]),
				col("Suspend", "boolean", 0, batchv1.CronJobSpec{}.SwaggerDoc()["suspend"]),
				col("Active", "integer", 0, batchv1.CronJobStatus{}.SwaggerDoc()["active"]),
				col("Last Schedule", "string", 0, batchv1.CronJobStatus{}.SwaggerDoc()["lastScheduleTime"]),
				cAge,
				col("Containers", "string", 1, "Names of each container in the template."),
				col("Images", "string", 1, "Images referenced by each container in the template."),
				col("Selector", "string", 1, batchv1.JobSpec{}.SwaggerDoc()["selector"]),
			},
			row: func(o runtime.Object, now time.Time) []any {
				c := o.(*batchv1.CronJob)
				tz := "<none>"
				if c.Spec.TimeZone != nil {
					tz = *c.Spec.TimeZone
				}
				suspend := "<unset>"
				if c.Spec.Suspend != nil {
					suspend = "False"
					if *c.Spec.Suspend {
						suspend = "True"
					}
				}
				n, i := containersImages(c.Spec.JobTemplate.Spec.Template.Spec.Containers)
				return []any{c.Name, c.Spec.Schedule, tz, suspend, int64(len(c.Status.Active)), since(c.Status.LastScheduleTime, now), age(c, now), n, i, selectorString(c.Spec.JobTemplate.Spec.Selector)}
			},
		},
		"services": {
			cols: []metav1.TableColumnDefinition{cName,
				col("Type", "string", 0, corev1.ServiceSpec{}.SwaggerDoc()["type"]),
				col("Cluster-IP", "string", 0, corev1.ServiceSpec{}.SwaggerDoc()["clusterIP"]),
				col("External-IP", "string", 0, corev1.ServiceSpec{}.SwaggerDoc()["externalIPs"]),
				col("Port(s)", "string", 0, corev1.ServiceSpec{}.SwaggerDoc()["ports"]),
				cAge,
				col("Selector", "string", 1, corev1.ServiceSpec{}.SwaggerDoc()["selector"]),
			},
			row: func(o runtime.Object, now time.Time) []any {
				s := o.(*corev1.Service)
				ext := "<none>"
				switch s.Spec.Type {
				case corev1.ServiceTypeExternalName:
					ext = s.Spec.ExternalName
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
					ext = "<pending>"
					if len(ips) > 0 {
						ext = strings.Join(ips, ",")
					}
				default:
					if len(s.Spec.ExternalIPs) > 0 {
						ext = strings.Join(s.Spec.ExternalIPs, ",")
					}
				}
				var ports []string
				for _, p := range s.Spec.Ports {
					pp := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
					if p.NodePort > 0 {
						pp = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
					}
					ports = append(ports, pp)
				}
				pstr := "<none>"
				if len(ports) > 0 {
					pstr = strings.Join(ports, ",")
				}
				cip := s.Spec.ClusterIP
				if cip == "" {
					cip = "<none>"
				}
				return []any{s.Name, string(s.Spec.Type), cip, ext, pstr, age(s, now), mapSelector(s.Spec.Selector)}
			},
		},
		"endpoints": {
			cols: []metav1.TableColumnDefinition{cName, col("Endpoints", "string", 0, corev1.Endpoints{}.SwaggerDoc()["subsets"]), cAge},
			row: func(o runtime.Object, now time.Time) []any {
				e := o.(*corev1.Endpoints)
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
				s := "<none>"
				if len(eps) > 3 {
					s = strings.Join(eps[:3], ",") + fmt.Sprintf(" + %d more...", len(eps)-3)
				} else if len(eps) > 0 {
					s = strings.Join(eps, ",")
				}
				return []any{e.Name, s, age(e, now)}
			},
		},
		"endpointslices.discovery.k8s.io": {
			cols: []metav1.TableColumnDefinition{cName,
				col("AddressType", "string", 0, discoveryv1.EndpointSlice{}.SwaggerDoc()["addressType"]),
				col("Ports", "string", 0, discoveryv1.EndpointSlice{}.SwaggerDoc()["ports"]),
				col("Endpoints", "string", 0, discoveryv1.EndpointSlice{}.SwaggerDoc()["endpoints"]), cAge},
			row: func(o runtime.Object, now time.Time) []any {
				e := o.(*discoveryv1.EndpointSlice)
				var ports, addrs []string
				for _, p := range e.Ports {
					if p.Port != nil {
						ports = append(ports, strconv.Itoa(int(*p.Port)))
					}
				}
				for _, ep := range e.Endpoints {
					addrs = append(addrs, ep.Addresses...)
				}
				ps, as := "<unset>", "<unset>"
				if len(ports) > 0 {
					ps = strings.Join(ports, ",")
				}
				if len(addrs) > 3 {
					as = strings.Join(addrs[:3], ",") + fmt.Sprintf(" + %d more...", len(addrs)-3)
				} else if len(addrs) > 0 {
					as = strings.Join(addrs, ",")
				}
				return []any{e.Name, string(e.AddressType), ps, as, age(e, now)}
			},
		},
		"nodes": {
			cols: []metav1.TableColumnDefinition{cName,
				col("Status", "string", 0, "The status of the node"),
				col("Roles", "string", 0, "The roles of the node"),
				cAge,
				col("Version", "string", 0, corev1.NodeSystemInfo{}.SwaggerDoc()["kubeletVersion"]),
				col("Internal-IP", "string", 1, corev1.NodeStatus{}.SwaggerDoc()["addresses"]),
				col("External-IP", "string", 1, corev1.NodeStatus{}.SwaggerDoc()["addresses"]),
				col("OS-Image", "string", 1, corev1.NodeSystemInfo{}.SwaggerDoc()["osImage"]),
				col("Kernel-Version", "string", 1, corev1.NodeSystemInfo{}.SwaggerDoc()["kernelVersion"]),
				col("Container-Runtime", "string", 1, corev1.NodeSystemInfo{}.SwaggerDoc()["containerRuntimeVersion"]),
			},
			row: func(o runtime.Object, now time.Time) []any {
				n := o.(*corev1.Node)
				var st []string
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
				st = append(st, ready)
				if n.Spec.Unschedulable {
					st = append(st, "SchedulingDisabled")
				}
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
				sort.Strings(roles)
				rs := "<none>"
				if len(roles) > 0 {
					rs = strings.Join(roles, ",")
				}
				in, ex := "<none>", "<none>"
				for _, a := range n.Status.Addresses {
					if a.Type == corev1.NodeInternalIP && in == "<none>" {
						in = a.Address
					}
					if a.Type == corev1.NodeExternalIP && ex == "<none>" {
						ex = a.Address
					}
				}
				si := n.Status.NodeInfo
				return []any{n.Name, strings.Join(st, ","), rs, age(n, now), si.KubeletVersion, in, ex,
					orUnknown(si.OSImage), orUnknown(si.KernelVersion), orUnknown(si.ContainerRuntimeVersion)}
			},
		},
		"namespaces": {
			cols: []metav1.TableColumnDefinition{cName, col("Status", "string", 0, "The status of the namespace"), cAge},
			row: func(o runtime.Object, now time.Time) []any {
				n := o.(*corev1.Namespace)
				return []any{n.Name, string(n.Status.Phase), age(n, now)}
			},
		},
		"configmaps": {
			cols: []metav1.TableColumnDefinition{cName, col("Data", "string", 0, corev1.ConfigMap{}.SwaggerDoc()["data"]), cAge},
			row: func(o runtime.Object, now time.Time) []any {
				c := o.(*corev1.ConfigMap)
				return []any{c.Name, int64(len(c.Data) + len(c.BinaryData)), age(c, now)}
			},
		},
		"secrets": {
			cols: []metav1.TableColumnDefinition{cName, col("Type", "string", 0, corev1.Secret{}.SwaggerDoc()["type"]),
				col("Data", "string", 0, corev1.Secret{}.SwaggerDoc()["data"]), cAge},
			row: func(o runtime.Object, now time.Time) []any {
				s := o.(*corev1.Secret)
				return []any{s.Name, string(s.Type), int64(len(s.Data)), age(s, now)}
			},
		},
		"serviceaccounts": {
			cols: []metav1.TableColumnDefinition{cName, col("Secrets", "string", 0, corev1.ServiceAccount{}.SwaggerDoc()["secrets"]), cAge},
			row: func(o runtime.Object, now time.Time) []any {
				s := o.(*corev1.ServiceAccount)
				return []any{s.Name, int64(len(s.Secrets)), age(s, now)}
			},
		},
		"events": {
			cols: []metav1.TableColumnDefinition{
				col("Last Seen", "string", 0, corev1.Event{}.SwaggerDoc()["lastTimestamp"]),
				col("Type", "string", 0, corev1.Event{}.SwaggerDoc()["type"]),
				col("Reason", "string", 0, corev1.Event{}.SwaggerDoc()["reason"]),
				col("Object", "string", 0, corev1.Event{}.SwaggerDoc()["involvedObject"]),
				col("Subobject", "string", 1, corev1.ObjectReference{}.SwaggerDoc()["fieldPath"]),
				col("Source", "string", 1, corev1.Event{}.SwaggerDoc()["source"]),
				col("Message", "string", 0, corev1.Event{}.SwaggerDoc()["message"]),
				col("First Seen", "string", 1, corev1.Event{}.SwaggerDoc()["firstTimestamp"]),
				col("Count", "string", 1, corev1.Event{}.SwaggerDoc()["count"]),
				func() metav1.TableColumnDefinition { c := cName; c.Priority = 1; return c }(),
			},
			row: func(o runtime.Object, now time.Time) []any {
				e := o.(*corev1.Event)
				last := e.LastTimestamp
				if last.IsZero() {
					last = metav1.NewTime(e.EventTime.Time)
				}
				first := e.FirstTimestamp
				if first.IsZero() {
					first = metav1.NewTime(e.EventTime.Time)
				}
				obj := strings.ToLower(e.InvolvedObject.Kind) + "/" + e.InvolvedObject.Name
				src := e.Source.Component
				if e.Source.Host != "" {
					src += ", " + e.Source.Host
				}
				return []any{since(&last, now), e.Type, e.Reason, obj, e.InvolvedObject.FieldPath, src, strings.TrimSpace(e.Message),
					since(&first, now), int64(e.Count), e.Name}
			},
		},
		"persistentvolumes": {
			cols: []metav1.TableColumnDefinition{cName,
				col("Capacity", "string", 0, corev1.PersistentVolumeSpec{}.SwaggerDoc()["capacity"]),
				col("Access Modes", "string", 0, corev1.PersistentVolumeSpec{}.SwaggerDoc()["accessModes"]),
				col("Reclaim Policy", "string", 0, corev1.PersistentVolumeSpec{}.SwaggerDoc()["persistentVolumeReclaimPolicy"]),
				col("Status", "string", 0, corev1.PersistentVolumeStatus{}.SwaggerDoc()["phase"]),
				col("Claim", "string", 0, corev1.PersistentVolumeSpec{}.SwaggerDoc()["claimRef"]),
				col("StorageClass", "string", 0, "StorageClass of the pv"),
				col("VolumeAttributesClass", "string", 0, corev1.PersistentVolumeSpec{}.SwaggerDoc()["volumeAttributesClassName"]),
				col("Reason", "string", 0, corev1.PersistentVolumeStatus{}.SwaggerDoc()["reason"]),
				cAge,
				col("VolumeMode", "string", 1, corev1.PersistentVolumeSpec{}.SwaggerDoc()["volumeMode"]),
			},
			row: func(o runtime.Object, now time.Time) []any {
				p := o.(*corev1.PersistentVolume)
				claim := ""
				if p.Spec.ClaimRef != nil {
					claim = p.Spec.ClaimRef.Namespace + "/" + p.Spec.ClaimRef.Name
				}
				c := p.Spec.Capacity[corev1.ResourceStorage]
				vm := "<unset>"
				if p.Spec.VolumeMode != nil {
					vm = string(*p.Spec.VolumeMode)
				}
				vac := "<unset>"
				if p.Spec.VolumeAttributesClassName != nil {
					vac = *p.Spec.VolumeAttributesClassName
				}
				return []any{p.Name, c.String(), accessModes(p.Spec.AccessModes), string(p.Spec.PersistentVolumeReclaimPolicy),
					string(p.Status.Phase), claim, p.Spec.StorageClassName, vac, p.Status.Reason, age(p, now), vm}
			},
		},
		"persistentvolumeclaims": {
			cols: []metav1.TableColumnDefinition{cName,
				col("Status", "string", 0, corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["phase"]),
				col("Volume", "string", 0, corev1.PersistentVolumeClaimSpec{}.SwaggerDoc()["volumeName"]),
				col("Capacity", "string", 0, corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["capacity"]),
				col("Access Modes", "string", 0, corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["accessModes"]),
				col("StorageClass", "string", 0, "StorageClass of the pvc"),
				col("VolumeAttributesClass", "string", 0, corev1.PersistentVolumeClaimSpec{}.SwaggerDoc()["volumeAttributesClassName"]),
				cAge,
				col("VolumeMode", "string", 1, corev1.PersistentVolumeClaimSpec{}.SwaggerDoc()["volumeMode"]),
			},
			row: func(o runtime.Object, now time.Time) []any {
				p := o.(*corev1.PersistentVolumeClaim)
				capacity, modes := "", ""
				if p.Spec.VolumeName != "" {
					q := p.Status.Capacity[corev1.ResourceStorage]
					capacity = q.String()
					modes = accessModes(p.Status.AccessModes)
				}
				sc := ""
				if p.Spec.StorageClassName != nil {
					sc = *p.Spec.StorageClassName
				}
				vm := "<unset>"
				if p.Spec.VolumeMode != nil {
					vm = string(*p.Spec.VolumeMode)
				}
				vac := "<unset>"
				if p.Spec.VolumeAttributesClassName != nil {
					vac = *p.Spec.VolumeAttributesClassName
				}
				return []any{p.Name, string(p.Status.Phase), p.Spec.VolumeName, capacity, modes, sc, vac, age(p, now), vm}
			},
		},
		"poddisruptionbudgets.policy": {
			cols: []metav1.TableColumnDefinition{cName,
				col("Min Available", "string", 0, policyv1.PodDisruptionBudgetSpec{}.SwaggerDoc()["minAvailable"]),
				col("Max Unavailable", "string", 0, policyv1.PodDisruptionBudgetSpec{}.SwaggerDoc()["maxUnavailable"]),
				col("Allowed Disruptions", "integer", 0, policyv1.PodDisruptionBudgetStatus{}.SwaggerDoc()["disruptionsAllowed"]),
				cAge,
			},
			row: func(o runtime.Object, now time.Time) []any {
				p := o.(*policyv1.PodDisruptionBudget)
				minA, maxU := "N/A", "N/A"
				if p.Spec.MinAvailable != nil {
					minA = p.Spec.MinAvailable.String()
				}
				if p.Spec.MaxUnavailable != nil {
					maxU = p.Spec.MaxUnavailable.String()
				}
				return []any{p.Name, minA, maxU, int64(p.Status.DisruptionsAllowed), age(p, now)}
			},
		},
		"horizontalpodautoscalers.autoscaling": {
			cols: []metav1.TableColumnDefinition{cName,
				col("Reference", "string", 0, autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["scaleTargetRef"]),
				col("Targets", "string", 0, autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["metrics"]),
				col("MinPods", "string", 0, autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["minReplicas"]),
				col("MaxPods", "string", 0, autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["maxReplicas"]),
				col("Replicas", "string", 0, autoscalingv2.HorizontalPodAutoscalerStatus{}.SwaggerDoc()["currentReplicas"]),
				cAge,
			},
			row: func(o runtime.Object, now time.Time) []any {
				h := o.(*autoscalingv2.HorizontalPodAutoscaler)
				ref := h.Spec.ScaleTargetRef.Kind + "/" + h.Spec.ScaleTargetRef.Name
				minP := "<unset>"
				if h.Spec.MinReplicas != nil {
					minP = strconv.Itoa(int(*h.Spec.MinReplicas))
				}
				return []any{h.Name, ref, hpaTargets(h), minP, int64(h.Spec.MaxReplicas), int64(h.Status.CurrentReplicas), age(h, now)}
			},
		},
		"leases.coordination.k8s.io": {
			cols: []metav1.TableColumnDefinition{cName, col("Holder", "string", 0, coordinationv1.LeaseSpec{}.SwaggerDoc()["holderIdentity"]), cAge},
			row: func(o runtime.Object, now time.Time) []any {
				l := o.(*coordinationv1.Lease)
				h := ""
				if l.Spec.HolderIdentity != nil {
					h = *l.Spec.HolderIdentity
				}
				return []any{l.Name, h, age(l, now)}
			},
		},
		"rolebindings.rbac.authorization.k8s.io": {
			cols: []metav1.TableColumnDefinition{cName, col("Role", "string", 0, rbacv1.RoleBinding{}.SwaggerDoc()["roleRef"]), cAge,
				col("Users", "string", 1, "Users in the roleBinding"), col("Groups", "string", 1, "Groups in the roleBinding"),
				col("ServiceAccounts", "string", 1, "ServiceAccounts in the roleBinding")},
			row: func(o runtime.Object, now time.Time) []any {
				b := o.(*rbacv1.RoleBinding)
				u, g, sa := subjects(b.Subjects)
				return []any{b.Name, b.RoleRef.Kind + "/" + b.RoleRef.Name, age(b, now), u, g, sa}
			},
		},
		"clusterrolebindings.rbac.authorization.k8s.io": {
			cols: []metav1.TableColumnDefinition{cName, col("Role", "string", 0, rbacv1.ClusterRoleBinding{}.SwaggerDoc()["roleRef"]), cAge,
				col("Users", "string", 1, "Users in the clusterRoleBinding"), col("Groups", "string", 1, "Groups in the clusterRoleBinding"),
				col("ServiceAccounts", "string", 1, "ServiceAccounts in the clusterRoleBinding")},
			row: func(o runtime.Object, now time.Time) []any {
				b := o.(*rbacv1.ClusterRoleBinding)
				u, g, sa := subjects(b.Subjects)
				return []any{b.Name, b.RoleRef.Kind + "/" + b.RoleRef.Name, age(b, now), u, g, sa}
			},
		},
		"storageclasses.storage.k8s.io": {
			cols: []metav1.TableColumnDefinition{cName,
				col("Provisioner", "string", 0, storagev1.StorageClass{}.SwaggerDoc()["provisioner"]),
				col("ReclaimPolicy", "string", 0, storagev1.StorageClass{}.SwaggerDoc()["reclaimPolicy"]),
				col("VolumeBindingMode", "string", 0, storagev1.StorageClass{}.SwaggerDoc()["volumeBindingMode"]),
				col("AllowVolumeExpansion", "string", 0, storagev1.StorageClass{}.SwaggerDoc()["allowVolumeExpansion"]),
				cAge},
			row: func(o runtime.Object, now time.Time) []any {
				s := o.(*storagev1.StorageClass)
				name := s.Name
				if s.Annotations["storageclass.kubernetes.io/is-default-class"] == "true" {
					name += " (default)"
				}
				rp, bm := "Delete", "Immediate"
				if s.ReclaimPolicy != nil {
					rp = string(*s.ReclaimPolicy)
				}
				if s.VolumeBindingMode != nil {
					bm = string(*s.VolumeBindingMode)
				}
				return []any{name, s.Provisioner, rp, bm, s.AllowVolumeExpansion != nil && *s.AllowVolumeExpansion, age(s, now)}
			},
		},
		"priorityclasses.scheduling.k8s.io": {
			cols: []metav1.TableColumnDefinition{cName,
				col("Value", "integer", 0, schedulingv1.PriorityClass{}.SwaggerDoc()["value"]),
				col("Global-Default", "boolean", 0, schedulingv1.PriorityClass{}.SwaggerDoc()["globalDefault"]),
				cAge,
				col("PreemptionPolicy", "string", 0, schedulingv1.PriorityClass{}.SwaggerDoc()["preemptionPolicy"])},
			row: func(o runtime.Object, now time.Time) []any {
				p := o.(*schedulingv1.PriorityClass)
				pp := ""
				if p.PreemptionPolicy != nil {
					pp = string(*p.PreemptionPolicy)
				}
				return []any{p.Name, int64(p.Value), p.GlobalDefault, age(p, now), pp}
			},
		},
	}
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

func subjects(ss []rbacv1.Subject) (string, string, string) {
	var u, g, sa []string
	for _, s := range ss {
		switch s.Kind {
		case rbacv1.UserKind:
			u = append(u, s.Name)
		case rbacv1.GroupKind:
			g = append(g, s.Name)
		case rbacv1.ServiceAccountKind:
			sa = append(sa, s.Namespace+"/"+s.Name)
		}
	}
	return strings.Join(u, ", "), strings.Join(g, ", "), strings.Join(sa, ", ")
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
