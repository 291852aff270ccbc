package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/store"
)

// seeded is a backend holding both fixture tables: batch 1 flushed, batch 2 not.
type seeded struct {
	Backend
	metrics map[string]map[string]any // event_id → expected row
	alerts  map[string]map[string]any
}

func seed(ctx context.Context, t *testing.T, open func(t *testing.T) Backend) seeded {
	t.Helper()
	b := open(t)
	s := seeded{Backend: b, metrics: map[string]map[string]any{}, alerts: map[string]map[string]any{}}
	for _, m := range slices.Concat(metricsBatch1, metricsBatch2) {
		s.metrics[m.id] = m.want()
	}
	for _, a := range slices.Concat(alertsBatch1, alertsBatch2) {
		s.alerts[a.id] = a.want()
	}
	write(ctx, t, b.Metrics, metricRecords(metricsBatch1, 0))
	write(ctx, t, b.Alerts, alertRecords(alertsBatch1, 0))
	flush(ctx, t, b)
	write(ctx, t, b.Metrics, metricRecords(metricsBatch2, int64(len(metricsBatch1))))
	write(ctx, t, b.Alerts, alertRecords(alertsBatch2, int64(len(alertsBatch1))))
	return s
}

// checkRows checks that every row is one of want's, with want's value in each of its
// columns (only the selected ones, if cols is set), each column present even when NULL.
func checkRows(t *testing.T, rows []map[string]any, want map[string]map[string]any, cols []string) {
	t.Helper()
	for _, r := range rows {
		id, _ := r["event_id"].(string)
		w, ok := want[id]
		if !ok {
			t.Errorf("row with event_id %#v was never written: %v", r["event_id"], r)
			continue
		}
		names := cols
		if len(names) == 0 {
			names = slices.Sorted(func(yield func(string) bool) {
				for k := range w {
					if !yield(k) {
						return
					}
				}
			})
		}
		for _, c := range names {
			got, present := r[c]
			if !present {
				t.Errorf("row %s has no key %q (a NULL must come back as a nil value, so every row has the same keys)", id, c)
				continue
			}
			if !reflect.DeepEqual(got, w[c]) {
				t.Errorf("row %s: %s = %#v (%T), want %#v (%T)", id, c, got, got, w[c], w[c])
			}
		}
	}
}

// queryCase is one query and the event_ids it must return.
type queryCase struct {
	name      string
	q         store.Query
	want      []string
	unordered bool // the query has no order: compare as sets
}

// runQueries runs cases against s, twice: as seeded (batch 2 not flushed) and after a flush.
func runQueries(ctx context.Context, t *testing.T, s seeded, cases []queryCase) {
	t.Helper()
	for _, phase := range []string{"some rows not flushed", "all rows flushed"} {
		if phase == "all rows flushed" {
			flush(ctx, t, s.Backend)
		}
		for _, tc := range cases {
			t.Run(phase+"/"+tc.name, func(t *testing.T) {
				rows := query(ctx, t, s.Store, tc.q)
				got := ids(rows)
				want := tc.want
				if tc.unordered {
					got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
				}
				if !slices.Equal(got, want) {
					t.Errorf("event_ids = %v, want %v", got, want)
				}
				expected := s.metrics
				if tc.q.Table == "alerts" {
					expected = s.alerts
				}
				checkRows(t, rows, expected, tc.q.Columns)
			})
		}
	}
}

func testColumns(t *testing.T, open func(t *testing.T) Backend) {
	ctx := ctxFor(t)
	b := open(t)
	// Before any row: the API checks its routes' columns at start-up, on an empty store.
	for _, tc := range []struct {
		table string
		want  []string
	}{{"metrics", MetricsColumns}, {"alerts", AlertsColumns}} {
		cols, err := b.Store.Columns(ctx, tc.table)
		if err != nil {
			t.Fatalf("Columns(%s) on an empty store: %v", tc.table, err)
		}
		for _, c := range tc.want {
			if !slices.Contains(cols, c) {
				t.Errorf("Columns(%s) = %v: no %q, which routes on the built-in table may name", tc.table, cols, c)
			}
		}
		rows, err := b.Store.Query(ctx, store.Query{Table: tc.table})
		if err != nil || len(rows) != 0 {
			t.Errorf("Query(%s) on an empty store = %v, %v; want no rows and no error", tc.table, rows, err)
		}
	}
}

