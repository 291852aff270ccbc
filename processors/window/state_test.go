package window

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/enginetest"
)

// workload is a stream of batches and ticks: out-of-order readings of several hosts over
// three partitions, some of them later than the lateness allows, with pauses long enough
// for the idle timeout.
type action struct {
	batch []*engine.Record
	tick  bool
	wait  time.Duration // wall-clock time that passes before the action
}

func workload(seed uint64, n int) []action {
	rng := rand.New(rand.NewPCG(seed, 7))
	var acts []action
	var offsets [3]int64
	eventSec := 0.0
	for len(acts) < n {
		if rng.IntN(10) == 0 {
			acts = append(acts, action{tick: true, wait: time.Duration(rng.IntN(120)) * time.Second})
			continue
		}
		var batch []*engine.Record
		for range 1 + rng.IntN(12) {
			part := int32(rng.IntN(3))
			host := fmt.Sprintf("h%d-%d", part, rng.IntN(4)) // hosts stay on their partition
			eventSec += rng.Float64() * 4
			at := eventSec - rng.Float64()*rng.Float64()*90 // mostly in order, some very late
			var v any = float64(rng.IntN(100))
			if rng.IntN(15) == 0 {
				v = nil
			}
			r := ev(host, at, v, offsets[part])
			r.Source.Partition = part
			r.Value["counter"] = float64(int(eventSec) % 500) // resets every 500 s
			r.Value["user"] = fmt.Sprintf("u%d", rng.IntN(30))
			if host[len(host)-1] == '0' {
				r.Value["tags"] = map[string]any{"env": "prod"}
			}
			offsets[part]++
			batch = append(batch, r)
		}
		acts = append(acts, action{batch: batch, wait: time.Duration(rng.IntN(3)) * time.Second})
	}
	return acts
}

// allAggregates uses every aggregate function, so that every kind of state is
// checkpointed.
var allAggregates = aggs(
	"n", "count()", "nv", "count(value)", "sum", "sum(value)", "avg", "avg(value)",
	"min", "min(value)", "max", "max(value)", "first", "first(value)", "last", "last(user)",
	"rate", "rate(counter)", "per_s", "rate()", "sd", "stddev(value)",
	"p50", "p50(value)", "p99", "p99(value)", "users", "distinct(user)")

func windowConfigs() map[string]func() *Config {
	base := func(c *Config) *Config {
		c.GroupBy = groupByHost
		c.GroupAs = map[string]config.Expr{"env": x(`tags?.env ?? "none"`)}
		c.Aggregate = allAggregates
		c.Lateness = config.Duration(20 * time.Second)
		c.IdleTimeout = config.Duration(90 * time.Second)
		return c
	}
	return map[string]func() *Config{
		"tumbling": func() *Config { return base(&Config{Type: Tumbling, Size: config.Duration(time.Minute)}) },
		"hopping": func() *Config {
			return base(&Config{Type: Hopping, Size: config.Duration(time.Minute), Hop: config.Duration(15 * time.Second)})
		},
		"session": func() *Config { return base(&Config{Type: Session, Gap: config.Duration(10 * time.Second)}) },
	}
}

// transcript writes what a processor produced, every byte that reaches the next stage:
// records (value, source, timestamp) and rejects (stage, reason, topic, late).
func transcript(out []*engine.Record, rejects *engine.Rejects) string {
	var b strings.Builder
	for _, r := range out {
		v, _ := json.Marshal(r.Value)
		fmt.Fprintf(&b, "out %s %s/%d@%d %s\n", v, r.Source.Topic, r.Source.Partition, r.Source.Offset, r.Timestamp.Format(time.RFC3339Nano))
	}
	for _, it := range rejects.Items {
		fmt.Fprintf(&b, "rej %s/%d@%d %s %v %s %v\n", it.Record.Source.Topic, it.Record.Source.Partition, it.Record.Source.Offset, it.Stage, it.Late, it.Topic, it.Err)
	}
	return b.String()
}

// runner drives a processor through actions the way the runtime does: Changes after every
// batch and tick, kept in a changelog (latest value per key, deletions removed).
type runner struct {
	p         *Processor
	clock     *stepClock
	changelog enginetest.Changelog
}

