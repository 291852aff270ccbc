package parquet

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/store"
)

// With many small pages and row groups, several files, a compacted partition and rows not
// yet flushed, every query answers what a plain filter, sort and limit over all rows gives:
// the page statistics only ever skip rows that cannot match.
func TestQueriesSkipOnlyRowsThatCannotMatch(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{now: time.Date(2025, 10, 17, 12, 0, 0, 0, time.UTC)}
	cfg := metricsConfig(filepath.Join(dir, "metrics"))
	cfg.RowGroupRows = 700
	cfg.Compact = &Compact{MinFiles: 3, TargetSize: 1 << 30, Interval: config.Duration(time.Minute)}
	o := open(t, cfg, clock)
	o.pageBufferSize = 1024 // pages of a few dozen rows
	defer o.Close()
	st, err := NewStore(o)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	rng := rand.New(rand.NewPCG(1, 2))
	var all []map[string]any
	t0 := time.Date(2025, 10, 16, 22, 0, 0, 0, time.UTC)
	off := int64(0)
	// Times are shuffled over the batches, so that files and row groups overlap in time and
	// a query stopping early at the wrong row group misses rows.
	times := rng.Perm(8000)
	for batch := range 8 {
		var recs []*engine.Record
		for range 1000 {
			host := fmt.Sprintf("host-%02d", rng.IntN(40))
			metric := []string{"cpu_load", "mem_used"}[rng.IntN(2)]
			ts := t0.Add(time.Duration(times[off]) * 7 * time.Second).Format(time.RFC3339Nano)
			r := reading(off, host, metric, float64(rng.IntN(50)), ts)
			if off%97 == 0 {
				delete(r.Value, "unit") // some NULLs
			}
			recs = append(recs, r)
			all = append(all, map[string]any{"event_id": r.Value["event_id"], "source_id": host, "metric": metric,
				"value": r.Value["value"], "ts": ts, "unit": r.Value["unit"]})
			off++
		}
		write(t, o, recs...)
		if batch < 6 {
			if err := o.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		if batch == 3 {
			if err := o.Maintain(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := len(files(t, cfg.Dir)); got < 4 {
		t.Fatalf("only %d files: the test needs several", got)
	}

	type q = store.Query
	w := func(kv ...any) []store.Cond {
		var cs []store.Cond
		for i := 0; i+1 < len(kv); i += 2 {
			cs = append(cs, store.Cond{Column: kv[i].(string), Value: kv[i+1]})
		}
		return cs
	}
	queries := []q{
		{Table: "metrics", Where: w("tenant", "acme", "source_id", "host-07", "metric", "cpu_load"), OrderBy: "ts", Desc: true, Limit: 1000},
		{Table: "metrics", Where: w("tenant", "acme", "source_id", "host-07", "metric", "cpu_load"), OrderBy: "ts", Desc: true, Limit: 5},
		{Table: "metrics", Where: w("source_id", "host-39"), OrderBy: "ts"},
		{Table: "metrics", Where: w("value", "13"), OrderBy: "event_id"},
		{Table: "metrics", Where: w("value", "13", "metric", "mem_used"), OrderBy: "ts", Desc: true, Limit: 20},
		{Table: "metrics", Where: w("unit", nil), OrderBy: "event_id"},
		{Table: "metrics", Where: w("ts", all[4321]["ts"])},
		{Table: "metrics", Where: w("ts", all[10]["ts"], "source_id", all[10]["source_id"])},
		{Table: "metrics", Where: w("source_id", "host-99")},
		{Table: "metrics", OrderBy: "value", Desc: true, Limit: 7},
		{Table: "metrics", OrderBy: "value", Limit: 30},
		{Table: "metrics", OrderBy: "ts", Limit: 40},
		{Table: "metrics", Where: w("source_id", "host-03"), OrderBy: "ts", Desc: true, Limit: 50},
		{Table: "metrics", Where: w("metric", "cpu_load"), LatestBy: "source_id", LatestTime: "ts", OrderBy: "source_id"},
		{Table: "metrics", Where: w("value", "1"), LatestBy: "source_id", LatestTime: "ts", OrderBy: "source_id"},
	}
	for _, query := range queries {
		t.Run(fmt.Sprintf("%+v", query), func(t *testing.T) {
			rows, err := st.Query(context.Background(), query)
			if err != nil {
				t.Fatal(err)
			}
			want := bruteForce(all, query)
			got := make([]string, len(rows))
			for i, r := range rows {
				got[i] = r["event_id"].(string)
			}
			if query.OrderBy == "" || query.OrderBy == "value" {
				// Ties (and no order) promise no order: compare as sets, and the order column.
				slices.Sort(got)
				slices.Sort(want)
			}
			if query.OrderBy == "value" {
				// Rows tie on value: any of the tied rows may come; the values may not differ.
				byID := map[string]any{}
				for _, r := range all {
					byID[r["event_id"].(string)] = r["value"]
				}
				var gotValues, wantValues []any
				for i, r := range rows {
					gotValues = append(gotValues, r["value"])
					wantValues = append(wantValues, byID[bruteForce(all, query)[i]])
				}
				if !slices.Equal(gotValues, wantValues) {
					t.Errorf("values %v, want %v", gotValues, wantValues)
				}
				return
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %d rows %v\nwant %d rows %v", len(got), got, len(want), want)
			}
		})
	}
}

// bruteForce answers q over every row written, the obvious way.
func bruteForce(all []map[string]any, q store.Query) []string {
	var rows []map[string]any
	for _, r := range all {
		rows = append(rows, r)
	}
	match := func(r map[string]any) bool {
		for _, c := range q.Where {
			v := r[c.Column]
			if c.Column == "tenant" {
				v = "acme"
			}
			if c.Column == "value" && v != nil {
				v = fmt.Sprint(v)
			}
			if c.Value == nil && v != nil || c.Value != nil && v != c.Value {
				return false
			}
		}
		return true
	}
	if q.LatestBy != "" {
		newest := map[any]map[string]any{}
		for _, r := range rows {
			if cur, ok := newest[r[q.LatestBy]]; !ok || r[q.LatestTime].(string) > cur[q.LatestTime].(string) {
				newest[r[q.LatestBy]] = r
			}
		}
		rows = rows[:0]
		for _, r := range newest {
			rows = append(rows, r)
		}
	}
	rows = slices.DeleteFunc(rows, func(r map[string]any) bool { return !match(r) })
	if q.OrderBy != "" {
		slices.SortStableFunc(rows, func(a, b map[string]any) int {
			var c int
			if x, ok := a[q.OrderBy].(float64); ok {
				c = cmp.Compare(x, b[q.OrderBy].(float64))
			} else {
				c = strings.Compare(fmt.Sprint(a[q.OrderBy]), fmt.Sprint(b[q.OrderBy]))
			}
			if q.Desc {
				return -c
			}
			return c
		})
	}
	if q.Limit > 0 && len(rows) > q.Limit {
		rows = rows[:q.Limit]
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r["event_id"].(string)
	}
	return out
}

// A batch large enough to be converted in parallel keeps every row once, in its partition,
// and sends exactly the records that do not fit to the dead-letter path, each with its
// reason; the files hold each partition's rows sorted by host, then time.
func TestLargeBatchKeepsEveryRowAndRejectsOnlyTheBadOnes(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{now: time.Date(2025, 10, 16, 12, 0, 0, 0, time.UTC)}
	o := open(t, metricsConfig(dir), clock)
	var recs []*engine.Record
	bad := map[int64]bool{}
	for i := range int64(10_000) {
		r := reading(i, fmt.Sprintf("host-%02d", (i*7)%23), []string{"cpu_load", "mem_used"}[i%2], float64(i),
			time.Date(2025, 10, 16, 9, 0, 0, 0, time.UTC).Add(time.Duration(10_000-i)*time.Second).Format(time.RFC3339))
		if i%1000 == 999 {
			r.Value["value"] = "high"
			bad[i] = true
		}
		recs = append(recs, r)
	}
	var rej engine.Rejects
	if err := o.Write(context.Background(), recs, &rej); err != nil {
		t.Fatal(err)
	}
	if rej.Len() != len(bad) {
		t.Fatalf("%d records rejected, want the %d bad ones", rej.Len(), len(bad))
	}
	for _, r := range rej.Items {
		if !bad[r.Record.Source.Offset] || !strings.Contains(r.Err.Error(), "value") {
			t.Errorf("rejected offset %d: %v", r.Record.Source.Offset, r.Err)
		}
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, f := range files(t, dir) {
		rows, err := o.readFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		total += len(rows)
		for i := 1; i < len(rows); i++ {
			a, b := rows[i-1].Values, rows[i].Values
			if c := compareValues(a[3], b[3]); c > 0 || c == 0 && compareValues(a[1], b[1]) > 0 {
				t.Fatalf("%s: row %d (%v %v) sorts before row %d (%v %v): not sorted by host, then time", f, i, b[3], b[1], i-1, a[3], a[1])
			}
		}
	}
	if total != 10_000-len(bad) {
		t.Fatalf("%d rows in the files, want %d", total, 10_000-len(bad))
	}
}
