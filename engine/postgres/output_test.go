package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/postgres"
	"github.com/eventops/eventops-engine/engine/postgres/pgtest"
	"github.com/eventops/eventops-engine/engine/store"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

// metric returns a normalized metric record as the normalize stream emits it.
func metric(id string, value any) *engine.Record {
	return &engine.Record{Value: map[string]any{
		"event_id":  id,
		"tenant_id": "acme",
		"source":    map[string]any{"type": "host", "source_id": "host-a"},
		"metric":    "cpu_load",
		"value":     value,
		"unit":      "percent",
		"ts_event":  "2025-10-16T09:00:00Z",
		"tags":      map[string]any{"env": "prod", "rack": []any{"r1", 2.0}},
	}}
}

func metrics(prefix string, n int) []*engine.Record {
	out := make([]*engine.Record, n)
	for i := range out {
		out[i] = metric(fmt.Sprintf("%s-%d", prefix, i), float64(i))
	}
	return out
}

func newOutput(t *testing.T, dsn string, cfg postgres.Config) *postgres.Output {
	t.Helper()
	cfg.DSN = dsn
	o, err := postgres.NewOutput(context.Background(), &cfg, postgres.OutputOptions{Stream: "test", Metrics: telemetry.New()})
	if err != nil {
		t.Fatalf("NewOutput(%s): %v", cfg.Table, err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

func write(t *testing.T, o *postgres.Output, batch []*engine.Record) *engine.Rejects {
	t.Helper()
	var rej engine.Rejects
	if err := o.Write(context.Background(), batch, &rej); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return &rej
}

func count(t *testing.T, dsn, table string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func exec(t *testing.T, dsn string, sqls ...string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, s := range sqls {
		if _, err := conn.Exec(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestOutputCreatesBuiltinTablesWithIndexes(t *testing.T) {
	dsn := pgtest.DSN(t)
	// Two engines starting at once must both succeed.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			table := []string{"metrics", "alerts"}[i%2]
			_, errs[i] = postgres.NewOutput(context.Background(), &postgres.Config{DSN: dsn, Table: table}, postgres.OutputOptions{})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent NewOutput %d: %v", i, err)
		}
	}

	st, err := postgres.NewStore(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		table   string
		columns string
		indexes []string // index definitions, as pg_indexes prints them, that must exist
	}{
		{"metrics", "id event_id ts tenant source_id metric value unit tags",
			[]string{"UNIQUE INDEX metrics_event_id_key ON %s.metrics USING btree (event_id)",
				"INDEX metrics_tenant_source_metric_ts_idx ON %s.metrics USING btree (tenant, source_id, metric, ts DESC)"}},
		{"alerts", "id event_id ts tenant source_id metric severity rule value message tags fingerprint state started_at resolved_at labels previous_severity reason fired_at annotations",
			[]string{"UNIQUE INDEX alerts_event_id_key ON %s.alerts USING btree (event_id)",
				"INDEX alerts_ts_idx ON %s.alerts USING btree (ts DESC)",
				"INDEX alerts_fingerprint_ts_idx ON %s.alerts USING btree (fingerprint, ts DESC)"}},
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var schema string
	if err := conn.QueryRow(context.Background(), "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.table, func(t *testing.T) {
			cols, err := st.Columns(context.Background(), tc.table)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(cols, " "); got != tc.columns {
				t.Errorf("columns:\n got %s\nwant %s", got, tc.columns)
			}
			rows, err := conn.Query(context.Background(), "SELECT indexdef FROM pg_indexes WHERE tablename = $1 AND schemaname = current_schema()", tc.table)
			if err != nil {
				t.Fatal(err)
			}
			defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			all := strings.Join(defs, "\n")
			for _, want := range tc.indexes {
				want = fmt.Sprintf(want, schema)
				if !strings.Contains(all, want) {
					t.Errorf("missing index %q; have:\n%s", want, all)
				}
			}
		})
	}
}

func TestOutputMigratesSeedTable(t *testing.T) {
	dsn := pgtest.DSN(t)
	// The seed's own layout: no event_id, SERIAL id. An engine pointed at it adds what it needs.
	exec(t, dsn, `CREATE TABLE metrics (id SERIAL PRIMARY KEY, ts TIMESTAMPTZ, tenant TEXT, source_id TEXT,
		metric TEXT, value DOUBLE PRECISION, unit TEXT, tags JSONB)`,
		`INSERT INTO metrics (tenant, value) VALUES ('old', 1)`)
	o := newOutput(t, dsn, postgres.Config{Table: "metrics"})
	write(t, o, metrics("m", 3))
	write(t, o, metrics("m", 3))
	if n := count(t, dsn, "metrics"); n != 4 {
		t.Errorf("rows = %d, want the old row plus 3", n)
	}
}

func TestOutputWritesTypedRows(t *testing.T) {
	dsn := pgtest.DSN(t)
	o := newOutput(t, dsn, postgres.Config{Table: "metrics"})
	rec := metric("e1", 92.5)
	rec.Value["ts_event"] = 1760605200.0 // epoch seconds: 2025-10-16T09:00:00Z
	if rej := write(t, o, []*engine.Record{rec, metric("e2", "17")}); rej.Len() != 0 {
		t.Fatalf("rejects: %+v", rej.Items)
	}

	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var (
		ts                               time.Time
		tenant, source, metricName, unit string
		value                            float64
		tags                             map[string]any
	)
	err = conn.QueryRow(context.Background(), "SELECT ts, tenant, source_id, metric, value, unit, tags FROM metrics WHERE event_id = 'e1'").
		Scan(&ts, &tenant, &source, &metricName, &value, &unit, &tags)
	if err != nil {
		t.Fatal(err)
	}
	if !ts.Equal(time.Date(2025, 10, 16, 9, 0, 0, 0, time.UTC)) || tenant != "acme" || source != "host-a" ||
		metricName != "cpu_load" || value != 92.5 || unit != "percent" || tags["env"] != "prod" {
		t.Errorf("row = %v %q %q %q %v %q %v", ts, tenant, source, metricName, value, unit, tags)
	}
	if err := conn.QueryRow(context.Background(), "SELECT value FROM metrics WHERE event_id = 'e2'").Scan(&value); err != nil || value != 17 {
		t.Errorf("numeric string value = %v (%v), want 17", value, err)
	}
}

func TestOutputAlerts(t *testing.T) {
	dsn := pgtest.DSN(t)
	o := newOutput(t, dsn, postgres.Config{Table: "alerts"})
	alert := &engine.Record{Value: map[string]any{
		"event_id": "a1", "ts": "2025-10-16T09:02:00Z", "tenant_id": "acme", "source_id": "host-a",
		"metric": "cpu_load", "severity": "critical", "rule": "cpu_load_critical", "value": 93.0,
		"message": "cpu_load avg 93 >= 90", "fingerprint": "f00d", "state": "firing",
		"started_at": "2025-10-16T09:00:00Z", "labels": map[string]any{"team": "ops"},
	}}
	if rej := write(t, o, []*engine.Record{alert}); rej.Len() != 0 {
		t.Fatalf("rejects: %+v", rej.Items)
	}
	st, _ := postgres.NewStore(context.Background(), dsn)
	rows, err := st.Query(context.Background(), store.Query{Table: "alerts", Where: []store.Cond{{Column: "fingerprint", Value: "f00d"}}})
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows = %v, %v", rows, err)
	}
	r := rows[0]
	if r["state"] != "firing" || r["started_at"] != "2025-10-16T09:00:00Z" || r["resolved_at"] != nil ||
		r["labels"].(map[string]any)["team"] != "ops" || r["tenant"] != "acme" {
		t.Errorf("alert row = %v", r)
	}
}

func TestOutputEffectivelyOnce(t *testing.T) {
	tests := []struct {
		name    string
		batches [][]*engine.Record
		want    int
	}{
		{"redelivered batch", [][]*engine.Record{metrics("a", 50), metrics("a", 50)}, 50},
		{"duplicate inside one batch", [][]*engine.Record{append(metrics("b", 10), metrics("b", 10)...)}, 10},
		{"overlapping batches", [][]*engine.Record{metrics("c", 10), metrics("c", 20)}, 20},
	}
	for _, mode := range postgres.WriteModes {
		for _, tc := range tests {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				dsn := pgtest.DSN(t)
				o := newOutput(t, dsn, postgres.Config{Table: "metrics"})
				postgres.SetWriteMode(o, mode)
				for _, b := range tc.batches {
					if rej := write(t, o, b); rej.Len() != 0 {
						t.Fatalf("rejects: %+v", rej.Items)
					}
				}
				if n := count(t, dsn, "metrics"); n != tc.want {
					t.Errorf("rows = %d, want %d", n, tc.want)
				}
			})
		}
	}
}

func TestOutputRejectsBadRecords(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(map[string]any)
		reason string
	}{
		{"time that is not a time", func(v map[string]any) { v["ts_event"] = "yesterday" }, "column ts (timestamptz): cannot parse \"yesterday\""},
		{"value that is not a number", func(v map[string]any) { v["value"] = "high" }, "column value (float8): \"high\" is not a number"},
		{"object into a text column", func(v map[string]any) { v["unit"] = map[string]any{"a": 1.0} }, "column unit (text): an object is not text"},
		{"missing dedupe key", func(v map[string]any) { delete(v, "event_id") }, "dedupe key column event_id is missing"},
		{"NUL byte in text", func(v map[string]any) { v["metric"] = "cpu\x00" }, "column metric (text): text contains a NUL byte"},
		{"NUL byte in json", func(v map[string]any) { v["tags"] = map[string]any{"k": "\x00"} }, "column tags (jsonb): JSON string contains a NUL byte"},
		{"time out of range", func(v map[string]any) { v["ts_event"] = 1e17 }, "outside PostgreSQL's range"},
		{"expression fails", func(v map[string]any) { v["source"] = "not an object" }, "column source_id: source?.source_id: cannot fetch source_id from \"not an object\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dsn := pgtest.DSN(t)
			o := newOutput(t, dsn, postgres.Config{Table: "metrics"})
			batch := metrics("ok", 5)
			bad := metric("bad", 1.0)
			tc.mutate(bad.Value)
			batch = append(batch[:2], append([]*engine.Record{bad}, batch[2:]...)...)
			rej := write(t, o, batch)
			if rej.Len() != 1 || rej.Items[0].Record != bad || rej.Items[0].Stage != "output" {
				t.Fatalf("rejects = %+v, want the bad record at stage output", rej.Items)
			}
			if got := rej.Items[0].Err.Error(); !strings.Contains(got, tc.reason) {
				t.Errorf("reason = %q, want it to contain %q", got, tc.reason)
			}
			if n := count(t, dsn, "metrics"); n != 5 {
				t.Errorf("rows = %d, want the 5 good records", n)
			}
		})
	}
}