func newRunner(t testing.TB, cfg *Config) *runner {
	clock := &stepClock{now: wall}
	return &runner{p: newProc(t, cfg, clock), clock: clock, changelog: enginetest.Changelog{}}
}

func (r *runner) do(t testing.TB, a action) string {
	r.clock.now = r.clock.now.Add(a.wait)
	var rejects engine.Rejects
	var out []*engine.Record
	var err error
	if a.tick {
		out, err = r.p.Tick(context.Background(), r.clock.now, &rejects)
	} else {
		out, err = r.p.Process(context.Background(), a.batch, &rejects)
	}
	if err != nil {
		t.Fatal(err)
	}
	r.changelog.Collect(r.p)
	return transcript(out, &rejects)
}

// TestCheckpointConformance runs the shared checkpoint suite (enginetest.TestStateful) on
// every window type with every aggregate: restore at every step, Changes, Drop, tombstones
// and garbled entries. The idle timeout is off: it depends on the wall clock, and a
// restored partition counts its silence from the restore (TestRestoreRestartsTheIdleClock);
// what it closed before the stop stays closed (TestRestoreKeepsTheIdleWatermark).
func TestCheckpointConformance(t *testing.T) {
	script := workloadScript(42, 90)
	for name, newCfg := range windowConfigs() {
		t.Run(name, func(t *testing.T) {
			cfg := newCfg()
			cfg.IdleTimeout = config.Forever
			if closed, late := closedAndLate(t, cfg, script); closed < 100 || late == 0 {
				t.Fatalf("the workload closed %d windows and had %d late records; it tests too little", closed, late)
			}
			enginetest.TestStateful(t, setup(cfg), script)
		})
	}
	t.Run("hosts come and go", func(t *testing.T) {
		cfg := &Config{Type: Tumbling, Size: config.Duration(time.Minute), GroupBy: groupByHost,
			Aggregate: aggs("n", "count()", "avg", "avg(value)"), IdleTimeout: config.Forever}
		enginetest.TestStateful(t, setup(cfg), comingAndGoing())
	})
}

// comingAndGoing is an hour of readings, one a host every 20 s, from hosts that live for
// five minutes each, two at a time on each of three partitions: a group's entry is deleted
// with its last window, so the changelog holds the hosts of the last two five-minute
// spans at most.
func comingAndGoing() enginetest.Script {
	script := enginetest.Script{Start: wall, MaxEntries: 3 * (1 + 2*2)}
	var offsets [3]int64
	for i := range 180 / 3 {
		var batch []*engine.Record
		for j := range 3 * 3 {
			sec := float64(i*60 + j/3*20)
			part := j % 3
			host := fmt.Sprintf("h%d-%d-%d", part, int(sec)/300, j/3%2)
			r := ev(host, sec, float64(j), offsets[part])
			r.Source.Partition = int32(part)
			offsets[part]++
			batch = append(batch, r)
		}
		script.Steps = append(script.Steps, enginetest.Step{At: wall.Add(time.Duration(i) * time.Second), Batch: batch})
	}
	return script
}

// closedAndLate runs script once and counts the windows closed and the late records.
func closedAndLate(t *testing.T, cfg *Config, script enginetest.Script) (closed, late int) {
	clock := &stepClock{now: script.Start}
	p := newProc(t, cfg, clock)
	for _, st := range script.Steps {
		clock.now = st.At
		var rejects engine.Rejects
		run := p.Process
		if st.Tick {
			run = func(ctx context.Context, _ []*engine.Record, rejects *engine.Rejects) ([]*engine.Record, error) {
				return p.Tick(ctx, st.At, rejects)
			}
		}
		out, err := run(context.Background(), st.Batch, &rejects)
		if err != nil {
			t.Fatal(err)
		}
		closed += len(out)
		for _, it := range rejects.Items {
			if it.Late {
				late++
			}
		}
	}
	return closed, late
}

func setup(cfg *Config) enginetest.StatefulSetup {
	return func(t testing.TB, clock engine.Clock) enginetest.StatefulProcessor {
		return newProc(t, cfg, clock)
	}
}

