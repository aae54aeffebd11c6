package agent

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/tugboatdev/tugboat/store/storeapi"
)

// Measurements are the machine figures behind the node's capacity and its
// pressure conditions.
type Measurements struct {
	// CPUs is the number of logical CPUs.
	CPUs int
	// MemoryTotal and MemoryAvailable are in bytes (MemTotal and
	// MemAvailable of /proc/meminfo).
	MemoryTotal, MemoryAvailable int64
	// DiskTotal and DiskAvailable are the filesystem of RootDir, in bytes.
	DiskTotal, DiskAvailable int64
	// PIDsInUse and PIDMax count processes (threads) against
	// kernel.pid_max.
	PIDsInUse, PIDMax int64
	// ImageFSTotal and ImageFSAvailable are the runtime's image
	// filesystem, in bytes; zero means it is the one of RootDir.
	ImageFSTotal, ImageFSAvailable int64
}

// ParseTaint parses "<key>=<value>:<effect>" or "<key>:<effect>" where the
// effect is NoSchedule, PreferNoSchedule or NoExecute.
func ParseTaint(s string) (corev1.Taint, error) {
	var t corev1.Taint
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return t, fmt.Errorf("agent: taint %q: want <key>=<value>:<effect>", s)
	}
	kv, effect := s[:i], corev1.TaintEffect(s[i+1:])
	switch effect {
	case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
	default:
		return t, fmt.Errorf("agent: taint %q: invalid effect %q (NoSchedule, PreferNoSchedule or NoExecute)", s, effect)
	}
	key, value, _ := strings.Cut(kv, "=")
	if errs := validation.IsQualifiedName(key); len(errs) > 0 {
		return t, fmt.Errorf("agent: taint %q: invalid key: %s", s, strings.Join(errs, "; "))
	}
	if value != "" {
		if errs := validation.IsValidLabelValue(value); len(errs) > 0 {
			return t, fmt.Errorf("agent: taint %q: invalid value: %s", s, strings.Join(errs, "; "))
		}
	}
	return corev1.Taint{Key: key, Value: value, Effect: effect}, nil
}

// detectNodeIP returns the first non-loopback IPv4 address of the machine.
func detectNodeIP() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// measure measures the machine.
func (a *Agent) measure(ctx context.Context) (Measurements, error) {
	if a.cfg.Measure != nil {
		return a.cfg.Measure(ctx)
	}
	m, err := MeasureMachine(a.cfg.RootDir)
	if err == nil && a.cfg.ImageFSDir != "" {
		var st unix.Statfs_t
		if err := unix.Statfs(a.cfg.ImageFSDir, &st); err != nil {
			return m, fmt.Errorf("agent: statfs %s: %w", a.cfg.ImageFSDir, err)
		}
		m.ImageFSTotal = int64(st.Blocks) * st.Bsize
		m.ImageFSAvailable = int64(st.Bavail) * st.Bsize
	}
	return m, err
}

