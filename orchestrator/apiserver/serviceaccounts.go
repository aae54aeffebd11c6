package apiserver

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/orchestrator/serviceaccount"
)

// serviceAccountAuthenticator authenticates bearer ServiceAccount tokens
// as "system:serviceaccount:<ns>:<name>" in the groups
// system:serviceaccounts, system:serviceaccounts:<ns> and
// system:authenticated.
type serviceAccountAuthenticator struct {
	iss *serviceaccount.Issuer
}

// Authenticate implements [Authenticator].
func (a serviceAccountAuthenticator) Authenticate(r *http.Request) (*UserInfo, bool, error) {
	scheme, tok, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "bearer") {
		return nil, false, nil
	}
	u, err := a.iss.Authenticate(r.Context(), strings.TrimSpace(tok))
	if errors.Is(err, serviceaccount.ErrNotServiceAccountToken) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return &UserInfo{Name: u.Name, UID: u.UID, Groups: append(u.Groups, "system:authenticated"), Extra: u.Extra}, true, nil
}

// serveToken serves POST .../serviceaccounts/<name>/token (TokenRequest).
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, info requestInfo, ns string, m mediaType) {
	if s.cfg.ServiceAccounts == nil {
		s.writeError(w, r, notFoundResource(info))
		return
	}
	var opts metav1.CreateOptions
	if err := s.decodeParams(r, &opts); err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := readBody(r, s.cfg.MaxBodyBytes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tr := &authenticationv1.TokenRequest{}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := s.codecs.decodeInto(r.Header.Get("Content-Type"), body, tr); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if tr.Name != "" && tr.Name != info.name {
		s.writeError(w, r, apierrors.NewBadRequest("the name of the TokenRequest does not match the name of the ServiceAccount on the URL"))
		return
	}
	if tr.Namespace != "" && tr.Namespace != ns {
		s.writeError(w, r, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request"))
		return
	}
	out, err := s.cfg.ServiceAccounts.CreateToken(r.Context(), ns, info.name, tr)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out.Name, out.Namespace = info.name, ns
	out.CreationTimestamp = metav1.Now()
	out.APIVersion, out.Kind = authenticationv1.SchemeGroupVersion.String(), "TokenRequest"
	s.writeObject(w, http.StatusCreated, out, mediaType{typ: m.typ})
}

// admitPod applies the ServiceAccount admission to a pod being created
// when Config.ServiceAccountAdmission is on.
func (s *Server) admitPod(r *http.Request, pod *corev1.Pod) error {
	if !s.cfg.ServiceAccountAdmission {
		return nil
	}
	return serviceaccount.Admit(r.Context(), s.st, pod)
}

// serveOpenIDConfiguration serves /.well-known/openid-configuration.
func (s *Server) serveOpenIDConfiguration(w http.ResponseWriter, r *http.Request) {
	b, err := s.cfg.ServiceAccounts.OpenIDConfiguration()
	if err != nil {
		s.writeError(w, r, apierrors.NewInternalError(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(b)
}

// serveJWKS serves /openid/v1/jwks.
func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	b, err := json.Marshal(s.cfg.ServiceAccounts.JWKS())
	if err != nil {
		s.writeError(w, r, apierrors.NewInternalError(err))
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(b)
}