func testVisible(t *testing.T, open func(t *testing.T) Backend) {
	ctx := ctxFor(t)
	b := open(t)
	m := metricsBatch1[0]
	a := alertsBatch1[0]
	expect := map[string]map[string]any{m.id: m.want(), a.id: a.want()}
	write(ctx, t, b.Metrics, []*engine.Record{m.record(0)})
	write(ctx, t, b.Alerts, []*engine.Record{a.record(0)})
	for _, phase := range []string{"before a flush", "after a flush"} {
		if phase == "after a flush" {
			flush(ctx, t, b)
		}
		// Read once, without waiting: a reading just sent must be on the dashboard now.
		for _, q := range []store.Query{
			{Table: "metrics", Where: where("tenant", "acme", "source_id", "host-a", "metric", "cpu_load"), OrderBy: "ts", Desc: true, Limit: 10},
			{Table: "alerts", Where: where("tenant", "acme"), OrderBy: "ts", Desc: true, Limit: 10},
		} {
			rows := query(ctx, t, b.Store, q)
			if len(rows) != 1 {
				t.Errorf("%s: %s returned %d rows, want the 1 just written: %v", phase, q.Table, len(rows), rows)
			}
			checkRows(t, rows, expect, nil)
		}
	}
}

func testMetricsRoutes(t *testing.T, open func(t *testing.T) Backend) {
	ctx := ctxFor(t)
	s := seed(ctx, t, open)
	cpu := func(tenant, host string) []store.Cond {
		return where("tenant", tenant, "source_id", host, "metric", "cpu_load")
	}
	runQueries(ctx, t, s, []queryCase{
		{"/metrics/cpu?tenant=acme&host=host-a", store.Query{Table: "metrics", Where: cpu("acme", "host-a"), OrderBy: "ts", Desc: true, Limit: 1000},
			[]string{"m08", "m01", "m07", "m02", "m06", "m14"}, false},
		{"/metrics/cpu?tenant=acme&host=host-a&limit=2", store.Query{Table: "metrics", Where: cpu("acme", "host-a"), OrderBy: "ts", Desc: true, Limit: 2},
			[]string{"m08", "m01"}, false},
		{"/metrics/cpu?tenant=globex&host=host-a", store.Query{Table: "metrics", Where: cpu("globex", "host-a"), OrderBy: "ts", Desc: true, Limit: 1000},
			[]string{"m05"}, false},
		{"/metrics/cpu for a host with no readings", store.Query{Table: "metrics", Where: cpu("acme", "host-z"), OrderBy: "ts", Desc: true, Limit: 1000},
			nil, false},
		{"a number column matched by a query string", store.Query{Table: "metrics", Where: where("value", "7.25")},
			[]string{"m06"}, false},
		{"a time column matched by a query string in another zone", store.Query{Table: "metrics", Where: where("ts", "2025-10-16T11:03:00+02:00")},
			[]string{"m01"}, false},
		{"a time on the day before (UTC)", store.Query{Table: "metrics", Where: where("ts", "2025-10-15T23:30:00Z")},
			[]string{"m14"}, false},
		{"a time with a fraction of a second", store.Query{Table: "metrics", Where: where("ts", "2025-10-16T09:00:00.25Z")},
			[]string{"m06"}, false},
		{"selected columns only", store.Query{Table: "metrics", Columns: []string{"event_id", "ts", "value"}, Where: cpu("acme", "host-b"), OrderBy: "ts", Desc: true},
			[]string{"m09", "m03"}, false},
		{"?from=09:01&to=09:03: from included, to not", store.Query{Table: "metrics", Where: cpu("acme", "host-a"), OrderBy: "ts", Desc: true, Limit: 1000, Range: timeRange("2025-10-16T09:01:00Z", "2025-10-16T09:03:00Z")},
			[]string{"m07", "m02"}, false},
		{"?from=09:03 (in another zone): no end", store.Query{Table: "metrics", Where: cpu("acme", "host-a"), OrderBy: "ts", Desc: true, Limit: 1000, Range: timeRange("2025-10-16T11:03:00+02:00", "")},
			[]string{"m08", "m01"}, false},
		{"?to=09:00:01: a fraction of a second in, the day before", store.Query{Table: "metrics", Where: cpu("acme", "host-a"), OrderBy: "ts", Desc: true, Limit: 1000, Range: timeRange("", "2025-10-16T09:00:01Z")},
			[]string{"m06", "m14"}, false},
		{"a range, then the limit", store.Query{Table: "metrics", Where: cpu("acme", "host-a"), OrderBy: "ts", Desc: true, Limit: 1, Range: timeRange("2025-10-16T09:01:00Z", "2025-10-16T09:03:00Z")},
			[]string{"m07"}, false},
	})
	// Selected columns are all a row holds: the API returns them as they are.
	rows := query(ctx, t, s.Store, store.Query{Table: "metrics", Columns: []string{"ts", "value"}, Where: where("event_id", "m03")})
	if len(rows) != 1 || !reflect.DeepEqual(rows[0], map[string]any{"ts": "2025-10-16T09:02:00Z", "value": 77.0}) {
		t.Errorf("columns ts, value of m03 = %v, want exactly map[ts:2025-10-16T09:02:00Z value:77]", rows)
	}
}

