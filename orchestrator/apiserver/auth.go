package apiserver

import (
	"context"
	"crypto/subtle"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// UserInfo is an authenticated identity.
type UserInfo struct {
	// Name is the user name ("admin", "system:serviceaccount:ns:name").
	Name string
	// UID is the user's identifier, when known.
	UID string
	// Groups the user belongs to.
	Groups []string
	// Extra holds further attributes (a ServiceAccount token's bound pod
	// and node, as authentication.kubernetes.io/pod-name and so on).
	Extra map[string][]string
}

// Authenticator finds who sent a request. It returns ok=false when the
// request carries no credentials it understands, and an error when it
// carries bad ones.
type Authenticator interface {
	Authenticate(r *http.Request) (user *UserInfo, ok bool, err error)
}

// Attributes describe a request for an [Authorizer].
type Attributes struct {
	User        *UserInfo
	Verb        string // get, list, watch, create, update, patch, delete, deletecollection
	Group       string
	Version     string
	Resource    string
	Subresource string
	Namespace   string
	Name        string
	// Path is set for requests that are not resource requests.
	Path string
}

// Authorizer decides whether an authenticated request may proceed. RBAC
// plugs in here later.
type Authorizer interface {
	Authorize(ctx context.Context, a Attributes) (allowed bool, reason string, err error)
}

// AllowAuthenticated is the default [Authorizer]: every authenticated user
// may do everything.
type AllowAuthenticated struct{}

// Authorize allows any request that has a user.
func (AllowAuthenticated) Authorize(_ context.Context, a Attributes) (bool, string, error) {
	if a.User == nil {
		return false, "anonymous requests are not allowed", nil
	}
	return true, "", nil
}

// TokenAuthenticator authenticates "Authorization: Bearer <token>"
// headers against a fixed token table.
type TokenAuthenticator struct {
	tokens map[string]UserInfo
}

// NewTokenAuthenticator returns an authenticator for the given tokens.
func NewTokenAuthenticator(tokens map[string]UserInfo) *TokenAuthenticator {
	cp := make(map[string]UserInfo, len(tokens))
	for k, v := range tokens {
		cp[k] = v
	}
	return &TokenAuthenticator{tokens: cp}
}

// LoadTokenFile reads a token file in kube-apiserver's --token-auth-file
// format (see [ParseTokenFile]).
func LoadTokenFile(path string) (*TokenAuthenticator, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("apiserver: token file: %w", err)
	}
	defer f.Close()
	t, err := ParseTokenFile(f)
	if err != nil {
		return nil, fmt.Errorf("apiserver: token file %s: %w", path, err)
	}
	return NewTokenAuthenticator(t), nil
}

// ParseTokenFile parses the CSV format of kube-apiserver's
// --token-auth-file: one "token,user,uid[,\"group1,group2\"]" line per
// user. Blank lines and lines starting with '#' are skipped; a line with
// fewer than three columns, an empty token or user, or a repeated token is
// an error naming its line.
func ParseTokenFile(r io.Reader) (map[string]UserInfo, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	out := map[string]UserInfo{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("token file: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) < 3 {
			return nil, fmt.Errorf("line %d: want token,user,uid[,groups], got %d columns", line, len(rec))
		}
		tok, user := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		if tok == "" || user == "" {
			return nil, fmt.Errorf("line %d: empty token or user name", line)
		}
		if _, dup := out[tok]; dup {
			return nil, fmt.Errorf("line %d: duplicate token", line)
		}
		u := UserInfo{Name: user, UID: strings.TrimSpace(rec[2])}
		if len(rec) >= 4 {
			for _, g := range strings.Split(rec[3], ",") {
				if g = strings.TrimSpace(g); g != "" {
					u.Groups = append(u.Groups, g)
				}
			}
		}
		out[tok] = u
	}
}

// Authenticate checks the bearer token.
func (t *TokenAuthenticator) Authenticate(r *http.Request) (*UserInfo, bool, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "bearer") {
		return nil, false, nil
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return nil, false, nil
	}
	for k, u := range t.tokens {
		if subtle.ConstantTimeCompare([]byte(k), []byte(tok)) == 1 {
			u := u
			u.Groups = append(append([]string(nil), u.Groups...), "system:authenticated")
			return &u, true, nil
		}
	}
	return nil, false, errors.New("invalid bearer token")
}

// CertAuthenticator authenticates TLS client certificates verified
// against the cluster CA: the common name is the user, the organizations
// its groups.
type CertAuthenticator struct{}

// Authenticate reads the verified client certificate of the connection.
func (CertAuthenticator) Authenticate(r *http.Request) (*UserInfo, bool, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil, false, nil
	}
	c := r.TLS.VerifiedChains[0][0]
	if c.Subject.CommonName == "" {
		return nil, false, errors.New("client certificate has no common name")
	}
	groups := append(append([]string(nil), c.Subject.Organization...), "system:authenticated")
	return &UserInfo{Name: c.Subject.CommonName, Groups: groups}, true, nil
}

// unionAuth tries authenticators in order.
type unionAuth []Authenticator

// Authenticate returns the first authenticator's user.
func (u unionAuth) Authenticate(r *http.Request) (*UserInfo, bool, error) {
	var firstErr error
	for _, a := range u {
		if a == nil {
			continue
		}
		user, ok, err := a.Authenticate(r)
		if ok {
			return user, true, nil
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return nil, false, firstErr
}
