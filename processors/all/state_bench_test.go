package all

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/types"
)

// statePipeline holds the three stateful chains of issue 4's memory benchmark, as a user
// would write them: a severity ladder with for: 2m on the readings themselves, a 1-minute
// tumbling window with avg, p95 and count per series, and that window feeding the same
// ladder on its average.
const statePipeline = `version: 1
broker: {embedded: {}}
dead_letter: ops.deadletter.v1
topics:
  ops.deadletter.v1: {}
  signals.metric.v1: {partitions: 3}
  signals.window.v1: {partitions: 3}
  ops.alert.v1: {partitions: 3, cleanup: compact}
streams:
  - name: threshold_only
    input: {topic: signals.metric.v1}
    processors:
      - threshold:
          rules:
            - name: cpu_load
              when: 'metric == "cpu_load"'
              severities:
                - {severity: critical, when: 'value >= 90'}
                - {severity: warning, when: 'value >= 80'}
              for: 2m
              message: 'CPU load {{value}}% on {{source.source_id}} ({{tenant_id}})'
    output: {topic: ops.alert.v1}
  - name: window_only
    input: {topic: signals.metric.v1}
    processors:
      - window: &window
          type: tumbling
          size: 1m
          group_by: [tenant_id, source.source_id, metric]
          aggregate: {avg: avg(value), p95: p95(value), n: count()}
    output: {topic: signals.window.v1}
  - name: window_threshold
    input: {topic: signals.metric.v1}
    processors:
      - window: *window
      - threshold:
          rules:
            - name: cpu_load_1m
              when: 'metric == "cpu_load"'
              severities:
                - {severity: critical, when: 'avg >= 90'}
                - {severity: warning, when: 'avg >= 80'}
              for: 2m
              message: 'CPU load {{avg}}% (p95 {{p95}}%) on {{source.source_id}} ({{tenant_id}})'
    output: {topic: ops.alert.v1}
`

// The benchmark's input: stateSeries distinct series (tenant, host, metric) reporting every
// 30 s of event time for stateRounds rounds (0 s to 3 min 30 s), read in batches of the
// input's default size. So every series has closed three 1-minute windows (whose averages
// the window_threshold chain evaluates) and holds one open window of two readings at the
// end, and the alerts of the hot series have been pending for 2 minutes and fire.
const (
	stateSeries     = 1_000_000
	stateRounds     = 8
	stateInterval   = 30 * time.Second
	stateBatch      = 10_000
	statePartitions = 3
)

var stateT0 = time.Date(2025, 10, 16, 9, 0, 0, 0, time.UTC)

// stateValue is series i's reading in round r: 10% of the series run hot (92–96, critical),
// 5% warm (83–87, warning) and the rest between 18 and 71; each wanders by ±2 from round
// to round, as CPU load does, so a window's p95 sketch holds a few adjacent buckets.
func stateValue(i, r int) float64 {
	base := 20 + float64((i*37)%50)
	switch i % 20 {
	case 0, 1:
		base = 94
	case 2:
		base = 85
	}
	return base + float64((i+3*r)%5) - 2
}

// hotSeries is how many series the ladder rules must end up firing for (critical or warning).
const hotSeries = stateSeries / 20 * 3

// stateTimes are the ts_event strings: round r, jittered by i%7 seconds so records of a
// partition arrive slightly out of event-time order, as they do from many agents.
var stateTimes = func() (ts [stateRounds][7]string) {
	for r := range ts {
		for j := range ts[r] {
			ts[r][j] = stateT0.Add(time.Duration(r)*stateInterval + time.Duration(j)*time.Second).Format(time.RFC3339)
		}
	}
	return ts
}()

// stateRecord is series i's normalized reading of round r, as the normalize stream writes
// it, read from input partition i%3 at offset off.
func stateRecord(i, r int, off int64) *engine.Record {
	host := strconv.AppendInt([]byte("host-"), int64(i), 10)
	return &engine.Record{
		Value: map[string]any{
			"event_id":  "ev-" + strconv.Itoa(r) + "-" + strconv.Itoa(i),
			"tenant_id": "tenant-" + strconv.Itoa(i%10),
			"source":    map[string]any{"type": "host", "source_id": string(host)},
			"metric":    "cpu_load",
			"value":     stateValue(i, r),
			"unit":      "percent",
			"ts_event":  stateTimes[r][i%7],
		},
		Source:    engine.Source{Topic: "signals.metric.v1", Partition: int32(i % statePartitions), Offset: off},
		Timestamp: stateT0,
	}
}