func testMetricsValues(t *testing.T, open func(t *testing.T) Backend) {
	testValues(t, open, "metrics", func(s seeded) map[string]map[string]any { return s.metrics })
}

func testAlertsValues(t *testing.T, open func(t *testing.T) Backend) {
	testValues(t, open, "alerts", func(s seeded) map[string]map[string]any { return s.alerts })
}

// testValues checks every row of table against what was written.
func testValues(t *testing.T, open func(t *testing.T) Backend, table string, want func(seeded) map[string]map[string]any) {
	ctx := ctxFor(t)
	s := seed(ctx, t, open)
	rows := query(ctx, t, s.Store, store.Query{Table: table})
	if len(rows) != len(want(s)) {
		t.Errorf("%s has %d rows, want %d: %v", table, len(rows), len(want(s)), ids(rows))
	}
	checkRows(t, rows, want(s), nil)
}

func testAlertsRoutes(t *testing.T, open func(t *testing.T) Backend) {
	ctx := ctxFor(t)
	s := seed(ctx, t, open)
	latest := func(q store.Query) store.Query {
		q.Table, q.LatestBy, q.LatestTime, q.OrderBy, q.Desc = "alerts", "fingerprint", "ts", "ts", true
		return q
	}
	runQueries(ctx, t, s, []queryCase{
		{"/alerts?tenant=acme", store.Query{Table: "alerts", Where: where("tenant", "acme"), OrderBy: "ts", Desc: true, Limit: 100},
			[]string{"d01", "d00", "a02", "c03", "c02", "c01", "b01", "a01"}, false},
		{"/alerts?tenant=acme&limit=3", store.Query{Table: "alerts", Where: where("tenant", "acme"), OrderBy: "ts", Desc: true, Limit: 3},
			[]string{"d01", "d00", "a02"}, false},
		// fa resolved, fc fired again, fd's older pending row arrived after its firing one.
		{"/alerts/firing", latest(store.Query{Where: where("state", "firing"), Limit: 1000}),
			[]string{"d01", "e01", "c03", "b01"}, false},
		{"/alerts/firing?tenant=acme", latest(store.Query{Where: where("tenant", "acme", "state", "firing"), Limit: 1000}),
			[]string{"d01", "c03", "b01"}, false},
		{"/alerts/firing&limit=2", latest(store.Query{Where: where("state", "firing"), Limit: 2}),
			[]string{"d01", "e01"}, false},
		{"pending now: none, fd's pending row is older than its firing one", latest(store.Query{Where: where("state", "pending")}),
			nil, false},
		{"the newest row of each fingerprint", latest(store.Query{}),
			[]string{"d01", "e01", "a02", "c03", "b01"}, false},
	})
}

