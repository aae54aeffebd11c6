package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// Eviction signals, as the kubelet's evictionHard names them.
const (
	SignalMemoryAvailable  = "memory.available"
	SignalNodeFSAvailable  = "nodefs.available"
	SignalImageFSAvailable = "imagefs.available"
	SignalPIDAvailable     = "pid.available"
)

// DefaultEvictionHard returns the hard eviction thresholds used for the
// signals Config.EvictionHard does not set: upstream's defaults
// (memory.available 100Mi, nodefs.available 10%, imagefs.available 15%)
// and pid.available 10%.
func DefaultEvictionHard() map[string]string {
	return map[string]string{
		SignalMemoryAvailable:  "100Mi",
		SignalNodeFSAvailable:  "10%",
		SignalImageFSAvailable: "15%",
		SignalPIDAvailable:     "10%",
	}
}

// Threshold is one eviction threshold: the signal is under pressure when
// what is available falls below Quantity, or below Percentage of the
// capacity when Quantity is nil.
type Threshold struct {
	Signal     string
	Quantity   *resource.Quantity
	Percentage float64
}

// ParseThreshold parses one evictionHard entry: a signal (memory.available,
// nodefs.available, imagefs.available, pid.available) and a value, either
// a quantity ("100Mi", "500" for pids) or a percentage of capacity ("10%").
func ParseThreshold(signal, value string) (Threshold, error) {
	switch signal {
	case SignalMemoryAvailable, SignalNodeFSAvailable, SignalImageFSAvailable, SignalPIDAvailable:
	default:
		return Threshold{}, fmt.Errorf("agent: unknown eviction signal %q", signal)
	}
	t := Threshold{Signal: signal}
	if p, ok := strings.CutSuffix(value, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || math.IsNaN(f) || f < 0 || f > 100 {
			return Threshold{}, fmt.Errorf("agent: eviction threshold %s=%q: want a percentage between 0%% and 100%%", signal, value)
		}
		t.Percentage = f / 100
		return t, nil
	}
	q, err := resource.ParseQuantity(value)
	if err != nil {
		return Threshold{}, fmt.Errorf("agent: eviction threshold %s=%q: %w", signal, value, err)
	}
	if q.Sign() < 0 {
		return Threshold{}, fmt.Errorf("agent: eviction threshold %s=%q is negative", signal, value)
	}
	t.Quantity = &q
	return t, nil
}

// crossed reports whether available (of capacity) is below the threshold.
// Unknown figures (capacity 0) never cross.
func (t Threshold) crossed(available, capacity int64) bool {
	if capacity <= 0 {
		return false
	}
	if t.Quantity != nil {
		return available < t.Quantity.Value()
	}
	return float64(available) < t.Percentage*float64(capacity)
}

// String formats the threshold as evictionHard does.
func (t Threshold) String() string {
	if t.Quantity != nil {
		return t.Quantity.String()
	}
	return strconv.FormatFloat(t.Percentage*100, 'f', -1, 64) + "%"
}

// evictionThresholds merges cfg's thresholds with the defaults.
func evictionThresholds(cfg *Config) (map[string]Threshold, error) {
	out := map[string]Threshold{}
	for sig, v := range DefaultEvictionHard() {
		t, err := ParseThreshold(sig, v)
		if err != nil {
			return nil, err
		}
		out[sig] = t
	}
	if cfg.EvictionMemoryAvailable > 0 {
		out[SignalMemoryAvailable] = Threshold{Signal: SignalMemoryAvailable, Quantity: resource.NewQuantity(cfg.EvictionMemoryAvailable, resource.BinarySI)}
	}
	for sig, v := range cfg.EvictionHard {
		t, err := ParseThreshold(sig, v)
		if err != nil {
			return nil, err
		}
		out[sig] = t
	}
	return out, nil
}

// pressure is what the node is short of.
type pressure struct {
	memory, disk, pid bool
	// diskSignal names the filesystem signal crossed (nodefs or imagefs).
	diskSignal string
}

