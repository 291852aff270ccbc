package api

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/eventops/eventops-engine/config"
)

// certReloadCheck bounds how often a handshake looks at the certificate files: a renewed
// certificate (cert-manager, certbot) is served within this long, without a restart.
var certReloadCheck = time.Second

// certificates serves the API's certificate, read again when its files change.
type certificates struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string    // the files' sizes and modification times when cert was read
	checked time.Time // when the files were last looked at
	log     func(msg string, args ...any)
}

// tlsConfig is the server's TLS configuration from cfg: its certificate, read again when the
// files change, and with client_ca, client certificates required and verified (mutual TLS).
func tlsConfig(cfg *config.APITLS, warn func(msg string, args ...any)) (*tls.Config, error) {
	certs := &certificates{certFile: cfg.Cert, keyFile: cfg.Key, log: warn}
	if err := certs.load(); err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get}
	if cfg.ClientCA != "" {
		pem, err := os.ReadFile(cfg.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("api.tls.client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("api.tls.client_ca: %s holds no PEM certificate", cfg.ClientCA)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

func (c *certificates) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) >= certReloadCheck {
		c.checked = time.Now()
		if stamp := c.filesStamp(); stamp != c.stamp {
			if err := c.loadLocked(); err != nil {
				// A half-written renewal: keep serving the certificate that works.
				c.log("api: the TLS certificate files changed and do not load; serving the previous certificate", "err", err)
			}
		}
	}
	return c.cert, nil
}

func (c *certificates) load() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checked = time.Now()
	return c.loadLocked()
}

func (c *certificates) loadLocked() error {
	stamp := c.filesStamp()
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("api.tls: %w", err)
	}
	c.cert, c.stamp = &cert, stamp
	return nil
}

// filesStamp identifies the files' contents by size and modification time.
func (c *certificates) filesStamp() string {
	stamp := ""
	for _, f := range []string{c.certFile, c.keyFile} {
		if fi, err := os.Stat(f); err == nil {
			stamp += fmt.Sprintf("%d/%d;", fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return stamp
}