func testLatestTie(t *testing.T, open func(t *testing.T) Backend) {
	fired := alertRow{"x01", "acme", "fx", "firing", "critical", "09:00"}
	resolved := alertRow{"x02", "acme", "fx", "resolved", "critical", "09:00"}
	for _, flushes := range []string{"none", "between", "after both"} {
		t.Run("flushed "+flushes, func(t *testing.T) {
			ctx := ctxFor(t)
			b := open(t)
			write(ctx, t, b.Alerts, alertRecords([]alertRow{fired}, 0))
			if flushes != "none" {
				flush(ctx, t, b)
			}
			write(ctx, t, b.Alerts, alertRecords([]alertRow{resolved}, 1))
			if flushes == "after both" {
				flush(ctx, t, b)
			}
			q := store.Query{Table: "alerts", LatestBy: "fingerprint", LatestTime: "ts"}
			if got := ids(query(ctx, t, b.Store, q)); !slices.Equal(got, []string{"x02"}) {
				t.Errorf("newest row of fx = %v, want [x02] (resolved, written after the firing row at the same time)", got)
			}
			q.Where = where("state", "firing")
			if got := ids(query(ctx, t, b.Store, q)); len(got) != 0 {
				t.Errorf("firing now = %v, want none", got)
			}
		})
	}
}

func testOrderLimit(t *testing.T, open func(t *testing.T) Backend) {
	ctx := ctxFor(t)
	s := seed(ctx, t, open)
	all := slices.Sorted(func(yield func(string) bool) {
		for id := range s.metrics {
			if !yield(id) {
				return
			}
		}
	})
	runQueries(ctx, t, s, []queryCase{
		{"value ascending, limit 3", store.Query{Table: "metrics", OrderBy: "value", Limit: 3}, []string{"m06", "m12", "m05"}, false},
		{"value descending, limit 3", store.Query{Table: "metrics", OrderBy: "value", Desc: true, Limit: 3}, []string{"m08", "m01", "m07"}, false},
		{"text column descending, limit 2", store.Query{Table: "metrics", OrderBy: "event_id", Desc: true, Limit: 2}, []string{"m14", "m13"}, false},
		// PostgreSQL's rule, which its (…, ts DESC) index serves: NULL sorts above every value.
		{"a row without ts comes first newest-first", store.Query{Table: "metrics", OrderBy: "ts", Desc: true, Limit: 3}, []string{"m12", "m13", "m10"}, false},
		{"a row without ts comes last oldest-first", store.Query{Table: "metrics", Where: where("source_id", "host-c"), OrderBy: "ts"}, []string{"m13", "m12"}, false},
		{"a limit above the row count", store.Query{Table: "metrics", Where: where("tenant", "globex"), OrderBy: "ts", Limit: 100}, []string{"m05", "m10"}, false},
		{"no limit returns every row", store.Query{Table: "metrics", OrderBy: "event_id"}, all, false},
		{"no order: every matching row", store.Query{Table: "metrics", Where: where("tenant", "globex")}, []string{"m05", "m10"}, true},
	})
}

