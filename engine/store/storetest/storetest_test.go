package storetest_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/store"
	"github.com/eventops/eventops-engine/engine/store/storetest"
)

// The suite holds for a store that buffers rows and loses the unflushed ones in a crash,
// the way the Parquet store does, without a database: so it runs everywhere, and what it
// demands is not PostgreSQL's behaviour by accident.
func TestMemoryBackend(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend { return (&memDB{}).open() })
}

var errBadQuery = errors.New("bad query")

// memDB is what survives a crash: the flushed rows of each table.
type memDB struct {
	mu      sync.Mutex
	flushed map[string][]map[string]any
}

// memStore is one running instance: memDB plus the rows written since the last flush.
type memStore struct {
	db       *memDB
	buffered map[string][]map[string]any
}

// column kinds of the built-in tables, by column; anything else is text.
var kinds = map[string]string{
	"ts": "time", "started_at": "time", "resolved_at": "time", "fired_at": "time",
	"value": "float", "tags": "json", "labels": "json", "annotations": "json",
}

// mappings say which record field fills each column (default: the column's own name).
var mappings = map[string]map[string]func(map[string]any) any{
	"metrics": {
		"ts":     func(v map[string]any) any { return v["ts_event"] },
		"tenant": func(v map[string]any) any { return v["tenant_id"] },
		"source_id": func(v map[string]any) any {
			src, _ := v["source"].(map[string]any)
			return src["source_id"]
		},
	},
	"alerts": {"tenant": func(v map[string]any) any { return v["tenant_id"] }},
}

func columnsOf(table string) ([]string, bool) {
	switch table {
	case "metrics":
		return storetest.MetricsColumns, true
	case "alerts":
		return storetest.AlertsColumns, true
	}
	return nil, false
}

func (db *memDB) open() storetest.Backend {
	s := &memStore{db: db, buffered: map[string][]map[string]any{}}
	return storetest.Backend{
		Metrics:     memOutput{s, "metrics"},
		Alerts:      memOutput{s, "alerts"},
		Store:       s,
		Flush:       s.flush,
		Reopen:      func(*testing.T) storetest.Backend { return db.open() },
		ErrBadQuery: errBadQuery,
	}
}

func (s *memStore) flush(context.Context) error {
	s.db.mu.Lock()
	defer s.db.mu.Unlock()
	if s.db.flushed == nil {
		s.db.flushed = map[string][]map[string]any{}
	}
	for table, rows := range s.buffered {
		s.db.flushed[table] = append(s.db.flushed[table], rows...)
	}
	clear(s.buffered)
	return nil
}

type memOutput struct {
	s     *memStore
	table string
}

func (o memOutput) Close() error { return nil }

// Write converts the batch, then adds the rows whose event_id is new under one lock, so a
// reader sees all of the batch or none of it.
func (o memOutput) Write(_ context.Context, batch []*engine.Record, rejects *engine.Rejects) error {
	cols, _ := columnsOf(o.table)
	var rows []map[string]any
	for _, rec := range batch {
		row := map[string]any{}
		for _, c := range cols {
			v := rec.Value[c]
			if f, ok := mappings[o.table][c]; ok {
				v = f(rec.Value)
			}
			cv, err := convert(c, v)
			if err != nil {
				rejects.Add(rec, "output", err)
				row = nil
				break
			}
			row[c] = cv
		}
		if row != nil {
			rows = append(rows, row)
		}
	}
	s := o.s
	s.db.mu.Lock()
	defer s.db.mu.Unlock()
	have := map[any]bool{}
	for _, r := range slices.Concat(s.db.flushed[o.table], s.buffered[o.table]) {
		have[r["event_id"]] = true
	}
	for _, r := range rows {
		if !have[r["event_id"]] {
			have[r["event_id"]] = true
			s.buffered[o.table] = append(s.buffered[o.table], r)
		}
	}
	return nil
}

