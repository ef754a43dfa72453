package testbed

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/safefile"
)

const cryptoSHA256 = crypto.SHA256

// Files the test bed keeps in its directory.
const (
	caFileName         = "ca.pem"
	caKeyFileName      = "ca-key.pem"
	serverCertFileName = "server.pem"
	serverKeyFileName  = "server-key.pem"
	signingKeyFileName = "signing-key.pem"
	adminTokenFileName = "admin-token"
	// InfoFileName is the JSON file describing a running test bed (issuer,
	// storage URL, CA file, admin URL), written in Dir.
	InfoFileName = "testbed.json"
)

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// newJTI returns a random UUID (version 4).
func newJTI() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// readPrivate reads a file that must be private to us. A missing file
// returns (nil, nil).
func readPrivate(path string) ([]byte, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &helper.Error{Kind: helper.KindUnsafe, Msg: path + " is not a regular file", Fix: "remove it; the test bed creates a new one"}
	}
	if uid, ok := safefile.Owner(fi); ok && uid != os.Geteuid() {
		return nil, &helper.Error{Kind: helper.KindUnsafe, Msg: path + " belongs to another user", Fix: "use a --dir of your own"}
	}
	if !safefile.Private(fi) {
		return nil, &helper.Error{Kind: helper.KindUnsafe, Msg: path + " is readable by others", Fix: "run: chmod 600 " + path}
	}
	return os.ReadFile(path)
}

func parsePKCS8(data []byte, path string) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, &helper.Error{Kind: helper.KindConfig, Msg: path + " holds no PEM private key", Fix: "remove it; the test bed creates a new one"}
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, &helper.Error{Kind: helper.KindConfig, Msg: path + " holds an unreadable private key", Err: err, Fix: "remove it; the test bed creates a new one"}
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, &helper.Error{Kind: helper.KindConfig, Msg: path + " holds an unsupported key type", Fix: "remove it"}
	}
	return s, nil
}

func writeKey(path string, k crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	return safefile.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// loadOrCreateSigningKey reuses dir/signing-key.pem or creates it.
func loadOrCreateSigningKey(dir string) (*signingKey, error) {
	path := filepath.Join(dir, signingKeyFileName)
	data, err := readPrivate(path)
	if err != nil {
		return nil, err
	}
	var k *rsa.PrivateKey
	if data != nil {
		s, err := parsePKCS8(data, path)
		if err != nil {
			return nil, err
		}
		rk, ok := s.(*rsa.PrivateKey)
		if !ok {
			return nil, &helper.Error{Kind: helper.KindConfig, Msg: path + " is not an RSA key (RS256 needs one)", Fix: "remove it; the test bed creates a new one"}
		}
		k = rk
	} else {
		k, err = rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		if err := writeKey(path, k); err != nil {
			return nil, helper.Wrap(helper.KindInternal, err, "cannot write the signing key in "+dir)
		}
	}
	id, err := keyID(k)
	if err != nil {
		return nil, err
	}
	return &signingKey{id: id, key: k}, nil
}

// foreignSigner signs with a throwaway key under the given kid.
func foreignSigner(kid string) (jose.Signer, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return newSigner(&signingKey{id: kid, key: k})
}

// pki is the test bed's certificate authority and server certificate.
type pki struct {
	caPEM  []byte
	caPool *x509.CertPool
	server tls.Certificate
}

// loadOrCreatePKI reuses dir/ca.pem + ca-key.pem or creates them, then
// issues a fresh server certificate for localhost, 127.0.0.1, ::1 and the
// extra hosts, and writes ca.pem, server.pem and server-key.pem.
func loadOrCreatePKI(dir string, hosts []string) (*pki, error) {
	caPath := filepath.Join(dir, caFileName)
	caKeyPath := filepath.Join(dir, caKeyFileName)
	keyData, err := readPrivate(caKeyPath)
	if err != nil {
		return nil, err
	}
	var caCert *x509.Certificate
	var caKey crypto.Signer
	if keyData != nil {
		caKey, err = parsePKCS8(keyData, caKeyPath)
		if err != nil {
			return nil, err
		}
		certData, err := os.ReadFile(caPath)
		if err != nil {
			return nil, &helper.Error{Kind: helper.KindConfig, Msg: "found " + caKeyPath + " but cannot read " + caPath, Err: err, Fix: "remove " + caKeyPath + " to get a new CA"}
		}
		block, _ := pem.Decode(certData)
		if block == nil {
			return nil, &helper.Error{Kind: helper.KindConfig, Msg: caPath + " holds no PEM certificate", Fix: "remove " + caPath + " and " + caKeyPath + " to get a new CA"}
		}
		caCert, err = x509.ParseCertificate(block.Bytes)
		if err != nil || !caCert.IsCA || time.Now().After(caCert.NotAfter) {
			return nil, &helper.Error{Kind: helper.KindConfig, Msg: caPath + " is not a usable CA certificate (unreadable, not a CA, or expired)", Fix: "remove " + caPath + " and " + caKeyPath + " to get a new CA"}
		}
	} else {
		caCert, caKey, err = newCA()
		if err != nil {
			return nil, err
		}
		if err := writeKey(caKeyPath, caKey); err != nil {
			return nil, helper.Wrap(helper.KindInternal, err, "cannot write the CA key in "+dir)
		}
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw})
	if err := safefile.WriteFile(caPath, caPEM, 0o644); err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, "cannot write "+caPath)
	}
	server, serverKey, err := newServerCert(caCert, caKey, hosts)
	if err != nil {
		return nil, err
	}
	serverPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Raw})
	if err := safefile.WriteFile(filepath.Join(dir, serverCertFileName), append(serverPEM, caPEM...), 0o644); err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, "cannot write the server certificate in "+dir)
	}
	if err := writeKey(filepath.Join(dir, serverKeyFileName), serverKey); err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, "cannot write the server key in "+dir)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &pki{
		caPEM:  caPEM,
		caPool: pool,
		server: tls.Certificate{Certificate: [][]byte{server.Raw, caCert.Raw}, PrivateKey: serverKey, Leaf: server},
	}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func newCA() (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"tokenhelper test bed"}, CommonName: "tokenhelper test bed CA " + host},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func newServerCert(ca *x509.Certificate, caKey crypto.Signer, hosts []string) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"tokenhelper test bed"}, CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if !ip.IsUnspecified() {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
			continue
		}
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// loadOrCreateAdminToken reuses dir/admin-token or creates it.
func loadOrCreateAdminToken(dir string) (string, error) {
	path := filepath.Join(dir, adminTokenFileName)
	data, err := readPrivate(path)
	if err != nil {
		return "", err
	}
	if tok := string(bytes.TrimSpace(data)); tok != "" {
		return tok, nil
	}
	tok := randomToken(32)
	if err := safefile.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", helper.Wrap(helper.KindInternal, err, "cannot write "+path)
	}
	return tok, nil
}
