package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/enginetest"
	"github.com/eventops/eventops-engine/engine/postgres"
	"github.com/eventops/eventops-engine/engine/postgres/pgtest"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

// A batch large enough to be written over several connections at once still gives exactly
// one row per event: duplicates inside the batch, a redelivery of the whole batch, and
// records that cannot be converted (rejected, the rest written).
func TestParallelWriteIsEffectivelyOnce(t *testing.T) {
	dsn := pgtest.DSN(t)
	metrics := telemetry.New()
	out, err := postgres.NewOutput(context.Background(), &postgres.Config{DSN: dsn, Table: "metrics", DedupeKey: "event_id"},
		postgres.OutputOptions{Stream: "parallel", Parallel: 3, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	const n = 6000
	batch := enginetest.Events(0, n)
	// 50 events appear twice in the batch (an upstream replay), 7 have a bad timestamp.
	for i := 0; i < 50; i++ {
		batch = append(batch, enginetest.Event(i*97))
	}
	bad := map[*engine.Record]bool{}
	for i := 0; i < 7; i++ {
		r := enginetest.Event(n + i)
		r.Value["ts_event"] = "not a time"
		bad[r] = true
		batch = append(batch, r)
	}
	for attempt := 1; attempt <= 2; attempt++ {
		var rejects engine.Rejects
		if err := out.Write(context.Background(), batch, &rejects); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
		if rejects.Len() != len(bad) {
			t.Fatalf("attempt %d: %d rejects, want the %d bad records", attempt, rejects.Len(), len(bad))
		}
		for _, it := range rejects.Items {
			if !bad[it.Record] {
				t.Fatalf("attempt %d: good record rejected: %v", attempt, it.Err)
			}
		}
	}
	// Every skip is counted: the 50 in-batch duplicates the first time, the whole batch the second.
	if got := testutil.ToFloat64(metrics.SinkDuplicates.WithLabelValues("parallel", "metrics")); got != 50+n+50 {
		t.Errorf("skipped-duplicates counter = %v, want %d", got, 50+n+50)
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rows, distinct int
	if err := conn.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT event_id) FROM metrics").Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != n || distinct != n {
		t.Fatalf("%d rows, %d distinct after a parallel write and its redelivery; want %d", rows, distinct, n)
	}
	var missing int
	conn.QueryRow(context.Background(), fmt.Sprintf("SELECT %d - count(*) FROM metrics WHERE event_id IN ('evt-0', 'evt-%d')", 2, n-1)).Scan(&missing)
	if missing != 0 {
		t.Fatalf("first or last event of the batch missing")
	}
}