func TestOutputUserTable(t *testing.T) {
	dsn := pgtest.DSN(t)
	exec(t, dsn, `CREATE TABLE readings (
		id BIGSERIAL PRIMARY KEY, rid UUID NOT NULL UNIQUE, host VARCHAR(8) NOT NULL, n INTEGER CHECK (n >= 0),
		ok BOOLEAN, day DATE, at TIMESTAMP, price NUMERIC(10,2), doc JSON)`)
	f := func(name, src string) config.Field { return config.Field{Name: name, Expr: &config.Expr{Src: src}} }
	o := newOutput(t, dsn, postgres.Config{Table: "readings", DedupeKey: "rid", Columns: config.Fields{
		f("rid", "id"), f("host", "host"), f("n", "n"), f("ok", "ok"), f("day", "day"), f("at", "at"),
		f("price", "price"), f("doc", "{host: host, n: n}"),
	}})
	rec := func(id, host string, n any) *engine.Record {
		return &engine.Record{Value: map[string]any{"id": id, "host": host, "n": n, "ok": "true",
			"day": "2025-10-16T00:00:00Z", "at": "2025-10-16T09:00:00+02:00", "price": 12.345}}
	}
	const uuidFmt = "00000000-0000-8000-8000-%012d"
	batch := []*engine.Record{
		rec(fmt.Sprintf(uuidFmt, 1), "host-a", 1.0),
		rec(fmt.Sprintf(uuidFmt, 2), "host-b", -5.0),           // CHECK fails on the server
		rec(fmt.Sprintf(uuidFmt, 3), "far-too-long-host", 3.0), // varchar(8) overflow on the server
		rec(fmt.Sprintf(uuidFmt, 4), "host-d", 2.5),            // not an integer: refused before sending
		rec("not-a-uuid", "host-e", 1.0),
		rec(fmt.Sprintf(uuidFmt, 6), "host-f", "6"),
	}
	rej := write(t, o, batch)
	rejected := map[*engine.Record]string{}
	for _, r := range rej.Items {
		rejected[r.Record] = r.Err.Error()
	}
	for i, wantBad := range []bool{false, true, true, true, true, false} {
		if _, bad := rejected[batch[i]]; bad != wantBad {
			t.Errorf("record %d rejected = %v (%q), want %v", i, bad, rejected[batch[i]], wantBad)
		}
	}
	if !strings.Contains(rejected[batch[1]], "check constraint") {
		t.Errorf("reason for the CHECK failure = %q, want PostgreSQL's message", rejected[batch[1]])
	}

	st, _ := postgres.NewStore(context.Background(), dsn)
	rows, err := st.Query(context.Background(), store.Query{Table: "readings", OrderBy: "host"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("rows = %v, want host-a and host-f", rows)
	}
	r := rows[0]
	want := map[string]any{"rid": fmt.Sprintf(uuidFmt, 1), "host": "host-a", "n": int64(1), "ok": true,
		"day": "2025-10-16T00:00:00Z", "at": "2025-10-16T07:00:00Z", "price": 12.35}
	for k, v := range want {
		if r[k] != v {
			t.Errorf("%s = %#v, want %#v", k, r[k], v)
		}
	}
	if doc, _ := r["doc"].(map[string]any); doc["host"] != "host-a" {
		t.Errorf("doc = %#v", r["doc"])
	}
}

func TestNewOutputRefusesBadConfig(t *testing.T) {
	dsn := pgtest.DSN(t)
	exec(t, dsn, `CREATE TABLE plain (k TEXT, v TEXT, p POINT)`, `CREATE TABLE keyed (k TEXT UNIQUE, v TEXT)`)
	f := func(name, src string) config.Field { return config.Field{Name: name, Expr: &config.Expr{Src: src}} }
	no := false
	tests := []struct {
		name string
		cfg  postgres.Config
		want string
	}{
		{"missing user table", postgres.Config{Table: "nope", Columns: config.Fields{f("event_id", "x")}}, "table nope does not exist"},
		{"user table without columns", postgres.Config{Table: "keyed"}, "say which expression fills each column"},
		{"no unique index on dedupe key", postgres.Config{Table: "plain", DedupeKey: "k", Columns: config.Fields{f("k", "a")}}, "has no unique index"},
		{"unknown column", postgres.Config{Table: "keyed", DedupeKey: "k", Columns: config.Fields{f("k", "a"), f("w", "b")}}, `has no column "w"`},
		{"unsupported type", postgres.Config{Table: "plain", DedupeKey: "k", Columns: config.Fields{f("k", "a"), f("p", "b")}}, "type point"},
		{"dedupe key not written", postgres.Config{Table: "keyed", DedupeKey: "k", Columns: config.Fields{f("v", "a")}}, `dedupe key "k" is not one of the written columns`},
		{"bad expression", postgres.Config{Table: "keyed", DedupeKey: "k", Columns: config.Fields{f("k", "a +")}}, "expression"},
		{"built-in table not created", postgres.Config{Table: "metrics", Create: &no}, "table metrics does not exist"},
		{"injection in table name", postgres.Config{Table: `keyed"; DROP TABLE keyed; --`, DedupeKey: "k", Columns: config.Fields{f("k", "a")}}, "does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.DSN = dsn
			_, err := postgres.NewOutput(context.Background(), &tc.cfg, postgres.OutputOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if n := count(t, dsn, "keyed"); n != 0 {
		t.Errorf("keyed has %d rows", n)
	}
}

func TestOutputCountsBatches(t *testing.T) {
	dsn := pgtest.DSN(t)
	m := telemetry.New()
	o, err := postgres.NewOutput(context.Background(), &postgres.Config{DSN: dsn, Table: "metrics"}, postgres.OutputOptions{Stream: "sink", Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	write(t, o, metrics("x", 7))
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var rows uint64
	for _, f := range fams {
		if f.GetName() == "eventops_sink_batch_rows" {
			for _, mt := range f.Metric {
				rows += uint64(mt.GetHistogram().GetSampleSum())
			}
		}
	}
	if rows != 7 {
		t.Errorf("sink batch rows = %d, want 7", rows)
	}
}

func TestPoolUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := postgres.Pool(ctx, "postgres://nobody:secret@127.0.0.1:1/none?connect_timeout=2")
	if err == nil {
		t.Fatal("connected to a closed port")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks the password: %v", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Logf("note: %v", err)
	}
}

// Columns given for a built-in table replace the default expressions of just those
// columns; a nested mapping builds a JSON object for a jsonb column.
func TestOutputColumnOverrides(t *testing.T) {
	dsn := pgtest.DSN(t)
	e := func(src string) *config.Expr { return &config.Expr{Src: src} }
	o := newOutput(t, dsn, postgres.Config{Table: "metrics", Columns: config.Fields{
		{Name: "tenant", Expr: e(`tenant_id ?? "default"`)},
		{Name: "tags", Nested: config.Fields{{Name: "host", Expr: e("source.source_id")}, {Name: "env", Expr: e("tags.env")}}},
	}})
	rec := metric("o1", 1.0)
	delete(rec.Value, "tenant_id")
	if rej := write(t, o, []*engine.Record{rec}); rej.Len() != 0 {
		t.Fatalf("rejects: %+v", rej.Items)
	}
	st, _ := postgres.NewStore(context.Background(), dsn)
	rows, err := st.Query(context.Background(), store.Query{Table: "metrics"})
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows = %v, %v", rows, err)
	}
	r := rows[0]
	tags, _ := r["tags"].(map[string]any)
	if r["tenant"] != "default" || r["metric"] != "cpu_load" || tags["host"] != "host-a" || tags["env"] != "prod" || len(tags) != 2 {
		t.Errorf("row = %v", r)
	}
}
