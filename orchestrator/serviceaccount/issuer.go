package serviceaccount

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tugboatdev/tugboat/store"
)

// Defaults, as kube-apiserver's.
const (
	// DefaultIssuer is the "iss" of tokens when Config.Issuer is empty.
	DefaultIssuer = "https://kubernetes.default.svc.cluster.local"
	// DefaultExpiration is the lifetime of a token whose request names
	// none (one hour).
	DefaultExpiration = time.Hour
	// MinExpiration is the shortest lifetime a TokenRequest may ask for.
	MinExpiration = 10 * time.Minute
	// DefaultMaxExpiration caps requested lifetimes (24 hours).
	DefaultMaxExpiration = 24 * time.Hour
)

// Group names of ServiceAccount users.
const (
	// AllServiceAccountsGroup holds every ServiceAccount user.
	AllServiceAccountsGroup = "system:serviceaccounts"
	// UserPrefix starts every ServiceAccount user name.
	UserPrefix = "system:serviceaccount:"
)

// UserName is the user name of a ServiceAccount:
// "system:serviceaccount:<namespace>:<name>".
func UserName(namespace, name string) string { return UserPrefix + namespace + ":" + name }

// Groups are the groups of a ServiceAccount user: system:serviceaccounts
// and system:serviceaccounts:<namespace>.
func Groups(namespace string) []string {
	return []string{AllServiceAccountsGroup, AllServiceAccountsGroup + ":" + namespace}
}

// Config configures an [Issuer].
type Config struct {
	// Store holds the ServiceAccounts, Pods and Secrets tokens are bound
	// to. Required.
	Store store.Interface
	// Key signs tokens: an *rsa.PrivateKey (RS256) or *ecdsa.PrivateKey
	// (ES256/ES384/ES512). Required; see [LoadOrCreateKey].
	Key crypto.Signer
	// Issuer is the "iss" claim and the OpenID issuer URL (default
	// [DefaultIssuer]).
	Issuer string
	// Audiences are the audiences the API server accepts, and the default
	// audiences of a token (default: the issuer).
	Audiences []string
	// MaxExpiration caps token lifetimes (default [DefaultMaxExpiration]).
	MaxExpiration time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Issuer issues and verifies ServiceAccount tokens: JWTs with the claims
// kube-apiserver puts in them (iss, sub, aud, exp, iat, nbf, jti and the
// private "kubernetes.io" claim naming the namespace, the ServiceAccount
// and the object the token is bound to).
type Issuer struct {
	cfg    Config
	alg    jose.SignatureAlgorithm
	kid    string
	signer jose.Signer
	public crypto.PublicKey
}

// New returns an Issuer.
func New(cfg Config) (*Issuer, error) {
	if cfg.Store == nil || cfg.Key == nil {
		return nil, errors.New("serviceaccount: Config.Store and Config.Key are required")
	}
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if len(cfg.Audiences) == 0 {
		cfg.Audiences = []string{cfg.Issuer}
	}
	if cfg.MaxExpiration <= 0 {
		cfg.MaxExpiration = DefaultMaxExpiration
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	alg, err := algorithm(cfg.Key)
	if err != nil {
		return nil, err
	}
	kid, err := keyID(cfg.Key.Public())
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: cfg.Key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("serviceaccount: signer: %w", err)
	}
	return &Issuer{cfg: cfg, alg: alg, kid: kid, signer: signer, public: cfg.Key.Public()}, nil
}

func algorithm(k crypto.Signer) (jose.SignatureAlgorithm, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return jose.RS256, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		case elliptic.P521():
			return jose.ES512, nil
		}
	}
	return "", fmt.Errorf("serviceaccount: unsupported key type %T (want RSA or ECDSA)", k)
}

// keyID is the "kid" kube-apiserver gives a key: the unpadded base64url
// SHA-256 of its DER public key.
func keyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("serviceaccount: key id: %w", err)
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// Issuer returns the issuer URL ("iss").
func (i *Issuer) Issuer() string { return i.cfg.Issuer }

// Audiences returns the accepted audiences.
func (i *Issuer) Audiences() []string { return slices.Clone(i.cfg.Audiences) }

// privateClaims is the "kubernetes.io" claim.
type privateClaims struct {
	Kubernetes kubernetesClaim `json:"kubernetes.io"`
}

type kubernetesClaim struct {
	Namespace      string `json:"namespace"`
	ServiceAccount ref    `json:"serviceaccount"`
	Pod            *ref   `json:"pod,omitempty"`
	Secret         *ref   `json:"secret,omitempty"`
	Node           *ref   `json:"node,omitempty"`
}

