package window

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
)

// seriesConfig is the memory target: a 1-minute tumbling window with a p95 sketch,
// an average and a count per series.
func seriesConfig() *Config {
	return &Config{Type: Tumbling, Size: config.Duration(time.Minute), GroupBy: groupByHost,
		Aggregate:   aggs("avg", "avg(value)", "p95", "p95(value)", "n", "count()"),
		IdleTimeout: config.Duration(time.Minute)}
}

// metricRecord is a normalized reading of host series i.
func metricRecord(i int, sec float64, v float64, off int64) *engine.Record {
	return &engine.Record{
		Value: map[string]any{
			"tenant_id": "acme",
			"source":    map[string]any{"type": "host", "source_id": fmt.Sprintf("host-%07d", i)},
			"metric":    "cpu_load",
			"value":     v,
			"ts_event":  t0.Add(time.Duration(sec * float64(time.Second))).Format(time.RFC3339Nano),
		},
		Source:    engine.Source{Topic: "signals.metric.v1", Partition: int32(i % 6), Offset: off},
		Timestamp: wall,
	}
}

// BenchmarkSeriesMemory pushes 1,000,000 distinct series (3 readings each, inside one open
// window) through the window the way the runtime does (Changes after every batch) and
// reports the heap the open windows hold per series, measured after a GC, and events/s
// (time spent in Process and Changes).
//
//	go test ./processors/window -run '^$' -bench SeriesMemory -benchtime 1x
func BenchmarkSeriesMemory(b *testing.B) {
	const series, perSeries, batchSize = 1_000_000, 3, 10_000
	for range b.N {
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		p := newProc(b, seriesConfig(), nil)
		var elapsed time.Duration // in Process and Changes, not in making records
		var rejects engine.Rejects
		batch := make([]*engine.Record, 0, batchSize)
		off := int64(0)
		for r := range perSeries {
			for i := range series {
				batch = append(batch, metricRecord(i, float64(r*10+i%7), float64(40+(i+r*13)%60), off))
				off++
				if len(batch) == batchSize {
					start := time.Now()
					out, err := p.Process(context.Background(), batch, &rejects)
					p.Changes(func(int32, string, []byte) {})
					elapsed += time.Since(start)
					if err != nil || len(out) > 0 || rejects.Len() > 0 {
						b.Fatalf("err %v, %d windows closed, %d rejected: the series must stay open", err, len(out), rejects.Len())
					}
					clear(batch)
					batch = batch[:0]
				}
			}
		}
		var after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&after)
		open := 0
		for _, part := range p.parts {
			open += len(part.series)
		}
		if open != series {
			b.Fatalf("%d series open, want %d", open, series)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/series, "B/series")
		b.ReportMetric(float64(series*perSeries)/elapsed.Seconds(), "events/s")
		runtime.KeepAlive(p)
	}
}

// BenchmarkProcess is steady-state throughput: 10,000 hosts reporting every 10 s, windows
// opening and closing, Changes after every batch of 1,000.
func BenchmarkProcess(b *testing.B) {
	const hosts, batchSize = 10_000, 1_000
	p := newProc(b, seriesConfig(), nil)
	recs := make([]*engine.Record, b.N)
	for n := range recs {
		i := n % hosts
		recs[n] = metricRecord(i, float64(n/hosts)*10, float64(n%97), int64(n))
		recs[n].Source.Partition = 0
	}
	var rejects engine.Rejects
	b.ResetTimer()
	windows := 0
	for lo := 0; lo < len(recs); lo += batchSize {
		out, err := p.Process(context.Background(), recs[lo:min(lo+batchSize, len(recs))], &rejects)
		if err != nil {
			b.Fatal(err)
		}
		windows += len(out)
		p.Changes(func(int32, string, []byte) {})
	}
	b.StopTimer()
	if rejects.Len() > 0 {
		b.Fatalf("%d rejected: %v", rejects.Len(), rejects.Items[0].Err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
