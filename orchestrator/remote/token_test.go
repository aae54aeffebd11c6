package remote_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/orchestrator/apiserver"
	"github.com/tugboatdev/tugboat/orchestrator/remote"
	"github.com/tugboatdev/tugboat/orchestrator/serviceaccount"
	"github.com/tugboatdev/tugboat/store"
)

// tokenCreator is what a node agent needs to fill projected token
// volumes; the Issuer and the remote client both provide it.
type tokenCreator interface {
	CreateToken(ctx context.Context, namespace, serviceAccount string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error)
}

var (
	_ tokenCreator = (*serviceaccount.Issuer)(nil)
	_ tokenCreator = (*remote.Client)(nil)
)

// TestCreateToken requests a pod-bound token through the API server and
// verifies it with the server's issuer.
func TestCreateToken(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := openStore(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := serviceaccount.New(serviceaccount.Config{Store: st, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	c := serveConfig(t, apiserver.Config{Store: st, ServiceAccounts: iss})
	if _, err := store.Create(ctx, st, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "default"}}); err != nil {
		t.Fatal(err)
	}
	pod, err := store.Create(ctx, st, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"},
		Spec: corev1.PodSpec{ServiceAccountName: "app", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}})
	if err != nil {
		t.Fatal(err)
	}
	secs := int64(3607)
	tr, err := c.CreateToken(ctx, "default", "app", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &secs,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "p", UID: pod.UID},
	}})
	if err != nil {
		t.Fatal(err)
	}
	u, err := iss.Authenticate(ctx, tr.Status.Token)
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "system:serviceaccount:default:app" || u.Extra["authentication.kubernetes.io/pod-name"][0] != "p" {
		t.Errorf("token speaks for %+v", u)
	}
	if _, err := c.CreateToken(ctx, "default", "nobody", nil); !apierrors.IsNotFound(err) {
		t.Errorf("token for a missing account: %v, want 404", err)
	}
}