type ref struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// CreateToken serves a TokenRequest for serviceAccount in namespace: it
// checks the ServiceAccount and the bound object (a Pod, Secret or Node
// whose UID, when given, must match) exist, and returns req with
// status.token and status.expirationTimestamp set. Errors are API
// status errors (404 for a missing ServiceAccount or bound object, 422
// for an invalid request).
func (i *Issuer) CreateToken(ctx context.Context, namespace, serviceAccount string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
	if req == nil {
		req = &authenticationv1.TokenRequest{}
	}
	out := req.DeepCopy()
	sa, err := store.Get[*corev1.ServiceAccount](ctx, i.cfg.Store, namespace, serviceAccount)
	if err != nil {
		return nil, err
	}
	exp := DefaultExpiration
	if out.Spec.ExpirationSeconds != nil {
		exp = time.Duration(*out.Spec.ExpirationSeconds) * time.Second
	}
	if exp < MinExpiration {
		return nil, invalid(serviceAccount, "spec.expirationSeconds", *out.Spec.ExpirationSeconds, "may not specify a duration less than 10 minutes")
	}
	if exp > i.cfg.MaxExpiration {
		exp = i.cfg.MaxExpiration
	}
	secs := int64(exp / time.Second)
	out.Spec.ExpirationSeconds = &secs
	if len(out.Spec.Audiences) == 0 {
		out.Spec.Audiences = slices.Clone(i.cfg.Audiences)
	}
	pc := privateClaims{Kubernetes: kubernetesClaim{Namespace: namespace, ServiceAccount: ref{Name: sa.Name, UID: string(sa.UID)}}}
	if b := out.Spec.BoundObjectRef; b != nil {
		r, err := i.bound(ctx, namespace, serviceAccount, b, &pc.Kubernetes)
		if err != nil {
			return nil, err
		}
		b.UID = types.UID(r.UID)
		if b.APIVersion == "" {
			b.APIVersion = "v1"
		}
	}
	now := i.cfg.Now()
	expires := now.Add(exp)
	std := jwt.Claims{
		Issuer:    i.cfg.Issuer,
		Subject:   UserName(namespace, serviceAccount),
		Audience:  jwt.Audience(out.Spec.Audiences),
		Expiry:    jwt.NewNumericDate(expires),
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ID:        uuid.NewString(),
	}
	token, err := jwt.Signed(i.signer).Claims(std).Claims(pc).Serialize()
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("serviceaccount: sign: %w", err))
	}
	out.Status = authenticationv1.TokenRequestStatus{Token: token, ExpirationTimestamp: metav1.NewTime(expires.Truncate(time.Second))}
	return out, nil
}

// bound checks the object a token is bound to and records it in claims.
func (i *Issuer) bound(ctx context.Context, ns, sa string, b *authenticationv1.BoundObjectReference, c *kubernetesClaim) (*ref, error) {
	var (
		meta metav1.Object
		err  error
	)
	switch {
	case b.Kind == "Pod" && (b.APIVersion == "" || b.APIVersion == "v1"):
		var p *corev1.Pod
		p, err = store.Get[*corev1.Pod](ctx, i.cfg.Store, ns, b.Name)
		if err == nil {
			if p.Spec.ServiceAccountName != "" && p.Spec.ServiceAccountName != sa {
				return nil, apierrors.NewBadRequest(fmt.Sprintf("cannot bind token for serviceaccount %q to pod running with different serviceaccount name.", sa))
			}
			meta = p
			c.Pod = &ref{Name: p.Name, UID: string(p.UID)}
			if p.Spec.NodeName != "" {
				if n, err := store.Get[*corev1.Node](ctx, i.cfg.Store, "", p.Spec.NodeName); err == nil {
					c.Node = &ref{Name: n.Name, UID: string(n.UID)}
				}
			}
		}
	case b.Kind == "Secret" && (b.APIVersion == "" || b.APIVersion == "v1"):
		var s *corev1.Secret
		s, err = store.Get[*corev1.Secret](ctx, i.cfg.Store, ns, b.Name)
		if err == nil {
			meta = s
			c.Secret = &ref{Name: s.Name, UID: string(s.UID)}
		}
	case b.Kind == "Node" && (b.APIVersion == "" || b.APIVersion == "v1"):
		var n *corev1.Node
		n, err = store.Get[*corev1.Node](ctx, i.cfg.Store, "", b.Name)
		if err == nil {
			meta = n
			c.Node = &ref{Name: n.Name, UID: string(n.UID)}
		}
	default:
		return nil, invalid(sa, "spec.boundObjectRef.kind", b.Kind, `supported values: "Pod", "Secret", "Node"`)
	}
	if err != nil {
		return nil, err
	}
	if b.UID != "" && b.UID != meta.GetUID() {
		return nil, apierrors.NewConflict(schema.GroupResource{Resource: strings.ToLower(b.Kind) + "s"}, b.Name,
			fmt.Errorf("the UID in the bound object reference (%s) does not match the UID in record. The object might have been deleted and then recreated", b.UID))
	}
	return &ref{Name: meta.GetName(), UID: string(meta.GetUID())}, nil
}

