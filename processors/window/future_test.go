package window

import (
	"context"
	"fmt"
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

func futureWindow(t *testing.T, maxFuture config.Duration) *Processor {
	t.Helper()
	cfg := &Config{
		Type: Tumbling, Size: config.Duration(time.Minute), MaxFuture: &maxFuture,
		GroupBy:   []config.Expr{{Src: "host"}},
		Aggregate: map[string]config.Expr{"n": {Src: "count()"}, "avg": {Src: "avg(value)"}},
	}
	p, err := Factory.Build(cfg, engine.BuildEnv{Path: "streams[0].processors[0].window", Clock: &futureClock{now: futureNow}})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Processor)
}

func futureReading(offset int64, ts string, value float64) *engine.Record {
	return &engine.Record{
		Value:  map[string]any{"host": "host-a", "ts_event": ts, "value": value},
		Source: engine.Source{Topic: "signals", Offset: offset},
	}
}

// A reading stamped in 2099 used to move the partition's watermark to 2099: every open
// window closed at once and every later real reading was late. With max_future it goes to
// the dead-letter topic with the reason, and the real readings around it roll up as if it
// had never come.
func TestWindowRefusesEventTimesFromTheFuture(t *testing.T) {
	p := futureWindow(t, config.Duration(time.Hour))
	var rejects engine.Rejects
	out, err := p.Process(context.Background(), []*engine.Record{
		futureReading(0, "2025-10-16T07:59:10Z", 1),
		futureReading(1, "2099-01-01T00:00:00Z", 99),
		futureReading(2, "2025-10-16T07:59:30Z", 2),
		futureReading(3, "2025-10-16T08:00:05Z", 3), // closes 07:59–08:00
	}, &rejects)
	if err != nil {
		t.Fatal(err)
	}
	if len(rejects.Items) != 1 {
		t.Fatalf("rejected %d records, want only the 2099 one: %+v", len(rejects.Items), rejects.Items)
	}
	r := rejects.Items[0]
	want := "window: event time 2099-01-01T00:00:00Z is in the future: 641752h ahead of the clock (2025-10-16T08:00:00Z), more than max_future (1h)"
	if r.Record.Source.Offset != 1 || r.Late || r.Topic != "" || r.Stage != "streams[0].processors[0].window" || r.Err.Error() != want {
		t.Errorf("rejected offset %d (late %v, topic %q) at %s: %v\nwant offset 1 to the dead-letter topic, not late, with %q", r.Record.Source.Offset, r.Late, r.Topic, r.Stage, r.Err, want)
	}
	if len(out) != 1 || fmt.Sprint(out[0].Value["n"]) != "2" || out[0].Value["avg"] != 1.5 || out[0].Value["window_end"] != "2025-10-16T08:00:00Z" {
		for _, r := range out {
			t.Logf("closed: %v", r.Value)
		}
		t.Fatalf("%d windows closed, want the 07:59 minute of the two real readings (n 2, avg 1.5)", len(out))
	}
}

// The limit is inclusive, forever turns the check off and 0 refuses any time ahead of the
// clock.
func TestWindowMaxFutureLimit(t *testing.T) {
	tests := []struct {
		name      string
		maxFuture config.Duration
		ts        string
		refused   bool
	}{
		{"exactly max_future ahead", config.Duration(time.Hour), "2025-10-16T09:00:00Z", false},
		{"a millisecond beyond", config.Duration(time.Hour), "2025-10-16T09:00:00.001Z", true},
		{"in the past", config.Duration(time.Hour), "2020-01-01T00:00:00Z", false},
		{"forever accepts 2099", config.Forever, "2099-01-01T00:00:00Z", false},
		{"0 accepts the clock's time", 0, "2025-10-16T08:00:00Z", false},
		{"0 refuses a millisecond ahead", 0, "2025-10-16T08:00:00.001Z", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := futureWindow(t, tt.maxFuture)
			var rejects engine.Rejects
			if _, err := p.Process(context.Background(), []*engine.Record{futureReading(0, tt.ts, 1)}, &rejects); err != nil {
				t.Fatal(err)
			}
			refused := len(rejects.Items) == 1 && strings.Contains(rejects.Items[0].Err.Error(), "is in the future")
			if refused != tt.refused || len(rejects.Items) > 1 {
				t.Errorf("event time %s with max_future %s: rejects %+v, want refused %v", tt.ts, tt.maxFuture, rejects.Items, tt.refused)
			}
		})
	}
}

func TestWindowMaxFutureValidate(t *testing.T) {
	negative := config.Duration(-time.Second)
	c := &Config{Type: Tumbling, Size: config.Duration(time.Minute), Aggregate: map[string]config.Expr{"n": {Src: "count()"}}, MaxFuture: &negative}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "max_future: must be a duration of 0 or more, or forever") {
		t.Errorf("Validate() = %v, want the max_future error", err)
	}
}
