package anomaly

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

func futureAnomaly(t *testing.T, alertAbove *float64, maxFuture config.Duration) *Processor {
	t.Helper()
	cfg := &Config{Into: "anomaly", Rule: "anomaly", Severity: "warning", AlertAbove: alertAbove, MaxFuture: &maxFuture,
		ForgetAfter: config.Duration(7 * 24 * time.Hour), KeepFiringFor: config.Duration(30 * time.Minute)}
	p, err := Factory.Build(cfg, engine.BuildEnv{Path: "streams[0].processors[0].anomaly", Clock: &futureClock{now: futureNow}})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Processor)
}

// futureReadings are host-a's readings every 5 minutes up to the clock's time, with one
// stamped in 2099 in the middle (offset 50).
func futureReadings() []*engine.Record {
	var recs []*engine.Record
	for i := range 100 {
		ts := futureNow.Add(time.Duration(i-99) * 5 * time.Minute).Format(time.RFC3339)
		if i == 50 {
			ts = "2099-01-01T00:00:00Z"
		}
		recs = append(recs, &engine.Record{
			Value: map[string]any{"tenant_id": "acme", "source": map[string]any{"source_id": "host-a"}, "metric": "cpu_load",
				"ts_event": ts, "value": 50 + float64(i%7)},
			Source: engine.Source{Topic: "signals", Offset: int64(i)},
		})
	}
	return recs
}

// A reading stamped in 2099 used to wipe what its series had learnt (the ranges forget by
// event time) and, with alert_above, made every later real reading late for the alert
// lifecycle, so they were all dead-lettered. With max_future it goes to the dead-letter
// topic unscored with the reason, and every real reading is scored (or evaluated) as before.
func TestAnomalyRefusesEventTimesFromTheFuture(t *testing.T) {
	alertAbove := 0.4
	for _, tt := range []struct {
		name       string
		alertAbove *float64
	}{{"scoring", nil}, {"alerting", &alertAbove}} {
		t.Run(tt.name, func(t *testing.T) {
			p := futureAnomaly(t, tt.alertAbove, config.Duration(time.Hour))
			var rejects engine.Rejects
			out, err := p.Process(context.Background(), futureReadings(), &rejects)
			if err != nil {
				t.Fatal(err)
			}
			if len(rejects.Items) != 1 {
				t.Fatalf("rejected %d records, want only the 2099 one: %+v", len(rejects.Items), rejects.Items)
			}
			r := rejects.Items[0]
			want := "anomaly: event time 2099-01-01T00:00:00Z is in the future: 641752h ahead of the clock (2025-10-16T08:00:00Z), more than max_future (1h)"
			if r.Record.Source.Offset != 50 || r.Late || r.Stage != "streams[0].processors[0].anomaly" || r.Err.Error() != want {
				t.Errorf("rejected offset %d (late %v) at %s: %v\nwant offset 50, not late, with %q", r.Record.Source.Offset, r.Late, r.Stage, r.Err, want)
			}
			if tt.alertAbove == nil && len(out) != 99 {
				t.Errorf("%d records scored, want the 99 real ones", len(out))
			}
		})
	}
}

// forever turns the check off; 0 refuses any time ahead of the clock.
func TestAnomalyMaxFutureLimit(t *testing.T) {
	tests := []struct {
		name      string
		maxFuture config.Duration
		ts        string
		refused   bool
	}{
		{"exactly max_future ahead", config.Duration(time.Hour), "2025-10-16T09:00:00Z", false},
		{"a second beyond", config.Duration(time.Hour), "2025-10-16T09:00:01Z", true},
		{"forever accepts 2099", config.Forever, "2099-01-01T00:00:00Z", false},
		{"0 refuses a second ahead", 0, "2025-10-16T08:00:01Z", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := futureAnomaly(t, nil, tt.maxFuture)
			rec := futureReadings()[0]
			rec.Value["ts_event"] = tt.ts
			var rejects engine.Rejects
			if _, err := p.Process(context.Background(), []*engine.Record{rec}, &rejects); err != nil {
				t.Fatal(err)
			}
			refused := len(rejects.Items) == 1 && strings.Contains(rejects.Items[0].Err.Error(), "is in the future")
			if refused != tt.refused || len(rejects.Items) > 1 {
				t.Errorf("event time %s with max_future %s: rejects %+v, want refused %v", tt.ts, tt.maxFuture, rejects.Items, tt.refused)
			}
		})
	}
}

func TestAnomalyMaxFutureValidate(t *testing.T) {
	negative := config.Duration(-time.Second)
	c := &Config{Into: "anomaly", MaxFuture: &negative}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "max_future: must be a duration of 0 or more, or forever") {
		t.Errorf("Validate() = %v, want the max_future error", err)
	}
}
