package threshold

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

var (
	t0        = time.Date(2025, 10, 16, 9, 0, 0, 0, time.UTC)
	wallClock = fixedClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
)

const path = "streams[1].processors[0].threshold"

func x(src string) config.Expr { return config.Expr{Src: src} }

// cpuRule is the seed's rule: CPU at or above 90.
func cpuRule(f time.Duration) Rule {
	return Rule{Name: "cpu_high", When: x(`metric == "cpu_load" && value >= 90`), For: config.Duration(f), Severity: SeverityCritical}
}

func newProc(t testing.TB, cfg *Config) *Processor {
	t.Helper()
	p, err := Factory.Build(cfg, engine.BuildEnv{Path: path, Clock: wallClock})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Processor)
}

// event is a normalized envelope for host at offset minutes after t0.
func event(host string, minute int, value float64) *engine.Record {
	return &engine.Record{
		Value: map[string]any{
			"event_id":  fmt.Sprintf("ev-%s-%d", host, minute),
			"tenant_id": "acme",
			"source":    map[string]any{"type": "host", "source_id": host},
			"metric":    "cpu_load",
			"value":     value,
			"ts_event":  t0.Add(time.Duration(minute) * time.Minute).Format(time.RFC3339),
			"tags":      map[string]any{"env": "prod"},
		},
		Source: engine.Source{Topic: "signals.metric.v1", Offset: int64(minute)},
	}
}

func run(t testing.TB, p *Processor, recs ...*engine.Record) ([]*engine.Record, *engine.Rejects) {
	t.Helper()
	var rejects engine.Rejects
	out, err := p.Process(context.Background(), recs, &rejects)
	if err != nil {
		t.Fatal(err)
	}
	return out, &rejects
}

// summary is "host:state@minute" per alert, the part of an alert a test usually checks.
func summary(alerts []*engine.Record) string {
	var parts []string
	for _, a := range alerts {
		ts, _ := time.Parse(time.RFC3339, a.Value["ts"].(string))
		parts = append(parts, fmt.Sprintf("%v:%v@%d", a.Value["source_id"], a.Value["state"], int(ts.Sub(t0).Minutes())))
	}
	return strings.Join(parts, " ")
}

func TestEvaluate(t *testing.T) {
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	for2m := Rule{For: config.Duration(2 * time.Minute)}
	tests := []struct {
		name    string
		state   State
		matched bool
		at      time.Time
		rule    Rule
		want    State
		wantTr  Transition
	}{
		{"inactive stays inactive without a match", State{}, false, at(0), for2m, State{}, NoChange},
		{"match without for fires at once", State{}, true, at(0), Rule{}, State{Phase: Firing, Since: at(0), FiredAt: at(0)}, ToFiring},
		{"match with for goes pending", State{}, true, at(0), for2m, State{Phase: Pending, Since: at(0)}, ToPending},
		{"pending before for elapsed stays pending", State{Phase: Pending, Since: at(0)}, true, at(1), for2m, State{Phase: Pending, Since: at(0)}, NoChange},
		{"pending fires once for has elapsed", State{Phase: Pending, Since: at(0)}, true, at(2), for2m, State{Phase: Firing, Since: at(0), FiredAt: at(2)}, ToFiring},
		{"pending is cancelled by a non-match", State{Phase: Pending, Since: at(0)}, false, at(1), for2m, State{}, Cancelled},
		{"pending ignores an older event", State{Phase: Pending, Since: at(5)}, true, at(1), for2m, State{Phase: Pending, Since: at(5)}, NoChange},
		{"firing stays firing while matching", State{Phase: Firing, Since: at(0), FiredAt: at(2)}, true, at(9), for2m, State{Phase: Firing, Since: at(0), FiredAt: at(2)}, NoChange},
		{"firing resolves on a non-match", State{Phase: Firing, Since: at(0), FiredAt: at(2)}, false, at(9), for2m, State{}, ToResolved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, tr := Evaluate(tt.state, tt.matched, tt.at, tt.rule)
			if got != tt.want || tr != tt.wantTr {
				t.Fatalf("Evaluate = %+v, %q; want %+v, %q", got, tr, tt.want, tt.wantTr)
			}
		})
	}
}

