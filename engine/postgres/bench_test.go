package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/eval"
	"github.com/eventops/eventops-engine/engine/postgres"
	"github.com/eventops/eventops-engine/engine/postgres/pgtest"
)

const benchBatch = 10_000

// benchRecords returns batch i of normalized metric records whose event ids are what
// record_id() gives for consecutive offsets, as in a real stream.
func benchRecords(i int) []*engine.Record {
	out := make([]*engine.Record, benchBatch)
	for j := range out {
		off := int64(i*benchBatch + j)
		r := metric(eval.RecordID(engine.Source{Topic: "signals.metric.v1", Offset: off}), float64(j%100))
		r.Value["ts_event"] = "2025-10-16T09:00:00.123Z"
		out[j] = r
	}
	return out
}

// BenchmarkWrite compares Output.Write of 10k-row batches (in each write mode) with the
// ceiling: a plain binary COPY of the same, already converted rows into the same table
// layout, with and without the unique index on event_id. Run with
// go test -run - -bench Write -benchtime 30x ./engine/postgres
func BenchmarkWrite(b *testing.B) {
	for _, mode := range postgres.WriteModes {
		b.Run("output/"+mode, func(b *testing.B) {
			dsn := pgtest.DSN(b)
			o, err := postgres.NewOutput(context.Background(), &postgres.Config{DSN: dsn, Table: "metrics"}, postgres.OutputOptions{})
			if err != nil {
				b.Fatal(err)
			}
			postgres.SetWriteMode(o, mode)
			var rej engine.Rejects
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				batch := benchRecords(i)
				rej.Reset()
				b.StartTimer()
				if err := o.Write(context.Background(), batch, &rej); err != nil || rej.Len() > 0 {
					b.Fatal(err, rej.Items)
				}
			}
			b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "rows/s")
		})
	}
	// A redelivery after a crash: every row is already in the table.
	for _, mode := range postgres.WriteModes {
		b.Run("redelivery/"+mode, func(b *testing.B) {
			dsn := pgtest.DSN(b)
			o, err := postgres.NewOutput(context.Background(), &postgres.Config{DSN: dsn, Table: "metrics"}, postgres.OutputOptions{})
			if err != nil {
				b.Fatal(err)
			}
			postgres.SetWriteMode(o, mode)
			var rej engine.Rejects
			batches := make([][]*engine.Record, b.N)
			for i := range batches {
				batches[i] = benchRecords(i)
				if err := o.Write(context.Background(), batches[i], &rej); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				if err := o.Write(context.Background(), batches[i], &rej); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if n := countRows(b, dsn); n != b.N*benchBatch {
				b.Fatalf("%d rows after redelivery, want %d", n, b.N*benchBatch)
			}
			b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "rows/s")
		})
	}
	for _, unique := range []bool{false, true} {
		b.Run(fmt.Sprintf("copy/unique_index=%v", unique), func(b *testing.B) {
			dsn := pgtest.DSN(b)
			ddl := []string{`CREATE TABLE metrics (id BIGSERIAL PRIMARY KEY, event_id TEXT NOT NULL, ts TIMESTAMPTZ, tenant TEXT, source_id TEXT,
				metric TEXT, value DOUBLE PRECISION, unit TEXT, tags JSONB)`,
				`CREATE INDEX ON metrics (tenant, source_id, metric, ts DESC)`}
			if unique {
				ddl = append(ddl, `CREATE UNIQUE INDEX ON metrics (event_id)`)
			}
			conn, err := pgx.Connect(context.Background(), dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close(context.Background())
			for _, s := range ddl {
				if _, err := conn.Exec(context.Background(), s); err != nil {
					b.Fatal(err)
				}
			}
			cols := []string{"event_id", "ts", "tenant", "source_id", "metric", "value", "unit", "tags"}
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				rows := copyRows(b, benchRecords(i))
				b.StartTimer()
				if _, err := conn.CopyFrom(context.Background(), pgx.Identifier{"metrics"}, cols, pgx.CopyFromRows(rows)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// copyRows converts records the way a hand-written loader would, outside the timed part.
func copyRows(b *testing.B, recs []*engine.Record) [][]any {
	rows := make([][]any, len(recs))
	for i, r := range recs {
		v := r.Value
		ts, err := eval.ParseTime(v["ts_event"], "")
		if err != nil {
			b.Fatal(err)
		}
		rows[i] = []any{v["event_id"], ts, v["tenant_id"], v["source"].(map[string]any)["source_id"], v["metric"], v["value"], v["unit"], v["tags"]}
	}
	return rows
}

// BenchmarkConvert is the Go side of Write alone: evaluating the default metrics mapping
// and converting the values to column types, per record.
func BenchmarkConvert(b *testing.B) {
	dsn := pgtest.DSN(b)
	o, err := postgres.NewOutput(context.Background(), &postgres.Config{DSN: dsn, Table: "metrics"}, postgres.OutputOptions{})
	if err != nil {
		b.Fatal(err)
	}
	batch := benchRecords(0)
	var rej engine.Rejects
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if n := postgres.ConvertBatch(o, batch, &rej); n != len(batch) {
			b.Fatal(rej.Items)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/row")
}

func countRows(b *testing.B, dsn string) int {
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM metrics").Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}