// pressureOf applies the thresholds to measurements.
func (a *Agent) pressureOf(m Measurements) pressure {
	var p pressure
	th := a.thresholds
	p.memory = th[SignalMemoryAvailable].crossed(m.MemoryAvailable, m.MemoryTotal)
	imgTotal, imgAvail := m.ImageFSTotal, m.ImageFSAvailable
	if imgTotal == 0 {
		imgTotal, imgAvail = m.DiskTotal, m.DiskAvailable
	}
	switch {
	case th[SignalNodeFSAvailable].crossed(m.DiskAvailable, m.DiskTotal):
		p.disk, p.diskSignal = true, SignalNodeFSAvailable
	case th[SignalImageFSAvailable].crossed(imgAvail, imgTotal):
		p.disk, p.diskSignal = true, SignalImageFSAvailable
	}
	if m.PIDMax > 0 {
		p.pid = th[SignalPIDAvailable].crossed(m.PIDMax-m.PIDsInUse, m.PIDMax)
	}
	return p
}

// PodStats is the usage of one pod that eviction ranks pods by.
type PodStats struct {
	// EphemeralStorageBytes is the pod's use of the node's filesystems:
	// its containers' writable layers, its emptyDir volumes on disk and its
	// container logs. A StatsSource may set only this total; when it also
	// sets the parts below, eviction ranks by the parts that live on the
	// filesystem under pressure, as the kubelet does.
	EphemeralStorageBytes int64
	// WritableLayerBytes is what the pod's running containers' writable
	// layers use (on the image filesystem).
	WritableLayerBytes int64
	// LogsBytes is what the pod's container logs use (on the node
	// filesystem).
	LogsBytes int64
	// LocalVolumesBytes is what the pod's emptyDir volumes on disk (not
	// tmpfs) use (on the node filesystem).
	LocalVolumesBytes int64
	// Processes counts the pod's processes (threads); 0 when unknown.
	Processes int64
}

// diskUsage is the usage eviction ranks by for a disk signal, as the
// kubelet's rankDiskPressureFunc: with a dedicated image filesystem,
// nodefs counts logs and local volumes and imagefs the writable layers;
// on a single filesystem both count all three.
func (s PodStats) diskUsage(signal string, dedicatedImageFS bool) int64 {
	if s.WritableLayerBytes == 0 && s.LogsBytes == 0 && s.LocalVolumesBytes == 0 {
		return s.EphemeralStorageBytes
	}
	switch {
	case !dedicatedImageFS:
		return s.WritableLayerBytes + s.LogsBytes + s.LocalVolumesBytes
	case signal == SignalImageFSAvailable:
		return s.WritableLayerBytes
	default:
		return s.LogsBytes + s.LocalVolumesBytes
	}
}

// StatsSource reports pods' usage for eviction under disk and PID
// pressure.
type StatsSource interface {
	// PodStats measures one pod running on the node.
	PodStats(ctx context.Context, pod *corev1.Pod) (PodStats, error)
}

// dirStats is the default StatsSource: it measures the pod's directory
// under RootDir (emptyDir volumes on disk, not tmpfs, and logs) and asks
// the runtime for its running containers' writable layers and process
// counts.
type dirStats struct{ a *Agent }

func (d dirStats) PodStats(ctx context.Context, pod *corev1.Pod) (PodStats, error) {
	dir := d.a.podDir(pod.UID)
	var out PodStats
	var err error
	if out.LocalVolumesBytes, err = diskUsage(filepath.Join(dir, "volumes", "empty-dir")); err != nil {
		return PodStats{}, err
	}
	if out.LogsBytes, err = diskUsage(filepath.Join(dir, "logs")); err != nil {
		return PodStats{}, err
	}
	ctrs, err := d.a.rt.ListContainers(ctx, runtime.ContainerFilter{State: runtime.ContainerRunning,
		Labels: map[string]string{LabelPodUID: string(pod.UID)}})
	if err != nil {
		return PodStats{}, fmt.Errorf("agent: containers of %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	for _, c := range ctrs {
		cs, err := d.a.rt.ContainerStats(ctx, c.ID)
		if err != nil {
			continue // exited meanwhile
		}
		out.WritableLayerBytes += int64(cs.WritableLayerBytes)
		out.Processes += int64(cs.Processes)
	}
	out.EphemeralStorageBytes = out.WritableLayerBytes + out.LogsBytes + out.LocalVolumesBytes
	return out, nil
}

// dedicatedImageFS reports whether ImageFSDir is on another filesystem
// than RootDir.
func (a *Agent) dedicatedImageFS() bool {
	if a.cfg.ImageFSDir == "" {
		return false
	}
	img, err1 := os.Stat(a.cfg.ImageFSDir)
	root, err2 := os.Stat(a.cfg.RootDir)
	return err1 == nil && err2 == nil && statDev(img) != statDev(root)
}

// diskUsage sums the space the regular files under dir take on dir's
// filesystem (allocated blocks, like du); other filesystems mounted below
// (tmpfs emptyDirs) are not counted. A missing dir uses nothing.
func diskUsage(dir string) (int64, error) {
	root, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	dev := statDev(root)
	var total int64
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if d.IsDir() && p != dir && statDev(fi) != dev {
			return filepath.SkipDir
		}
		if fi.Mode().IsRegular() {
			total += statBlocks(fi)
		}
		return nil
	})
	return total, err
}