func invalid(name, path string, value any, msg string) error {
	parts := strings.Split(path, ".")
	return apierrors.NewInvalid(schema.GroupKind{Group: "authentication.k8s.io", Kind: "TokenRequest"}, name,
		field.ErrorList{field.Invalid(field.NewPath(parts[0], parts[1:]...), value, msg)})
}

// User is who a verified token speaks for.
type User struct {
	// Name is "system:serviceaccount:<namespace>:<name>".
	Name string
	// UID is the ServiceAccount's UID.
	UID string
	// Groups are system:serviceaccounts and system:serviceaccounts:<ns>.
	Groups []string
	// Extra carries the bound pod and node as kube-apiserver does
	// (authentication.kubernetes.io/pod-name, pod-uid, node-name,
	// node-uid, credential-id).
	Extra map[string][]string
	// Namespace and ServiceAccount name the account.
	Namespace, ServiceAccount string
}

// Verification errors.
var (
	// ErrNotServiceAccountToken means the token is not a JWT of this
	// issuer: another authenticator may know it.
	ErrNotServiceAccountToken = errors.New("serviceaccount: not a service account token of this issuer")
	// ErrInvalidToken means the token is this issuer's but is not valid
	// (bad signature, expired, wrong audience, deleted or replaced
	// ServiceAccount or bound object).
	ErrInvalidToken = errors.New("serviceaccount: invalid token")
)

// Authenticate verifies a token: its signature, issuer, time window and
// audience (one of audiences, or of the issuer's audiences when none are
// given), and that the ServiceAccount and the bound object still exist
// with the UIDs the token names. It returns [ErrNotServiceAccountToken]
// (wrapped) for tokens that are not this issuer's JWTs and
// [ErrInvalidToken] (wrapped) for rejected ones.
func (i *Issuer) Authenticate(ctx context.Context, token string, audiences ...string) (*User, error) {
	if strings.Count(token, ".") != 2 {
		return nil, ErrNotServiceAccountToken
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{i.alg})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotServiceAccountToken, err)
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil || unverified.Issuer != i.cfg.Issuer {
		return nil, ErrNotServiceAccountToken
	}
	var std jwt.Claims
	var pc privateClaims
	if err := tok.Claims(i.public, &std, &pc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: i.cfg.Issuer, Time: i.cfg.Now()}, 0); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if len(audiences) == 0 {
		audiences = i.cfg.Audiences
	}
	if !slices.ContainsFunc(audiences, std.Audience.Contains) {
		return nil, fmt.Errorf("%w: token audiences %q do not include %q", ErrInvalidToken, []string(std.Audience), audiences)
	}
	k := pc.Kubernetes
	if k.Namespace == "" || k.ServiceAccount.Name == "" || std.Subject != UserName(k.Namespace, k.ServiceAccount.Name) {
		return nil, fmt.Errorf("%w: malformed kubernetes.io claim", ErrInvalidToken)
	}
	sa, err := store.Get[*corev1.ServiceAccount](ctx, i.cfg.Store, k.Namespace, k.ServiceAccount.Name)
	if err != nil {
		return nil, fmt.Errorf("%w: service account %s/%s: %w", ErrInvalidToken, k.Namespace, k.ServiceAccount.Name, err)
	}
	if string(sa.UID) != k.ServiceAccount.UID {
		return nil, fmt.Errorf("%w: service account UID (%s) does not match claim (%s)", ErrInvalidToken, sa.UID, k.ServiceAccount.UID)
	}
	u := &User{Name: std.Subject, UID: string(sa.UID), Groups: Groups(k.Namespace), Namespace: k.Namespace, ServiceAccount: sa.Name,
		Extra: map[string][]string{"authentication.kubernetes.io/credential-id": {"JTI=" + std.ID}}}
	if k.Pod != nil {
		p, err := store.Get[*corev1.Pod](ctx, i.cfg.Store, k.Namespace, k.Pod.Name)
		if err != nil {
			return nil, fmt.Errorf("%w: pod %s/%s: %w", ErrInvalidToken, k.Namespace, k.Pod.Name, err)
		}
		if string(p.UID) != k.Pod.UID {
			return nil, fmt.Errorf("%w: pod UID (%s) does not match claim (%s)", ErrInvalidToken, p.UID, k.Pod.UID)
		}
		if p.DeletionTimestamp != nil && p.DeletionTimestamp.Time.Before(i.cfg.Now()) {
			return nil, fmt.Errorf("%w: pod %s/%s is being deleted", ErrInvalidToken, k.Namespace, p.Name)
		}
		u.Extra["authentication.kubernetes.io/pod-name"] = []string{p.Name}
		u.Extra["authentication.kubernetes.io/pod-uid"] = []string{string(p.UID)}
	}
	if k.Secret != nil {
		s, err := store.Get[*corev1.Secret](ctx, i.cfg.Store, k.Namespace, k.Secret.Name)
		if err != nil {
			return nil, fmt.Errorf("%w: secret %s/%s: %w", ErrInvalidToken, k.Namespace, k.Secret.Name, err)
		}
		if string(s.UID) != k.Secret.UID {
			return nil, fmt.Errorf("%w: secret UID (%s) does not match claim (%s)", ErrInvalidToken, s.UID, k.Secret.UID)
		}
	}
	if k.Node != nil {
		u.Extra["authentication.kubernetes.io/node-name"] = []string{k.Node.Name}
		u.Extra["authentication.kubernetes.io/node-uid"] = []string{k.Node.UID}
		if k.Pod == nil { // bound to the node itself
			n, err := store.Get[*corev1.Node](ctx, i.cfg.Store, "", k.Node.Name)
			if err != nil {
				return nil, fmt.Errorf("%w: node %s: %w", ErrInvalidToken, k.Node.Name, err)
			}
			if string(n.UID) != k.Node.UID {
				return nil, fmt.Errorf("%w: node UID (%s) does not match claim (%s)", ErrInvalidToken, n.UID, k.Node.UID)
			}
		}
	}
	return u, nil
}

