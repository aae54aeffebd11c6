package apiserver

import (
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubeconfigOptions names the entries of a written kubeconfig.
type KubeconfigOptions struct {
	// Cluster, User and Context name the entries (default "tugboat",
	// "tugboat-admin", "tugboat").
	Cluster, User, Context string
	// Namespace is the context's default namespace (empty = "default").
	Namespace string
	// Token authenticates with a bearer token instead of the admin
	// client certificate.
	Token string
}

// AdminKubeconfig returns a kubeconfig for server (e.g.
// "https://127.0.0.1:6443") trusting the cluster CA and authenticating
// as the admin client certificate (or opts.Token).
func (p *PKI) AdminKubeconfig(server string, opts KubeconfigOptions) *clientcmdapi.Config {
	if opts.Cluster == "" {
		opts.Cluster = "tugboat"
	}
	if opts.User == "" {
		opts.User = "tugboat-admin"
	}
	if opts.Context == "" {
		opts.Context = "tugboat"
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[opts.Cluster] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: p.CAPEM}
	ai := &clientcmdapi.AuthInfo{}
	if opts.Token != "" {
		ai.Token = opts.Token
	} else {
		ai.ClientCertificateData = p.AdminCertPEM
		ai.ClientKeyData = p.AdminKeyPEM
	}
	cfg.AuthInfos[opts.User] = ai
	cfg.Contexts[opts.Context] = &clientcmdapi.Context{Cluster: opts.Cluster, AuthInfo: opts.User, Namespace: opts.Namespace}
	cfg.CurrentContext = opts.Context
	return cfg
}

// WriteKubeconfig writes [PKI.AdminKubeconfig] to path (mode 0600),
// merging nothing: an existing file is replaced.
func (p *PKI) WriteKubeconfig(path, server string, opts KubeconfigOptions) error {
	if err := clientcmd.WriteToFile(*p.AdminKubeconfig(server, opts), path); err != nil {
		return fmt.Errorf("apiserver: write kubeconfig: %w", err)
	}
	return nil
}
