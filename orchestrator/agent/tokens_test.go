package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	testingclock "k8s.io/utils/clock/testing"
)

// testIssuer is a test double of the API server's token issuer: it hands
// out numbered tokens and records the requests.
type testIssuer struct {
	clk  clock.Clock
	mu   sync.Mutex
	reqs []issuedRequest
	fail bool
}

type issuedRequest struct {
	Namespace, ServiceAccount string
	Spec                      authenticationv1.TokenRequestSpec
}

func (i *testIssuer) CreateToken(_ context.Context, ns, sa string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.fail {
		return nil, fmt.Errorf("issuer unavailable")
	}
	i.reqs = append(i.reqs, issuedRequest{ns, sa, *req.Spec.DeepCopy()})
	out := req.DeepCopy()
	out.Status.Token = fmt.Sprintf("token-%d", len(i.reqs))
	out.Status.ExpirationTimestamp = metav1.NewTime(i.clk.Now().Add(time.Duration(*req.Spec.ExpirationSeconds) * time.Second))
	return out, nil
}

func (i *testIssuer) requests() []issuedRequest {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]issuedRequest(nil), i.reqs...)
}

func TestTokenRefreshTime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		lifetime, want time.Duration
	}{
		{10 * time.Minute, 8 * time.Minute},
		{time.Hour, 48 * time.Minute},
		{30 * time.Hour, 24 * time.Hour},
		{48 * time.Hour, 24 * time.Hour},
	} {
		if got := tokenRefreshTime(t0, t0.Add(tc.lifetime)).Sub(t0); got != tc.want {
			t.Errorf("lifetime %s: refreshed after %s, want %s", tc.lifetime, got, tc.want)
		}
	}
}

// TestServiceAccountTokenProjection writes a bound token into a projected
// volume and renews it at 80 % of its lifetime, on a fake clock.
func TestServiceAccountTokenProjection(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := testingclock.NewFakeClock(start)
	iss := &testIssuer{clk: clk}
	e := newEnv(t, envOpts{clock: clk, cfg: func(c *Config) { c.TokenRequester = iss }})
	p := simplePod("tok")
	p.Spec.ServiceAccountName = "builder"
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "tokens", MountPath: "/var/run/secrets/tokens"}}
	p.Spec.Volumes = []corev1.Volume{{Name: "tokens", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: ptr(int32(0o600)),
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "vault", ExpirationSeconds: ptr(int64(1000)), Path: "vault-token"}},
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "api-token"}},
		}}}}}
	created := e.createPod(p)
	e.waitStatus("default", "tok", "Running")
	cfg := e.rec.last("app")
	m := mountAt(t, cfg, "/var/run/secrets/tokens")
	if !m.ReadOnly {
		t.Error("token volume is not read-only")
	}
	got := map[string]string{}
	for _, f := range []string{"vault-token", "api-token"} {
		data, mode := readVol(t, m, f)
		got[f] = data
		if mode != 0o600 {
			t.Errorf("%s mode %o", f, mode)
		}
	}
	if _, err := os.Readlink(filepath.Join(m.HostPath, "..data")); err != nil {
		t.Errorf("token volume not written atomically: %v", err)
	}
	reqs := iss.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d token requests, want 2", len(reqs))
	}
	bound := &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "tok", UID: created.UID}
	want := map[string]issuedRequest{
		"vault": {"default", "builder", authenticationv1.TokenRequestSpec{Audiences: []string{"vault"}, ExpirationSeconds: ptr(int64(1000)), BoundObjectRef: bound}},
		"":      {"default", "builder", authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600)), BoundObjectRef: bound}},
	}
	for _, r := range reqs {
		aud := ""
		if len(r.Spec.Audiences) > 0 {
			aud = r.Spec.Audiences[0]
		}
		if diff := cmp.Diff(want[aud], r); diff != "" {
			t.Errorf("request for audience %q (-want +got):\n%s", aud, diff)
		}
	}
	vaultFirst := got["vault-token"]
	// Nothing is renewed before 80 % of the 1000 s lifetime; then the
	// vault token is, and only it.
	var renewedAt time.Duration
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		clk.Step(5 * time.Second)
		time.Sleep(3 * time.Millisecond)
		if b, err := os.ReadFile(filepath.Join(m.HostPath, "vault-token")); err == nil && string(b) != vaultFirst {
			renewedAt = clk.Since(start)
			break
		}
	}
	if renewedAt == 0 {
		t.Fatalf("vault token not renewed; %d requests", len(iss.requests()))
	}
	if renewedAt < 800*time.Second || renewedAt > 830*time.Second {
		t.Errorf("vault token renewed after %s, want at 800 s (80%% of 1000 s)", renewedAt)
	}
	if n := len(iss.requests()); n != 3 {
		t.Errorf("%d token requests after the renewal, want 3", n)
	}
	if b, _ := os.ReadFile(filepath.Join(m.HostPath, "api-token")); string(b) != got["api-token"] {
		t.Errorf("api token changed to %q before its refresh time", b)
	}
}

// TestServiceAccountTokenIssuerDown keeps the pod waiting with a
// FailedMount event while no token can be issued.
func TestServiceAccountTokenIssuerDown(t *testing.T) {
	iss := &testIssuer{clk: clock.RealClock{}, fail: true}
	e := newEnv(t, envOpts{cfg: func(c *Config) { c.TokenRequester = iss }})
	p := simplePod("notok")
	p.Spec.Volumes = []corev1.Volume{{Name: "t", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}}}
	e.createPod(p)
	evs := e.waitEvent("notok", "FailedMount")
	if got := PodStatusString(e.waitPod("default", "notok", "status", func(*corev1.Pod) bool { return true })); got != "ContainerCreating" {
		t.Errorf("status %s, want ContainerCreating; events %q", got, evs)
	}
	iss.mu.Lock()
	iss.fail = false
	iss.mu.Unlock()
	e.waitStatus("default", "notok", "Running")
}
