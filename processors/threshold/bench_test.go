package threshold

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
)

// BenchmarkSeriesMemory feeds one record for each of 1,000,000 distinct series (every tenth
// above the threshold, so 10% of the series hold a firing alert) and reports the heap the
// processor keeps per series, and the records evaluated per second.
func BenchmarkSeriesMemory(b *testing.B) {
	const series, batchSize = 1_000_000, 1000
	for _, lateness := range []time.Duration{0, time.Minute} {
		b.Run(fmt.Sprint("lateness=", lateness), func(b *testing.B) {
			cfg := &Config{Rules: []Rule{cpuRule(0)}}
			cfg.Lateness = config.Duration(lateness)
			batch := make([]*engine.Record, batchSize)
			for i := range batch {
				batch[i] = event("", 0, 0)
			}
			var perSeries, rate float64
			for b.Loop() {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				p := newProc(b, cfg)
				var rejects engine.Rejects
				var busy time.Duration
				for n := 0; n < series; n += batchSize {
					for i, r := range batch {
						host := n + i
						r.Value["source"].(map[string]any)["source_id"] = fmt.Sprintf("host-%07d", host)
						r.Value["value"] = float64(50 + 45*btoi(host%10 == 0))
						r.Value["event_id"] = fmt.Sprintf("ev-%d", host)
					}
					start := time.Now()
					if _, err := p.Process(context.Background(), batch, &rejects); err != nil {
						b.Fatal(err)
					}
					busy += time.Since(start)
					p.Changes(func(int32, string, []byte) {})
				}
				// With lateness the records wait for the watermark; a later record releases them.
				if lateness > 0 {
					start := time.Now()
					if _, err := p.Process(context.Background(), []*engine.Record{event("host-x", 10, 0)}, &rejects); err != nil {
						b.Fatal(err)
					}
					busy += time.Since(start)
					p.Changes(func(int32, string, []byte) {})
				}
				if rejects.Len() > 0 {
					b.Fatalf("rejects: %v", rejects.Items[0].Err)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perSeries = float64(after.HeapAlloc-before.HeapAlloc) / series
				rate = series / busy.Seconds()
				runtime.KeepAlive(p)
			}
			b.ReportMetric(perSeries, "B/series")
			b.ReportMetric(rate, "events/s")
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
