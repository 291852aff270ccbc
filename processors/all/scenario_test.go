package all_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/runtime"
	outputs "github.com/eventops/eventops-engine/outputs/all"
	"github.com/eventops/eventops-engine/processors/all"
)

// The scenarios below are CPU readings of several hosts on one input partition, fed through
// processors built from YAML the way the runtime builds them. Each expected alert list was
// written by hand from the in-order story told in the case's comments; the readings are then
// delivered in order and shuffled (every reading at most `shuffle` behind the newest one
// already delivered, i.e. within the processors' lateness), and every delivery order must give
// exactly that list, with the same event ids.

// t0 is the event time the scenarios' offsets count from.
var t0 = time.Date(2025, 10, 16, 9, 0, 0, 0, time.UTC)

// reading is one CPU reading of host, at t0 + at.
type reading struct {
	host  string
	at    time.Duration
	value float64
}

// readings makes one reading of host every step from first on, one per value.
func readings(host string, first, step time.Duration, values ...float64) []reading {
	out := make([]reading, len(values))
	for i, v := range values {
		out[i] = reading{host: host, at: first + time.Duration(i)*step, value: v}
	}
	return out
}

// inOrder merges the readings of several hosts into event-time order.
func inOrder(hosts ...[]reading) []reading {
	out := slices.Concat(hosts...)
	slices.SortStableFunc(out, func(a, b reading) int { return int(a.at - b.at) })
	return out
}

func (r reading) record() *engine.Record {
	ts := t0.Add(r.at)
	return &engine.Record{Value: map[string]any{
		// What the normalizing map's record_id() gives: stable per source reading, whatever
		// the order it arrives in.
		"event_id":  fmt.Sprintf("%s@%s", r.host, ts.Format(time.RFC3339)),
		"tenant_id": "acme",
		"source":    map[string]any{"type": "host", "source_id": r.host},
		"metric":    "cpu_load",
		"value":     r.value,
		"ts_event":  ts.Format(time.RFC3339),
	}}
}

// step is what happens next in a scenario: a run of readings arriving (shuffled within the
// case's bound), or the wall clock moving on by tick with the processors ticked.
type step struct {
	readings []reading
	tick     time.Duration
}

// shuffled delivers rs out of order, but none more than bound behind the newest reading
// delivered before it: each reading is delivered at its event time plus a random delay
// below bound.
func shuffled(rs []reading, bound time.Duration, rng *rand.Rand) []reading {
	if bound <= 0 {
		return rs
	}
	type delayed struct {
		r  reading
		at time.Duration
	}
	d := make([]delayed, len(rs))
	for i, r := range rs {
		d[i] = delayed{r, r.at + time.Duration(rng.Int64N(int64(bound)))}
	}
	slices.SortStableFunc(d, func(a, b delayed) int { return int(a.at - b.at) })
	out := make([]reading, len(d))
	for i := range d {
		out[i] = d[i].r
	}
	return out
}

type scenarioClock struct{ now time.Time }

func (c *scenarioClock) Now() time.Time { return c.now }

// chain is the processors of one stream, driven like the runtime drives them: one record
// per batch, the wall clock one second further for each, every ticker ticked after every
// batch.
type chain struct {
	t       *testing.T
	clock   *scenarioClock
	procs   []runtime.NamedProcessor
	offset  int64
	out     []*engine.Record
	rejects engine.Rejects
	// windows are the records the first processor emitted, when it is a window.
	windows []*engine.Record
}

