// Package pgtest gives integration tests a private, empty PostgreSQL schema.
//
// Tests read the server from EVENTOPS_TEST_PG (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable). When the server cannot be
// reached the test is skipped with a note on how to enable it, except under CI=true, where
// a missing database is a failure rather than a silently smaller test run.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventops/eventops-engine/engine/postgres"
)

// DefaultDSN is the server tests use when EVENTOPS_TEST_PG is not set.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// BaseDSN returns the server DSN tests use, without a schema of their own.
func BaseDSN() string {
	if dsn := os.Getenv("EVENTOPS_TEST_PG"); dsn != "" {
		return dsn
	}
	return DefaultDSN
}

// DSN creates a fresh schema t_<random> and returns a DSN whose search_path is that schema,
// so that tables the test creates (and the engine's built-in tables) land in it. At the end
// of the test the shared pool for the DSN is closed and the schema is dropped.
func DSN(t testing.TB) string {
	t.Helper()
	base := BaseDSN()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		msg := fmt.Sprintf("PostgreSQL is not reachable (%v); set EVENTOPS_TEST_PG to a DSN of a server where the tests may create schemas (default %s), e.g. start one with `pg_ctlcluster --skip-systemctl-redirect 15 main start`", err, DefaultDSN)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	defer conn.Close(context.Background())

	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("pgtest: create schema: %v", err)
	}
	dsn, err := withSearchPath(base, schema)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		postgres.ClosePool(dsn)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("pgtest: drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		// A connection left inside a transaction would make DROP wait forever; give up instead.
		if _, err := conn.Exec(ctx, "SET lock_timeout = '5s'"); err == nil {
			_, err = conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			if err != nil {
				t.Logf("pgtest: drop schema %s: %v", schema, err)
			}
		}
	})
	return dsn
}

// withSearchPath adds search_path to a URL or keyword/value DSN.
func withSearchPath(dsn, schema string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse EVENTOPS_TEST_PG: %w", err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return dsn + " search_path=" + schema, nil
}
