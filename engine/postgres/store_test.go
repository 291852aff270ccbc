package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/postgres"
	"github.com/eventops/eventops-engine/engine/postgres/pgtest"
	"github.com/eventops/eventops-engine/engine/store"
)

// seedStore writes metrics for two tenants and three hosts, with values 0..n-1 and
// timestamps one minute apart, and returns a Store over them.
func seedStore(t *testing.T) (*postgres.Store, string) {
	t.Helper()
	dsn := pgtest.DSN(t)
	o := newOutput(t, dsn, postgres.Config{Table: "metrics"})
	var batch []*engine.Record
	for i := range 12 {
		r := metric(fmt.Sprintf("e%d", i), float64(i))
		r.Value["tenant_id"] = []string{"acme", "globex"}[i%2]
		r.Value["source"] = map[string]any{"source_id": fmt.Sprintf("host-%d", i%3)}
		r.Value["ts_event"] = fmt.Sprintf("2025-10-16T09:%02d:00Z", i)
		batch = append(batch, r)
	}
	write(t, o, batch)
	st, err := postgres.NewStore(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	return st, dsn
}

func TestStoreQuery(t *testing.T) {
	st, _ := seedStore(t)
	where := func(kv ...any) []store.Cond {
		var cs []store.Cond
		for i := 0; i < len(kv); i += 2 {
			cs = append(cs, store.Cond{Column: kv[i].(string), Value: kv[i+1]})
		}
		return cs
	}
	tests := []struct {
		name string
		q    store.Query
		want []string // event_ids in order
	}{
		{"where and order desc with limit", store.Query{Table: "metrics", Where: where("tenant", "acme"), OrderBy: "ts", Desc: true, Limit: 3}, []string{"e10", "e8", "e6"}},
		{"two conditions", store.Query{Table: "metrics", Where: where("tenant", "acme", "source_id", "host-0"), OrderBy: "ts"}, []string{"e0", "e6"}},
		{"number as a string matches a double column", store.Query{Table: "metrics", Where: where("value", "7")}, []string{"e7"}},
		{"time string matches a timestamptz column", store.Query{Table: "metrics", Where: where("ts", "2025-10-16T11:05:00+02:00")}, []string{"e5"}},
		{"nil matches NULL", store.Query{Table: "metrics", Where: where("unit", nil)}, nil},
		{"injection in a value is just a value", store.Query{Table: "metrics", Where: where("tenant", "acme' OR '1'='1")}, nil},
		{"injection in a value, second try", store.Query{Table: "metrics", Where: where("tenant", "x'; DROP TABLE metrics; --")}, nil},
		{"order ascending", store.Query{Table: "metrics", OrderBy: "value", Limit: 2}, []string{"e0", "e1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := st.Query(context.Background(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rows {
				got = append(got, r["event_id"].(string))
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("event_ids = %v, want %v", got, tc.want)
			}
		})
	}
	// The injection attempts left the table alone.
	if rows, err := st.Query(context.Background(), store.Query{Table: "metrics"}); err != nil || len(rows) != 12 {
		t.Errorf("after injection attempts: %d rows, %v", len(rows), err)
	}
}

func TestStoreValuesAreJSONFriendly(t *testing.T) {
	st, _ := seedStore(t)
	rows, err := st.Query(context.Background(), store.Query{Table: "metrics", Where: []store.Cond{{Column: "event_id", Value: "e3"}}})
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows = %v, %v", rows, err)
	}
	r := rows[0]
	checks := []struct {
		col  string
		want any
	}{
		{"ts", "2025-10-16T09:03:00Z"},
		{"value", 3.0},
		{"tenant", "globex"},
		{"source_id", "host-0"},
	}
	for _, c := range checks {
		if r[c.col] != c.want {
			t.Errorf("%s = %#v, want %#v", c.col, r[c.col], c.want)
		}
	}
	if _, ok := r["id"].(int64); !ok {
		t.Errorf("id = %#v, want an int64", r["id"])
	}
	tags, ok := r["tags"].(map[string]any)
	if !ok || tags["env"] != "prod" {
		t.Errorf("tags = %#v, want a decoded object", r["tags"])
	}
}