func TestThresholdTransitions(t *testing.T) {
	tests := []struct {
		name   string
		rule   Rule
		events []*engine.Record
		want   string
	}{
		{"one alert when it starts firing, none while it keeps matching, one when it resolves", cpuRule(0),
			[]*engine.Record{event("a", 0, 50), event("a", 1, 95), event("a", 2, 97), event("a", 3, 99), event("a", 4, 40), event("a", 5, 30)},
			"a:firing@1 a:resolved@4"},
		{"for: pending first, firing once the condition has held for 2m of event time", cpuRule(2 * time.Minute),
			[]*engine.Record{event("a", 0, 95), event("a", 1, 95), event("a", 2, 95), event("a", 3, 95), event("a", 4, 10)},
			"a:firing@2 a:resolved@4"},
		{"for: a dip while pending cancels it, no alert at all", cpuRule(2 * time.Minute),
			[]*engine.Record{event("a", 0, 95), event("a", 1, 95), event("a", 2, 10), event("a", 3, 95), event("a", 4, 95)},
			""},
		{"series are independent", cpuRule(0),
			[]*engine.Record{event("a", 0, 95), event("b", 0, 10), event("b", 1, 96), event("a", 2, 20), event("b", 3, 97), event("b", 4, 5)},
			"a:firing@0 b:firing@1 a:resolved@2 b:resolved@4"},
		{"it can fire again after resolving", cpuRule(0),
			[]*engine.Record{event("a", 0, 95), event("a", 1, 10), event("a", 2, 95)},
			"a:firing@0 a:resolved@1 a:firing@2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProc(t, &Config{Rules: []Rule{tt.rule}})
			var alerts []*engine.Record
			for _, ev := range tt.events { // one record per batch, as a slow stream delivers them
				out, rejects := run(t, p, ev)
				if rejects.Len() != 0 {
					t.Fatalf("rejects: %v", rejects.Items)
				}
				alerts = append(alerts, out...)
			}
			if got := summary(alerts); got != tt.want {
				t.Fatalf("alerts %q, want %q", got, tt.want)
			}
			// The same events in one batch give the same alerts.
			if got := summary(first(run(t, newProc(t, &Config{Rules: []Rule{tt.rule}}), tt.events...))); got != tt.want {
				t.Fatalf("in one batch: alerts %q, want %q", got, tt.want)
			}
		})
	}
}

func first[A, B any](a A, _ B) A { return a }

func TestAlertRecordFields(t *testing.T) {
	rule := cpuRule(2 * time.Minute)
	rule.Message = &config.Expr{Src: "CPU {{value}}% on {{source.source_id}} ({{tenant_id}})"}
	rule.Labels = map[string]*config.Expr{"team": {Src: `"sre"`}, "site": {Src: `tags.site`}}
	p := newProc(t, &Config{Rules: []Rule{rule}})
	alerts, _ := run(t, p, event("host-a", 0, 91), event("host-a", 2, 92.5), event("host-a", 5, 12))
	if len(alerts) != 2 {
		t.Fatalf("got %d alerts", len(alerts))
	}
	firing, resolved := alerts[0].Value, alerts[1].Value
	want := map[string]any{
		"rule": "cpu_high", "state": "firing", "severity": "critical",
		"ts": "2025-10-16T09:02:00Z", "started_at": "2025-10-16T09:00:00Z",
		"tenant_id": "acme", "source_id": "host-a", "metric": "cpu_load", "value": 92.5,
		"message": "CPU 92.5% on host-a (acme)",
	}
	for k, v := range want {
		if firing[k] != v {
			t.Errorf("firing[%s] = %#v, want %#v", k, firing[k], v)
		}
	}
	if _, ok := firing["resolved_at"]; ok {
		t.Error("firing alert has resolved_at")
	}
	if l := firing["labels"].(map[string]any); l["team"] != "sre" || len(l) != 1 {
		t.Errorf("labels = %v (a label whose value is missing is left out)", l)
	}
	if s := firing["series"].(map[string]any); s["tenant_id"] != "acme" || s["source.source_id"] != "host-a" || s["metric"] != "cpu_load" {
		t.Errorf("series = %v", s)
	}
	if firing["tags"].(map[string]any)["env"] != "prod" {
		t.Errorf("tags = %v", firing["tags"])
	}
	if resolved["state"] != "resolved" || resolved["resolved_at"] != "2025-10-16T09:05:00Z" ||
		resolved["started_at"] != "2025-10-16T09:00:00Z" || resolved["message"] != "CPU 12% on host-a (acme)" {
		t.Errorf("resolved = %v", resolved)
	}
	if firing["fingerprint"] != resolved["fingerprint"] || string(alerts[0].Key) != firing["fingerprint"] {
		t.Errorf("fingerprint/key differ across the alert's life: %v %v key %q", firing["fingerprint"], resolved["fingerprint"], alerts[0].Key)
	}
	if firing["event_id"] == resolved["event_id"] {
		t.Error("firing and resolved share an event_id")
	}
}

