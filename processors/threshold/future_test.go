package threshold

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
)

// futureClock is the engine clock of the max_future tests, moved by hand.
type futureClock struct{ now time.Time }

func (c *futureClock) Now() time.Time { return c.now }

var futureNow = time.Date(2025, 10, 16, 8, 0, 0, 0, time.UTC)

func futureThreshold(t *testing.T, lateness time.Duration, maxFuture config.Duration) *Processor {
	t.Helper()
	cfg := &Config{Lateness: config.Duration(lateness), MaxFuture: &maxFuture, Rules: []Rule{
		{Name: "cpu_high", When: config.Expr{Src: "value >= 90"}, Severity: SeverityCritical},
	}}
	p, err := Factory.Build(cfg, engine.BuildEnv{Path: "streams[0].processors[0].threshold", Clock: &futureClock{now: futureNow}})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Processor)
}

func futureReading(offset int64, ts string, value float64) *engine.Record {
	return &engine.Record{
		Value: map[string]any{"tenant_id": "acme", "source": map[string]any{"source_id": "host-a"}, "metric": "cpu_load",
			"ts_event": ts, "value": value},
		Source: engine.Source{Topic: "signals", Offset: offset},
	}
}

// A reading stamped in 2099 used to become its series' newest record: every later real
// reading was "641752h older" and dead-lettered, and the series could never alert again.
// With max_future it goes to the dead-letter topic with the reason, is not evaluated, and
// the real readings after it alert as before, whether records are evaluated as they come
// (lateness 0) or in event-time order behind a watermark.
func TestThresholdRefusesEventTimesFromTheFuture(t *testing.T) {
	for _, lateness := range []time.Duration{0, time.Minute} {
		t.Run("lateness "+lateness.String(), func(t *testing.T) {
			p := futureThreshold(t, lateness, config.Duration(time.Hour))
			var rejects engine.Rejects
			out, err := p.Process(context.Background(), []*engine.Record{
				futureReading(0, "2025-10-16T07:58:00Z", 50),
				futureReading(1, "2099-01-01T00:00:00Z", 95),
				futureReading(2, "2025-10-16T07:58:20Z", 95),
				futureReading(3, "2025-10-16T07:59:30Z", 96), // moves the watermark past 07:58:20
			}, &rejects)
			if err != nil {
				t.Fatal(err)
			}
			if len(rejects.Items) != 1 {
				t.Fatalf("rejected %d records, want only the 2099 one: %+v", len(rejects.Items), rejects.Items)
			}
			r := rejects.Items[0]
			want := "threshold: event time 2099-01-01T00:00:00Z is in the future: 641752h ahead of the clock (2025-10-16T08:00:00Z), more than max_future (1h)"
			if r.Record.Source.Offset != 1 || r.Late || r.Stage != "streams[0].processors[0].threshold" || r.Err.Error() != want {
				t.Errorf("rejected offset %d (late %v) at %s: %v\nwant offset 1, not late, with %q", r.Record.Source.Offset, r.Late, r.Stage, r.Err, want)
			}
			if len(out) != 1 || out[0].Value["state"] != "firing" || out[0].Value["ts"] != "2025-10-16T07:58:20Z" {
				t.Fatalf("alerts = %v, want one firing at 07:58:20, from the real reading after the 2099 one", out)
			}
		})
	}
}

// The limit is inclusive, forever turns the check off and 0 refuses any time ahead of the
// clock; a record without an event time is evaluated at the clock's time, never refused.
func TestThresholdMaxFutureLimit(t *testing.T) {
	tests := []struct {
		name      string
		maxFuture config.Duration
		ts        any
		refused   bool
	}{
		{"exactly max_future ahead", config.Duration(time.Hour), "2025-10-16T09:00:00Z", false},
		{"a millisecond beyond", config.Duration(time.Hour), "2025-10-16T09:00:00.001Z", true},
		{"epoch milliseconds beyond", config.Duration(time.Hour), float64(futureNow.Add(2 * time.Hour).UnixMilli()), true},
		{"forever accepts 2099", config.Forever, "2099-01-01T00:00:00Z", false},
		{"0 accepts the clock's time", 0, "2025-10-16T08:00:00Z", false},
		{"0 refuses a millisecond ahead", 0, "2025-10-16T08:00:00.001Z", true},
		{"no event time", 0, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := futureThreshold(t, 0, tt.maxFuture)
			rec := futureReading(0, "", 1)
			rec.Value["ts_event"] = tt.ts
			var rejects engine.Rejects
			if _, err := p.Process(context.Background(), []*engine.Record{rec}, &rejects); err != nil {
				t.Fatal(err)
			}
			refused := len(rejects.Items) == 1 && strings.Contains(rejects.Items[0].Err.Error(), "is in the future")
			if refused != tt.refused || len(rejects.Items) > 1 {
				t.Errorf("event time %v with max_future %s: rejects %+v, want refused %v", tt.ts, tt.maxFuture, rejects.Items, tt.refused)
			}
		})
	}
}

func TestThresholdMaxFutureValidate(t *testing.T) {
	negative := config.Duration(-time.Second)
	c := &Config{MaxFuture: &negative, Rules: []Rule{{Name: "r", When: config.Expr{Src: "true"}}}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "max_future: must be a duration of 0 or more, or forever") {
		t.Errorf("Validate() = %v, want the max_future error", err)
	}
}