func testNulls(t *testing.T, open func(t *testing.T) Backend) {
	ctx := ctxFor(t)
	s := seed(ctx, t, open)
	runQueries(ctx, t, s, []queryCase{
		{"where unit is NULL", store.Query{Table: "metrics", Where: where("unit", nil)}, []string{"m11"}, true},
		{"where source_id is NULL", store.Query{Table: "metrics", Where: where("source_id", nil)}, []string{"m11"}, true},
		{"where ts is NULL", store.Query{Table: "metrics", Where: where("ts", nil)}, []string{"m12"}, true},
		{"NULL and a value together", store.Query{Table: "metrics", Where: where("tags", nil, "tenant", "acme")}, []string{"m11"}, true},
		{"an alert never fired has no fired_at", store.Query{Table: "alerts", Where: where("fired_at", nil)}, []string{"d00"}, true},
		{"firing alerts have no resolved_at", store.Query{Table: "alerts", Where: where("resolved_at", nil, "state", "firing")}, []string{"a01", "b01", "c01", "c03", "d01", "e01"}, true},
	})
}

func testErrors(t *testing.T, open func(t *testing.T) Backend) {
	ctx := ctxFor(t)
	s := seed(ctx, t, open)
	check := func(t *testing.T, err error, names ...string) {
		t.Helper()
		if err == nil {
			t.Fatal("no error: a misspelt name or an unfit value must not look like an empty result")
		}
		if s.ErrBadQuery != nil && !errors.Is(err, s.ErrBadQuery) {
			t.Errorf("err = %v, want it to wrap %v (the query is wrong, not the store)", err, s.ErrBadQuery)
		}
		for _, n := range names {
			if !strings.Contains(err.Error(), n) {
				t.Errorf("err = %v, want it to name %q", err, n)
			}
		}
	}
	t.Run("Columns of an unknown table", func(t *testing.T) {
		_, err := s.Store.Columns(ctx, "metric")
		check(t, err, "metric")
	})
	for _, tc := range []struct {
		name  string
		q     store.Query
		names []string
	}{
		{"unknown table", store.Query{Table: "alert"}, []string{"alert"}},
		{"a record field that is not a column", store.Query{Table: "metrics", Where: where("tenant_id", "acme")}, []string{"tenant_id"}},
		{"unknown order column", store.Query{Table: "metrics", OrderBy: "ts desc"}, []string{"ts desc"}},
		{"unknown selected column", store.Query{Table: "metrics", Columns: []string{"ts", "host"}}, []string{"host"}},
		{"unknown latest_by column", store.Query{Table: "alerts", LatestBy: "fp", LatestTime: "ts"}, []string{"fp"}},
		{"unknown latest time column", store.Query{Table: "alerts", LatestBy: "fingerprint", LatestTime: "time"}, []string{"time"}},
		{"text where a number is stored", store.Query{Table: "metrics", Where: where("value", "high")}, []string{"value"}},
		{"text where a time is stored", store.Query{Table: "metrics", Where: where("ts", "yesterday")}, []string{"ts"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Store.Query(ctx, tc.q)
			check(t, err, tc.names...)
		})
	}
	// A refused query changes nothing.
	if rows := query(ctx, t, s.Store, store.Query{Table: "metrics"}); len(rows) != len(s.metrics) {
		t.Errorf("after refused queries metrics has %d rows, want %d", len(rows), len(s.metrics))
	}
}

// redeliveryRows returns metric rows r<from> … r<from+n-1>, one second apart.
func redeliveryRows(from, n int) []metricRow {
	out := make([]metricRow, n)
	for i := range out {
		k := from + i
		out[i] = metricRow{id: fmt.Sprintf("r%03d", k), tenant: "acme", host: fmt.Sprintf("host-%d", k%3),
			metric: "cpu_load", value: float64(k), ts: fmt.Sprintf("2025-10-16T10:%02d:%02dZ", k/60, k%60)}
	}
	return out
}