func TestEventIDsAreDeterministic(t *testing.T) {
	seq := func() []*engine.Record {
		return []*engine.Record{event("a", 0, 95), event("b", 0, 95), event("a", 1, 10), event("b", 2, 10), event("a", 3, 99)}
	}
	ids := func() []string {
		alerts, _ := run(t, newProc(t, &Config{Rules: []Rule{cpuRule(0)}}), seq()...)
		var out []string
		for _, a := range alerts {
			out = append(out, a.Value["event_id"].(string))
		}
		return out
	}
	a, b := ids(), ids()
	if len(a) != 5 || strings.Join(a, ",") != strings.Join(b, ",") {
		t.Fatalf("replay gave different ids:\n%v\n%v", a, b)
	}
	seen := map[string]bool{}
	for _, id := range a {
		if seen[id] || len(id) != 36 {
			t.Fatalf("id %q repeated or not a UUID: %v", id, a)
		}
		seen[id] = true
	}
}

func TestMessageTemplates(t *testing.T) {
	tests := []struct {
		tmpl string
		want string
	}{
		{"CPU {{value}}% on {{source.source_id}}", "CPU 97% on host-a"},
		{"{{ metric }} is {{ value >= 90 ? \"high\" : \"ok\" }}", "cpu_load is high"},
		{"no placeholders", "no placeholders"},
		{"missing: [{{unit}}]", "missing: []"},
		{"tags {{tags}}", `tags {"env":"prod"}`},
		{"big {{value * 1000000}}", "big 97000000"},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			rule := cpuRule(0)
			rule.Message = &config.Expr{Src: tt.tmpl}
			alerts, _ := run(t, newProc(t, &Config{Rules: []Rule{rule}}), event("host-a", 0, 97))
			if len(alerts) != 1 || alerts[0].Value["message"] != tt.want {
				t.Fatalf("message = %v, want %q", alerts[0].Value["message"], tt.want)
			}
		})
	}
}

func TestBadRecordsAreRejectedAndChangeNoState(t *testing.T) {
	tests := []struct {
		name string
		rec  *engine.Record
		want string
	}{
		{"unparsable event time", func() *engine.Record { r := event("a", 1, 10); r.Value["ts_event"] = "yesterday"; return r }(), "event time (ts_event)"},
		{"condition fails at run time", func() *engine.Record { r := event("a", 1, 10); r.Value["value"] = "high"; return r }(), "rule cpu_high"},
		{"message fails at run time", func() *engine.Record { r := event("a", 1, 99); r.Value["tags"] = "x"; return r }(), "message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule := cpuRule(0)
			rule.Message = &config.Expr{Src: "{{ tags.env.x }}"} // fails when tags is not an object
			p := newProc(t, &Config{Rules: []Rule{rule}})
			run(t, p, event("a", 0, 50)) // inactive
			before := p.Snapshot()
			alerts, rejects := run(t, p, tt.rec)
			if len(alerts) != 0 || rejects.Len() != 1 {
				t.Fatalf("alerts %d rejects %d", len(alerts), rejects.Len())
			}
			if r := rejects.Items[0]; r.Stage != path || !strings.Contains(r.Err.Error(), tt.want) {
				t.Fatalf("reject %q %v, want reason containing %q", r.Stage, r.Err, tt.want)
			}
			if fmt.Sprint(p.Snapshot()) != fmt.Sprint(before) {
				t.Fatalf("state changed by a rejected record: %v -> %v", before, p.Snapshot())
			}
		})
	}
}

func TestMissingEventTimeUsesTheEngineClock(t *testing.T) {
	rec := event("a", 0, 99)
	delete(rec.Value, "ts_event")
	alerts, _ := run(t, newProc(t, &Config{Rules: []Rule{cpuRule(0)}}), rec)
	if len(alerts) != 1 || alerts[0].Value["ts"] != "2030-01-01T00:00:00Z" {
		t.Fatalf("alerts = %v", alerts)
	}
}

func TestCustomSeriesAndTime(t *testing.T) {
	p := newProc(t, &Config{
		Series: []config.Expr{x("tenant_id")},
		Time:   &config.Expr{Src: "at"},
		Rules:  []Rule{cpuRule(0)},
	})
	a, b := event("a", 0, 95), event("b", 0, 96)
	b.Value["at"] = "2025-10-16T10:00:00Z"
	alerts, _ := run(t, p, a, b)
	// One series per tenant: host b does not start a second alert. Record a has no "at",
	// so its time is the engine clock's.
	if len(alerts) != 1 || alerts[0].Value["series"].(map[string]any)["tenant_id"] != "acme" || alerts[0].Value["ts"] != "2030-01-01T00:00:00Z" {
		t.Fatalf("alerts = %v", summary(alerts))
	}
}