// MeasureMachine reads the machine's CPUs, memory (/proc/meminfo), the
// filesystem holding dir (statfs) and process counts (/proc/loadavg,
// kernel.pid_max).
func MeasureMachine(dir string) (Measurements, error) {
	m := Measurements{CPUs: goruntime.NumCPU()}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return m, fmt.Errorf("agent: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "MemTotal:":
			m.MemoryTotal = v << 10
		case "MemAvailable:":
			m.MemoryAvailable = v << 10
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return m, fmt.Errorf("agent: statfs %s: %w", dir, err)
	}
	m.DiskTotal = int64(st.Blocks) * st.Bsize
	m.DiskAvailable = int64(st.Bavail) * st.Bsize
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if fields := strings.Fields(string(b)); len(fields) >= 4 {
			if _, total, ok := strings.Cut(fields[3], "/"); ok {
				m.PIDsInUse, _ = strconv.ParseInt(total, 10, 64)
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		m.PIDMax, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	return m, nil
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func osImage() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

func kernelVersion() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// capacity returns the node's capacity and allocatable.
func (a *Agent) capacity(m Measurements) (capacity, allocatable corev1.ResourceList) {
	capacity = corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(m.CPUs), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(m.MemoryTotal, resource.BinarySI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(m.DiskTotal, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(int64(a.cfg.MaxPods), resource.DecimalSI),
	}
	reserved := a.cfg.SystemReserved
	if reserved == nil {
		reserved = corev1.ResourceList{
			corev1.ResourceCPU:              resource.MustParse("100m"),
			corev1.ResourceMemory:           resource.MustParse("256Mi"),
			corev1.ResourceEphemeralStorage: resource.MustParse("1Gi"),
		}
	}
	allocatable = corev1.ResourceList{}
	for name, q := range capacity {
		q := q.DeepCopy()
		if r, ok := reserved[name]; ok {
			q.Sub(r)
			if q.Sign() < 0 {
				q = *resource.NewQuantity(0, q.Format)
			}
		}
		allocatable[name] = q
	}
	return capacity, allocatable
}

// nodeTemplate builds the Node the agent registers.
func (a *Agent) nodeTemplate(m Measurements) *corev1.Node {
	labels := map[string]string{
		corev1.LabelHostname:   a.cfg.NodeName,
		corev1.LabelOSStable:   goruntime.GOOS,
		corev1.LabelArchStable: goruntime.GOARCH,
	}
	for k, v := range a.cfg.Labels {
		labels[k] = v
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Labels: labels,
		Annotations: map[string]string{"node.alpha.kubernetes.io/ttl": "0"}}}
	for _, s := range a.cfg.Taints {
		t, _ := ParseTaint(s)
		n.Spec.Taints = append(n.Spec.Taints, t)
	}
	if a.cfg.PodCIDR != "" {
		n.Spec.PodCIDR = a.cfg.PodCIDR
		n.Spec.PodCIDRs = []string{a.cfg.PodCIDR}
	}
	a.fillStatus(context.Background(), n, m, nil)
	return n
}

// fillStatus sets the node's status from measurements, keeping condition
// transition times from old.
func (a *Agent) fillStatus(ctx context.Context, n *corev1.Node, m Measurements, old *corev1.Node) {
	capacity, allocatable := a.capacity(m)
	n.Status.Capacity, n.Status.Allocatable = capacity, allocatable
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: a.nodeIP}, {Type: corev1.NodeHostName, Address: a.hostname}}
	n.Status.DaemonEndpoints = corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}}
	n.Status.NodeInfo = corev1.NodeSystemInfo{
		MachineID:               readTrim("/etc/machine-id"),
		SystemUUID:              readTrim("/sys/class/dmi/id/product_uuid"),
		BootID:                  readTrim("/proc/sys/kernel/random/boot_id"),
		KernelVersion:           kernelVersion(),
		OSImage:                 osImage(),
		ContainerRuntimeVersion: a.cfg.RuntimeVersion,
		KubeletVersion:          a.cfg.Version,
		KubeProxyVersion:        a.cfg.Version,
		OperatingSystem:         goruntime.GOOS,
		Architecture:            goruntime.GOARCH,
	}
	n.Status.Images = nil
	if imgs, err := a.rt.ListImages(ctx); err == nil {
		sort.Slice(imgs, func(i, j int) bool { return imgs[i].Size > imgs[j].Size })
		for i, im := range imgs {
			if i == 50 {
				break
			}
			names := append(append([]string(nil), im.RepoDigests...), im.RepoTags...)
			n.Status.Images = append(n.Status.Images, corev1.ContainerImage{Names: names, SizeBytes: im.Size})
		}
	}
	now := metav1.NewTime(a.clk.Now())
	runtimeErr := error(nil)
	if _, err := a.rt.ListPodSandboxes(ctx); err != nil {
		runtimeErr = err
	}
	cond := func(t corev1.NodeConditionType, bad bool, trueReason, trueMsg, falseReason, falseMsg string) corev1.NodeCondition {
		c := corev1.NodeCondition{Type: t, Status: corev1.ConditionFalse, Reason: falseReason, Message: falseMsg, LastHeartbeatTime: now, LastTransitionTime: now}
		if bad {
			c.Status, c.Reason, c.Message = corev1.ConditionTrue, trueReason, trueMsg
		}
		if old != nil {
			for _, oc := range old.Status.Conditions {
				if oc.Type == t && oc.Status == c.Status {
					c.LastTransitionTime = oc.LastTransitionTime
				}
			}
		}
		return c
	}
	pr := a.pressureOf(m)
	memPressure, diskPressure, pidPressure := pr.memory, pr.disk, pr.pid
	a.mu.Lock()
	a.pressure = pr
	a.mu.Unlock()
	readyMsg := ""
	if runtimeErr != nil {
		readyMsg = "container runtime is down: " + runtimeErr.Error()
	}
	ready := cond(corev1.NodeReady, runtimeErr == nil, "KubeletReady", "kubelet is posting ready status", "KubeletNotReady", readyMsg)
	n.Status.Conditions = []corev1.NodeCondition{
		cond(corev1.NodeMemoryPressure, memPressure, "KubeletHasInsufficientMemory", "kubelet has insufficient memory available", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		cond(corev1.NodeDiskPressure, diskPressure, "KubeletHasDiskPressure", "kubelet has disk pressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		cond(corev1.NodePIDPressure, pidPressure, "KubeletHasInsufficientPID", "kubelet has insufficient PID available", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
		ready,
	}
	n.Status.Phase = ""
}

// registerNode creates the node, or brings an existing one up to date.
func (a *Agent) registerNode(ctx context.Context) error {
	for {
		err := a.tryRegister(ctx)
		if err == nil {
			return nil
		}
		a.log.Warn("registering node", "err", err)
		if !sleepCtx(ctx, a.clk, time.Second) {
			return ctx.Err()
		}
	}
}

func (a *Agent) tryRegister(ctx context.Context) error {
	m, err := a.measure(ctx)
	if err != nil {
		return err
	}
	want := a.nodeTemplate(m)
	created, err := storeapi.Create(ctx, a.s, want.DeepCopy())
	if err == nil {
		// Create keeps only what the store accepts at create time: write
		// the status explicitly.
		created.Status = want.Status
		created, err = storeapi.UpdateStatus(ctx, a.s, created)
		if err != nil {
			return err
		}
		a.setNode(created)
		a.log.Info("registered node")
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	cur, err := storeapi.Get[*corev1.Node](ctx, a.s, "", a.cfg.NodeName)
	if err != nil {
		return err
	}
	upd := cur.DeepCopy()
	if upd.Labels == nil {
		upd.Labels = map[string]string{}
	}
	for k, v := range want.Labels {
		upd.Labels[k] = v
	}
	for _, t := range want.Spec.Taints {
		if !hasTaint(upd.Spec.Taints, t) {
			upd.Spec.Taints = append(upd.Spec.Taints, t)
		}
	}
	if upd.Spec.PodCIDR == "" {
		upd.Spec.PodCIDR, upd.Spec.PodCIDRs = want.Spec.PodCIDR, want.Spec.PodCIDRs
	}
	if !equality.Semantic.DeepEqual(upd.ObjectMeta, cur.ObjectMeta) || !equality.Semantic.DeepEqual(upd.Spec, cur.Spec) {
		if upd, err = storeapi.Update(ctx, a.s, upd); err != nil {
			return err
		}
	}
	a.fillStatus(ctx, upd, m, cur)
	upd, err = storeapi.UpdateStatus(ctx, a.s, upd)
	if err != nil {
		return err
	}
	a.setNode(upd)
	a.log.Info("node already registered; updated")
	return nil
}

func hasTaint(ts []corev1.Taint, t corev1.Taint) bool {
	for _, x := range ts {
		if x.Key == t.Key && x.Effect == t.Effect {
			return true
		}
	}
	return false
}

func (a *Agent) setNode(n *corev1.Node) {
	a.mu.Lock()
	a.node = n
	a.mu.Unlock()
}

// Node returns the agent's last written Node, or nil before registration.
func (a *Agent) Node() *corev1.Node {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.node == nil {
		return nil
	}
	return a.node.DeepCopy()
}

// statusLoop measures the node every StatusInterval and writes its status
// when something changed or a minute has passed since the last write.
func (a *Agent) statusLoop(ctx context.Context) error {
	last := a.clk.Now()
	for sleepCtx(ctx, a.clk, a.cfg.StatusInterval) {
		m, err := a.measure(ctx)
		if err != nil {
			a.log.Warn("measuring node", "err", err)
			continue
		}
		cur, err := storeapi.Get[*corev1.Node](ctx, a.s, "", a.cfg.NodeName)
		if apierrors.IsNotFound(err) {
			// Deleted from the API: register again.
			if err := a.tryRegister(ctx); err != nil {
				a.log.Warn("re-registering node", "err", err)
			}
			last = a.clk.Now()
			continue
		}
		if err != nil {
			a.log.Warn("reading node", "err", err)
			continue
		}
		upd := cur.DeepCopy()
		a.fillStatus(ctx, upd, m, cur)
		if nodeStatusChanged(cur, upd) || a.clk.Since(last) >= time.Minute-a.cfg.StatusInterval/2 {
			if upd, err = storeapi.UpdateStatus(ctx, a.s, upd); err != nil {
				a.log.Warn("writing node status", "err", err)
				continue
			}
			a.setNode(upd)
			last = a.clk.Now()
		}
		if tainted, err := a.syncPressureTaints(ctx, upd); err != nil {
			a.log.Warn("updating pressure taints", "err", err)
		} else if tainted != upd {
			a.setNode(tainted)
		}
		// One eviction per interval while a threshold stays crossed, as
		// the kubelet's eviction manager.
		pr := a.pressureOf(m)
		switch {
		case pr.memory:
			a.evictForMemory(ctx)
		case pr.disk:
			a.evictForDisk(ctx, pr.diskSignal)
		case pr.pid:
			a.evictForPIDs(ctx)
		}
	}
	return nil
}

// nodeStatusChanged compares two statuses ignoring heartbeat times.
func nodeStatusChanged(a, b *corev1.Node) bool {
	strip := func(n *corev1.Node) corev1.NodeStatus {
		s := *n.Status.DeepCopy()
		for i := range s.Conditions {
			s.Conditions[i].LastHeartbeatTime = metav1.Time{}
		}
		return s
	}
	return !equality.Semantic.DeepEqual(strip(a), strip(b))
}

// leaseLoop renews the node's Lease in kube-node-lease every
// HeartbeatInterval.
func (a *Agent) leaseLoop(ctx context.Context) error {
	for {
		if err := a.renewLease(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("renewing lease", "err", err)
		}
		if !sleepCtx(ctx, a.clk, a.cfg.HeartbeatInterval) {
			return nil
		}
	}
}

func (a *Agent) renewLease(ctx context.Context) error {
	now := metav1.NewMicroTime(a.clk.Now())
	dur := int32(4 * a.cfg.HeartbeatInterval / time.Second)
	if dur < 1 {
		dur = 1
	}
	l, err := storeapi.Get[*coordinationv1.Lease](ctx, a.s, corev1.NamespaceNodeLease, a.cfg.NodeName)
	if apierrors.IsNotFound(err) {
		holder := a.cfg.NodeName
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Namespace: corev1.NamespaceNodeLease},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &dur, RenewTime: &now}}
		if n := a.Node(); n != nil {
			l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID}}
		}
		_, err = storeapi.Create(ctx, a.s, l)
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.RenewTime = &now
	l.Spec.LeaseDurationSeconds = &dur
	_, err = storeapi.Update(ctx, a.s, l)
	return err
}

// evictForMemory evicts one pod under memory pressure: the lowest QoS class
// first (BestEffort, then Burstable, then Guaranteed), and within a class
// the pod using the most memory.
func (a *Agent) evictForMemory(ctx context.Context) {
	victims, busy := a.evictionCandidates()
	if busy {
		return
	}
	rank := map[corev1.PodQOSClass]int{corev1.PodQOSBestEffort: 0, corev1.PodQOSBurstable: 1, corev1.PodQOSGuaranteed: 2}
	type cand struct {
		w   *podWorker
		qos int
		mem uint64
	}
	var cs []cand
	for _, w := range victims {
		p := w.currentPod()
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		var mem uint64
		if u, err := a.podUsage(ctx, w); err == nil {
			for _, c := range u.Containers {
				mem += c.MemoryWorkingSetBytes
			}
		}
		cs = append(cs, cand{w, rank[storeapi.QOSClass(&p.Spec)], mem})
	}
	if len(cs) == 0 {
		return
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].qos != cs[j].qos {
			return cs[i].qos < cs[j].qos
		}
		return cs[i].mem > cs[j].mem
	})
	cs[0].w.evict("The node was low on resource: memory. ")
}
