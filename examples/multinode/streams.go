package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The node streaming endpoints (kubectl logs, exec, attach and
// port-forward on every node).
//
// Each node process serves orchestrator/cluster.NodeStreamHandler over
// HTTPS on its address, port 10250 (the kubelet's), and the API server
// reaches it through a cluster.NodeProxy, as kube-apiserver reaches the
// kubelet. Both ends authenticate:
//
//   - the nodes' serving certificates come from a CA of their own that
//     this process makes at start (nodeCA), which the API server trusts;
//   - the API server presents a client certificate of the cluster CA with
//     the user name streamClientUser, and a node accepts no other.

// streamClientUser is the user name of the API server's client
// certificate towards the nodes.
const streamClientUser = "tugboat-apiserver-node-client"

// nodeStreamPort is the port of every node's streaming endpoint.
const nodeStreamPort = 10250

// nodeCA issues the nodes' serving certificates.
type nodeCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// newNodeCA makes a CA for the nodes' serving certificates.
func newNodeCA() (*nodeCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tugboat-multinode-node-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("node CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("node CA: %w", err)
	}
	return &nodeCA{cert: cert, key: key}, nil
}

// pool returns a pool holding the CA.
func (ca *nodeCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue writes a serving certificate for node at ip into dir as
// stream.crt and stream.key, and returns their paths.
func (ca *nodeCA) issue(dir, node string, ip net.IP) (certPath, keyPath string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: node},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{ip},
		DNSNames:     []string{node},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return "", "", fmt.Errorf("serving certificate of %s: %w", node, err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	certPath, keyPath = filepath.Join(dir, "stream.crt"), filepath.Join(dir, "stream.key")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// streamServerTLS is a node endpoint's TLS configuration: its serving
// certificate, and client certificates required, signed by the cluster
// CA (clientCAPEM) and naming streamClientUser.
func streamServerTLS(certPath, keyPath string, clientCAPEM []byte) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("stream endpoint certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(clientCAPEM) {
		return nil, fmt.Errorf("stream endpoint: no CA certificate in the kubeconfig")
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		NextProtos:   []string{"http/1.1"}, // upgrades hijack the connection
		MinVersion:   tls.VersionTLS12,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || cs.PeerCertificates[0].Subject.CommonName != streamClientUser {
				return fmt.Errorf("stream endpoint: client is not %s", streamClientUser)
			}
			return nil
		},
	}, nil
}
