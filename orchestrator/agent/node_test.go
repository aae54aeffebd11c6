package agent

import (
	"context"
	testingclock "k8s.io/utils/clock/testing"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tugboatdev/tugboat/store"
)

func TestNodeRegistration(t *testing.T) {
	e := newEnv(t, envOpts{})
	var n *corev1.Node
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		if n, err = store.Get[*corev1.Node](context.Background(), e.s, "", testNode); err == nil && len(n.Status.Conditions) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n == nil || len(n.Status.Conditions) == 0 {
		t.Fatal("node not registered")
	}
	if n.Labels["zone"] != "z1" || n.Labels[corev1.LabelHostname] != testNode || n.Labels[corev1.LabelOSStable] != "linux" {
		t.Errorf("labels = %v", n.Labels)
	}
	if diff := cmp.Diff([]corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}, n.Spec.Taints); diff != "" {
		t.Errorf("taints (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: "node-a.test"}}, n.Status.Addresses); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	if n.Spec.PodCIDR != "10.244.1.0/24" {
		t.Errorf("podCIDR = %q", n.Spec.PodCIDR)
	}
	wantCap := map[corev1.ResourceName]string{"cpu": "4", "memory": "8Gi", "ephemeral-storage": "100Gi", "pods": "110"}
	wantAlloc := map[corev1.ResourceName]string{"cpu": "3900m", "memory": "7936Mi", "ephemeral-storage": "99Gi", "pods": "110"}
	for name, want := range wantCap {
		if q := n.Status.Capacity[name]; q.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("capacity %s = %s, want %s", name, q.String(), want)
		}
		if q := n.Status.Allocatable[name]; q.Cmp(resource.MustParse(wantAlloc[name])) != 0 {
			t.Errorf("allocatable %s = %s, want %s", name, q.String(), wantAlloc[name])
		}
	}
	info := n.Status.NodeInfo
	if info.KubeletVersion != DefaultVersion || info.ContainerRuntimeVersion != "simulated://unknown" || info.KernelVersion == "" || info.OSImage == "" || info.Architecture == "" {
		t.Errorf("nodeInfo = %+v", info)
	}
	got := map[corev1.NodeConditionType]corev1.ConditionStatus{}
	for _, c := range n.Status.Conditions {
		got[c.Type] = c.Status
	}
	want := map[corev1.NodeConditionType]corev1.ConditionStatus{corev1.NodeReady: "True", corev1.NodeMemoryPressure: "False", corev1.NodeDiskPressure: "False", corev1.NodePIDPressure: "False"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
	var l *coordinationv1.Lease
	for time.Now().Before(deadline) {
		var err error
		if l, err = store.Get[*coordinationv1.Lease](context.Background(), e.s, corev1.NamespaceNodeLease, testNode); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if l == nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != testNode || l.Spec.RenewTime == nil || *l.Spec.LeaseDurationSeconds != 40 {
		t.Fatalf("lease = %+v", l)
	}
}

func TestNodePressureConditions(t *testing.T) {
	var m Measurements
	m = Measurements{CPUs: 2, MemoryTotal: 4 << 30, MemoryAvailable: 50 << 20, DiskTotal: 100 << 30, DiskAvailable: 5 << 30, PIDsInUse: 32000, PIDMax: 32768}
	e := newEnv(t, envOpts{cfg: func(c *Config) {
		c.Measure = func(context.Context) (Measurements, error) { return m, nil }
	}})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n, err := store.Get[*corev1.Node](context.Background(), e.s, "", testNode)
		if err == nil {
			got := map[corev1.NodeConditionType]string{}
			for _, c := range n.Status.Conditions {
				got[c.Type] = string(c.Status) + "/" + c.Reason
			}
			want := map[corev1.NodeConditionType]string{
				corev1.NodeReady:          "True/KubeletReady",
				corev1.NodeMemoryPressure: "True/KubeletHasInsufficientMemory",
				corev1.NodeDiskPressure:   "True/KubeletHasDiskPressure",
				corev1.NodePIDPressure:    "True/KubeletHasInsufficientPID",
			}
			if cmp.Equal(want, got) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("pressure conditions never reported")
}

func TestMeasureMachine(t *testing.T) {
	m, err := MeasureMachine(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if m.CPUs < 1 || m.MemoryTotal <= 0 || m.MemoryAvailable <= 0 || m.MemoryAvailable > m.MemoryTotal || m.DiskTotal <= 0 || m.PIDsInUse <= 0 || m.PIDMax <= 0 {
		t.Fatalf("implausible measurements %+v", m)
	}
}

func TestParseTaint(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    corev1.Taint
		wantErr bool
	}{
		{in: "dedicated=db:NoSchedule", want: corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}},
		{in: "node-role.kubernetes.io/control-plane:NoSchedule", want: corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}},
		{in: "gpu=true:NoExecute", want: corev1.Taint{Key: "gpu", Value: "true", Effect: corev1.TaintEffectNoExecute}},
		{in: "a=b:PreferNoSchedule", want: corev1.Taint{Key: "a", Value: "b", Effect: corev1.TaintEffectPreferNoSchedule}},
		{in: "a=b", wantErr: true},
		{in: "a=b:Sometimes", wantErr: true},
		{in: "=b:NoSchedule", wantErr: true},
		{in: "a=b c:NoSchedule", wantErr: true},
	} {
		got, err := ParseTaint(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseTaint(%q) err = %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); !tc.wantErr && diff != "" {
			t.Errorf("ParseTaint(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func FuzzParseTaint(f *testing.F) {
	for _, s := range []string{"a=b:NoSchedule", "k:NoExecute", "x=:PreferNoSchedule", ":", "=:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tt, err := ParseTaint(s)
		if err != nil {
			return
		}
		back := tt.Key
		if tt.Value != "" {
			back += "=" + tt.Value
		}
		back += ":" + string(tt.Effect)
		again, err := ParseTaint(back)
		if err != nil || !cmp.Equal(tt, again) {
			t.Fatalf("round trip of %q: %q gives %v, %v", s, back, again, err)
		}
	})
}

// TestHeartbeats steps a fake clock: the Lease is renewed every 10 s and
// the node status is written at least once a minute.
func TestHeartbeats(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	e := newEnv(t, envOpts{clock: clk})
	ctx := context.Background()
	lease := func() time.Time {
		l, err := store.Get[*coordinationv1.Lease](ctx, e.s, corev1.NamespaceNodeLease, testNode)
		if err != nil || l.Spec.RenewTime == nil {
			return time.Time{}
		}
		return l.Spec.RenewTime.Time
	}
	heartbeat := func() time.Time {
		n, err := store.Get[*corev1.Node](ctx, e.s, "", testNode)
		if err != nil {
			return time.Time{}
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.LastHeartbeatTime.Time
			}
		}
		return time.Time{}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	start := clk.Now()
	waitFor("first lease", func() bool { return lease().Equal(start) })
	waitFor("registration", func() bool { return heartbeat().Equal(start) })
	for i := 1; i <= 6; i++ {
		waitFor("timers armed", func() bool { return clk.HasWaiters() })
		clk.Step(10 * time.Second)
		want := start.Add(time.Duration(i) * 10 * time.Second)
		waitFor("lease renewal", func() bool { return lease().Equal(want) })
	}
	// Nothing changed for a minute: the status is written anyway.
	waitFor("status heartbeat", func() bool { return heartbeat().After(start) && !heartbeat().After(start.Add(time.Minute)) })
}
