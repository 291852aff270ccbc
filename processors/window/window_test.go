package window

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
)

// stepClock is a wall clock the test moves by hand.
type stepClock struct{ now time.Time }

func (c *stepClock) Now() time.Time { return c.now }

var (
	t0   = time.Date(2025, 10, 16, 9, 0, 0, 0, time.UTC)
	wall = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
)

const path = "streams[1].processors[0].window"

func x(src string) config.Expr { return config.Expr{Src: src} }

func aggs(kv ...string) map[string]config.Expr {
	m := map[string]config.Expr{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = x(kv[i+1])
	}
	return m
}

func newProc(t testing.TB, cfg *Config, clock engine.Clock) *Processor {
	t.Helper()
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = config.Duration(time.Minute)
	}
	if clock == nil {
		clock = &stepClock{now: wall}
	}
	p, err := Factory.Build(cfg, engine.BuildEnv{Path: path, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Processor)
}

// ev is a metric record of host at sec seconds after t0 with value v, read at offset off.
func ev(host string, sec float64, v any, off int64) *engine.Record {
	return &engine.Record{
		Value: map[string]any{
			"tenant_id": "acme",
			"source":    map[string]any{"type": "host", "source_id": host},
			"metric":    "cpu_load",
			"value":     v,
			"ts_event":  t0.Add(time.Duration(sec * float64(time.Second))).Format(time.RFC3339Nano),
		},
		Source:    engine.Source{Topic: "signals.metric.v1", Offset: off},
		Timestamp: wall.Add(time.Duration(off) * time.Millisecond),
	}
}

func process(t testing.TB, p *Processor, recs ...*engine.Record) ([]*engine.Record, *engine.Rejects) {
	t.Helper()
	var rejects engine.Rejects
	out, err := p.Process(context.Background(), recs, &rejects)
	if err != nil {
		t.Fatal(err)
	}
	return out, &rejects
}

// secs is a time as seconds after t0, for summaries.
func secs(s string) string {
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return "?" + s
	}
	return fmt.Sprint(ts.Sub(t0).Seconds())
}

// summary is "host[start,end) name=value ..." per window record, aggregates sorted by name.
func summary(recs []*engine.Record) string {
	var lines []string
	for _, r := range recs {
		v := r.Value
		host := ""
		if src, ok := v["source"].(map[string]any); ok {
			host = fmt.Sprint(src["source_id"])
		}
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(v)) {
			switch k {
			case "source", "tenant_id", "metric", "window_start", "window_end", "ts_event", "event_id":
				continue
			}
			if f, ok := v[k].(float64); ok {
				// Three digits: quantiles are estimates within 1%.
				parts = append(parts, fmt.Sprintf("%s=%.3g", k, f))
				continue
			}
			parts = append(parts, fmt.Sprintf("%s=%v", k, v[k]))
		}
		lines = append(lines, fmt.Sprintf("%s[%s,%s) %s", host, secs(v["window_start"].(string)), secs(v["window_end"].(string)), strings.Join(parts, " ")))
	}
	return strings.Join(lines, "\n")
}

func lateReasons(r *engine.Rejects) string {
	var out []string
	for _, it := range r.Items {
		kind := "reject"
		if it.Late {
			kind = "late"
		}
		out = append(out, fmt.Sprintf("%s@%d(%s): %v", kind, it.Record.Source.Offset, it.Topic, it.Err))
	}
	return strings.Join(out, "\n")
}

var groupByHost = []config.Expr{x("tenant_id"), x("source.source_id"), x("metric")}

type step struct {
	recs []*engine.Record
	tick time.Duration // > 0: advance the wall clock by this and Tick instead
	want string        // window summaries emitted by this step
	late string        // substrings of the reject reasons, "|"-separated, in order
}

func runSteps(t *testing.T, cfg *Config, steps []step) {
	t.Helper()
	clock := &stepClock{now: wall}
	p := newProc(t, cfg, clock)
	for i, s := range steps {
		var out []*engine.Record
		var rejects = &engine.Rejects{}
		if s.tick > 0 {
			clock.now = clock.now.Add(s.tick)
			var err error
			out, err = p.Tick(context.Background(), clock.now, rejects)
			if err != nil {
				t.Fatal(err)
			}
		} else {
			clock.now = clock.now.Add(time.Second)
			out, rejects = process(t, p, s.recs...)
		}
		if got := summary(out); got != s.want {
			t.Errorf("step %d: windows\n%s\nwant\n%s", i, got, s.want)
		}
		got := lateReasons(rejects)
		if s.late == "" && got != "" {
			t.Errorf("step %d: unexpected rejects:\n%s", i, got)
		}
		if s.late != "" {
			wants := strings.Split(s.late, "|")
			if len(wants) != len(rejects.Items) {
				t.Errorf("step %d: rejects\n%s\nwant %d matching %q", i, got, len(wants), s.late)
				continue
			}
			for j, w := range wants {
				if !strings.Contains(lateReasons(&engine.Rejects{Items: rejects.Items[j : j+1]}), w) {
					t.Errorf("step %d: reject %d is\n%s\nwant it to contain %q", i, j, got, w)
				}
			}
		}
	}
}