// evictForDisk evicts one pod under disk pressure, ranked as upstream:
// pods using more ephemeral storage than they request first, then lower
// priority, then the largest usage of the filesystem under pressure
// (writable layers, logs and emptyDir volumes: see PodStats.diskUsage).
func (a *Agent) evictForDisk(ctx context.Context, signal string) {
	dedicated := a.dedicatedImageFS()
	a.evictRanked(ctx, "ephemeral-storage", func(p *corev1.Pod, s PodStats) (bool, int64) {
		var req int64
		for _, c := range p.Spec.Containers {
			req += c.Resources.Requests.StorageEphemeral().Value()
		}
		used := s.diskUsage(signal, dedicated)
		return used > req, used
	}, signal)
}

// evictForPIDs evicts one pod under PID pressure: lower priority first,
// then the most processes.
func (a *Agent) evictForPIDs(ctx context.Context) {
	a.evictRanked(ctx, "pids", func(_ *corev1.Pod, s PodStats) (bool, int64) {
		return true, s.Processes
	}, SignalPIDAvailable)
}

// evictRanked evicts the first pod of the node's running pods in the order
// (exceeds first, lower priority, larger usage, lower QoS class).
func (a *Agent) evictRanked(ctx context.Context, resourceName string, measure func(*corev1.Pod, PodStats) (exceeds bool, usage int64), signal string) {
	workers, busy := a.evictionCandidates()
	if busy {
		return
	}
	type cand struct {
		w        *podWorker
		exceeds  bool
		priority int32
		usage    int64
		qos      int
	}
	rank := map[corev1.PodQOSClass]int{corev1.PodQOSBestEffort: 0, corev1.PodQOSBurstable: 1, corev1.PodQOSGuaranteed: 2}
	var cs []cand
	for _, w := range workers {
		p := w.currentPod()
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		s, err := a.podStats.PodStats(ctx, p)
		if err != nil {
			a.log.Debug("measuring pod for eviction", "pod", p.Namespace+"/"+p.Name, "err", err)
		}
		exceeds, usage := measure(p, s)
		var prio int32
		if p.Spec.Priority != nil {
			prio = *p.Spec.Priority
		}
		cs = append(cs, cand{w, exceeds, prio, usage, rank[storeapi.QOSClass(&p.Spec)]})
	}
	if len(cs) == 0 {
		return
	}
	sort.SliceStable(cs, func(i, j int) bool {
		x, y := cs[i], cs[j]
		switch {
		case x.exceeds != y.exceeds:
			return x.exceeds
		case x.priority != y.priority:
			return x.priority < y.priority
		case x.usage != y.usage:
			return x.usage > y.usage
		}
		return x.qos < y.qos
	})
	th := a.thresholds[signal]
	cs[0].w.evict(fmt.Sprintf("The node was low on resource: %s. Threshold quantity: %s. ", resourceName, th))
}

// evictionCandidates returns the pods that may be evicted, or busy when
// an earlier eviction has not finished yet (the next waits for it, as
// the kubelet waits for the evicted pod's cleanup).
func (a *Agent) evictionCandidates() (ws []*podWorker, busy bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, w := range a.workers {
		if w.static {
			continue
		}
		requested, done := w.evictionState()
		if requested && !done {
			return nil, true
		}
		if !requested {
			ws = append(ws, w)
		}
	}
	return ws, false
}