// convert turns a record or query value into the JSON-friendly value of column c.
func convert(c string, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch kinds[c] {
	case "time":
		s, _ := v.(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v is not an RFC 3339 time", errBadQuery, c, v)
		}
		return t.UTC().Format(time.RFC3339Nano), nil
	case "float":
		switch x := v.(type) {
		case float64:
			return x, nil
		case string:
			f, err := strconv.ParseFloat(x, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %q is not a number", errBadQuery, c, x)
			}
			return f, nil
		}
		return nil, fmt.Errorf("%w: %s: %v is not a number", errBadQuery, c, v)
	case "json":
		return v, nil
	}
	return fmt.Sprint(v), nil
}

func (s *memStore) Columns(_ context.Context, table string) ([]string, error) {
	cols, ok := columnsOf(table)
	if !ok {
		return nil, fmt.Errorf("%w: table %s does not exist", errBadQuery, table)
	}
	return cols, nil
}

func (s *memStore) Query(ctx context.Context, q store.Query) ([]map[string]any, error) {
	cols, err := s.Columns(ctx, q.Table)
	if err != nil {
		return nil, err
	}
	known := func(c string) error {
		if !slices.Contains(cols, c) {
			return fmt.Errorf("%w: table %s has no column %q", errBadQuery, q.Table, c)
		}
		return nil
	}
	names := slices.Concat(q.Columns, []string{q.OrderBy, q.LatestBy})
	if q.LatestBy != "" {
		names = append(names, q.LatestTime)
	}
	conds := make([]store.Cond, len(q.Where))
	for i, w := range q.Where {
		names = append(names, w.Column)
		v, err := convert(w.Column, w.Value)
		if err != nil {
			return nil, err
		}
		conds[i] = store.Cond{Column: w.Column, Value: v}
	}
	for _, n := range names {
		if n != "" {
			if err := known(n); err != nil {
				return nil, err
			}
		}
	}

	s.db.mu.Lock()
	rows := slices.Concat(s.db.flushed[q.Table], s.buffered[q.Table])
	s.db.mu.Unlock()

	if q.LatestBy != "" {
		newest := map[any]map[string]any{}
		for _, r := range rows {
			k := r[q.LatestBy]
			if cur, ok := newest[k]; !ok || compare(r[q.LatestTime], cur[q.LatestTime]) >= 0 { // rows are in write order
				newest[k] = r
			}
		}
		rows = slices.Collect(maps.Values(newest))
	}
	var out []map[string]any
	for _, r := range rows {
		if !slices.ContainsFunc(conds, func(c store.Cond) bool { return compare(r[c.Column], c.Value) != 0 }) && inRange(r, q.Range) {
			out = append(out, r)
		}
	}
	if q.OrderBy != "" {
		slices.SortStableFunc(out, func(a, b map[string]any) int {
			if q.Desc {
				a, b = b, a
			}
			return compare(a[q.OrderBy], b[q.OrderBy])
		})
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	if len(q.Columns) > 0 {
		for i, r := range out {
			sel := map[string]any{}
			for _, c := range q.Columns {
				sel[c] = r[c]
			}
			out[i] = sel
		}
	}
	return out, nil
}

// compare orders two column values; NULL is above every value, as in PostgreSQL.
func compare(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	switch x := a.(type) {
	case float64:
		return cmp.Compare(x, b.(float64))
	case string:
		y := b.(string)
		ta, errA := time.Parse(time.RFC3339Nano, x)
		tb, errB := time.Parse(time.RFC3339Nano, y)
		if errA == nil && errB == nil {
			return ta.Compare(tb)
		}
		return cmp.Compare(x, y)
	}
	return cmp.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

// inRange tells whether row r's time column lies in rg (nil: every row; NULL: none).
func inRange(r map[string]any, rg *store.Range) bool {
	if rg == nil {
		return true
	}
	s, _ := r[rg.Column].(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	return err == nil && rg.Holds(t)
}
