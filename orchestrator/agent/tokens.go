package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
)

// TokenRequester issues service account tokens: the TokenRequest
// subresource of a ServiceAccount (POST
// /api/v1/namespaces/{ns}/serviceaccounts/{name}/token). The agent uses it
// for serviceAccountToken sources of projected volumes.
type TokenRequester interface {
	// CreateToken issues a token for the service account per req and
	// returns req with its status (token and expiration) filled in.
	CreateToken(ctx context.Context, namespace, serviceAccount string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error)
}

// Token lifetimes, as the API server and kubelet apply them.
const (
	// minTokenExpiration is the shortest expirationSeconds a projection
	// may ask for (10 minutes).
	minTokenExpiration = 600 * time.Second
	// maxTokenRefresh is the longest a token is used before it is
	// renewed, whatever its lifetime.
	maxTokenRefresh = 24 * time.Hour
)

// cachedToken is a token written into a projected volume.
type cachedToken struct {
	token     string
	issued    time.Time
	expires   time.Time
	refreshAt time.Time
}

// tokenRefreshTime is when a token issued at issued and expiring at expires
// is renewed: at 80 % of its lifetime, or after 24 hours when that comes
// first (the kubelet's token manager's rule).
func tokenRefreshTime(issued, expires time.Time) time.Time {
	at := issued.Add(expires.Sub(issued) * 8 / 10)
	if limit := issued.Add(maxTokenRefresh); limit.Before(at) {
		at = limit
	}
	return at
}

// serviceAccountToken returns the token of a projected serviceAccountToken
// source, requesting a new one when there is none yet or the current one
// is due for refresh.
func (w *podWorker) serviceAccountToken(ctx context.Context, pod *corev1.Pod, volName string, src *corev1.ServiceAccountTokenProjection) (string, error) {
	if w.a.cfg.TokenRequester == nil {
		return "", errors.New("no token issuer is configured on this node")
	}
	exp := time.Hour // the API's default expirationSeconds
	if src.ExpirationSeconds != nil {
		exp = max(time.Duration(*src.ExpirationSeconds)*time.Second, minTokenExpiration)
	}
	key := volName + "/" + src.Path
	now := w.a.clk.Now()
	if c := w.tokens[key]; c != nil && now.Before(c.refreshAt) {
		return c.token, nil
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	secs := int64(exp / time.Second)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &secs,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	resp, err := w.a.cfg.TokenRequester.CreateToken(ctx, pod.Namespace, sa, req)
	if err != nil {
		if c := w.tokens[key]; c != nil && now.Before(c.expires) {
			// Keep the current token while it is valid; try again on the
			// next resync.
			w.event(pod, corev1.EventTypeWarning, "FailedMount", "volume %q: renewing the service account token: %v", volName, err)
			return c.token, nil
		}
		return "", fmt.Errorf("requesting a token for service account %q: %w", sa, err)
	}
	if resp == nil || resp.Status.Token == "" {
		return "", fmt.Errorf("requesting a token for service account %q: empty token", sa)
	}
	expires := resp.Status.ExpirationTimestamp.Time
	if expires.IsZero() || !expires.After(now) {
		expires = now.Add(exp)
	}
	w.tokens[key] = &cachedToken{token: resp.Status.Token, issued: now, expires: expires, refreshAt: tokenRefreshTime(now, expires)}
	return resp.Status.Token, nil
}

// tokenRefreshDue is the earliest refresh time of the pod's tokens (zero
// when it has none).
func (w *podWorker) tokenRefreshDue() time.Time {
	var first time.Time
	for _, c := range w.tokens {
		if first.IsZero() || c.refreshAt.Before(first) {
			first = c.refreshAt
		}
	}
	return first
}
