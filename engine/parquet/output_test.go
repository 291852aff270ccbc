package parquet

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func metricsConfig(dir string) *Config {
	return &Config{Dir: dir, Table: "metrics", FlushRows: 100000, FlushAge: config.Duration(10 * time.Second),
		RowGroupRows: 1000, Compression: "zstd", Retention: config.Forever}
}

func open(t *testing.T, cfg *Config, clock engine.Clock) *Output {
	t.Helper()
	o, err := NewOutput(cfg, Options{Clock: clock, NoBackground: true})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// reading is a raw agent reading after normalize, at offset off of signals.metric.v1/0.
func reading(off int64, host, metric string, value float64, ts string) *engine.Record {
	return &engine.Record{
		Value: map[string]any{
			"event_id": "ev-" + host + "-" + ts + "-" + metric, "tenant_id": "acme",
			"source": map[string]any{"type": "host", "source_id": host},
			"metric": metric, "value": value, "unit": "percent", "ts_event": ts,
			"tags": map[string]any{"env": "prod"},
		},
		Source: engine.Source{Topic: "signals.metric.v1", Partition: 0, Offset: off},
	}
}

func write(t *testing.T, o *Output, recs ...*engine.Record) {
	t.Helper()
	var rej engine.Rejects
	if err := o.Write(context.Background(), recs, &rej); err != nil {
		t.Fatal(err)
	}
	if rej.Len() > 0 {
		t.Fatalf("rejected: %v", rej.Items[0].Err)
	}
}

// files lists the table's Parquet files relative to dir.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// arrowRows reads every file under dir with Apache Arrow's Parquet reader and returns one
// "tenant|source_id|metric|value|ts|tags|event_id" line per row, sorted, and the Arrow
// schema of the first file.
func arrowRows(t *testing.T, dir string) ([]string, *arrow.Schema) {
	t.Helper()
	var lines []string
	var schema *arrow.Schema
	for _, f := range files(t, dir) {
		rdr, err := file.OpenParquetFile(filepath.Join(dir, f), false)
		if err != nil {
			t.Fatal(err)
		}
		fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		tbl, err := fr.ReadTable(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if schema == nil {
			schema = tbl.Schema()
		}
		col := func(name string) arrow.Array {
			idx := tbl.Schema().FieldIndices(name)
			if len(idx) != 1 {
				t.Fatalf("%s: no column %s", f, name)
			}
			return tbl.Column(idx[0]).Data().Chunk(0)
		}
		for i := 0; i < int(tbl.NumRows()); i++ {
			ts := col("ts").(*array.Timestamp).Value(i).ToTime(arrow.Microsecond).UTC().Format(time.RFC3339Nano)
			lines = append(lines, strings.Join([]string{
				col("tenant").(*array.String).Value(i), col("source_id").(*array.String).Value(i),
				col("metric").(*array.String).Value(i),
				strconv.FormatFloat(col("value").(*array.Float64).Value(i), 'f', -1, 64),
				ts, col("tags").(*array.String).Value(i), col("event_id").(*array.String).Value(i),
			}, "|"))
		}
		tbl.Release()
		rdr.Close()
	}
	sort.Strings(lines)
	return lines, schema
}

// An independent reader (Apache Arrow's) finds the rows in the seed's Hive layout with the
// promised types: ts TIMESTAMP(µs, UTC), value DOUBLE, ids and tags (JSON) as strings.
func TestFilesReadByArrow(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{now: time.Date(2025, 10, 16, 9, 5, 0, 0, time.UTC)}
	o := open(t, metricsConfig(dir), clock)
	write(t, o,
		reading(0, "host-a", "cpu_load", 92, "2025-10-16T09:00:00.123456789Z"),
		reading(1, "host-b", "cpu_load", 15.5, "2025-10-16T23:59:59Z"),
		reading(2, "host-a", "mem_used", 40, "2025-10-17T00:00:00Z"),
	)
	if got := files(t, dir); len(got) != 0 {
		t.Fatalf("files before flush_age passed: %v", got)
	}
	if n := len(o.Pending(nil)); n != 3 {
		t.Fatalf("pending rows before the flush: %d, want 3 (queries must see them)", n)
	}
	clock.Add(10 * time.Second)
	if err := o.MaybeFlush(); err != nil {
		t.Fatal(err)
	}
	if n := len(o.Pending(nil)); n != 0 {
		t.Fatalf("pending rows after the flush: %d", n)
	}
	want := []string{
		"tenant=acme/metric=cpu_load/date=2025-10-16/part-000000000001.parquet",
		"tenant=acme/metric=mem_used/date=2025-10-17/part-000000000001.parquet",
	}
	if got := files(t, dir); !slices.Equal(got, want) {
		t.Fatalf("files:\n%v\nwant:\n%v", got, want)
	}
	rows, schema := arrowRows(t, dir)
	wantRows := []string{
		`acme|host-a|cpu_load|92|2025-10-16T09:00:00.123456Z|{"env":"prod"}|ev-host-a-2025-10-16T09:00:00.123456789Z-cpu_load`,
		`acme|host-a|mem_used|40|2025-10-17T00:00:00Z|{"env":"prod"}|ev-host-a-2025-10-17T00:00:00Z-mem_used`,
		`acme|host-b|cpu_load|15.5|2025-10-16T23:59:59Z|{"env":"prod"}|ev-host-b-2025-10-16T23:59:59Z-cpu_load`,
	}
	if !slices.Equal(rows, wantRows) {
		t.Fatalf("rows:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(wantRows, "\n"))
	}
	for name, want := range map[string]string{
		"ts": "timestamp[us, tz=UTC]", "value": "float64", "tenant": "utf8", "tags": "utf8", "event_id": "utf8",
	} {
		f, ok := schema.FieldsByName(name)
		if !ok || f[0].Type.String() != want {
			t.Errorf("column %s: type %v, want %s", name, f, want)
		}
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
}

// The date partition of an instant is its UTC date, also across midnight, in zones other
// than UTC and before 1970, whatever the previous row's date was.
func TestDatePartitionIsTheUTCDate(t *testing.T) {
	var sc rowScratch
	for _, s := range []string{
		"2025-10-16T23:59:59.999999Z", "2025-10-17T00:00:00Z", "2025-10-17T01:30:00+02:00",
		"1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "1969-12-31T00:00:00Z", "1960-02-29T12:00:00Z", "2025-10-16T10:00:00Z",
	} {
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(sc.appendDate(nil, ts)), ts.UTC().Format(time.DateOnly); got != want {
			t.Errorf("%s: date %s, want %s", s, got, want)
		}
	}
}
