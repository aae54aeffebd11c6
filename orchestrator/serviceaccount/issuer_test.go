package serviceaccount

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/store"
)

type fixture struct {
	st  store.Interface
	iss *Issuer
	now *time.Time
	sa  *corev1.ServiceAccount
	pod *corev1.Pod
}

func newFixture(t *testing.T, key crypto.Signer) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := &fixture{st: st, now: &now}
	f.iss, err = New(Config{Store: st, Key: key, Audiences: []string{"api", "other"}, Now: func() time.Time { return *f.now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(ctx, st, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ci"}}); err != nil {
		t.Fatal(err)
	}
	if f.sa, err = store.Create(ctx, st, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder", Namespace: "ci"}}); err != nil {
		t.Fatal(err)
	}
	if f.pod, err = store.Create(ctx, st, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "job-1", Namespace: "ci"},
		Spec: corev1.PodSpec{ServiceAccountName: "builder", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}); err != nil {
		t.Fatal(err)
	}
	return f
}

func ecKey(t *testing.T) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestTokenClaims checks the claim layout kube-apiserver uses.
func TestTokenClaims(t *testing.T) {
	f := newFixture(t, ecKey(t))
	tr, err := f.iss.CreateToken(context.Background(), "ci", "builder", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:      []string{"api"},
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", Name: "job-1"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tr.Status.Token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a compact JWS", tr.Status.Token)
	}
	tok, err := jwt.ParseSigned(tr.Status.Token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Headers[0].KeyID == "" {
		t.Error("no kid header")
	}
	var claims map[string]any
	if err := tok.Claims(f.iss.public, &claims); err != nil {
		t.Fatal(err)
	}
	if claims["jti"] == "" || claims["jti"] == nil {
		t.Error("no jti")
	}
	delete(claims, "jti")
	now := float64(f.now.Unix())
	want := map[string]any{
		"iss": DefaultIssuer, "sub": "system:serviceaccount:ci:builder", "aud": "api",
		"iat": now, "nbf": now, "exp": now + 3600,
		"kubernetes.io": map[string]any{
			"namespace":      "ci",
			"serviceaccount": map[string]any{"name": "builder", "uid": string(f.sa.UID)},
			"pod":            map[string]any{"name": "job-1", "uid": string(f.pod.UID)},
		},
	}
	if aud, ok := claims["aud"].([]any); ok && len(aud) == 1 {
		claims["aud"] = aud[0]
	}
	if d := cmp.Diff(want, claims); d != "" {
		t.Errorf("claims (-want +got):\n%s", d)
	}
	if got := tr.Spec.BoundObjectRef.UID; got != f.pod.UID {
		t.Errorf("bound UID %q, want %q", got, f.pod.UID)
	}
	if got, want := tr.Status.ExpirationTimestamp.Time, f.now.Add(time.Hour); !got.Equal(want) {
		t.Errorf("expiration %v, want %v", got, want)
	}
}

// TestAuthenticate covers what makes a token valid or not.
func TestAuthenticate(t *testing.T) {
	for _, key := range []struct {
		name string
		key  func(*testing.T) crypto.Signer
	}{
		{"ecdsa", ecKey},
		{"rsa", func(t *testing.T) crypto.Signer {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			return k
		}},
	} {
		t.Run(key.name, func(t *testing.T) {
			ctx := context.Background()
			signer := key.key(t)
			tests := []struct {
				name    string
				spec    authenticationv1.TokenRequestSpec
				after   func(t *testing.T, f *fixture)
				aud     []string
				wantErr error
			}{
				{name: "valid default audience"},
				{name: "valid bound", spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", Name: "job-1"}}},
				{name: "expired", after: func(_ *testing.T, f *fixture) { *f.now = f.now.Add(time.Hour + time.Second) }, wantErr: ErrInvalidToken},
				{name: "wrong audience", spec: authenticationv1.TokenRequestSpec{Audiences: []string{"vault"}}, wantErr: ErrInvalidToken},
				{name: "requested audience", spec: authenticationv1.TokenRequestSpec{Audiences: []string{"vault"}}, aud: []string{"vault"}},
				{name: "deleted service account", after: func(t *testing.T, f *fixture) {
					if err := store.Delete[*corev1.ServiceAccount](ctx, f.st, "ci", "builder", metav1.DeleteOptions{}); err != nil {
						t.Fatal(err)
					}
				}, wantErr: ErrInvalidToken},
				{name: "recreated service account", after: func(t *testing.T, f *fixture) {
					if err := store.Delete[*corev1.ServiceAccount](ctx, f.st, "ci", "builder", metav1.DeleteOptions{}); err != nil {
						t.Fatal(err)
					}
					if _, err := store.Create(ctx, f.st, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder", Namespace: "ci"}}); err != nil {
						t.Fatal(err)
					}
				}, wantErr: ErrInvalidToken},
				{name: "deleted bound pod", spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", Name: "job-1"}},
					after: func(t *testing.T, f *fixture) {
						if err := store.Delete[*corev1.Pod](ctx, f.st, "ci", "job-1", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
							t.Fatal(err)
						}
					}, wantErr: ErrInvalidToken},
				{name: "recreated bound pod", spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", Name: "job-1"}},
					after: func(t *testing.T, f *fixture) {
						if err := store.Delete[*corev1.Pod](ctx, f.st, "ci", "job-1", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
							t.Fatal(err)
						}
						p := f.pod.DeepCopy()
						p.ResourceVersion, p.UID = "", ""
						if _, err := store.Create(ctx, f.st, p); err != nil {
							t.Fatal(err)
						}
					}, wantErr: ErrInvalidToken},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					f := newFixture(t, signer)
					tr, err := f.iss.CreateToken(ctx, "ci", "builder", &authenticationv1.TokenRequest{Spec: tt.spec})
					if err != nil {
						t.Fatal(err)
					}
					if tt.after != nil {
						tt.after(t, f)
					}
					u, err := f.iss.Authenticate(ctx, tr.Status.Token, tt.aud...)
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("Authenticate error %v, want %v", err, tt.wantErr)
					}
					if err != nil {
						return
					}
					want := &User{Name: "system:serviceaccount:ci:builder", UID: string(f.sa.UID), Groups: []string{"system:serviceaccounts", "system:serviceaccounts:ci"},
						Namespace: "ci", ServiceAccount: "builder"}
					if d := cmp.Diff(want, u, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Extra" }, cmp.Ignore())); d != "" {
						t.Errorf("user (-want +got):\n%s", d)
					}
					if tt.spec.BoundObjectRef != nil && u.Extra["authentication.kubernetes.io/pod-uid"][0] != string(f.pod.UID) {
						t.Errorf("extra %v lacks the pod", u.Extra)
					}
				})
			}
		})
	}
}

