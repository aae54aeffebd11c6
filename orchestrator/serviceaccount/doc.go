// Package serviceaccount gives pods an identity towards the API server, as
// Kubernetes' ServiceAccount machinery does.
//
//   - [Issuer] issues ServiceAccount tokens (the TokenRequest API,
//     `kubectl create token`, and the projected token volume the node
//     agent writes) and verifies them: JWTs signed with an RSA or ECDSA
//     key through github.com/go-jose/go-jose/v4, carrying kube-apiserver's
//     claims (iss, sub "system:serviceaccount:<ns>:<name>", aud, exp, iat,
//     nbf, jti, and the "kubernetes.io" claim naming the namespace, the
//     ServiceAccount and the pod, secret or node the token is bound to). A
//     token stops being valid when it expires, when it is presented for
//     another audience, and when its ServiceAccount or bound object is
//     deleted (or replaced: the UIDs must match). It also provides the
//     OpenID discovery document and key set that kube-apiserver serves at
//     /.well-known/openid-configuration and /openid/v1/jwks.
//   - [Admit] is kube-apiserver's ServiceAccount admission for a new pod:
//     default spec.serviceAccountName, and the kube-api-access-xxxxx
//     projected volume mounted at /var/run/secrets/kubernetes.io/serviceaccount.
//   - What that volume needs in every namespace, the "default"
//     ServiceAccount and the kube-root-ca.crt ConfigMap, is kept there by
//     the ServiceAccount and RootCAPublisher reconcilers of
//     orchestrator/controllers, as kube-controller-manager does;
//     [EnsureNamespace] puts them in place once, for programs without
//     the controllers.
//
// The API server (orchestrator/apiserver) wires the Issuer into its
// authentication and serves the token subresource and OpenID endpoints
// when its Config.ServiceAccounts is set.
package serviceaccount
