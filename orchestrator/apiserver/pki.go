package apiserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names of the certificates and keys kept in the PKI directory.
const (
	CACertFile     = "ca.crt"
	CAKeyFile      = "ca.key"
	ServingCert    = "apiserver.crt"
	ServingKey     = "apiserver.key"
	AdminCertFile  = "admin.crt"
	AdminKeyFile   = "admin.key"
	certValidity   = 10 * 365 * 24 * time.Hour
	caCommonName   = "tugboat-ca"
	adminUser      = "admin"
	mastersGroup   = "system:masters"
	defaultPKIPerm = 0o600
)

// PKI is the certificate authority of a cluster, its API server serving
// certificate and the admin client certificate. [LoadOrCreatePKI] keeps
// them as PEM files in a directory so restarts keep the same identities.
type PKI struct {
	// Dir is the directory holding the PEM files.
	Dir string
	// CA is the cluster's certificate authority certificate.
	CA *x509.Certificate
	// CAPEM is CA in PEM form, for kubeconfigs.
	CAPEM []byte
	// Serving is the API server's TLS certificate.
	Serving tls.Certificate
	// AdminCertPEM and AdminKeyPEM are a client certificate for user
	// "admin" in group "system:masters", signed by the CA.
	AdminCertPEM, AdminKeyPEM []byte

	caKey crypto.Signer
}

// LoadOrCreatePKI loads the CA, serving and admin certificates from dir,
// creating whatever is missing. hosts are the DNS names and IP addresses
// the serving certificate is valid for ("localhost" and 127.0.0.1 are
// always included). A serving certificate that does not cover every host
// is re-issued from the same CA.
func LoadOrCreatePKI(dir string, hosts []string) (*PKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("apiserver: pki dir: %w", err)
	}
	p := &PKI{Dir: dir}
	caCert, caKey, err := loadPair(filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile))
	if errors.Is(err, os.ErrNotExist) {
		caCert, caKey, err = newCA()
		if err == nil {
			err = writePair(filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile), caCert, caKey)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("apiserver: CA: %w", err)
	}
	p.CA, p.caKey = caCert, caKey
	p.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw})

	hosts = append([]string{"localhost", "127.0.0.1", "::1"}, hosts...)
	sc, sk, err := loadPair(filepath.Join(dir, ServingCert), filepath.Join(dir, ServingKey))
	if err != nil || !covers(sc, hosts) || sc.CheckSignatureFrom(caCert) != nil {
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("apiserver: serving certificate: %w", err)
		}
		sc, sk, err = p.issue(pkix.Name{CommonName: "tugboat-apiserver"}, hosts, x509.ExtKeyUsageServerAuth)
		if err == nil {
			err = writePair(filepath.Join(dir, ServingCert), filepath.Join(dir, ServingKey), sc, sk)
		}
		if err != nil {
			return nil, fmt.Errorf("apiserver: serving certificate: %w", err)
		}
	}
	p.Serving, err = tls.LoadX509KeyPair(filepath.Join(dir, ServingCert), filepath.Join(dir, ServingKey))
	if err != nil {
		return nil, fmt.Errorf("apiserver: serving certificate: %w", err)
	}

	ac, ak, err := loadPair(filepath.Join(dir, AdminCertFile), filepath.Join(dir, AdminKeyFile))
	if err != nil || ac.CheckSignatureFrom(caCert) != nil {
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("apiserver: admin certificate: %w", err)
		}
		ac, ak, err = p.issue(pkix.Name{CommonName: adminUser, Organization: []string{mastersGroup}}, nil, x509.ExtKeyUsageClientAuth)
		if err == nil {
			err = writePair(filepath.Join(dir, AdminCertFile), filepath.Join(dir, AdminKeyFile), ac, ak)
		}
		if err != nil {
			return nil, fmt.Errorf("apiserver: admin certificate: %w", err)
		}
	}
	p.AdminCertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ac.Raw})
	p.AdminKeyPEM, err = keyPEM(ak)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// IssueClientCert returns a PEM certificate and key for a client
// certificate with the given user name and groups, signed by the CA. The
// API server authenticates it as that user.
func (p *PKI) IssueClientCert(user string, groups []string) (certPEM, keyPEMData []byte, err error) {
	c, k, err := p.issue(pkix.Name{CommonName: user, Organization: groups}, nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, nil, err
	}
	kp, err := keyPEM(k)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), kp, nil
}

// CertPool returns a pool holding the CA, for clients and for verifying
// client certificates.
func (p *PKI) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.CA)
	return pool
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
}

func newCA() (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: caCommonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	return c, key, err
}

func (p *PKI) issue(subject pkix.Name, hosts []string, usage x509.ExtKeyUsage) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      subject,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.CA, key.Public(), p.caKey)
	if err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	return c, key, err
}

func covers(c *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if c.VerifyHostname(h) != nil {
			return false
		}
	}
	return time.Now().Before(c.NotAfter)
}

func keyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("apiserver: marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func writePair(certPath, keyPath string, c *x509.Certificate, k crypto.Signer) error {
	kp, err := keyPEM(k)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(keyPath, kp, defaultPKIPerm); err != nil {
		return err
	}
	return writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644)
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return fmt.Errorf("apiserver: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("apiserver: write %s: %w", path, err)
	}
	return nil
}

func loadPair(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	cb, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	cblk, _ := pem.Decode(cb)
	kblk, _ := pem.Decode(kb)
	if cblk == nil || kblk == nil {
		return nil, nil, fmt.Errorf("%s or %s: no PEM data", certPath, keyPath)
	}
	c, err := x509.ParseCertificate(cblk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certPath, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kblk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("%s: not a signing key", keyPath)
	}
	return c, s, nil
}