func TestSnapshotRestoreKeepsFiringAlerts(t *testing.T) {
	p := newProc(t, &Config{Rules: []Rule{cpuRule(0)}})
	run(t, p, event("a", 0, 95))
	snap := p.Snapshot()
	if len(snap["cpu_high"]) != 1 {
		t.Fatalf("snapshot = %v", snap)
	}
	// A reloaded pipeline with the same rule (and one new rule) picks the state up.
	q := newProc(t, &Config{Rules: []Rule{cpuRule(0), {Name: "other", When: x("false")}}})
	q.Restore(snap)
	alerts, _ := run(t, q, event("a", 1, 97), event("a", 2, 10))
	if got := summary(alerts); got != "a:resolved@2" {
		t.Fatalf("after restore alerts %q, want only the resolve", got)
	}
}

func TestStateIsForgottenWhenASeriesGoesQuiet(t *testing.T) {
	p := newProc(t, &Config{Rules: []Rule{cpuRule(0)}})
	for i := 0; i < 100; i++ {
		host := fmt.Sprintf("h%d", i)
		run(t, p, event(host, 0, 95), event(host, 1, 10))
	}
	if n := len(p.Snapshot()["cpu_high"]); n != 0 {
		t.Fatalf("%d resolved series still held in memory", n)
	}
}

func TestThresholdConfigErrors(t *testing.T) {
	pos := func(line, col int) config.Pos { return config.Pos{File: "p.yaml", Line: line, Col: col} }
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no rules", Config{}, "rules: at least one rule"},
		{"no name", Config{Rules: []Rule{{When: x("true")}}}, "rules[0].name: a rule name is required"},
		{"duplicate name", Config{Rules: []Rule{{Name: "a", When: x("true")}, {Name: "a", When: x("true")}}}, `rules[1].name: duplicate rule name "a"`},
		{"no when", Config{Rules: []Rule{{Name: "a"}}}, "rules[0].when: a boolean expression is required"},
		{"bad severity", Config{Rules: []Rule{{Name: "a", When: x("true"), Severity: "page"}}}, "rules[0].severity: must be one of critical, warning, info"},
		{"negative for", Config{Rules: []Rule{{Name: "a", When: x("true"), For: -1}}}, "rules[0].for: must not be negative"},
		{"when syntax error", Config{Rules: []Rule{{Name: "a", When: config.Expr{Src: "value >=", Pos: pos(8, 20)}}}}, "p.yaml:8:"},
		{"unclosed placeholder", Config{Rules: []Rule{{Name: "a", When: x("true"),
			Message: &config.Expr{Src: "CPU {{value", Pos: pos(9, 18), Path: "rules[0].message"}}}},
			"p.yaml:9:22: rules[0].message: message: {{ without a closing }}"},
		{"placeholder syntax error points into the placeholder", Config{Rules: []Rule{{Name: "a", When: x("true"),
			Message: &config.Expr{Src: "CPU {{ value + }} now", Pos: pos(9, 18), Path: "rules[0].message"}}}},
			"p.yaml:9:"},
		{"series syntax error", Config{Series: []config.Expr{{Src: "host)", Pos: pos(5, 14)}}, Rules: []Rule{{Name: "a", When: x("true")}}}, "p.yaml:5:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Factory.Build(&tt.cfg, engine.BuildEnv{Path: path})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func BenchmarkThresholdPerRecord(b *testing.B) {
	p := newProc(b, &Config{Rules: []Rule{
		cpuRule(2 * time.Minute),
		{Name: "mem_high", When: x(`metric == "mem_used" && value >= 95`), Severity: SeverityWarning,
			Message: &config.Expr{Src: "memory {{value}}% on {{source.source_id}}"}},
	}})
	// 100 hosts, values crossing the threshold now and then, so the benchmark includes
	// state changes and alert records, not only the quiet path.
	const hosts = 100
	recs := make([]*engine.Record, 1000)
	for i := range recs {
		v := 50.0
		if i%7 < 3 {
			v = 97
		}
		recs[i] = event(fmt.Sprintf("host-%d", i%hosts), i/hosts, v)
	}
	var rejects engine.Rejects
	batch := make([]*engine.Record, 1)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		batch[0] = recs[i%len(recs)]
		if _, err := p.Process(context.Background(), batch, &rejects); err != nil {
			b.Fatal(err)
		}
	}
}
