package remote

import (
	"context"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
)

// CreateToken requests a ServiceAccount token from the API server (POST
// .../serviceaccounts/<name>/token, the TokenRequest API). It has the
// signature of serviceaccount.Issuer.CreateToken, so a node agent on
// another host uses the client where an in-process one uses the Issuer.
func (c *Client) CreateToken(ctx context.Context, namespace, serviceAccount string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
	if req == nil {
		req = &authenticationv1.TokenRequest{}
	}
	body := req.DeepCopy()
	body.APIVersion, body.Kind = authenticationv1.SchemeGroupVersion.String(), "TokenRequest"
	out := &authenticationv1.TokenRequest{}
	err := c.rc.Post().AbsPath("/api/v1/namespaces", namespace, "serviceaccounts", serviceAccount, "token").
		Body(body).Do(ctx).Into(out)
	if err != nil {
		return nil, fmt.Errorf("remote: token for %s/%s: %w", namespace, serviceAccount, err)
	}
	return out, nil
}
