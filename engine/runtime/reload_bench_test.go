package runtime_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/reload"
	"github.com/eventops/eventops-engine/engine/runtime"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

// swapLoadPipeline is a stateful rules stream over the embedded broker: its input is
// transactional, so a swap waits for the batch in flight to commit its Kafka transaction.
func swapLoadPipeline(dataDir string, threshold, batch int) string {
	return fmt.Sprintf(`version: 1
broker:
  embedded: {listen: "127.0.0.1:0", data_dir: %q}
topics:
  in:     {partitions: 2}
  alerts: {partitions: 2}
  dlq:    {}
dead_letter: dlq
streams:
  - name: rules
    input: {topic: in, batch_size: %d}
    processors:
      - threshold:
          series: [host]
          rules:
            - {name: hot, when: 'value >= %d', severity: critical}
    output: {topic: alerts}
`, dataDir, batch, threshold)
}

// BenchmarkSwapPauseUnderLoad reloads a stateful rules stream (threshold over 1,000 hosts,
// alert states carried over) again and again while a producer sends a steady 50,000
// events/s into it through the embedded broker.
//
//   - swap: the rule's threshold changes, so the stream swaps in place at a commit boundary.
//     It reports the pause the reload measured (how long the stream read nothing, from
//     taking the swap up through committing its batch in flight to running the new
//     version), and the longest time the stream's records-in counter stood still around
//     each reload, watched from outside.
//   - restart: the input's batch size changes, so the stream is stopped and a new one
//     started, as a stop-and-start reload (Redpanda Connect's watch mode) does: leaving and
//     joining the consumer group, restoring the alert states from the changelog. The same
//     outside watch measures it.
//   - none: no reload, the same outside watch over 20 ms: how long the counter stands still
//     between batches anyway (the floor of the figures above).
//
// The rates are what the producer managed and what the stream read over the run.
//
//	go test ./engine/runtime -run '^$' -bench SwapPauseUnderLoad -benchtime 40x
func BenchmarkSwapPauseUnderLoad(b *testing.B) {
	for _, mode := range []string{"none", "swap", "restart"} {
		b.Run(mode, func(b *testing.B) { benchReloadUnderLoad(b, mode) })
	}
}

func benchReloadUnderLoad(b *testing.B, mode string) {
	restart := mode == "restart"
	const rate = 50_000 // events/s
	dataDir := filepath.Join(b.TempDir(), "broker")
	load := func(i int) *config.Pipeline {
		threshold, batch := 90+i%2, 500
		if restart {
			threshold, batch = 90, 500+i%2
		}
		cfg, err := config.LoadBytes("bench.yaml", []byte(swapLoadPipeline(dataDir, threshold, batch)), components.Registry(), nil)
		if err != nil {
			b.Fatal(err)
		}
		return cfg
	}
	metrics := telemetry.New()
	running, stop := runUntilStopped(b, load(0), runtime.RunOptions{Metrics: metrics})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	producer, err := kgo.NewClient(kgo.SeedBrokers(running.Broker.Addrs()...), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer producer.Close()

	// The producer: every millisecond, the events due by then.
	var produced, failed atomic.Int64
	stopProducing := make(chan struct{})
	var producing sync.WaitGroup
	producing.Add(1)
	go func() {
		defer producing.Done()
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		start := time.Now()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		rnd := rand.New(rand.NewPCG(1, 2))
		i := 0
		for {
			select {
			case <-stopProducing:
				return
			case now := <-tick.C:
				due := int(now.Sub(start).Seconds() * rate)
				for ; i < due; i++ {
					host := i % 1000
					v := fmt.Appendf(nil, `{"host":"h%d","value":%d,"ts_event":%q}`, host, rnd.IntN(100),
						base.Add(time.Duration(i)*time.Millisecond/50).Format(time.RFC3339Nano))
					producer.Produce(ctx, &kgo.Record{Topic: "in", Key: fmt.Appendf(nil, "h%d", host), Value: v}, func(_ *kgo.Record, err error) {
						if err != nil {
							failed.Add(1)
						} else {
							produced.Add(1)
						}
					})
				}
			}
		}
	}()
	readIn := func() float64 { return testutil.ToFloat64(metrics.RecordsIn.WithLabelValues("rules")) }
	for readIn() == 0 {
		time.Sleep(10 * time.Millisecond) // the stream joined its group and reads
	}
	time.Sleep(time.Second) // and is past its first batches

	var pauses, gaps []time.Duration
	start, producedBefore, readBefore := time.Now(), produced.Load(), readIn()
	for i := 0; b.Loop(); i++ {
		time.Sleep(100 * time.Millisecond) // events flow between reloads
		if mode == "none" {
			gaps = append(gaps, longestStill(b, readIn, func() { time.Sleep(20 * time.Millisecond) }))
			continue
		}
		var st reload.Status
		gaps = append(gaps, longestStill(b, readIn, func() { st = running.Reload(ctx, load(i+1), nil, "bench") }))
		if st.Result != reload.Applied {
			b.Fatalf("reload %d: %s %v", i, st.Result, st.Errors)
		}
		if !restart {
			p, ok := st.SwapPauseSeconds["rules"]
			if !ok {
				b.Fatalf("reload %d swapped no stream: %+v", i, st)
			}
			pauses = append(pauses, time.Duration(p*float64(time.Second)))
		}
	}
	elapsed := time.Since(start).Seconds()
	producedRate := float64(produced.Load()-producedBefore) / elapsed
	readRate := (readIn() - readBefore) / elapsed
	close(stopProducing)
	producing.Wait()
	if failed.Load() > 0 {
		b.Fatalf("%d events failed to produce", failed.Load())
	}
	stop()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	if len(pauses) > 0 {
		slices.Sort(pauses)
		b.ReportMetric(ms(pauses[len(pauses)/2]), "p50-pause-ms")
		b.ReportMetric(ms(pauses[len(pauses)*99/100]), "p99-pause-ms")
		b.ReportMetric(ms(pauses[len(pauses)-1]), "max-pause-ms")
	}
	slices.Sort(gaps)
	b.ReportMetric(ms(gaps[len(gaps)/2]), "p50-still-ms")
	b.ReportMetric(ms(gaps[len(gaps)-1]), "max-still-ms")
	b.ReportMetric(producedRate, "produced/s")
	b.ReportMetric(readRate, "read/s")
}

// longestStill runs reload while watching the counter every 100µs, and returns the longest
// time the counter stood still from just before reload until it moved after reload returned.
func longestStill(b *testing.B, counter func() float64, reload func()) time.Duration {
	var returned atomic.Bool
	result := make(chan time.Duration)
	go func() {
		last, lastChange, longest := counter(), time.Now(), time.Duration(0)
		for {
			time.Sleep(100 * time.Microsecond)
			now, v := time.Now(), counter()
			if v == last {
				continue
			}
			longest = max(longest, now.Sub(lastChange))
			last, lastChange = v, now
			if returned.Load() {
				result <- longest
				return
			}
		}
	}()
	reload()
	returned.Store(true)
	select {
	case d := <-result:
		return d
	case <-time.After(time.Minute):
		b.Fatal("the stream read nothing for a minute after the reload")
	}
	return 0
}