// pressureTaints are the NoSchedule taints the agent keeps on its Node
// while a pressure condition holds.
var pressureTaints = []struct {
	cond corev1.NodeConditionType
	key  string
}{
	{corev1.NodeMemoryPressure, corev1.TaintNodeMemoryPressure},
	{corev1.NodeDiskPressure, corev1.TaintNodeDiskPressure},
	{corev1.NodePIDPressure, corev1.TaintNodePIDPressure},
}

// syncPressureTaints adds node.kubernetes.io/{memory,disk,pid}-pressure
// NoSchedule taints while the matching condition is True and removes them
// when it is not, so that the scheduler places no new pods on the node.
func (a *Agent) syncPressureTaints(ctx context.Context, n *corev1.Node) (*corev1.Node, error) {
	for attempt := 0; attempt < 5; attempt++ {
		upd := n.DeepCopy()
		changed := false
		for _, pt := range pressureTaints {
			on := false
			for _, c := range n.Status.Conditions {
				if c.Type == pt.cond && c.Status == corev1.ConditionTrue {
					on = true
				}
			}
			t := corev1.Taint{Key: pt.key, Effect: corev1.TaintEffectNoSchedule}
			has := hasTaint(upd.Spec.Taints, t)
			switch {
			case on && !has:
				upd.Spec.Taints = append(upd.Spec.Taints, t)
				changed = true
			case !on && has:
				kept := upd.Spec.Taints[:0]
				for _, x := range upd.Spec.Taints {
					if !(x.Key == t.Key && x.Effect == t.Effect) {
						kept = append(kept, x)
					}
				}
				upd.Spec.Taints = kept
				changed = true
			}
		}
		if !changed {
			return n, nil
		}
		out, err := storeapi.Update(ctx, a.s, upd)
		if err == nil {
			return out, nil
		}
		if !apierrors.IsConflict(err) {
			return n, err
		}
		if n, err = storeapi.Get[*corev1.Node](ctx, a.s, "", a.cfg.NodeName); err != nil {
			return n, err
		}
	}
	return n, fmt.Errorf("agent: updating pressure taints: too many conflicts")
}

// systemCriticalPriority is the priority from which a pod is critical
// (system-cluster-critical and system-node-critical).
const systemCriticalPriority = 2000000000

// admissionRejection returns why a new pod may not start on the node
// under its current pressure conditions, or "" to admit it, as the
// kubelet's eviction admission: under memory pressure BestEffort pods are
// refused unless they tolerate the memory-pressure taint; under disk or
// PID pressure every pod is refused but critical ones (static pods and
// pods of system-critical priority).
func (a *Agent) admissionRejection(pod *corev1.Pod, static bool) string {
	a.mu.Lock()
	pr := a.pressure
	a.mu.Unlock()
	if static || (pod.Spec.Priority != nil && *pod.Spec.Priority >= systemCriticalPriority) {
		return ""
	}
	var conds []string
	if pr.memory && storeapi.QOSClass(&pod.Spec) == corev1.PodQOSBestEffort && !tolerates(pod, corev1.TaintNodeMemoryPressure) {
		conds = append(conds, string(corev1.NodeMemoryPressure))
	}
	if pr.disk {
		conds = append(conds, string(corev1.NodeDiskPressure))
	}
	if pr.pid {
		conds = append(conds, string(corev1.NodePIDPressure))
	}
	if len(conds) == 0 {
		return ""
	}
	return fmt.Sprintf("Pod was rejected: The node had condition: [%s]. ", strings.Join(conds, ", "))
}

// tolerates reports whether the pod tolerates the NoSchedule taint key.
func tolerates(pod *corev1.Pod, key string) bool {
	for _, t := range pod.Spec.Tolerations {
		if t.Effect != "" && t.Effect != corev1.TaintEffectNoSchedule {
			continue
		}
		switch {
		case t.Key == "" && t.Operator == corev1.TolerationOpExists:
			return true
		case t.Key != key:
		case t.Operator == corev1.TolerationOpExists:
			return true
		case (t.Operator == corev1.TolerationOpEqual || t.Operator == "") && t.Value == "":
			return true // the pressure taints have no value
		}
	}
	return false
}
