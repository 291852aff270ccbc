package api

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/enginetest"
)

func httpsClient(ca *enginetest.CA, cert *tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
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
	ca := enginetest.NewCA(t)
	cert, key := ca.Issue(t, 100, false)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	enginetest.WriteFile(t, certFile, cert)
	enginetest.WriteFile(t, keyFile, key)
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
	enginetest.WriteFile(t, keyFile, []byte("not a key")) // a renewal half done: the old certificate stays
	if s := serial(); s != 100 {
		t.Errorf("with a broken key file the server presents serial %d, want the previous 100", s)
	}
	cert, key = ca.Issue(t, 200, false)
	enginetest.WriteFile(t, certFile, cert)
	enginetest.WriteFile(t, keyFile, key)
	waitUntil(t, "the renewed certificate served", func() bool { return serial() == 200 })
}

// With client_ca, a client without a certificate the CA signed cannot connect.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, other := enginetest.NewCA(t), enginetest.NewCA(t)
	cert, key := ca.Issue(t, 1, false)
	enginetest.WriteFile(t, filepath.Join(dir, "tls.crt"), cert)
	enginetest.WriteFile(t, filepath.Join(dir, "tls.key"), key)
	enginetest.WriteFile(t, filepath.Join(dir, "ca.crt"), ca.PEM)
	cfg := &config.APITLS{Cert: filepath.Join(dir, "tls.crt"), Key: filepath.Join(dir, "tls.key"), ClientCA: filepath.Join(dir, "ca.crt")}
	srv, _ := startServer(t, &config.API{TLS: cfg}, Deps{})
	base := "https://" + srv.Addr() + "/-/healthy"
	clientCert := func(ca *enginetest.CA) *tls.Certificate {
		pair := ca.Pair(t, 7, true)
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