// buildChain builds the processors YAML (the items of a stream's processors:, indented by
// six spaces) in a pipeline whose input has no schema.
func buildChain(t *testing.T, processors string) *chain {
	t.Helper()
	file := `version: 1
broker: {embedded: {}}
dead_letter: dlq
topics: {readings: {}, alerts: {}, dlq: {}}
streams:
  - name: rules
    input: {topic: readings}
    processors:
` + processors + `
    output: {topic: alerts}
`
	cfg, err := config.LoadBytes("scenario.yaml", []byte(file), components.Registry(), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, file)
	}
	clock := &scenarioClock{now: time.Date(2025, 10, 16, 12, 0, 0, 0, time.UTC)}
	plan, err := runtime.Build(cfg, runtime.Options{Clock: clock, Components: components,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("%v\n%s", err, file)
	}
	return &chain{t: t, clock: clock, procs: plan.Streams[0].Processors}
}

// through runs recs through the processors from the i-th on.
func (c *chain) through(i int, recs []*engine.Record) []*engine.Record {
	for ; i < len(c.procs) && len(recs) > 0; i++ {
		var err error
		if recs, err = c.procs[i].Process(context.Background(), recs, &c.rejects); err != nil {
			c.t.Fatalf("%s: %v", c.procs[i].Name, err)
		}
		if i == 0 && c.procs[0].Type == "window" {
			c.windows = append(c.windows, recs...)
		}
	}
	return recs
}

func (c *chain) feed(r reading) {
	rec := r.record()
	rec.Source = engine.Source{Topic: "readings", Partition: 0, Offset: c.offset}
	rec.Timestamp = c.clock.now
	c.offset++
	c.clock.now = c.clock.now.Add(time.Second)
	c.out = append(c.out, c.through(0, []*engine.Record{rec})...)
	c.tick()
}

// tick ticks every ticker, passing what it emits through the processors after it.
func (c *chain) tick() {
	for i, p := range c.procs {
		tk, ok := p.Processor.(engine.Ticker)
		if !ok {
			continue
		}
		recs, err := tk.Tick(context.Background(), c.clock.now, &c.rejects)
		if err != nil {
			c.t.Fatalf("%s: tick: %v", p.Name, err)
		}
		if i == 0 && p.Type == "window" {
			c.windows = append(c.windows, recs...)
		}
		c.out = append(c.out, c.through(i+1, recs)...)
	}
}

// hms is an alert time as the time of day, the scenarios all being on one morning.
func hms(v any) string {
	s, _ := v.(string)
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return ts.Format("15:04:05")
}

// describe is an alert as the scenarios list them: when (ts), which host and rule, the
// state, the severity, then the lifecycle times.
func describe(a *engine.Record) string {
	v := a.Value
	var b strings.Builder
	fmt.Fprintf(&b, "%s %v %v %v %v", hms(v["ts"]), v["source_id"], v["rule"], v["state"], v["severity"])
	if p, ok := v["previous_severity"]; ok {
		fmt.Fprintf(&b, " (was %v)", p)
	}
	if r, ok := v["reason"]; ok {
		fmt.Fprintf(&b, " %v", r)
	}
	fmt.Fprintf(&b, " started=%s", hms(v["started_at"]))
	for _, f := range []string{"fired_at", "resolved_at", "last_seen_at"} {
		if x, ok := v[f]; ok {
			fmt.Fprintf(&b, " %s=%s", strings.TrimSuffix(f, "_at"), hms(x))
		}
	}
	if x, ok := v["value"]; ok && v["rule"] != "heartbeat" {
		fmt.Fprintf(&b, " value=%v", x)
	}
	return b.String()
}