func testRedelivery(t *testing.T, open func(t *testing.T) Backend) {
	recs := func(rows []metricRow) []*engine.Record {
		out := make([]*engine.Record, len(rows))
		for i, m := range rows {
			var k int
			fmt.Sscanf(m.id, "r%d", &k)
			out[i] = m.record(int64(k)) // a redelivered record has its original position
		}
		return out
	}
	type step func(ctx context.Context, t *testing.T, b *Backend)
	writeRows := func(rows []metricRow) step {
		return func(ctx context.Context, t *testing.T, b *Backend) { write(ctx, t, b.Metrics, recs(rows)) }
	}
	doFlush := func(ctx context.Context, t *testing.T, b *Backend) { flush(ctx, t, *b) }
	restart := func(ctx context.Context, t *testing.T, b *Backend) {
		if b.Reopen == nil {
			t.Skip("the backend has no Reopen: restart not tested")
		}
		*b = b.Reopen(t)
	}
	for _, tc := range []struct {
		name  string
		steps []step
		want  []metricRow
	}{
		{"the same batch twice", []step{writeRows(redeliveryRows(0, 20)), writeRows(redeliveryRows(0, 20))}, redeliveryRows(0, 20)},
		{"a batch overlapping the last one", []step{writeRows(redeliveryRows(0, 20)), writeRows(redeliveryRows(10, 20))}, redeliveryRows(0, 30)},
		{"a duplicate inside one batch", []step{writeRows(slices.Concat(redeliveryRows(0, 5), redeliveryRows(2, 1)))}, redeliveryRows(0, 5)},
		{"the same batch after a flush", []step{writeRows(redeliveryRows(0, 20)), doFlush, writeRows(redeliveryRows(0, 20)), doFlush}, redeliveryRows(0, 20)},
		{"flushed and unflushed rows again after a restart", []step{
			writeRows(redeliveryRows(0, 20)), doFlush, writeRows(redeliveryRows(20, 10)),
			restart,
			writeRows(redeliveryRows(0, 30)),
		}, redeliveryRows(0, 30)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxFor(t)
			b := open(t)
			for _, st := range tc.steps {
				st(ctx, t, &b)
			}
			want := map[string]map[string]any{}
			var wantIDs []string
			for _, m := range tc.want {
				want[m.id] = m.want()
				wantIDs = append(wantIDs, m.id)
			}
			for _, phase := range []string{"as written", "after a flush"} {
				if phase == "after a flush" {
					flush(ctx, t, b)
				}
				rows := query(ctx, t, b.Store, store.Query{Table: "metrics", OrderBy: "event_id"})
				if got := ids(rows); !slices.Equal(got, wantIDs) {
					t.Errorf("%s: metrics holds %v, want each of %v once", phase, got, wantIDs)
				}
				checkRows(t, rows, want, nil)
			}
		})
	}

	t.Run("alerts redelivered", func(t *testing.T) {
		ctx := ctxFor(t)
		b := open(t)
		write(ctx, t, b.Alerts, alertRecords(alertsBatch1, 0))
		flush(ctx, t, b)
		write(ctx, t, b.Alerts, alertRecords(alertsBatch1, 0))
		rows := query(ctx, t, b.Store, store.Query{Table: "alerts", LatestBy: "fingerprint", LatestTime: "ts", Where: where("state", "firing"), OrderBy: "ts", Desc: true})
		if got := ids(rows); !slices.Equal(got, []string{"d01", "b01", "a01"}) {
			t.Errorf("firing after a redelivery = %v, want [d01 b01 a01] once each (fc resolved)", got)
		}
		rows = query(ctx, t, b.Store, store.Query{Table: "alerts"})
		if len(rows) != len(alertsBatch1) {
			t.Errorf("alerts holds %d rows after a redelivery, want %d: %v", len(rows), len(alertsBatch1), ids(rows))
		}
	})
}

