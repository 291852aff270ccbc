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
	cfg.Compact = &config.ParquetCompact{MinFiles: 3, TargetSize: 1 << 30, Interval: config.Duration(time.Minute)}
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