func TestScenarioOutOfOrderCPUReadings(t *testing.T) {
	tests := []struct {
		name       string
		processors string
		// shuffle bounds how far behind the newest reading one may arrive; 0 delivers
		// the steps' readings as listed.
		shuffle time.Duration
		steps   []step
		want    []string
		// wantLate are the readings counted late, as host@time.
		wantLate []string
		// wantWindows is how many window records the window processor emits.
		wantWindows int
	}{{
		// (a) A ladder with for: 1m, readings 15 s apart per host, shuffled within 30 s.
		//   host-a climbs: 82 at 00:15 is pending warning; at 01:00 it is 91 (pending, now at
		//   critical level); at 01:15 for has elapsed and it fires critical; 86 at 01:45
		//   de-escalates to warning; 70 at 02:15 resolves it.
		//   host-b: 81 at 00:05 is pending warning, 79 at 00:35 cancels it (resolved,
		//   cancelled, never fired); 92 at 00:50 is pending critical again and fires at 01:50;
		//   89 at 02:20 de-escalates; 50 at 02:50 resolves.
		//   host-c: one reading of 90 at 00:40 is pending critical, cancelled at 00:55 by 60;
		//   80 from 01:10 on is pending warning and fires when it has held for exactly 1m,
		//   at 02:10; 79 at 02:25 resolves it.
		name: "a: ladder with for, lateness 30s",
		processors: `
      - threshold:
          lateness: 30s
          rules:
            - name: cpu
              for: 1m
              severities:
                - {severity: critical, when: 'value >= 90'}
                - {severity: warning, when: 'value >= 80'}
`,
		shuffle: 30 * time.Second,
		steps: []step{{readings: inOrder(
			readings("host-a", 0, 15*time.Second, 70, 82, 85, 88, 91, 93, 95, 86, 84, 70, 72, 60),
			readings("host-b", 5*time.Second, 15*time.Second, 81, 83, 79, 92, 94, 96, 97, 98, 91, 89, 85, 50),
			readings("host-c", 10*time.Second, 15*time.Second, 50, 55, 90, 60, 80, 80, 80, 80, 81, 79, 40, 40),
		)}, {tick: time.Hour}},
		want: []string{
			"09:00:05 host-b cpu pending warning started=09:00:05 value=81",
			"09:00:15 host-a cpu pending warning started=09:00:15 value=82",
			"09:00:35 host-b cpu resolved warning cancelled started=09:00:05 resolved=09:00:35 value=79",
			"09:00:40 host-c cpu pending critical started=09:00:40 value=90",
			"09:00:50 host-b cpu pending critical started=09:00:50 value=92",
			"09:00:55 host-c cpu resolved critical cancelled started=09:00:40 resolved=09:00:55 value=60",
			"09:01:10 host-c cpu pending warning started=09:01:10 value=80",
			"09:01:15 host-a cpu firing critical started=09:00:15 fired=09:01:15 value=93",
			"09:01:45 host-a cpu firing warning (was critical) started=09:00:15 fired=09:01:15 value=86",
			"09:01:50 host-b cpu firing critical started=09:00:50 fired=09:01:50 value=98",
			"09:02:10 host-c cpu firing warning started=09:01:10 fired=09:02:10 value=81",
			"09:02:15 host-a cpu resolved warning cleared started=09:00:15 fired=09:01:15 resolved=09:02:15 value=70",
			"09:02:20 host-b cpu firing warning (was critical) started=09:00:50 fired=09:01:50 value=89",
			"09:02:25 host-c cpu resolved warning cleared started=09:01:10 fired=09:02:10 resolved=09:02:25 value=79",
			"09:02:50 host-b cpu resolved warning cleared started=09:00:50 fired=09:01:50 resolved=09:02:50 value=50",
		},
	}, {
		// (b) 1m tumbling windows (lateness 30s) of readings 10 s apart, then a rule on the
		// window average with for: 2m and keep_firing_for: 1m, evaluated at each window's
		// end. Per-minute averages (the minute starting at 09:0m):
		//   host-a 50 92 95 91 85 93 80 70 60: pending at 09:02 (window [09:01, 09:02)),
		//     firing at 09:04; 85 at 09:05 clears it but keep_firing_for holds it and 93 at
		//     09:06 is back above; 80 at 09:07 clears it again, and still below a minute
		//     later (70 at 09:08) it resolves.
		//   host-b 91 95 89 90 90 90 88 50 50: pending at 09:01, cancelled at 09:03; pending
		//     at 09:04, firing at 09:06 (90 is >= 90); cleared at 09:07, resolved at 09:08.
		//   host-c 40 40 40 40 40 99 40 40 40: one hot minute, pending at 09:06, cancelled
		//     at 09:07.
		// Every minute of every host closes exactly once (27 windows); the last minute is
		// closed by the idle timeout.
		name: "b: window avg then for and keep_firing_for",
		processors: `
      - window:
          type: tumbling
          size: 1m
          lateness: 30s
          group_by: [tenant_id, source.source_id, metric]
          aggregate: {value: avg(value), n: count()}
      - threshold:
          rules:
            - name: cpu_avg
              when: value >= 90
              for: 2m
              keep_firing_for: 1m
              severity: critical
`,
		shuffle: 30 * time.Second,
		steps: []step{{readings: inOrder(
			perMinute("host-a", 0, 50, 92, 95, 91, 85, 93, 80, 70, 60),
			perMinute("host-b", 3*time.Second, 91, 95, 89, 90, 90, 90, 88, 50, 50),
			perMinute("host-c", 6*time.Second, 40, 40, 40, 40, 40, 99, 40, 40, 40),
		)}, {tick: time.Hour}},
		want: []string{
			"09:01:00 host-b cpu_avg pending critical started=09:01:00 value=91",
			"09:02:00 host-a cpu_avg pending critical started=09:02:00 value=92",
			"09:03:00 host-b cpu_avg resolved critical cancelled started=09:01:00 resolved=09:03:00 value=89",
			"09:04:00 host-a cpu_avg firing critical started=09:02:00 fired=09:04:00 value=91",
			"09:04:00 host-b cpu_avg pending critical started=09:04:00 value=90",
			"09:06:00 host-b cpu_avg firing critical started=09:04:00 fired=09:06:00 value=90",
			"09:06:00 host-c cpu_avg pending critical started=09:06:00 value=99",
			"09:07:00 host-c cpu_avg resolved critical cancelled started=09:06:00 resolved=09:07:00 value=40",
			"09:08:00 host-a cpu_avg resolved critical cleared started=09:02:00 fired=09:04:00 resolved=09:08:00 value=70",
			"09:08:00 host-b cpu_avg resolved critical cleared started=09:04:00 fired=09:06:00 resolved=09:08:00 value=50",
		},
		wantWindows: 27,
	}, {
		// (c) lateness 0: readings are evaluated as they arrive, and one older than the
		// newest already evaluated for its host is late: counted, dead-lettered, and not
		// evaluated (a's 10 at 00:30 would have cancelled its pending alert, b's 10 at 01:05
		// would have resolved it). A reading older than another host's newest is not late.
		//   host-a: 95 at 00:20 pending; still 95 at 00:50, 01:10; 01:20 has held 1m: firing;
		//     50 at 01:40 resolves it.
		//   host-b: 92 at 00:10 (arriving after a's 00:50) pending; 93 at 01:15 fires.
		name: "c: lateness 0, an older reading arrives late",
		processors: `
      - threshold:
          rules:
            - {name: cpu_high, when: value >= 90, for: 1m, severity: critical}
`,
		steps: []step{{readings: []reading{
			{"host-a", 0, 50},
			{"host-a", 20 * time.Second, 95},
			{"host-a", 50 * time.Second, 95},
			{"host-b", 10 * time.Second, 92},
			{"host-a", 30 * time.Second, 10},
			{"host-b", 75 * time.Second, 93},
			{"host-a", 70 * time.Second, 95},
			{"host-a", 80 * time.Second, 95},
			{"host-b", 65 * time.Second, 10},
			{"host-b", 90 * time.Second, 95},
			{"host-a", 100 * time.Second, 50},
		}}, {tick: time.Hour}},
		want: []string{
			"09:00:20 host-a cpu_high pending critical started=09:00:20 value=95",
			"09:00:10 host-b cpu_high pending critical started=09:00:10 value=92",
			"09:01:15 host-b cpu_high firing critical started=09:00:10 fired=09:01:15 value=93",
			"09:01:20 host-a cpu_high firing critical started=09:00:20 fired=09:01:20 value=95",
			"09:01:40 host-a cpu_high resolved critical cleared started=09:00:20 fired=09:01:20 resolved=09:01:40 value=50",
		},
		wantLate: []string{"host-a@09:00:30", "host-b@09:01:05"},
	}, {
		// (d) A flapping host: hysteresis (fire at >= 90, clear below 80) against the same
		// condition without it. Readings 15 s apart, shuffled within 30 s.
		//   host-a 85 91 88 92 85 79 89 90 70 75: cpu_hot fires at 00:15, stays firing
		//     through 88, 92 and 85, resolves at 79 (01:15); 89 is neither; 90 at 01:45 fires
		//     again, 70 at 02:00 resolves. cpu_naive fires and resolves on every crossing.
		//   host-b 95 95 85 95 85 95...: cpu_hot fires once and stays firing (85 >= 80);
		//     cpu_naive flaps three times.
		name: "d: flapping host, clear_when hysteresis",
		processors: `
      - threshold:
          lateness: 30s
          rules:
            - {name: cpu_hot, when: value >= 90, clear_when: value < 80, severity: critical}
            - {name: cpu_naive, when: value >= 90, severity: warning}
`,
		shuffle: 30 * time.Second,
		steps: []step{{readings: inOrder(
			readings("host-a", 0, 15*time.Second, 85, 91, 88, 92, 85, 79, 89, 90, 70, 75),
			readings("host-b", 5*time.Second, 15*time.Second, 95, 95, 85, 95, 85, 95, 95, 95, 95, 95),
		)}, {tick: time.Hour}},
		want: []string{
			"09:00:05 host-b cpu_hot firing critical started=09:00:05 fired=09:00:05 value=95",
			"09:00:05 host-b cpu_naive firing warning started=09:00:05 fired=09:00:05 value=95",
			"09:00:15 host-a cpu_hot firing critical started=09:00:15 fired=09:00:15 value=91",
			"09:00:15 host-a cpu_naive firing warning started=09:00:15 fired=09:00:15 value=91",
			"09:00:30 host-a cpu_naive resolved warning cleared started=09:00:15 fired=09:00:15 resolved=09:00:30 value=88",
			"09:00:35 host-b cpu_naive resolved warning cleared started=09:00:05 fired=09:00:05 resolved=09:00:35 value=85",
			"09:00:45 host-a cpu_naive firing warning started=09:00:45 fired=09:00:45 value=92",
			"09:00:50 host-b cpu_naive firing warning started=09:00:50 fired=09:00:50 value=95",
			"09:01:00 host-a cpu_naive resolved warning cleared started=09:00:45 fired=09:00:45 resolved=09:01:00 value=85",
			"09:01:05 host-b cpu_naive resolved warning cleared started=09:00:50 fired=09:00:50 resolved=09:01:05 value=85",
			"09:01:15 host-a cpu_hot resolved critical cleared started=09:00:15 fired=09:00:15 resolved=09:01:15 value=79",
			"09:01:20 host-b cpu_naive firing warning started=09:01:20 fired=09:01:20 value=95",
			"09:01:45 host-a cpu_hot firing critical started=09:01:45 fired=09:01:45 value=90",
			"09:01:45 host-a cpu_naive firing warning started=09:01:45 fired=09:01:45 value=90",
			"09:02:00 host-a cpu_hot resolved critical cleared started=09:01:45 fired=09:01:45 resolved=09:02:00 value=70",
			"09:02:00 host-a cpu_naive resolved warning cleared started=09:01:45 fired=09:01:45 resolved=09:02:00 value=70",
		},
	}, {
		// (e) A heartbeat rule (absent: 2m), readings 30 s apart, shuffled within 30 s.
		//   host-b's last reading before its gap is 02:10, so it is due at 04:10; the
		//   partition's event time passes that with c's 04:20 reading: firing at 04:10
		//   (not 04:20). b sends again at 05:40: resolved then.
		//   Then the whole partition goes silent (last readings a 07:00, b 07:10, c 07:20).
		//   90 s of wall-clock silence releases the buffered readings and brings the
		//   partition to 07:20 + 90 s = 08:50: nobody is due yet. After 125 s (09:25) every
		//   host has been silent 2m: a at 09:00, b at 09:10, c at 09:20, each stamped with
		//   the moment it became due, not with the tick's. host-a then comes back at 12:00 (resolved
		//   then, once the watermark passes it: its 12:30 reading brings it).
		name: "e: heartbeat stops and resumes, by event time and by the wall clock",
		processors: `
      - threshold:
          lateness: 30s
          rules:
            - {name: heartbeat, absent: 2m, when: metric == "cpu_load", severity: critical}
`,
		shuffle: 30 * time.Second,
		steps: []step{
			{readings: inOrder(
				readings("host-a", 0, 30*time.Second, ones(15)...),
				slices.Concat(readings("host-b", 10*time.Second, 30*time.Second, 1, 1, 1, 1, 1),
					readings("host-b", 5*time.Minute+40*time.Second, 30*time.Second, 1, 1, 1, 1)),
				readings("host-c", 20*time.Second, 30*time.Second, ones(15)...),
			)},
			{tick: 90 * time.Second},
			{tick: 35 * time.Second},
			{readings: readings("host-a", 12*time.Minute, 30*time.Second, 1, 1)},
			{tick: 40 * time.Second},
		},
		want: []string{
			"09:04:10 host-b heartbeat firing critical started=09:04:10 fired=09:04:10 last_seen=09:02:10",
			"09:05:40 host-b heartbeat resolved critical cleared started=09:04:10 fired=09:04:10 resolved=09:05:40 last_seen=09:02:10",
			"09:09:00 host-a heartbeat firing critical started=09:09:00 fired=09:09:00 last_seen=09:07:00",
			"09:09:10 host-b heartbeat firing critical started=09:09:10 fired=09:09:10 last_seen=09:07:10",
			"09:09:20 host-c heartbeat firing critical started=09:09:20 fired=09:09:20 last_seen=09:07:20",
			"09:12:00 host-a heartbeat resolved critical cleared started=09:09:00 fired=09:09:00 resolved=09:12:00 last_seen=09:07:00",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Seed 0 delivers in order; the others shuffle.
			var first []*engine.Record
			seeds := 1
			if tt.shuffle > 0 {
				seeds = 8
			}
			for seed := range seeds {
				rng := rand.New(rand.NewPCG(uint64(seed), 4))
				c := buildChain(t, tt.processors)
				disorder := 0
				for _, s := range tt.steps {
					if s.tick > 0 {
						c.clock.now = c.clock.now.Add(s.tick)
						c.tick()
						continue
					}
					rs := s.readings
					if seed > 0 {
						rs = shuffled(rs, tt.shuffle, rng)
					}
					for i, r := range rs {
						if i > 0 && r.at < rs[i-1].at {
							disorder++
						}
						c.feed(r)
					}
				}
				if seed > 0 && disorder == 0 {
					t.Fatalf("seed %d: the readings arrived in order; the case tests nothing", seed)
				}
				var got []string
				for _, a := range c.out {
					got = append(got, describe(a))
				}
				if d := diffLines(tt.want, got); d != "" {
					t.Fatalf("seed %d (%d readings out of order): alerts differ (-want +got):\n%s", seed, disorder, d)
				}
				var late []string
				for _, r := range c.rejects.Items {
					if !r.Late {
						t.Errorf("seed %d: rejected, not late: %v", seed, r.Err)
						continue
					}
					late = append(late, r.Record.Value["event_id"].(string))
				}
				wantLate := make([]string, len(tt.wantLate))
				for i, l := range tt.wantLate {
					host, at, _ := strings.Cut(l, "@")
					wantLate[i] = host + "@2025-10-16T" + at + "Z"
				}
				if !slices.Equal(late, wantLate) {
					t.Errorf("seed %d: late readings %v, want %v", seed, late, wantLate)
				}
				if tt.wantWindows > 0 && len(c.windows) != tt.wantWindows {
					t.Errorf("seed %d: %d window records, want %d", seed, len(c.windows), tt.wantWindows)
				}
				checkAlertIdentity(t, c.out)
				if seed == 0 {
					first = c.out
					continue
				}
				// The same readings in another order are the same alerts: a consumer that
				// saw the in-order run drops every one of these as a duplicate.
				for i, a := range c.out {
					if a.Value["event_id"] != first[i].Value["event_id"] {
						t.Errorf("seed %d: alert %d (%s) has event_id %v, in order it was %v", seed, i, describe(a), a.Value["event_id"], first[i].Value["event_id"])
					}
				}
			}
		})
	}
}

