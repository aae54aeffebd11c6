package apiserver

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tugboatdev/tugboat/internal/kubectltest"
	"github.com/tugboatdev/tugboat/orchestrator/serviceaccount"
)

// userRecorder is an Authorizer that allows authenticated users and
// remembers the last one.
type userRecorder struct {
	mu   sync.Mutex
	last UserInfo
}

func (u *userRecorder) Authorize(ctx context.Context, a Attributes) (bool, string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if a.User != nil {
		u.last = *a.User
	}
	return AllowAuthenticated{}.Authorize(ctx, a)
}

func startSAServer(t *testing.T, admission bool) (*testServer, *userRecorder) {
	t.Helper()
	rec := &userRecorder{}
	var iss *serviceaccount.Issuer
	ts := startServer(t, func(c *Config) {
		key, err := serviceaccount.LoadOrCreateKey(filepath.Join(c.DataDir, "pki", "sa.key"))
		if err != nil {
			t.Fatal(err)
		}
		iss, err = serviceaccount.New(serviceaccount.Config{Store: c.Store, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		c.ServiceAccounts = iss
		c.ServiceAccountAdmission = admission
		c.Authorizer = rec
	})
	ctx := context.Background()
	if err := serviceaccount.EnsureNamespace(ctx, ts.st, "default", ts.srv.PKI().CAPEM); err != nil {
		t.Fatal(err)
	}
	return ts, rec
}

// TestServiceAccountTokens requests tokens through the TokenRequest
// subresource and authenticates with them.
func TestServiceAccountTokens(t *testing.T) {
	ts, rec := startSAServer(t, false)
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(ts.rest)
	if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, "robot", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Status.Token == "" || tr.Status.ExpirationTimestamp.IsZero() {
		t.Fatalf("token request status %+v", tr.Status)
	}
	saCfg := rest.AnonymousClientConfig(ts.rest)
	saCfg.BearerToken = tr.Status.Token
	saCS := kubernetes.NewForConfigOrDie(saCfg)
	if _, err := saCS.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("list with the token: %v", err)
	}
	rec.mu.Lock()
	got := rec.last
	rec.mu.Unlock()
	want := UserInfo{Name: "system:serviceaccount:default:robot", Groups: []string{"system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"}}
	if d := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "UID" || p.String() == "Extra" }, cmp.Ignore())); d != "" {
		t.Errorf("user (-want +got):\n%s", d)
	}
	// Deleting the account revokes its tokens.
	if err := cs.CoreV1().ServiceAccounts("default").Delete(ctx, "robot", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := saCS.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Errorf("token of a deleted account: %v, want 401", err)
	}
	// No token for a missing account.
	if _, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, "robot", &authenticationv1.TokenRequest{}, metav1.CreateOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("token for a missing account: %v, want 404", err)
	}
}

// TestOpenIDDiscovery reads the issuer's discovery documents.
func TestOpenIDDiscovery(t *testing.T) {
	ts, _ := startSAServer(t, false)
	hc, err := rest.HTTPClientFor(ts.rest)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (string, map[string]any) {
		resp, err := hc.Get(ts.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s", path, resp.Status, b)
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return resp.Header.Get("Content-Type"), v
	}
	_, cfg := get("/.well-known/openid-configuration")
	if cfg["issuer"] != serviceaccount.DefaultIssuer || cfg["jwks_uri"] != serviceaccount.DefaultIssuer+"/openid/v1/jwks" {
		t.Errorf("openid-configuration %v", cfg)
	}
	ct, jwks := get("/openid/v1/jwks")
	keys, _ := jwks["keys"].([]any)
	if ct != "application/jwk-set+json" || len(keys) != 1 {
		t.Errorf("jwks %s %v", ct, jwks)
	}
}

// TestKubectlCreateToken runs `kubectl create token` with each kubectl.
func TestKubectlCreateToken(t *testing.T) {
	for _, k := range kubectltest.Binaries(t) {
		t.Run(k.Name, func(t *testing.T) {
			ts, rec := startSAServer(t, false)
			e := &streamEnv{kubeconfig: ts.kubeconfig, dir: ts.dir}
			ctx := context.Background()
			out, err := e.kubectl(ctx, k.Path, nil, "create", "serviceaccount", "deployer").CombinedOutput()
			if err != nil {
				t.Fatalf("create serviceaccount: %v\n%s", err, out)
			}
			out, err = e.kubectl(ctx, k.Path, nil, "create", "token", "deployer", "--duration=20m", "--audience=https://kubernetes.default.svc.cluster.local").Output()
			if err != nil {
				t.Fatalf("create token: %v\n%s", err, out)
			}
			// A kubeconfig holding only the token (with the admin's
			// client certificate the certificate would win, as upstream).
			saEnv := &streamEnv{kubeconfig: filepath.Join(ts.dir, "sa.kubeconfig"), dir: ts.dir}
			if err := ts.srv.PKI().WriteKubeconfig(saEnv.kubeconfig, ts.url, KubeconfigOptions{Token: strings.TrimSpace(string(out))}); err != nil {
				t.Fatal(err)
			}
			out, err = saEnv.kubectl(ctx, k.Path, nil, "get", "serviceaccounts", "-o", "name").CombinedOutput()
			if err != nil {
				t.Fatalf("get with the token: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "serviceaccount/deployer") {
				t.Errorf("get output %q", out)
			}
			rec.mu.Lock()
			name := rec.last.Name
			rec.mu.Unlock()
			if name != "system:serviceaccount:default:deployer" {
				t.Errorf("authenticated as %q", name)
			}
		})
	}
}

// TestServiceAccountAdmission creates pods with the admission on.
func TestServiceAccountAdmission(t *testing.T) {
	ts, _ := startSAServer(t, true)
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(ts.rest)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init", Image: "busybox"}},
		Containers:     []corev1.Container{{Name: "app", Image: "busybox"}},
	}}
	got, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.ServiceAccountName != "default" {
		t.Errorf("serviceAccountName %q", got.Spec.ServiceAccountName)
	}
	if len(got.Spec.Volumes) != 1 || !strings.HasPrefix(got.Spec.Volumes[0].Name, "kube-api-access-") {
		t.Fatalf("volumes %+v", got.Spec.Volumes)
	}
	for _, c := range append(got.Spec.InitContainers, got.Spec.Containers...) {
		if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/var/run/secrets/kubernetes.io/serviceaccount" || !c.VolumeMounts[0].ReadOnly {
			t.Errorf("container %s mounts %+v", c.Name, c.VolumeMounts)
		}
	}
	// The kube-root-ca.crt ConfigMap the volume reads exists.
	if _, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{}); err != nil {
		t.Error(err)
	}
	pod.Name, pod.Spec.ServiceAccountName = "ghost", "ghost"
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("pod with a missing account: %v, want 403", err)
	}
}
