package postgres_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine/enginetest"
	"github.com/eventops/eventops-engine/engine/postgres"
	"github.com/eventops/eventops-engine/engine/postgres/pgtest"
)

// dsnWith is the test server's DSN with query parameters set.
func dsnWith(t *testing.T, params map[string]string) string {
	t.Helper()
	pgtest.DSN(t) // skips (or fails under CI) when no server is reachable
	u, err := url.Parse(pgtest.BaseDSN())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// sslmode in the DSN reaches the server: with require the connection is encrypted.
func TestSSLModeRequireEncrypts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dsn := dsnWith(t, map[string]string{"sslmode": "require"})
	p, err := postgres.Pool(ctx, dsn)
	if err != nil {
		if strings.Contains(err.Error(), "server refused TLS") {
			t.Skipf("the test server has ssl off (%v): sslmode=require cannot be checked here", err)
		}
		t.Fatal(err)
	}
	defer postgres.ClosePool(dsn)
	var ssl bool
	if err := p.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
		t.Errorf("sslmode=require: the connection is not encrypted (%v)", err)
	}
}

// sslmode=verify-full with a root certificate that did not sign the server's refuses to
// connect, saying why, without the DSN's password.
func TestVerifyFullRefusesAServerItCannotVerify(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root.crt")
	enginetest.WriteFile(t, root, enginetest.NewCA(t).PEM) // a CA that signed nothing of the server's
	dsn := dsnWith(t, map[string]string{"sslmode": "verify-full", "sslrootcert": root, "password": "hunter2-secret"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := postgres.Pool(ctx, dsn)
	if err == nil {
		postgres.ClosePool(dsn)
		_ = p
		t.Fatal("connected to a server whose certificate the given root did not sign")
	}
	if strings.Contains(err.Error(), "server refused TLS") {
		t.Skipf("the test server has ssl off: %v", err)
	}
	if !strings.Contains(err.Error(), "certificate") || strings.Contains(err.Error(), "hunter2-secret") {
		t.Errorf("error %q: want it to name the certificate, and not the password", err)
	}
}

// A password file (the DSN's passfile, as libpq's) is what the engine connects with: a DSN
// in the pipeline file needs no password written in it.
func TestAPasswordFileGivesThePassword(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pgpass")
	if err := os.WriteFile(file, []byte("*:*:*:*:from-the-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dsn := dsnWith(t, map[string]string{"passfile": file})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := postgres.Pool(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer postgres.ClosePool(dsn)
	if got := p.Config().ConnConfig.Password; got != "from-the-file" {
		t.Errorf("the pool connects with password %q, want the file's", got)
	}
}
