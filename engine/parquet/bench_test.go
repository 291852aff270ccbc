package parquet

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"testing"
	"time"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/api"
	"github.com/eventops/eventops-engine/engine/store"
)

// benchRows is the benchmark's input: 100k readings of 100 hosts, 2 metrics, one day.
func benchRecords() []*engine.Record {
	recs := make([]*engine.Record, 100_000)
	t0 := time.Date(2025, 10, 16, 0, 0, 0, 0, time.UTC)
	for i := range recs {
		host := fmt.Sprintf("host-%03d", i%100)
		metric := []string{"cpu_load", "mem_used"}[i%2]
		recs[i] = reading(int64(i), host, metric, float64(i%100), t0.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano))
	}
	return recs
}

// bareRow is the same row as a struct, for parquet-go's own typed writer: the ceiling.
type bareRow struct {
	EventID  string    `parquet:"event_id,optional"`
	TS       time.Time `parquet:"ts,optional,timestamp(microsecond)"`
	Tenant   string    `parquet:"tenant,optional"`
	SourceID string    `parquet:"source_id,optional"`
	Metric   string    `parquet:"metric,optional"`
	Value    float64   `parquet:"value,optional"`
	Unit     string    `parquet:"unit,optional"`
	Tags     string    `parquet:"tags,optional"`
}

