package anomaly

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/enginetest"
)

type stepClock struct{ t time.Time }

func (c *stepClock) Now() time.Time { return c.t }

var t0 = time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)

func newProc(t testing.TB, c *Config) *Processor {
	t.Helper()
	return buildWith(t, c, &stepClock{t: t0})
}

// buildWith builds c with the defaults the config decoder would fill in.
func buildWith(t testing.TB, c *Config, clock engine.Clock) *Processor {
	t.Helper()
	if c.Into == "" {
		c.Into = "anomaly"
	}
	if c.Rule == "" {
		c.Rule = "anomaly"
	}
	if c.Severity == "" {
		c.Severity = "warning"
	}
	p, err := Factory.Build(c, engine.BuildEnv{Path: "streams[0].processors[0].anomaly", Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Processor)
}

// reading is host's CPU at step i (5 minutes apart): a daily cycle, and spike at i.
func reading(host string, i int, value float64) *engine.Record {
	at := t0.Add(time.Duration(i) * 5 * time.Minute)
	return &engine.Record{Value: map[string]any{
		"event_id": fmt.Sprintf("%s-%d", host, i), "tenant_id": "acme", "metric": "cpu_load",
		"source": map[string]any{"source_id": host}, "value": value, "ts_event": at.Format(time.RFC3339),
	}, Source: engine.Source{Topic: "signals", Offset: int64(i)}}
}

func cycle(i int) float64 {
	return 50 + 30*math.Sin(2*math.Pi*float64(i%288)/288) + float64(i%7)/3
}

func run(t *testing.T, p *Processor, recs ...*engine.Record) ([]*engine.Record, *engine.Rejects) {
	t.Helper()
	var rejects engine.Rejects
	out, err := p.Process(context.Background(), recs, &rejects)
	if err != nil {
		t.Fatal(err)
	}
	return out, &rejects
}

// Without alert_above every record passes on with its score: the first two days score 0 (the
// detector learns), the learnt daily cycle scores low, a spike far higher; a value that is not
// a number is rejected with the reason.
func TestScoresRecords(t *testing.T) {
	p := newProc(t, &Config{})
	cycleMax := 0.0
	for i := range 288 * 3 {
		out, _ := run(t, p, reading("host-a", i, cycle(i)))
		score := out[0].Value["anomaly"].(map[string]any)["score"].(float64)
		if i < 2*288 && score != 0 {
			t.Fatalf("value %d of the first two days scored %v", i, score)
		}
		cycleMax = math.Max(cycleMax, score)
	}
	spikeMax, signal := 0.0, ""
	for i := 288 * 3; i < 288*3+10; i++ {
		out, _ := run(t, p, reading("host-a", i, 500))
		a := out[0].Value["anomaly"].(map[string]any)
		if a["score"].(float64) > spikeMax {
			spikeMax = a["score"].(float64)
		}
		if s, _ := a["signal"].(string); s != "" && signal == "" {
			signal = s
		}
	}
	if spikeMax < DefaultAlertAbove || cycleMax >= DefaultAlertAbove || signal != "new high" {
		t.Errorf("a spike to 500 scored at most %v (signal %q); the daily cycle up to %v", spikeMax, signal, cycleMax)
	}
	bad := reading("host-a", 288*3+10, 0)
	bad.Value["value"] = "high"
	out, rejects := run(t, p, bad)
	if len(out) != 0 || rejects.Len() != 1 {
		t.Fatalf("a string value: %d records out, %d rejected", len(out), rejects.Len())
	}
}

// With alert_above a spike after a learnt daily cycle raises one alert, held by
// keep_firing_for through a second burst soon after, then resolved; the cycle alone raises
// none, at the shipped alert_above.
func TestSpikeRaisesOneAlert(t *testing.T) {
	above := DefaultAlertAbove
	p := newProc(t, &Config{AlertAbove: &above, KeepFiringFor: config.Duration(30 * time.Minute), Severity: "critical"})
	var alerts []*engine.Record
	for i := range 288 * 4 {
		v := cycle(i)
		if i >= 288*3 && i < 288*3+10 || i >= 288*3+14 && i < 288*3+18 {
			v = 400 // a spike, and another soon after: one incident
		}
		out, _ := run(t, p, reading("host-a", i, v))
		alerts = append(alerts, out...)
	}
	var states []string
	for _, a := range alerts {
		states = append(states, fmt.Sprint(a.Value["state"], "@", a.Value["ts"]))
	}
	if len(alerts) != 2 || alerts[0].Value["state"] != "firing" || alerts[1].Value["state"] != "resolved" {
		t.Fatalf("alerts %v: want one firing at the spike and its resolution", states)
	}
	if ts, _ := time.Parse(time.RFC3339, alerts[0].Value["ts"].(string)); ts.Before(t0.Add(288*3*5*time.Minute)) || ts.After(t0.Add((288*3+9)*5*time.Minute)) || alerts[0].Value["severity"] != "critical" {
		t.Errorf("firing alert %v", alerts[0].Value)
	}
}

// TestCheckpointConformance runs the shared checkpoint suite (enginetest.TestStateful):
// restore at every step, Changes, Drop, tombstones and garbled entries, with scores and
// with alerts, on series that learn their daily cycle, one of them spiking after three days
// (an alert fires and resolves) and one going silent after a day (it is forgotten).
func TestCheckpointConformance(t *testing.T) {
	above := DefaultAlertAbove
	for name, cfg := range map[string]func() *Config{
		"scores": func() *Config { return &Config{ForgetAfter: config.Duration(24 * time.Hour)} },
		"alerts": func() *Config {
			return &Config{AlertAbove: &above, KeepFiringFor: config.Duration(30 * time.Minute), ForgetAfter: config.Duration(24 * time.Hour)}
		},
	} {
		t.Run(name, func(t *testing.T) {
			enginetest.TestStateful(t, setup(cfg), learnAndSpike())
		})
	}
	t.Run("the script fires and resolves an alert", func(t *testing.T) {
		p := newProc(t, &Config{AlertAbove: &above, KeepFiringFor: config.Duration(30 * time.Minute)})
		var states []string
		for _, st := range learnAndSpike().Steps {
			out, _ := run(t, p, st.Batch...)
			for _, a := range out {
				states = append(states, fmt.Sprint(a.Value["source_id"], " ", a.Value["state"]))
			}
		}
		if got := strings.Join(states, ", "); got != "host-a firing, host-a resolved" {
			t.Fatalf("alerts %q, want host-a's spike to fire and resolve", got)
		}
	})
}

func setup(cfg func() *Config) enginetest.StatefulSetup {
	return func(t testing.TB, clock engine.Clock) enginetest.StatefulProcessor {
		return buildWith(t, cfg(), clock)
	}
}

// learnAndSpike is three and a half days of readings every five minutes, two hours of them
// a step, each step followed by a tick: host-a (partition 0) and host-b (partition 1) follow
// the daily cycle, host-a spikes to 400 for 50 minutes on day four, host-c (partition 0)
// stops after its first day. The wall clock is the newest reading's time.
func learnAndSpike() enginetest.Script {
	script := enginetest.Script{Start: t0,
		// Three detectors, and the alert lifecycle's entry per partition and per series.
		MaxEntries: 3 + 2 + 3}
	for step := range 12*3 + 6 {
		var batch []*engine.Record
		for i := step * 24; i < step*24+24; i++ {
			v := cycle(i)
			if i >= 288*3+100 && i < 288*3+110 {
				v = 400
			}
			batch = append(batch, reading("host-a", i, v), onPartition(reading("host-b", i, cycle(i+50)), 1))
			if i < 288 {
				batch = append(batch, reading("host-c", i, cycle(i+100)))
			}
		}
		at := t0.Add(time.Duration(step*24+23) * 5 * time.Minute)
		script.Steps = append(script.Steps, enginetest.Step{At: at, Batch: batch}, enginetest.Step{At: at.Add(time.Minute), Tick: true})
	}
	return script
}

func onPartition(r *engine.Record, part int32) *engine.Record {
	r.Source.Partition = part
	return r
}

// changelog is what the runtime keeps of the processor's changes.
type changelog map[int32]map[string][]byte

func (log changelog) collect(p *Processor) { enginetest.Changelog(log).Collect(p) }

func (log changelog) detectors() int {
	n := 0
	for _, entries := range log {
		for key := range entries {
			if strings.HasPrefix(key, detectorPrefix) {
				n++
			}
		}
	}
	return n
}

// A series silent for forget_after (in its partition's event time) is forgotten: its
// changelog entry is deleted and, if it comes back, it learns again; a series silent for
// less is kept, and a value stamped far in the future does not make the others silent.
func TestForgetsSilentSeries(t *testing.T) {
	p := newProc(t, &Config{ForgetAfter: config.Duration(7 * 24 * time.Hour)})
	wall := p.clock.(*stepClock)
	log := changelog{}
	i := 0
	step := func(hosts ...string) {
		wall.t = t0.Add(time.Duration(i) * 5 * time.Minute)
		for _, h := range hosts {
			run(t, p, reading(h, i, cycle(i)))
		}
		if _, err := p.Tick(context.Background(), wall.t, &engine.Rejects{}); err != nil {
			t.Fatal(err)
		}
		log.collect(p)
		i++
	}
	for i < 288*3 {
		step("host-a", "host-b")
	}
	future := reading("host-a", i, cycle(i))
	future.Value["ts_event"] = "2099-01-01T00:00:00Z"
	run(t, p, future)
	for i < 288*9 { // host-b silent for six days
		step("host-a")
	}
	if n := log.detectors(); n != 2 {
		t.Fatalf("after six silent days (and a value stamped 2099) the changelog holds %d detectors, want both", n)
	}
	for i < 288*10+12 { // seven days and an hour
		step("host-a")
	}
	if n := log.detectors(); n != 1 || len(p.parts[0].series) != 1 {
		t.Fatalf("after seven silent days the changelog holds %d detectors and memory %d, want host-a's only", n, len(p.parts[0].series))
	}
	// Back, host-b learns again: a spike in its first day is not scored.
	wall.t = t0.Add(time.Duration(i) * 5 * time.Minute)
	out, _ := run(t, p, reading("host-b", i, 500))
	if score := out[0].Value["anomaly"].(map[string]any)["score"].(float64); score != 0 {
		t.Errorf("host-b, back after it was forgotten, scored %v on its first value", score)
	}
}

func TestConfigErrors(t *testing.T) {
	zero, two := 0.0, 2.0
	for _, c := range []*Config{{AlertAbove: &zero, Into: "anomaly"}, {AlertAbove: &two, Into: "anomaly"}, {Into: "a.b"}, {Into: "anomaly", Message: &config.Expr{Src: "x"}}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v is valid", c)
		}
	}
}

// An anomaly processor emits alerts only with alert_above; otherwise it scores records,
// which the runtime must not count as alerts.
func TestAlertRulesOnlyWithAlertAbove(t *testing.T) {
	above := 0.4
	tests := []struct {
		name string
		cfg  *Config
		want []string
	}{
		{"scores only", &Config{}, nil},
		{"alerts", &Config{AlertAbove: &above, Rule: "unusual_cpu"}, []string{"unusual_cpu"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newProc(t, tt.cfg).AlertRules(); !slices.Equal(got, tt.want) {
				t.Errorf("AlertRules() = %v, want %v", got, tt.want)
			}
		})
	}
}
