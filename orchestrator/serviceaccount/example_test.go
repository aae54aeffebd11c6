package serviceaccount_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/orchestrator/serviceaccount"
	"github.com/tugboatdev/tugboat/store"
)

// Issue a token for a ServiceAccount and verify it, as `kubectl create
// token` and the API server's authentication do.
func ExampleIssuer() {
	ctx := context.Background()
	st, _ := store.Open(ctx, store.Config{})
	defer st.Close()
	_, _ = store.Create(ctx, st, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ci"}})
	_, _ = store.Create(ctx, st, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder", Namespace: "ci"}})

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // or serviceaccount.LoadOrCreateKey
	iss, err := serviceaccount.New(serviceaccount.Config{Store: st, Key: key})
	if err != nil {
		panic(err)
	}
	tr, err := iss.CreateToken(ctx, "ci", "builder", &authenticationv1.TokenRequest{})
	if err != nil {
		panic(err)
	}
	user, err := iss.Authenticate(ctx, tr.Status.Token)
	if err != nil {
		panic(err)
	}
	fmt.Println(user.Name, user.Groups)
	// Output: system:serviceaccount:ci:builder [system:serviceaccounts system:serviceaccounts:ci]
}