// chain is what one sub-benchmark runs per batch: process, then collect the state changes
// as the runtime does before it commits the batch.
type chain interface {
	process(batch []*engine.Record) (outputs, alerts int, err error)
	// changes returns the number of changelog entries and their key+value bytes.
	changes() (entries, bytes int)
	// series is, per processor, the number of series it holds state for, to check the
	// run; it is called after the memory is measured and may change the state.
	series() []int
}

// BenchmarkStateMemory is issue 4's memory benchmark: 1,000,000 distinct series through
// threshold alone, window alone, and window feeding threshold, built from statePipeline
// through the processor factories. Each sub-benchmark reports the heap its processors keep
// per series (HeapAlloc after a GC, after the run minus before it), events/s (time in
// Process and Changes only, not in making the records) and the changelog volume Changes
// hands the runtime to checkpoint. The floor, measured in the same run, is a bare Go map
// from the series key to eight float64s, updated per reading after the same field reads
// and event-time parse: what any per-series state costs at the least.
//
//	go test ./processors/all -run '^$' -bench StateMemory -benchtime 1x -count 3
//
// The GC runs at the eventops-engine binary's setting (GOGC=400) unless GOGC is set.
func BenchmarkStateMemory(b *testing.B) {
	if os.Getenv("GOGC") == "" {
		prev := debug.SetGCPercent(400)
		b.Cleanup(func() { debug.SetGCPercent(prev) })
	}
	cases := []struct {
		name   string
		stream string // in statePipeline; "" for the floor
		// want: window records emitted and alert records (pending + firing) over the run.
		outputs, alerts int
	}{
		{name: "floor"},
		{name: "threshold", stream: "threshold_only", alerts: 2 * hotSeries},
		{name: "window", stream: "window_only", outputs: 3 * stateSeries},
		{name: "window+threshold", stream: "window_threshold", outputs: 3 * stateSeries, alerts: 2 * hotSeries},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				var ch chain = newFloor()
				if c.stream != "" {
					ch = buildStream(b, c.stream)
				}
				var busy time.Duration
				outputs, alerts, entries, bytes := 0, 0, 0, 0
				batch := make([]*engine.Record, 0, stateBatch)
				off := int64(0)
				for r := range stateRounds {
					for i := range stateSeries {
						batch = append(batch, stateRecord(i, r, off))
						off++
						if len(batch) < stateBatch && i < stateSeries-1 {
							continue
						}
						start := time.Now()
						out, al, err := ch.process(batch)
						e, n := ch.changes()
						busy += time.Since(start)
						if err != nil {
							b.Fatal(err)
						}
						outputs, alerts, entries, bytes = outputs+out, alerts+al, entries+e, bytes+n
						clear(batch)
						batch = batch[:0]
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				for j, got := range ch.series() {
					if got != stateSeries {
						b.Fatalf("processor %d holds %d series, want %d", j, got, stateSeries)
					}
				}
				if c.stream != "" && (outputs != c.outputs || alerts != c.alerts) {
					b.Fatalf("%d window records and %d alert records, want %d and %d", outputs, alerts, c.outputs, c.alerts)
				}
				events := float64(stateSeries * stateRounds)
				b.ReportMetric((float64(after.HeapAlloc)-float64(before.HeapAlloc))/stateSeries, "B/series")
				b.ReportMetric(events/busy.Seconds(), "events/s")
				b.ReportMetric(float64(bytes)/events, "changelog-B/event")
				b.ReportMetric(float64(entries)/events, "changelog-entries/event")
				runtime.KeepAlive(ch)
			}
		})
	}
}

// processorChain is a stream's processors, built the way the runtime builds them.
type processorChain struct {
	procs []engine.Processor
	// window and threshold count the window records and alerts made in the chain.
	windowAt, thresholdAt int
	rejects               engine.Rejects
	clock                 time.Time
}

