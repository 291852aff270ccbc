package pgtest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/eventops/eventops-engine/engine/postgres/pgtest"
)

func TestDSNGivesEachTestItsOwnSchema(t *testing.T) {
	var schemas [2]string
	for i := range schemas {
		t.Run("test", func(t *testing.T) {
			dsn := pgtest.DSN(t)
			conn, err := pgx.Connect(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			if _, err := conn.Exec(context.Background(), "CREATE TABLE metrics (x int)"); err != nil {
				t.Fatalf("a fresh schema must not have a metrics table yet: %v", err)
			}
			if err := conn.QueryRow(context.Background(), "SELECT current_schema()").Scan(&schemas[i]); err != nil {
				t.Fatal(err)
			}
		})
	}
	if schemas[0] == schemas[1] || schemas[0] == "public" {
		t.Fatalf("schemas = %v, want two distinct private schemas", schemas)
	}
	conn, err := pgx.Connect(context.Background(), pgtest.BaseDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var left int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_namespace WHERE nspname = ANY($1)", schemas[:]).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d test schemas survived their tests", left)
	}
}
