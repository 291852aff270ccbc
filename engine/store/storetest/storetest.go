// Package storetest is the conformance suite every table store of the engine must pass, so
// that the API's declared routes give the same answers whichever backend holds the table
// (PostgreSQL, or the Parquet files of the local store edition).
//
// A backend's own test calls Run with a function that opens a fresh, empty instance: an
// engine.Output writing the built-in metrics table, one writing the built-in alerts table
// (both with their default mappings from the engine's metric envelope and the threshold
// processor's alert records), and the store.Store reading them. Everything the suite checks
// goes through the Output and Store interfaces only:
//
//   - the quickstart's routes: /metrics/cpu (tenant, source_id, metric = "cpu_load", newest
//     first, limit), /alerts (a tenant's alerts, newest first) and /alerts/firing (the newest
//     row of each fingerprint, kept if it is firing), over rows of which some were flushed
//     and some were not, before and after a final flush;
//   - where values as the API passes them (query strings matched against number and time
//     columns), NULL conditions, selected columns, order in both directions and limit, with
//     PostgreSQL's rule for NULLs in the order column (they sort above every value: last
//     ascending, first descending);
//   - the shape of every value: ts and other times as RFC 3339 strings in UTC (fraction
//     kept), numbers as float64, tags, labels and annotations as decoded JSON objects with
//     their numbers as float64, missing fields as a present key with a nil value;
//   - a just-written row is visible to the next query, flushed or not;
//   - redelivery (the same batch again, an overlapping batch, a duplicate inside a batch,
//     after a flush, after a crash and restart) leaves each event_id once;
//   - queries running while batches (of 100 rows) are written and flushed never fail and
//     always see a whole number of batches, in the order they were written, and the newest
//     rows of a route are the newest of the newest whole batch;
//   - unknown tables and columns, and where values that do not fit their column, are errors
//     that name what was wrong.
//
// Columns may list more than the built-in columns (PostgreSQL adds its id); rows are
// compared on the built-in columns only. Rows that tie on the order column are in no
// promised order and the suite avoids them. Of rows of one latest_by key that tie on the
// time, the one written in the later batch is the newest (an alert resolved at the time it
// fired, as a reload that removes its rule does).
//
// The suite's own test runs it on a small in-memory reference store that buffers rows until
// Flush and loses the unflushed ones on Reopen, as a file-based store would.
package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/store"
)

// Timeout bounds each case of the suite.
var Timeout = 30 * time.Second

// Backend is one fresh, empty store with its writers.
type Backend struct {
	// Metrics writes the built-in metrics table from metric envelope records (event_id,
	// tenant_id, source.source_id, metric, value, unit, ts_event, tags).
	Metrics engine.Output
	// Alerts writes the built-in alerts table from the threshold processor's alert records.
	Alerts engine.Output
	// Store reads both tables.
	Store store.Store
	// Flush, if set, makes every row written so far durable (a buffering backend writes its
	// files). The suite calls it between writes to check that answers do not depend on
	// whether rows were flushed. nil: every Write is durable when it returns.
	Flush func(ctx context.Context) error
	// Reopen, if set, returns a new Backend over the same stored data, as the engine after a
	// crash and restart: rows written but not flushed may be gone (the stream delivers them
	// again). The suite does not use the old Backend afterwards. nil skips the restart case.
	Reopen func(t *testing.T) Backend
	// ErrBadQuery, if set, is the error that errors caused by the query itself (an unknown
	// table or column, a value that does not fit its column) must wrap.
	ErrBadQuery error
}

// MetricsColumns and AlertsColumns are the built-in columns every backend's tables have.
var (
	MetricsColumns = []string{"event_id", "ts", "tenant", "source_id", "metric", "value", "unit", "tags"}
	AlertsColumns  = []string{"event_id", "ts", "tenant", "source_id", "metric", "severity", "rule", "value",
		"message", "tags", "fingerprint", "state", "started_at", "resolved_at", "labels",
		"previous_severity", "reason", "fired_at", "annotations"}
)

// Run runs the suite as subtests; open is called once per subtest and must register its
// own cleanup with t.
func Run(t *testing.T, open func(t *testing.T) Backend) {
	t.Run("columns", func(t *testing.T) { testColumns(t, open) })
	t.Run("a just-written row is visible at once", func(t *testing.T) { testVisible(t, open) })
	t.Run("metrics routes", func(t *testing.T) { testMetricsRoutes(t, open) })
	t.Run("metrics values are JSON-friendly", func(t *testing.T) { testMetricsValues(t, open) })
	t.Run("alerts routes", func(t *testing.T) { testAlertsRoutes(t, open) })
	t.Run("alerts values are JSON-friendly", func(t *testing.T) { testAlertsValues(t, open) })
	t.Run("latest_by: of rows at the same time the last written wins", func(t *testing.T) { testLatestTie(t, open) })
	t.Run("order and limit", func(t *testing.T) { testOrderLimit(t, open) })
	t.Run("missing fields are NULL", func(t *testing.T) { testNulls(t, open) })
	t.Run("unknown names and unfit values are errors", func(t *testing.T) { testErrors(t, open) })
	t.Run("redelivery adds no rows", func(t *testing.T) { testRedelivery(t, open) })
	t.Run("concurrent reads see whole batches", func(t *testing.T) { testConcurrent(t, open) })
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// write writes batch through out and fails the test unless every record was stored.
func write(ctx context.Context, t *testing.T, out engine.Output, batch []*engine.Record) {
	t.Helper()
	var rejects engine.Rejects
	if err := out.Write(ctx, batch, &rejects); err != nil {
		t.Fatalf("Write: %v", err)
	}
	for _, r := range rejects.Items {
		t.Errorf("record %v rejected at %s: %v", r.Record.Value["event_id"], r.Stage, r.Err)
	}
	if rejects.Len() > 0 {
		t.FailNow()
	}
}

// flush calls b.Flush if the backend has one.
func flush(ctx context.Context, t *testing.T, b Backend) {
	t.Helper()
	if b.Flush == nil {
		return
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func query(ctx context.Context, t *testing.T, st store.Store, q store.Query) []map[string]any {
	t.Helper()
	rows, err := st.Query(ctx, q)
	if err != nil {
		t.Fatalf("Query %+v: %v", q, err)
	}
	return rows
}

func ids(rows []map[string]any) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i], _ = r["event_id"].(string)
	}
	return out
}

func where(kv ...any) []store.Cond {
	var cs []store.Cond
	for i := 0; i+1 < len(kv); i += 2 {
		cs = append(cs, store.Cond{Column: kv[i].(string), Value: kv[i+1]})
	}
	return cs
}

// record wraps a record value the way an input delivers it; offset is its source position.
func record(v map[string]any, key string, offset int64) *engine.Record {
	raw, _ := json.Marshal(v)
	ts, _ := time.Parse(time.RFC3339Nano, firstString(v["ts_event"], v["ts"]))
	return &engine.Record{
		Value:     v,
		Raw:       raw,
		Key:       []byte(key),
		Source:    engine.Source{Topic: "storetest.in", Partition: 0, Offset: offset},
		Timestamp: ts,
	}
}

func firstString(vs ...any) string {
	for _, v := range vs {
		if s, ok := v.(string); ok {
			return s
		}
	}
	return ""
}