func buildStream(b *testing.B, name string) *processorChain {
	b.Helper()
	p, err := config.LoadBytes("state_bench.yaml", []byte(statePipeline), components().Registry(), nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range p.Streams {
		if s.Name != name {
			continue
		}
		ch := &processorChain{windowAt: -1, thresholdAt: -1}
		ch.clock = stateT0.Add(time.Hour)
		in := types.Any // as for any topic without a schema
		for j, pe := range s.Processors {
			f, _ := Factory(pe.Type)
			proc, err := f.Build(pe.Config, engine.BuildEnv{Stream: s.Name, Path: fmt.Sprintf("processors[%d].%s", j, pe.Type),
				Clock: fixedClock(ch.clock), Input: in})
			if err != nil {
				b.Fatalf("%s: %v", pe.Path, err)
			}
			if typed, ok := proc.(engine.TypedProcessor); ok {
				in = typed.OutputType()
			}
			if _, ok := proc.(engine.Stateful); !ok {
				b.Fatalf("%s is not stateful", pe.Path)
			}
			switch pe.Type {
			case "window":
				ch.windowAt = j
			case "threshold":
				ch.thresholdAt = j
			}
			ch.procs = append(ch.procs, proc)
		}
		return ch
	}
	b.Fatalf("no stream %q", name)
	return nil
}

func (c *processorChain) process(batch []*engine.Record) (outputs, alerts int, err error) {
	c.rejects.Reset()
	for j, p := range c.procs {
		if batch, err = p.Process(context.Background(), batch, &c.rejects); err != nil {
			return 0, 0, err
		}
		switch j {
		case c.windowAt:
			outputs = len(batch)
		case c.thresholdAt:
			alerts = len(batch)
		}
	}
	if c.rejects.Len() > 0 {
		return 0, 0, fmt.Errorf("%d rejected, first: %w", c.rejects.Len(), c.rejects.Items[0].Err)
	}
	return outputs, alerts, nil
}

func (c *processorChain) changes() (entries, bytes int) {
	for _, p := range c.procs {
		p.(engine.Stateful).Changes(func(_ int32, key string, value []byte) {
			entries++
			bytes += len(key) + len(value)
		})
	}
	return entries, bytes
}

// series counts each processor's series: a threshold's through Export (one entry per
// series plus its partition entry), a window's by closing every open window with a tick
// an hour of wall clock later (the partitions are idle by then) and counting the records,
// each of which must hold the two readings of its minute.
func (c *processorChain) series() []int {
	var counts []int
	for _, p := range c.procs {
		n := 0
		switch p := p.(type) {
		case engine.StateExporter:
			p.Export(func(_ int32, key string, _ []byte) {
				if key != "meta" {
					n++
				}
			})
		case engine.Ticker:
			out, _ := p.Tick(context.Background(), c.clock.Add(time.Hour), &c.rejects)
			for _, r := range out {
				if r.Value["n"] == 2 { // count() is an int
					n++
				}
			}
		}
		counts = append(counts, n)
	}
	return counts
}

// floor is the least per-series state: the series key and eight numbers (count, sum, min,
// max, first, last, window start, last event time), inline in a plain map.
type floor struct {
	m map[string][8]float64
}

func newFloor() *floor { return &floor{m: map[string][8]float64{}} }

func (f *floor) process(batch []*engine.Record) (int, int, error) {
	for _, rec := range batch {
		v := rec.Value
		tenant, _ := v["tenant_id"].(string)
		src, _ := v["source"].(map[string]any)
		host, _ := src["source_id"].(string)
		metric, _ := v["metric"].(string)
		x, _ := v["value"].(float64)
		ts, _ := v["ts_event"].(string)
		t, err := time.Parse(time.RFC3339, ts)
		if err != nil {
			return 0, 0, err
		}
		key := tenant + "\x00" + host + "\x00" + metric
		s, ok := f.m[key]
		if !ok {
			s = [8]float64{0, 0, x, x, x}
		}
		s[0]++
		s[1] += x
		s[2], s[3], s[5] = min(s[2], x), max(s[3], x), x
		s[6], s[7] = float64(t.Truncate(time.Minute).Unix()), float64(t.Unix())
		f.m[key] = s
	}
	return 0, 0, nil
}

func (f *floor) changes() (int, int) { return 0, 0 }
func (f *floor) series() []int       { return []int{len(f.m)} }