// BenchmarkWrite compares rows/s through the Output (conversion, partitioning, the fsynced
// log, one file per partition) with a bare parquet-go write of the same rows into one file
// (the target: at least 60% of bare).
func BenchmarkWrite(b *testing.B) {
	// Both writers run with the collector setting of the eventops-engine binary (main.go),
	// which is where the sink runs.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	recs := benchRecords()
	b.Run("output", func(b *testing.B) {
		for b.Loop() {
			dir := b.TempDir()
			cfg := metricsConfig(dir)
			cfg.FlushRows = 1 << 30
			cfg.RowGroupRows = 131072
			o, err := NewOutput(cfg, Options{NoBackground: true})
			if err != nil {
				b.Fatal(err)
			}
			var rej engine.Rejects
			for i := 0; i < len(recs); i += 10_000 {
				if err := o.Write(context.Background(), recs[i:i+10_000], &rej); err != nil {
					b.Fatal(err)
				}
			}
			if err := o.Close(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(recs)*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("bare", func(b *testing.B) {
		for b.Loop() {
			rows := make([]bareRow, len(recs))
			for i, r := range recs {
				v := r.Value
				ts, _ := time.Parse(time.RFC3339Nano, v["ts_event"].(string))
				tags, _ := json.Marshal(v["tags"]) // the same column the output writes
				rows[i] = bareRow{EventID: v["event_id"].(string), TS: ts, Tenant: v["tenant_id"].(string),
					SourceID: v["source"].(map[string]any)["source_id"].(string), Metric: v["metric"].(string),
					Value: v["value"].(float64), Unit: v["unit"].(string), Tags: string(tags)}
			}
			f, err := os.Create(filepath.Join(b.TempDir(), "bare.parquet"))
			if err != nil {
				b.Fatal(err)
			}
			w := pq.NewGenericWriter[bareRow](f, pq.Compression(&zstd.Codec{}), pq.MaxRowsPerRowGroup(131072))
			if _, err := w.Write(rows); err != nil {
				b.Fatal(err)
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			f.Sync()
			f.Close()
		}
		b.ReportMetric(float64(len(recs)*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

// BenchmarkQueryMetricsCPU measures the quickstart's /metrics/cpu query (one host's 1000
// newest readings: tenant, source_id and metric = cpu_load, ts desc, limit 1000) over 10M
// stored rows: 1000 hosts reading every 10 s for 28 hours, in files of 100k rows as the
// sink flushes them ("flushed"), then after compaction merged each date partition
// ("compacted"). It reports the latency percentiles of the query plus the JSON encoding the
// API does, and of the route through the API server over HTTP (-http). Building the table
// takes about a minute.
//
//	go test ./engine/parquet -run '^$' -bench QueryMetricsCPU -benchtime 200x
func BenchmarkQueryMetricsCPU(b *testing.B) {
	const hosts, rows, perFile = 1000, 10_000_000, 100_000
	dir := b.TempDir()
	cfg := metricsConfig(dir)
	cfg.RowGroupRows = 131072
	cfg.Compact = &Compact{MinFiles: 2, TargetSize: 1 << 40, Interval: config.Duration(time.Minute)}
	o, err := NewOutput(cfg, Options{NoBackground: true})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	t0 := time.Date(2025, 10, 16, 0, 0, 0, 0, time.UTC)
	buf := map[string][]Row{}
	for i := range rows {
		host := i % hosts
		ts := t0.Add(time.Duration(i/hosts) * 10 * time.Second)
		part := "tenant=acme/metric=cpu_load/date=" + ts.Format(time.DateOnly)
		buf[part] = append(buf[part], Row{Partition: part, Values: []any{
			fmt.Sprintf("ev-%010d", i), ts, "acme", fmt.Sprintf("host-%04d", host), "cpu_load",
			float64(i % 100), "percent", `{"env":"prod","site":"fra1"}`}})
		if (i+1)%perFile == 0 {
			for p, rs := range buf {
				if err := o.writeFile(p, fmt.Sprintf("part-%012d.parquet", i/perFile), rs); err != nil {
					b.Fatal(err)
				}
			}
			clear(buf)
		}
	}
	st, err := NewStore(o)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	q := store.Query{Table: "metrics", OrderBy: "ts", Desc: true, Limit: 1000}
	run := func(b *testing.B) {
		var lat []time.Duration
		for i := 0; b.Loop(); i++ {
			q.Where = []store.Cond{{Column: "tenant", Value: "acme"}, {Column: "source_id", Value: fmt.Sprintf("host-%04d", (i*37)%hosts)}, {Column: "metric", Value: "cpu_load"}}
			start := time.Now()
			res, err := st.Query(context.Background(), q)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(res); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
			if len(res) != 1000 {
				b.Fatalf("%d rows, want 1000", len(res))
			}
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
	// The same through the API: the quickstart's route, HTTP and JSON included.
	field := func(name, src string) config.Field {
		return config.Field{Name: name, Expr: &config.Expr{Src: src, Path: "api.routes[0].where." + name}}
	}
	srv, err := api.New(&config.API{Listen: "127.0.0.1:0", Routes: []config.Route{{
		Path: "/metrics/cpu", Table: "metrics", Order: "ts desc", Limit: 1000,
		Where: config.Fields{field("tenant", "query.tenant"), field("source_id", "query.host"), field("metric", `"cpu_load"`)},
	}}}, api.Deps{Stores: map[string]store.Store{"metrics": st}})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	viaHTTP := func(b *testing.B) {
		var lat []time.Duration
		for i := 0; b.Loop(); i++ {
			start := time.Now()
			resp, err := http.Get(fmt.Sprintf("http://%s/metrics/cpu?tenant=acme&host=host-%04d", srv.Addr(), (i*37)%hosts))
			if err != nil {
				b.Fatal(err)
			}
			var res []map[string]any
			err = json.NewDecoder(resp.Body).Decode(&res)
			resp.Body.Close()
			lat = append(lat, time.Since(start))
			if err != nil || len(res) != 1000 {
				b.Fatalf("%d rows (%v), want 1000", len(res), err)
			}
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
	// The peer in the same run: what a reader without pruning pays, a scan of the host
	// column of every row (values compared in the page, nothing else read).
	scanAll := func(b *testing.B) {
		sn, err := st.snapshot(&queryPlan{out: o})
		if err != nil {
			b.Fatal(err)
		}
		defer sn.release(&st.files)
		leaf := sn.files[0].leaves["source_id"]
		for i := 0; b.Loop(); i++ {
			host := fmt.Sprintf("host-%04d", (i*37)%hosts)
			n := 0
			for _, f := range sn.files {
				for _, rg := range f.pf.RowGroups() {
					all := make([]int64, rg.NumRows())
					for r := range all {
						all[r] = int64(r)
					}
					kept, err := filterAt(rg.ColumnChunks()[leaf], all, host)
					if err != nil {
						b.Fatal(err)
					}
					n += len(kept)
				}
			}
			if n != rows/hosts {
				b.Fatalf("%d rows of %s, want %d", n, host, rows/hosts)
			}
		}
	}
	b.Run("flushed", run)
	b.Run("flushed-http", viaHTTP)
	b.Run("flushed-full-scan-of-the-host-column", scanAll)
	if err := o.Maintain(); err != nil {
		b.Fatal(err)
	}
	b.Run("compacted", run)
	b.Run("compacted-http", viaHTTP)
}
