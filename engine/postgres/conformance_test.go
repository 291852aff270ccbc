package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/enginetest"
	"github.com/eventops/eventops-engine/engine/postgres"
	"github.com/eventops/eventops-engine/engine/postgres/pgtest"
)

// The PostgreSQL output passes the conformance suite every output must pass, with the
// stronger promise that a retried batch leaves no duplicate rows.
func TestOutputConformance(t *testing.T) {
	enginetest.TestOutput(t, func(t *testing.T) (engine.Output, enginetest.ReadBack) {
		dsn := pgtest.DSN(t)
		out, err := postgres.NewOutput(context.Background(), &config.PostgresOutput{DSN: dsn, Table: "metrics", DedupeKey: "event_id"}, postgres.OutputOptions{Stream: "conformance"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { out.Close() })
		read := func(ctx context.Context) ([]map[string]any, error) {
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				return nil, err
			}
			defer conn.Close(ctx)
			rows, err := conn.Query(ctx, "SELECT event_id, value FROM metrics")
			if err != nil {
				return nil, err
			}
			return pgx.CollectRows(rows, pgx.RowToMap)
		}
		return out, read
	}, enginetest.ExactlyOnce())
}