// workloadScript is workload as a script for enginetest.TestStateful.
func workloadScript(seed uint64, n int) enginetest.Script {
	acts := workload(seed, n)
	script := enginetest.Script{Start: wall,
		// Four groups and a watermark per partition.
		MaxEntries: 3 * (4 + 1)}
	now := wall
	for _, a := range acts {
		now = now.Add(a.wait)
		script.Steps = append(script.Steps, enginetest.Step{At: now, Batch: a.batch, Tick: a.tick})
	}
	return script
}

// TestRestoreAfterConfigEdit: state written before an aggregate was added or removed
// restores; windows already open start the new aggregate empty.
func TestRestoreAfterConfigEdit(t *testing.T) {
	before := &Config{Type: Tumbling, Size: config.Duration(time.Minute), Aggregate: aggs("n", "count()", "avg", "avg(value)")}
	r := newRunner(t, before)
	r.do(t, action{batch: []*engine.Record{ev("a", 1, 10.0, 1), ev("a", 2, 20.0, 2)}})
	after := newRunner(t, &Config{Type: Tumbling, Size: config.Duration(time.Minute), Aggregate: aggs("n", "count()", "top", "max(value)")})
	if err := after.p.Restore(0, r.changelog[0]); err != nil {
		t.Fatal(err)
	}
	out, _ := process(t, after.p, ev("a", 3, 5.0, 3), ev("a", 60, 0.0, 4))
	if got, want := summary(out), "[0,60) n=3 top=5"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRestoreRejectsCorruptState(t *testing.T) {
	p := newProc(t, windowConfigs()["tumbling"](), nil)
	for _, entries := range []map[string][]byte{
		{"m": {1, 1}},
		{"g[\"a\"]": {1, 200}},
		{"x": {1}},
	} {
		if err := p.Restore(0, entries); err == nil {
			t.Errorf("Restore(%q) accepted corrupt state", entries)
		}
	}
}

// TestChangelogEntries: a partition's changelog is its watermark and one entry per group
// with open windows; a group whose windows all closed is deleted.
func TestChangelogEntries(t *testing.T) {
	r := newRunner(t, &Config{Type: Tumbling, Size: config.Duration(time.Minute), Aggregate: aggs("n", "count()")})
	a, b := ev("a", 1, 1.0, 1), ev("b", 2, 1.0, 1)
	b.Source.Partition = 1
	r.do(t, action{batch: []*engine.Record{a, b}})
	if len(r.changelog[0]) != 2 || len(r.changelog[1]) != 2 {
		t.Fatalf("changelog after one record per partition: %v, want a watermark and a window each", r.changelog)
	}
	// The window closes: its entry is deleted, the watermark entry stays.
	c := ev("a", 61, 1.0, 2)
	if got := r.do(t, action{batch: []*engine.Record{c}}); !strings.Contains(got, `"n":1`) {
		t.Fatalf("window did not close: %s", got)
	}
	if _, ok := r.changelog[0][`g[]`]; !ok || len(r.changelog[0]) != 2 {
		t.Errorf("partition 0 entries %q, want the watermark and the new window only", keys(r.changelog[0]))
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestEventIDIsStable(t *testing.T) {
	cfg := &Config{Type: Tumbling, Size: config.Duration(time.Minute), GroupBy: groupByHost, Aggregate: aggs("n", "count()")}
	run := func() []*engine.Record {
		out, _ := process(t, newProc(t, cfg, nil), ev("a", 1, 1.0, 1), ev("b", 2, 1.0, 2), ev("a", 61, 1.0, 3))
		return out
	}
	first, again := run(), run()
	if len(first) != 2 {
		t.Fatalf("%d windows, want 2", len(first))
	}
	if first[0].Value["event_id"] != again[0].Value["event_id"] || first[0].Value["event_id"] == first[1].Value["event_id"] {
		t.Errorf("event ids %v %v (replay %v): want stable per window and distinct across groups", first[0].Value["event_id"], first[1].Value["event_id"], again[0].Value["event_id"])
	}
	w := first[0]
	if w.Value["ts_event"] != "2025-10-16T09:01:00Z" || w.Value["window_start"] != "2025-10-16T09:00:00Z" ||
		w.Value["source"].(map[string]any)["source_id"] != "a" || w.Value["tenant_id"] != "acme" ||
		w.Source.Offset != 1 || w.Source.Topic != "signals.metric.v1" {
		t.Errorf("window record %v from %+v", w.Value, w.Source)
	}
}

// TestRestoreRestartsTheIdleClock: a partition restored after downtime is not idle; the
// records that arrived while no instance read it are about to be replayed. Counting its
// silence from the checkpoint would let the first tick after the restore close its windows
// and make the replayed records late.
func TestRestoreRestartsTheIdleClock(t *testing.T) {
	cfg := &Config{Type: Tumbling, Size: config.Duration(time.Minute), GroupBy: groupByHost,
		Aggregate: aggs("n", "count()"), IdleTimeout: config.Duration(time.Minute)}
	before := newRunner(t, cfg)
	before.do(t, action{batch: []*engine.Record{ev("a", 30, 1.0, 1)}})

	after := newRunner(t, cfg)
	after.clock.now = before.clock.now.Add(10 * time.Minute) // down for 10 minutes
	if err := after.p.Restore(0, before.changelog[0]); err != nil {
		t.Fatal(err)
	}
	if got := after.do(t, action{tick: true, wait: time.Second}); got != "" {
		t.Errorf("first tick after the restore emitted\n%s", got)
	}
	after.do(t, action{batch: []*engine.Record{ev("a", 45, 1.0, 2)}, wait: time.Second})
	out, _ := process(t, after.p, ev("a", 70, 1.0, 3))
	if got, want := summary(out), "a[0,60) n=2"; got != want {
		t.Errorf("windows %q, want %q: the replayed record belongs to the restored window", got, want)
	}
}

// TestRestoreKeepsTheIdleWatermark: windows the idle timeout closed stay closed after a
// restore, and a record behind the watermark it reached is still late.
func TestRestoreKeepsTheIdleWatermark(t *testing.T) {
	cfg := &Config{Type: Tumbling, Size: config.Duration(time.Minute), GroupBy: groupByHost,
		Aggregate: aggs("n", "count()"), IdleTimeout: config.Duration(time.Minute)}
	before := newRunner(t, cfg)
	before.do(t, action{batch: []*engine.Record{ev("a", 30, 1.0, 1)}})
	if got := before.do(t, action{tick: true, wait: 2 * time.Minute}); !strings.Contains(got, `"n":1`) {
		t.Fatalf("idle partition: window not closed: %q", got)
	}
	after := newRunner(t, cfg)
	after.clock.now = before.clock.now
	if err := after.p.Restore(0, before.changelog[0]); err != nil {
		t.Fatal(err)
	}
	// The idle watermark is 30s + 2m: a record at 1m50s is late, one at 2m40s is not.
	out, rejects := process(t, after.p, ev("a", 110, 1.0, 2), ev("a", 160, 1.0, 3))
	if len(out) != 0 || rejects.Len() != 1 || rejects.Items[0].Record.Source.Offset != 2 {
		t.Errorf("after restore: output %q, rejects %s; want the record at 1m50s late", summary(out), lateReasons(rejects))
	}
}

// TestRestoreAfterSizeEdit: windows open when size: was edited close with the bounds they
// were opened with; records after the restore go to windows of the new size, and the two
// windows starting at the same time are two records with two event ids.
func TestRestoreAfterSizeEdit(t *testing.T) {
	before := newRunner(t, &Config{Type: Tumbling, Size: config.Duration(time.Minute), GroupBy: groupByHost, Aggregate: aggs("n", "count()")})
	before.do(t, action{batch: []*engine.Record{ev("a", 10, 1.0, 1)}})
	after := newRunner(t, &Config{Type: Tumbling, Size: config.Duration(5 * time.Minute), GroupBy: groupByHost, Aggregate: aggs("n", "count()")})
	if err := after.p.Restore(0, before.changelog[0]); err != nil {
		t.Fatal(err)
	}
	out, _ := process(t, after.p, ev("a", 20, 1.0, 2), ev("a", 120, 1.0, 3), ev("a", 310, 1.0, 4))
	if got, want := summary(out), "a[0,60) n=1\na[0,300) n=2"; got != want {
		t.Fatalf("windows\n%s\nwant\n%s", got, want)
	}
	if out[0].Value["event_id"] == out[1].Value["event_id"] {
		t.Errorf("two windows share event_id %v: a sink would drop the second", out[0].Value["event_id"])
	}
}