// TestAuthenticateForeign checks tokens of other issuers and garbage are
// not claimed, and forged ones rejected.
func TestAuthenticateForeign(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ecKey(t))
	other, err := New(Config{Store: f.st, Key: ecKey(t), Issuer: "https://elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := other.CreateToken(ctx, "ci", "builder", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"abc", "a.b.c", tr.Status.Token} {
		if _, err := f.iss.Authenticate(ctx, tok); !errors.Is(err, ErrNotServiceAccountToken) {
			t.Errorf("Authenticate(%.20q) = %v, want ErrNotServiceAccountToken", tok, err)
		}
	}
	// Same issuer name, different key: a forgery.
	forger, err := New(Config{Store: f.st, Key: ecKey(t), Audiences: []string{"api"}})
	if err != nil {
		t.Fatal(err)
	}
	forged, err := forger.CreateToken(ctx, "ci", "builder", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.iss.Authenticate(ctx, forged.Status.Token); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("forged token: %v, want ErrInvalidToken", err)
	}
}

func TestCreateTokenErrors(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ecKey(t))
	tests := []struct {
		name string
		sa   string
		spec authenticationv1.TokenRequestSpec
		is   func(error) bool
	}{
		{"missing account", "nobody", authenticationv1.TokenRequestSpec{}, apierrors.IsNotFound},
		{"too short", "builder", authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](60)}, apierrors.IsInvalid},
		{"missing pod", "builder", authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", Name: "gone"}}, apierrors.IsNotFound},
		{"pod uid mismatch", "builder", authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", Name: "job-1", UID: "x"}}, apierrors.IsConflict},
		{"unsupported kind", "builder", authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "ConfigMap", Name: "x"}}, apierrors.IsInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.iss.CreateToken(ctx, "ci", tt.sa, &authenticationv1.TokenRequest{Spec: tt.spec})
			if !tt.is(err) {
				t.Errorf("error %v", err)
			}
		})
	}
	// Lifetimes are capped.
	tr, err := f.iss.CreateToken(ctx, "ci", "builder", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](1 << 30)}})
	if err != nil {
		t.Fatal(err)
	}
	if got := *tr.Spec.ExpirationSeconds; got != int64(DefaultMaxExpiration/time.Second) {
		t.Errorf("expirationSeconds %d, want the cap", got)
	}
}

func TestOpenIDDocuments(t *testing.T) {
	f := newFixture(t, ecKey(t))
	b, err := f.iss.OpenIDConfiguration()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"issuer": DefaultIssuer, "jwks_uri": DefaultIssuer + "/openid/v1/jwks",
		"response_types_supported": []any{"id_token"}, "subject_types_supported": []any{"public"},
		"id_token_signing_alg_values_supported": []any{"ES256"},
	}
	if d := cmp.Diff(want, doc); d != "" {
		t.Errorf("openid-configuration (-want +got):\n%s", d)
	}
	// A verifier holding only the published key set accepts our tokens.
	jb, err := json.Marshal(f.iss.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jb, &set); err != nil {
		t.Fatal(err)
	}
	tr, err := f.iss.CreateToken(context.Background(), "ci", "builder", nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(tr.Status.Token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in the key set", tok.Headers[0].KeyID)
	}
	var c jwt.Claims
	if err := tok.Claims(keys[0].Key, &c); err != nil {
		t.Fatalf("verify with published key: %v", err)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pki", "sa.key")
	k1, err := LoadOrCreateKey(p)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateKey(p)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.(*ecdsa.PrivateKey).Equal(k2) {
		t.Error("reloaded key differs")
	}
	if _, err := ParseKey([]byte("nope")); err == nil {
		t.Error("ParseKey accepted garbage")
	}
}

// FuzzAuthenticate feeds arbitrary tokens to the verifier: it must never
// panic nor accept one.
func FuzzAuthenticate(f *testing.F) {
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0.AAAA")
	f.Add("")
	st, err := store.Open(context.Background(), store.Config{})
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	iss, err := New(Config{Store: st, Key: k})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		if u, err := iss.Authenticate(context.Background(), tok); err == nil {
			t.Fatalf("accepted %q as %v", tok, u)
		}
	})
}
