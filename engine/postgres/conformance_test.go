package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/enginetest"
	"github.com/eventops/eventops-engine/engine/postgres"
	"github.com/eventops/eventops-engine/engine/postgres/pgtest"
	"github.com/eventops/eventops-engine/engine/store/storetest"
)

// The PostgreSQL output passes the conformance suite every output must pass, with the
// stronger promise that a retried batch leaves no duplicate rows.
func TestOutputConformance(t *testing.T) {
	enginetest.TestOutput(t, func(t *testing.T) (engine.Output, enginetest.ReadBack) {
		dsn := pgtest.DSN(t)
		out, err := postgres.NewOutput(context.Background(), &postgres.Config{DSN: dsn, Table: "metrics", DedupeKey: "event_id"}, postgres.OutputOptions{Stream: "conformance"})
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

// The PostgreSQL store answers the API's routes as every store must (engine/store/storetest),
// so that a pipeline moved between PostgreSQL and the local store gets the same answers.
func TestStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		return openStoreBackend(t, pgtest.DSN(t))
	})
}

// openStoreBackend opens outputs for both built-in tables and a store on dsn. Writes are
// durable when Write returns, so there is nothing to flush; a restart is new outputs and a
// new store on the same schema.
func openStoreBackend(t *testing.T, dsn string) storetest.Backend {
	ctx := context.Background()
	outputs := map[string]engine.Output{}
	for _, table := range []string{"metrics", "alerts"} {
		out, err := postgres.NewOutput(ctx, &postgres.Config{DSN: dsn, Table: table}, postgres.OutputOptions{Stream: "storetest"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { out.Close() })
		outputs[table] = out
	}
	st, err := postgres.NewStore(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	return storetest.Backend{
		Metrics:     outputs["metrics"],
		Alerts:      outputs["alerts"],
		Store:       st,
		Reopen:      func(t *testing.T) storetest.Backend { return openStoreBackend(t, dsn) },
		ErrBadQuery: postgres.ErrBadQuery,
	}
}