func TestTumbling(t *testing.T) {
	base := func(lateness time.Duration) *Config {
		return &Config{Type: Tumbling, Size: config.Duration(time.Minute), GroupBy: groupByHost,
			Aggregate: aggs("n", "count()", "avg", "avg(value)"), Lateness: config.Duration(lateness)}
	}
	tests := []struct {
		name  string
		cfg   *Config
		steps []step
	}{
		{"in order: a window closes when the watermark reaches its end", base(0), []step{
			{recs: []*engine.Record{ev("a", 0, 10.0, 1), ev("a", 30, 20.0, 2), ev("a", 59.999, 30.0, 3)}},
			{recs: []*engine.Record{ev("a", 60, 40.0, 4)}, want: "a[0,60) avg=20 n=3"},
			{recs: []*engine.Record{ev("a", 185, 50.0, 5)}, want: "a[60,120) avg=40 n=1"},
		}},
		{"groups close in order of window end, then group key", base(0), []step{
			{recs: []*engine.Record{ev("b", 10, 1.0, 1), ev("a", 20, 3.0, 2), ev("a", 70, 2.0, 3), ev("b", 130, 4.0, 4)},
				want: "a[0,60) avg=3 n=1\nb[0,60) avg=1 n=1\na[60,120) avg=2 n=1"},
		}},
		{"out of order within lateness is counted", base(30 * time.Second), []step{
			{recs: []*engine.Record{ev("a", 50, 10.0, 1), ev("a", 80, 20.0, 2)}},
			{recs: []*engine.Record{ev("a", 40, 30.0, 3)}},
			{recs: []*engine.Record{ev("a", 95, 1.0, 4)}, want: "a[0,60) avg=20 n=2"},
		}},
		{"late: its window closed; later windows still take records", base(0), []step{
			{recs: []*engine.Record{ev("a", 50, 10.0, 1), ev("a", 70, 20.0, 2)}, want: "a[0,60) avg=10 n=1"},
			{recs: []*engine.Record{ev("a", 59, 99.0, 3), ev("a", 61, 30.0, 4)},
				late: "late@3(): late: event time 2025-10-16T09:00:59Z is before the watermark 2025-10-16T09:01:10Z (lateness 0s): its window [2025-10-16T09:00:00Z, 2025-10-16T09:01:00Z) has closed"},
			{recs: []*engine.Record{ev("a", 120, 0.0, 5)}, want: "a[60,120) avg=25 n=2"},
		}},
		{"a late record is late even for a group that never had that window", base(0), []step{
			{recs: []*engine.Record{ev("a", 70, 1.0, 1)}},
			{recs: []*engine.Record{ev("b", 10, 1.0, 2)}, late: "late@2(): late: event time 2025-10-16T09:00:10Z"},
		}},
		{"records without a readable time are rejected with the reason", base(0), []step{
			{recs: []*engine.Record{{Value: map[string]any{"value": 1.0}, Source: engine.Source{Offset: 7}},
				{Value: map[string]any{"value": 1.0, "ts_event": "yesterday"}, Source: engine.Source{Offset: 8}}},
				late: `reject@7(): window: no event time: ts_event is missing|reject@8(): window: event time (ts_event): cannot parse "yesterday"`},
		}},
		{"a value that is not a number is rejected and changes nothing", base(0), []step{
			{recs: []*engine.Record{ev("a", 1, "high", 1), ev("a", 2, 5.0, 2), ev("a", 3, nil, 3)},
				late: `reject@1(): window: aggregate argument value is the string "high", not a number`},
			{recs: []*engine.Record{ev("a", 60, 1.0, 4)}, want: "a[0,60) avg=5 n=2"},
		}},
		{"late topic", &Config{Type: Tumbling, Size: config.Duration(time.Minute), Aggregate: aggs("n", "count()"), Late: "late.metrics"}, []step{
			{recs: []*engine.Record{ev("a", 70, 1.0, 1), ev("a", 10, 1.0, 2)}, late: "late@2(late.metrics): late:"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runSteps(t, tt.cfg, tt.steps) })
	}
}

func TestHopping(t *testing.T) {
	cfg := func() *Config {
		return &Config{Type: Hopping, Size: config.Duration(time.Minute), Hop: config.Duration(20 * time.Second),
			GroupBy: groupByHost, Aggregate: aggs("n", "count()", "sum", "sum(value)")}
	}
	runSteps(t, cfg(), []step{
		// 25 s is in [-20,40), [0,60) and [20,80).
		{recs: []*engine.Record{ev("a", 25, 1.0, 1), ev("a", 45, 2.0, 2)}, want: "a[-20,40) n=1 sum=1"},
		{recs: []*engine.Record{ev("a", 100, 4.0, 3)}, want: "a[0,60) n=2 sum=3\na[20,80) n=2 sum=3\na[40,100) n=1 sum=2"},
		// 65 s: [20,80) and [40,100) have closed; [60,120) is open, so it is not late.
		{recs: []*engine.Record{ev("a", 65, 8.0, 4)}},
		{recs: []*engine.Record{ev("a", 30, 8.0, 5)}, late: "all its windows have closed, the last one [2025-10-16T09:00:20Z, 2025-10-16T09:01:20Z)"},
		{recs: []*engine.Record{ev("a", 200, 0.0, 6)}, want: "a[60,120) n=2 sum=12\na[80,140) n=1 sum=4\na[100,160) n=1 sum=4"},
	})
}

func TestSession(t *testing.T) {
	cfg := func(lateness time.Duration) *Config {
		return &Config{Type: Session, Gap: config.Duration(30 * time.Second), GroupBy: groupByHost,
			Aggregate: aggs("n", "count()", "first", "first(value)", "last", "last(value)", "p50", "p50(value)"),
			Lateness:  config.Duration(lateness)}
	}
	runSteps(t, cfg(0), []step{
		{recs: []*engine.Record{ev("a", 0, 1.0, 1), ev("a", 20, 2.0, 2), ev("a", 45, 3.0, 3)}},
		// 80 is 35 s after 45: a new session; the first ends at 45+30 = 75 <= 80.
		{recs: []*engine.Record{ev("a", 80, 4.0, 4)}, want: "a[0,75) first=1 last=3 n=3 p50=1.99"},
		{recs: []*engine.Record{ev("b", 200, 1.0, 5)}, want: "a[80,110) first=4 last=4 n=1 p50=4"},
	})
	t.Run("an out-of-order record bridges two sessions", func(t *testing.T) {
		runSteps(t, cfg(60*time.Second), []step{
			{recs: []*engine.Record{ev("a", 0, 1.0, 1), ev("a", 50, 5.0, 2)}},
			{recs: []*engine.Record{ev("a", 25, 3.0, 3)}},
			{recs: []*engine.Record{ev("a", 200, 9.0, 4)}, want: "a[0,80) first=1 last=5 n=3 p50=2.97"},
		})
	})
	t.Run("a record before a session extends it backwards", func(t *testing.T) {
		runSteps(t, cfg(60*time.Second), []step{
			{recs: []*engine.Record{ev("a", 100, 1.0, 1), ev("a", 80, 2.0, 2)}},
			{recs: []*engine.Record{ev("a", 300, 0.0, 3)}, want: "a[80,130) first=2 last=1 n=2 p50=1"},
		})
	})
	t.Run("late: a session of it alone would have closed", func(t *testing.T) {
		runSteps(t, cfg(0), []step{
			{recs: []*engine.Record{ev("a", 100, 1.0, 1)}},
			// 60 + 30 <= 100: late. 75 + 30 > 100: a new session, not late.
			{recs: []*engine.Record{ev("b", 60, 1.0, 2), ev("b", 75, 2.0, 3)},
				late: "late@2(): late: event time 2025-10-16T09:01:00Z is before the watermark 2025-10-16T09:01:40Z (lateness 0s): a session of it alone would have ended at 2025-10-16T09:01:30Z (gap 30s)"},
			{recs: []*engine.Record{ev("a", 131, 1.0, 4)}, want: "b[75,105) first=2 last=2 n=1 p50=2\na[100,130) first=1 last=1 n=1 p50=1"},
		})
	})
}

func TestIdleTimeout(t *testing.T) {
	cfg := &Config{Type: Tumbling, Size: config.Duration(time.Minute), GroupBy: groupByHost,
		Aggregate: aggs("n", "count()"), IdleTimeout: config.Duration(2 * time.Minute), Lateness: config.Duration(5 * time.Second)}
	runSteps(t, cfg, []step{
		{recs: []*engine.Record{ev("a", 30, 1.0, 1)}}, // read at wall+1s
		// Idle for 1m59s of wall clock: not yet.
		{tick: time.Minute + 59*time.Second},
		// Idle for 2m: the watermark is 30s + 2m - 5s, past the window's end.
		{tick: time.Second, want: "a[0,60) n=1"},
		// A record behind the advanced watermark is late, though nothing newer arrived.
		{recs: []*engine.Record{ev("a", 100, 1.0, 2)}, late: "late@2(): late: event time 2025-10-16T09:01:40Z is before the watermark 2025-10-16T09:02:25Z"},
		{recs: []*engine.Record{ev("a", 150, 1.0, 3)}},
		{tick: 2 * time.Minute, want: "a[120,180) n=1"},
	})
	t.Run("off", func(t *testing.T) {
		cfg := *cfg
		cfg.IdleTimeout = config.Forever
		runSteps(t, &cfg, []step{
			{recs: []*engine.Record{ev("a", 30, 1.0, 1)}},
			{tick: time.Hour},
		})
	})
}
