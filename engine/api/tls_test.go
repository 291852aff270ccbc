package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
)

// testCA signs certificates for the tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a certificate for 127.0.0.1 (server) or a client, with serial, as PEM.
func (ca *testCA) issue(t *testing.T, serial int64, client bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "eventops"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	// Written aside and renamed, as a renewal tool does, so a handshake never reads half.
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

func httpsClient(ca *testCA, cert *tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.pem)
	tc := &tls.Config{RootCAs: pool}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}}
}

// With tls the API serves HTTPS only; a renewed certificate is served without a restart.
func TestHTTPSAndCertificateRenewal(t *testing.T) {
	was := certReloadCheck
	certReloadCheck = 10 * time.Millisecond
	t.Cleanup(func() { certReloadCheck = was })
	dir := t.TempDir()
	ca := newTestCA(t)
	cert, key := ca.issue(t, 100, false)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeFile(t, certFile, cert)
	writeFile(t, keyFile, key)
	srv, _ := startServer(t, &config.API{TLS: &config.APITLS{Cert: certFile, Key: keyFile}}, Deps{})
	base := "https://" + srv.Addr()
	client := httpsClient(ca, nil)
	serial := func() int64 {
		resp, err := client.Get(base + "/-/healthy")
		if err != nil {
			t.Fatalf("HTTPS: %v", err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serial(); s != 100 {
		t.Fatalf("served serial %d, want 100", s)
	}
	if resp, err := http.Get("http://" + srv.Addr() + "/-/healthy"); err == nil && resp.StatusCode == 200 {
		t.Error("plain HTTP is served next to HTTPS")
	}
	writeFile(t, keyFile, []byte("not a key")) // a renewal half done: the old certificate stays
	if s := serial(); s != 100 {
		t.Errorf("with a broken key file the server presents serial %d, want the previous 100", s)
	}
	cert, key = ca.issue(t, 200, false)
	writeFile(t, certFile, cert)
	writeFile(t, keyFile, key)
	waitUntil(t, "the renewed certificate served", func() bool { return serial() == 200 })
}

// With client_ca, a client without a certificate the CA signed cannot connect.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, other := newTestCA(t), newTestCA(t)
	cert, key := ca.issue(t, 1, false)
	writeFile(t, filepath.Join(dir, "tls.crt"), cert)
	writeFile(t, filepath.Join(dir, "tls.key"), key)
	writeFile(t, filepath.Join(dir, "ca.crt"), ca.pem)
	cfg := &config.APITLS{Cert: filepath.Join(dir, "tls.crt"), Key: filepath.Join(dir, "tls.key"), ClientCA: filepath.Join(dir, "ca.crt")}
	srv, _ := startServer(t, &config.API{TLS: cfg}, Deps{})
	base := "https://" + srv.Addr() + "/-/healthy"
	clientCert := func(ca *testCA) *tls.Certificate {
		c, k := ca.issue(t, 7, true)
		pair, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return &pair
	}
	if _, err := httpsClient(ca, nil).Get(base); err == nil {
		t.Error("a client without a certificate was served")
	}
	if _, err := httpsClient(ca, clientCert(other)).Get(base); err == nil {
		t.Error("a client with a certificate of another CA was served")
	}
	resp, err := httpsClient(ca, clientCert(ca)).Get(base)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a client with a certificate of the CA: %v", err)
	}
	resp.Body.Close()
}