// testConcurrent writes batches (each its own source_id) while readers query, and checks
// that every read sees whole batches, a prefix of those written, never fewer than before.
func testConcurrent(t *testing.T, open func(t *testing.T) Backend) {
	const (
		batches   = 20
		batchSize = 100
		readers   = 2
		flushEach = 5
	)
	ctx := ctxFor(t)
	b := open(t)
	batch := func(k int) []*engine.Record {
		out := make([]*engine.Record, batchSize)
		for i := range out {
			n := k*batchSize + i
			m := metricRow{id: fmt.Sprintf("b%02d-%03d", k, i), tenant: "acme", host: fmt.Sprintf("batch-%02d", k),
				metric: "cpu_load", value: float64(n), ts: fmt.Sprintf("2025-10-16T11:%02d:%02dZ", n/60, n%60)}
			out[i] = m.record(int64(n))
		}
		return out
	}

	// seen checks one full read and returns how many batches it saw.
	seen := func(rows []map[string]any) (int, error) {
		per := map[string]int{}
		for _, r := range rows {
			h, _ := r["source_id"].(string)
			per[h]++
		}
		for k := range len(per) {
			h := fmt.Sprintf("batch-%02d", k)
			if per[h] != batchSize {
				return 0, fmt.Errorf("a read saw %d batches but %d rows of %s (want %d): %v", len(per), per[h], h, batchSize, per)
			}
		}
		return len(per), nil
	}
	// newest checks a route-like read: the 10 newest rows are the last 10 of one batch.
	newest := func(rows []map[string]any) error {
		if len(rows) == 0 {
			return nil
		}
		h, _ := rows[0]["source_id"].(string)
		var k int
		fmt.Sscanf(h, "batch-%d", &k)
		for i, r := range rows {
			want := fmt.Sprintf("b%02d-%03d", k, batchSize-1-i)
			if r["event_id"] != want {
				return fmt.Errorf("newest rows %v: row %d is %v, want %s (the newest rows of the newest whole batch)", ids(rows), i, r["event_id"], want)
			}
		}
		return nil
	}

	readDone := make(chan struct{}, 1)
	writerDone := make(chan struct{})
	var wg sync.WaitGroup
	readersGone := make(chan struct{})
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := 0
			for {
				select {
				case <-writerDone:
					return
				default:
				}
				rows, err := b.Store.Query(ctx, store.Query{Table: "metrics", Where: where("tenant", "acme"), Columns: []string{"event_id", "source_id"}})
				if err != nil {
					t.Errorf("query while writing: %v", err)
					return
				}
				n, err := seen(rows)
				if err != nil {
					t.Error(err)
					return
				}
				if n < last {
					t.Errorf("a read saw %d batches after one saw %d: written rows disappeared", n, last)
					return
				}
				last = n
				rows, err = b.Store.Query(ctx, store.Query{Table: "metrics", Where: where("tenant", "acme", "metric", "cpu_load"), OrderBy: "ts", Desc: true, Limit: 10})
				if err != nil {
					t.Errorf("route query while writing: %v", err)
					return
				}
				if err := newest(rows); err != nil {
					t.Error(err)
					return
				}
				select {
				case readDone <- struct{}{}:
				default:
				}
			}
		}()
	}
	go func() { wg.Wait(); close(readersGone) }()
	var once sync.Once
	stop := func() { once.Do(func() { close(writerDone) }); <-readersGone }
	defer stop() // also when a write fails the test: no reader outlives it

	for k := range batches {
		// Let a read finish between batches, so that reads meet every state of the table.
		select {
		case <-readDone:
		case <-readersGone:
		case <-ctx.Done():
			t.Fatalf("no read finished while writing batch %d: %v", k, ctx.Err())
		}
		write(ctx, t, b.Metrics, batch(k))
		if k%flushEach == flushEach-1 {
			flush(ctx, t, b)
		}
	}
	stop()
	rows := query(ctx, t, b.Store, store.Query{Table: "metrics", Columns: []string{"event_id", "source_id"}})
	if n, err := seen(rows); err != nil || n != batches {
		t.Errorf("after writing: %d batches visible (%v), want all %d", n, err, batches)
	}
}

// timeRange is a range of ts between two RFC 3339 times ("" for an open end).
func timeRange(from, to string) *store.Range {
	r := &store.Range{Column: "ts"}
	parse := func(s string) time.Time {
		if s == "" {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	r.From, r.To = parse(from), parse(to)
	return r
}
