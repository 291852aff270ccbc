package broker

import (
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/enginetest"
)

// BenchmarkOutputWrite measures Output.Write (JSON encoding, produce, wait for acks) in
// batches of 10,000 envelope-shaped records against the embedded broker, next to the ceiling:
// a bare kgo client producing the same bytes with ProduceSync. Compare their records/s.
func BenchmarkOutputWrite(b *testing.B) {
	const batchSize = 10_000
	brk := startEmbedded(b, b.TempDir())
	ctx := context.Background()
	batch := enginetest.Events(0, batchSize)

	b.Run("Output.Write", func(b *testing.B) {
		ensure(b, brk, map[string]config.Topic{"bench.output": {Partitions: 3}})
		out, err := NewOutput(brk, OutputConfig{Topic: "bench.output"})
		if err != nil {
			b.Fatal(err)
		}
		defer out.Close()
		var rejects engine.Rejects
		b.ResetTimer()
		for range b.N {
			rejects.Reset()
			if err := out.Write(ctx, batch, &rejects); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "records/s")
	})

	b.Run("kgo.ProduceSync", func(b *testing.B) {
		ensure(b, brk, map[string]config.Topic{"bench.bare": {Partitions: 3}})
		cl := newClient(b, brk, kgo.DefaultProduceTopic("bench.bare"))
		recs := make([]*kgo.Record, batchSize)
		for i, r := range batch {
			v, err := jsonValue(r)
			if err != nil {
				b.Fatal(err)
			}
			recs[i] = &kgo.Record{Key: r.Key, Value: v}
		}
		b.ResetTimer()
		for range b.N {
			// Fresh records each round: kgo owns a record until its promise fires.
			round := make([]*kgo.Record, len(recs))
			for i, r := range recs {
				round[i] = &kgo.Record{Key: r.Key, Value: r.Value}
			}
			if err := cl.ProduceSync(ctx, round...).FirstErr(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "records/s")
	})
}

func jsonValue(r *engine.Record) ([]byte, error) {
	o := &Output{cfg: OutputConfig{Topic: "x", Clock: engine.WallClock{}}}
	var slab []byte
	kr, _, err := o.encode(r, r.Timestamp, &slab, 1, false)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return kr.Value, nil
}
