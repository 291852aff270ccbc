package parquet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/eventops/eventops-engine/engine"
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
				rows[i] = bareRow{EventID: v["event_id"].(string), TS: ts, Tenant: v["tenant_id"].(string),
					SourceID: v["source"].(map[string]any)["source_id"].(string), Metric: v["metric"].(string),
					Value: v["value"].(float64), Unit: v["unit"].(string), Tags: `{"env":"prod"}`}
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