// JWKS returns the public key set of /openid/v1/jwks.
func (i *Issuer) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: i.public, KeyID: i.kid, Algorithm: string(i.alg), Use: "sig"}}}
}

// JWKSURI is the path of the key set in the API server.
const JWKSURI = "/openid/v1/jwks"

// DiscoveryPath is the path of the OpenID provider configuration.
const DiscoveryPath = "/.well-known/openid-configuration"

// OpenIDConfiguration returns the document served at
// /.well-known/openid-configuration, as kube-apiserver's.
func (i *Issuer) OpenIDConfiguration() ([]byte, error) {
	doc := struct {
		Issuer        string   `json:"issuer"`
		JWKSURI       string   `json:"jwks_uri"`
		ResponseTypes []string `json:"response_types_supported"`
		SubjectTypes  []string `json:"subject_types_supported"`
		SigningAlgs   []string `json:"id_token_signing_alg_values_supported"`
	}{
		Issuer:        i.cfg.Issuer,
		JWKSURI:       strings.TrimSuffix(i.cfg.Issuer, "/") + JWKSURI,
		ResponseTypes: []string{"id_token"},
		SubjectTypes:  []string{"public"},
		SigningAlgs:   []string{string(i.alg)},
	}
	return json.Marshal(doc)
}

// LoadOrCreateKey reads a PEM private key (PKCS#8, PKCS#1 RSA or SEC 1
// EC) from path, or creates an ECDSA P-256 key there (mode 0600) when the
// file does not exist.
func LoadOrCreateKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("serviceaccount: generate key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("serviceaccount: marshal key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("serviceaccount: %w", err)
		}
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, fmt.Errorf("serviceaccount: %w", err)
		}
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("serviceaccount: %w", err)
	}
	return ParseKey(b)
}

// ParseKey parses a PEM private key (PKCS#8, PKCS#1 RSA or SEC 1 EC).
func ParseKey(pemBytes []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(pemBytes)
	if blk == nil {
		return nil, errors.New("serviceaccount: no PEM block in key")
	}
	if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
		return nil, fmt.Errorf("serviceaccount: unsupported key type %T", k)
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("serviceaccount: unrecognised private key (want PKCS#8, PKCS#1 or SEC 1 PEM)")
}