func TestStoreRefusesUnknownNames(t *testing.T) {
	st, _ := seedStore(t)
	tests := []struct {
		name string
		q    store.Query
		want string
	}{
		{"unknown table", store.Query{Table: "nope"}, "table nope does not exist"},
		{"injection as table", store.Query{Table: "metrics; DROP TABLE metrics"}, "does not exist"},
		{"unknown where column", store.Query{Table: "metrics", Where: []store.Cond{{Column: "tenant_id", Value: "acme"}}}, `no column "tenant_id"`},
		{"injection as where column", store.Query{Table: "metrics", Where: []store.Cond{{Column: "1=1 OR tenant", Value: "x"}}}, "no column"},
		{"unknown order column", store.Query{Table: "metrics", OrderBy: "ts desc"}, `no column "ts desc"`},
		{"unknown selected column", store.Query{Table: "metrics", Columns: []string{"ts", "pg_sleep(1)"}}, "no column"},
		{"value that does not fit", store.Query{Table: "metrics", Where: []store.Cond{{Column: "value", Value: "high"}}}, "not a number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := st.Query(context.Background(), tc.q)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, postgres.ErrBadQuery) {
				t.Errorf("err = %v, want ErrBadQuery containing %q", err, tc.want)
			}
		})
	}
	if cols, err := st.Columns(context.Background(), "metrics"); err != nil || len(cols) != 9 {
		t.Errorf("metrics still has columns %v (%v)", cols, err)
	}
}

func TestStoreSelectedColumns(t *testing.T) {
	st, _ := seedStore(t)
	rows, err := st.Query(context.Background(), store.Query{Table: "metrics", Columns: []string{"ts", "value"}, OrderBy: "ts", Limit: 1})
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows = %v, %v", rows, err)
	}
	if len(rows[0]) != 2 || rows[0]["ts"] != "2025-10-16T09:00:00Z" || rows[0]["value"] != 0.0 {
		t.Errorf("row = %v, want only ts and value", rows[0])
	}
}

// TestStoreLatestBy lists the alerts firing now from the alerts history: the newest row of
// each fingerprint, then the where conditions.
func TestStoreLatestBy(t *testing.T) {
	dsn := pgtest.DSN(t)
	o := newOutput(t, dsn, postgres.Config{Table: "alerts"})
	alert := func(id, fp, state, ts string) *engine.Record {
		return &engine.Record{Value: map[string]any{"event_id": id, "fingerprint": fp, "state": state, "ts": ts, "rule": "cpu", "tenant_id": "acme"}}
	}
	write(t, o, []*engine.Record{
		alert("a1", "fa", "firing", "2025-10-16T09:00:00Z"),
		alert("a2", "fa", "resolved", "2025-10-16T09:05:00Z"), // fa resolved: not firing now
		alert("b1", "fb", "firing", "2025-10-16T09:01:00Z"),   // fb still firing
		alert("c1", "fc", "firing", "2025-10-16T09:02:00Z"),
		alert("c2", "fc", "resolved", "2025-10-16T09:03:00Z"),
		alert("c3", "fc", "firing", "2025-10-16T09:04:00Z"), // fc fired again
	})
	st, err := postgres.NewStore(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := st.Query(context.Background(), store.Query{
		Table: "alerts", Where: []store.Cond{{Column: "state", Value: "firing"}},
		LatestBy: "fingerprint", LatestTime: "ts", OrderBy: "ts", Desc: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, r["event_id"].(string))
	}
	if strings.Join(got, ",") != "c3,b1" {
		t.Errorf("firing now = %v, want [c3 b1] (fa resolved; fc's newest row is firing)", got)
	}
	if _, err := st.Query(context.Background(), store.Query{Table: "alerts", LatestBy: "nope", LatestTime: "ts"}); !errors.Is(err, postgres.ErrBadQuery) {
		t.Errorf("latest_by an unknown column: err = %v, want ErrBadQuery", err)
	}
}