func ones(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = 1
	}
	return out
}

// perMinute makes six readings a minute (10 s apart, from first) for each value: a minute
// of readings alternating value-4 and value+4, whose average is value.
func perMinute(host string, first time.Duration, values ...float64) []reading {
	var out []reading
	for m, v := range values {
		for i := range 6 {
			x := v - 4
			if i%2 == 1 {
				x = v + 4
			}
			out = append(out, reading{host: host, at: first + time.Duration(m)*time.Minute + time.Duration(i)*10*time.Second, value: x})
		}
	}
	return out
}

// checkAlertIdentity checks what a consumer of the alert topic relies on: every alert of one
// rule and host shares a fingerprint, which is its Kafka key, distinct from every other
// alert's; event ids are unique.
func checkAlertIdentity(t *testing.T, alerts []*engine.Record) {
	t.Helper()
	fp := map[string]string{}
	owner := map[string]string{}
	ids := map[string]string{}
	for _, a := range alerts {
		v := a.Value
		who := fmt.Sprintf("%v/%v", v["rule"], v["source_id"])
		f, _ := v["fingerprint"].(string)
		if string(a.Key) != f || f == "" {
			t.Errorf("%s: Kafka key %q, fingerprint %q", describe(a), a.Key, f)
		}
		if prev, ok := fp[who]; ok && prev != f {
			t.Errorf("%s: fingerprint %s changed from %s", describe(a), f, prev)
		}
		if o, ok := owner[f]; ok && o != who {
			t.Errorf("%s and %s share fingerprint %s", who, o, f)
		}
		fp[who], owner[f] = f, who
		id, _ := v["event_id"].(string)
		if prev, dup := ids[id]; dup {
			t.Errorf("%s and %s share event_id %s", describe(a), prev, id)
		}
		ids[id] = describe(a)
		if v["state"] == "resolved" && hms(v["resolved_at"]) < hms(v["started_at"]) {
			t.Errorf("%s: resolved before it started", describe(a))
		}
	}
}

// diffLines shows want and got line by line, marking the lines that differ; "" when equal.
func diffLines(want, got []string) string {
	if slices.Equal(want, got) {
		return ""
	}
	var b strings.Builder
	for i := range max(len(want), len(got)) {
		w, g := "", ""
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w == g {
			fmt.Fprintf(&b, "  %s\n", w)
			continue
		}
		if w != "" {
			fmt.Fprintf(&b, "- %s\n", w)
		}
		if g != "" {
			fmt.Fprintf(&b, "+ %s\n", g)
		}
	}
	return b.String()
}

// components are every component type of the engine.
var components = engine.Components{Processors: all.Factories(), Outputs: outputs.Factories()}
