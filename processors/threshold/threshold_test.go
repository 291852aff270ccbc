package threshold

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
)

// stepClock is a wall clock the test moves by hand.
type stepClock struct{ t time.Time }

func (c *stepClock) Now() time.Time { return c.t }

var (
	t0        = time.Date(2025, 10, 16, 9, 0, 0, 0, time.UTC)
	wallStart = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
)

const path = "streams[1].processors[0].threshold"

func x(src string) config.Expr   { return config.Expr{Src: src} }
func xp(src string) *config.Expr { return &config.Expr{Src: src} }
func minutes(n int) config.Duration {
	return config.Duration(time.Duration(n) * time.Minute)
}

// cpuRule is the seed's rule: CPU at or above 90.
func cpuRule(f time.Duration) Rule {
	return Rule{Name: "cpu_high", When: x(`metric == "cpu_load" && value >= 90`), For: config.Duration(f), Severity: SeverityCritical}
}

// ladderRule is a two-level CPU rule with hysteresis.
func ladderRule() Rule {
	return Rule{Name: "cpu", When: x(`metric == "cpu_load"`), Severities: []Level{
		{Severity: SeverityCritical, When: x("value >= 90")},
		{Severity: SeverityWarning, When: x("value >= 80")},
	}}
}

func newProc(t testing.TB, cfg *Config) *Processor {
	t.Helper()
	p, _ := newProcClock(t, cfg)
	return p
}

func newProcClock(t testing.TB, cfg *Config) (*Processor, *stepClock) {
	t.Helper()
	clock := &stepClock{t: wallStart}
	p, err := Factory.Build(cfg, engine.BuildEnv{Path: path, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Processor), clock
}

// event is a normalized envelope for host at offset minutes after t0, on partition 0.
func event(host string, minute int, value float64) *engine.Record {
	return eventAt(host, t0.Add(time.Duration(minute)*time.Minute), value)
}

func eventAt(host string, at time.Time, value float64) *engine.Record {
	return &engine.Record{
		Value: map[string]any{
			"event_id":  fmt.Sprintf("ev-%s-%s", host, at.Format(time.TimeOnly)),
			"tenant_id": "acme",
			"source":    map[string]any{"type": "host", "source_id": host},
			"metric":    "cpu_load",
			"value":     value,
			"ts_event":  at.Format(time.RFC3339),
			"tags":      map[string]any{"env": "prod"},
		},
		Source: engine.Source{Topic: "signals.metric.v1", Offset: int64(at.Sub(t0) / time.Second)},
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

func tick(t testing.TB, p *Processor, now time.Time) []*engine.Record {
	t.Helper()
	var rejects engine.Rejects
	out, err := p.Tick(context.Background(), now, &rejects)
	if err != nil || rejects.Len() > 0 {
		t.Fatalf("tick: %v, rejects %v", err, rejects.Items)
	}
	return out
}

// summary is "host:state@minute" per alert, the part of an alert a test usually checks:
// firing shows its severity, a ladder move the severity it came from, a cancelled pending
// alert shows as cancelled.
func summary(alerts []*engine.Record) string {
	var parts []string
	for _, a := range alerts {
		ts, _ := time.Parse(time.RFC3339, a.Value["ts"].(string))
		state := a.Value["state"].(string)
		switch {
		case a.Value["reason"] == "cancelled":
			state = "cancelled"
		case state == "firing" && a.Value["previous_severity"] != nil:
			state = fmt.Sprintf("firing/%v<-%v", a.Value["severity"], a.Value["previous_severity"])
		case state == "firing":
			state += "/" + a.Value["severity"].(string)
		}
		host := a.Value["source_id"]
		parts = append(parts, fmt.Sprintf("%v:%v@%d", host, state, int(ts.Sub(t0).Minutes())))
	}
	return strings.Join(parts, " ")
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
			"a:firing/critical@1 a:resolved@4"},
		{"for: pending first, firing once the condition has held for 2m of event time", cpuRule(2 * time.Minute),
			[]*engine.Record{event("a", 0, 95), event("a", 1, 95), event("a", 2, 95), event("a", 3, 95), event("a", 4, 10)},
			"a:pending@0 a:firing/critical@2 a:resolved@4"},
		{"for: a dip while pending cancels it (a resolved record, reason cancelled)", cpuRule(2 * time.Minute),
			[]*engine.Record{event("a", 0, 95), event("a", 1, 95), event("a", 2, 10), event("a", 3, 95), event("a", 4, 95)},
			"a:pending@0 a:cancelled@2 a:pending@3"},
		{"series are independent", cpuRule(0),
			[]*engine.Record{event("a", 0, 95), event("b", 0, 10), event("b", 1, 96), event("a", 2, 20), event("b", 3, 97), event("b", 4, 5)},
			"a:firing/critical@0 b:firing/critical@1 a:resolved@2 b:resolved@4"},
		{"it can fire again after resolving", cpuRule(0),
			[]*engine.Record{event("a", 0, 95), event("a", 1, 10), event("a", 2, 95)},
			"a:firing/critical@0 a:resolved@1 a:firing/critical@2"},
		{"keep_firing_for: a short dip does not resolve, a long one does", func() Rule { r := cpuRule(0); r.KeepFiringFor = minutes(2); return r }(),
			[]*engine.Record{event("a", 0, 95), event("a", 1, 10), event("a", 2, 95), event("a", 3, 10), event("a", 4, 10), event("a", 5, 10)},
			"a:firing/critical@0 a:resolved@5"},
		{"clear_when: firing at >= 90 holds until the value is below 85", func() Rule { r := cpuRule(0); r.ClearWhen = xp("value < 85"); return r }(),
			[]*engine.Record{event("a", 0, 95), event("a", 1, 88), event("a", 2, 86), event("a", 3, 84), event("a", 4, 88)},
			"a:firing/critical@0 a:resolved@3"},
		{"ladder: escalation and de-escalation while firing are events", ladderRule(),
			[]*engine.Record{event("a", 0, 82), event("a", 1, 85), event("a", 2, 93), event("a", 3, 95), event("a", 4, 84), event("a", 5, 50)},
			"a:firing/warning@0 a:firing/critical<-warning@2 a:firing/warning<-critical@4 a:resolved@5"},
		{"ladder with for: fires at the level that matches when for has elapsed", func() Rule { r := ladderRule(); r.For = minutes(2); return r }(),
			[]*engine.Record{event("a", 0, 82), event("a", 1, 91), event("a", 2, 92), event("a", 3, 50)},
			"a:pending@0 a:firing/critical@2 a:resolved@3"},
		{"flapping series with for: only the sustained stretch fires", cpuRule(2 * time.Minute),
			[]*engine.Record{event("a", 0, 95), event("a", 1, 10), event("a", 2, 95), event("a", 3, 96), event("a", 4, 97), event("a", 5, 10)},
			"a:pending@0 a:cancelled@1 a:pending@2 a:firing/critical@4 a:resolved@5"},
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
	rule.Message = xp("CPU {{value}}% on {{source.source_id}} ({{tenant_id}})")
	rule.Labels = map[string]*config.Expr{"team": xp(`"sre"`), "site": xp(`tags.site`)}
	rule.Annotations = map[string]*config.Expr{"runbook": xp("https://runbooks/cpu?host={{source.source_id}}")}
	p := newProc(t, &Config{Rules: []Rule{rule}})
	alerts, _ := run(t, p, event("host-a", 0, 91), event("host-a", 2, 92.5), event("host-a", 5, 12))
	if len(alerts) != 3 {
		t.Fatalf("got %d alerts: %s", len(alerts), summary(alerts))
	}
	pending, firing, resolved := alerts[0].Value, alerts[1].Value, alerts[2].Value
	want := map[string]any{
		"rule": "cpu_high", "state": "firing", "severity": "critical",
		"ts": "2025-10-16T09:02:00Z", "started_at": "2025-10-16T09:00:00Z", "fired_at": "2025-10-16T09:02:00Z",
		"tenant_id": "acme", "source_id": "host-a", "metric": "cpu_load", "value": 92.5,
		"message": "CPU 92.5% on host-a (acme)",
	}
	for k, v := range want {
		if firing[k] != v {
			t.Errorf("firing[%s] = %#v, want %#v", k, firing[k], v)
		}
	}
	for _, f := range []string{"resolved_at", "reason", "previous_severity"} {
		if _, ok := firing[f]; ok {
			t.Errorf("firing alert has %s", f)
		}
	}
	if pending["state"] != "pending" || pending["started_at"] != "2025-10-16T09:00:00Z" || pending["fired_at"] != nil {
		t.Errorf("pending = %v", pending)
	}
	if l := firing["labels"].(map[string]any); l["team"] != "sre" || len(l) != 1 {
		t.Errorf("labels = %v (a label whose value is missing is left out)", l)
	}
	if a := firing["annotations"].(map[string]any); a["runbook"] != "https://runbooks/cpu?host=host-a" {
		t.Errorf("annotations = %v", a)
	}
	if s := firing["series"].(map[string]any); s["tenant_id"] != "acme" || s["source.source_id"] != "host-a" || s["metric"] != "cpu_load" {
		t.Errorf("series = %v", s)
	}
	if firing["tags"].(map[string]any)["env"] != "prod" {
		t.Errorf("tags = %v", firing["tags"])
	}
	if resolved["state"] != "resolved" || resolved["reason"] != "cleared" || resolved["resolved_at"] != "2025-10-16T09:05:00Z" ||
		resolved["started_at"] != "2025-10-16T09:00:00Z" || resolved["fired_at"] != "2025-10-16T09:02:00Z" || resolved["message"] != "CPU 12% on host-a (acme)" {
		t.Errorf("resolved = %v", resolved)
	}
	for i, a := range alerts {
		if a.Value["fingerprint"] != firing["fingerprint"] || string(a.Key) != firing["fingerprint"] {
			t.Errorf("alert %d: fingerprint/key differ across the alert's life: %v key %q", i, a.Value["fingerprint"], a.Key)
		}
	}
	if pending["event_id"] == firing["event_id"] || firing["event_id"] == resolved["event_id"] {
		t.Error("transitions share an event_id")
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
			rule.Message = xp(tt.tmpl)
			alerts, _ := run(t, newProc(t, &Config{Rules: []Rule{rule}}), event("host-a", 0, 97))
			if len(alerts) != 1 || alerts[0].Value["message"] != tt.want {
				t.Fatalf("message = %v, want %q", alerts[0].Value["message"], tt.want)
			}
		})
	}
}

// snapshot is every checkpoint entry of p, for comparing states.
func snapshot(p *Processor) map[string]string {
	out := map[string]string{}
	p.Export(func(part int32, key string, v []byte) { out[fmt.Sprint(part, "/", key)] = string(v) })
	return out
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
			rule.Message = xp("{{ tags.env.x }}") // fails when tags is not an object
			p := newProc(t, &Config{Rules: []Rule{rule}})
			run(t, p, event("a", 0, 50)) // inactive
			before := fmt.Sprint(snapshot(p))
			alerts, rejects := run(t, p, tt.rec)
			if len(alerts) != 0 || rejects.Len() != 1 {
				t.Fatalf("alerts %d rejects %d", len(alerts), rejects.Len())
			}
			if r := rejects.Items[0]; r.Stage != path || r.Late || !strings.Contains(r.Err.Error(), tt.want) {
				t.Fatalf("reject %q %v, want reason containing %q", r.Stage, r.Err, tt.want)
			}
			if after := fmt.Sprint(snapshot(p)); after != before {
				t.Fatalf("state changed by a rejected record: %v -> %v", before, after)
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
		Time:   xp("at"),
		Rules:  []Rule{cpuRule(0)},
	})
	a, b := event("a", 0, 95), event("b", 0, 96)
	b.Value["at"] = "2030-01-01T00:00:00Z"
	alerts, _ := run(t, p, a, b)
	// One series per tenant: host b does not start a second alert. Record a has no "at",
	// so its time is the engine clock's.
	if len(alerts) != 1 || alerts[0].Value["series"].(map[string]any)["tenant_id"] != "acme" || alerts[0].Value["ts"] != "2030-01-01T00:00:00Z" {
		t.Fatalf("alerts = %v", summary(alerts))
	}
}

func TestResolvedSeriesAreForgotten(t *testing.T) {
	// With lateness, an inactive series needs nothing; without, it keeps only its last
	// event time (to tell late records).
	p := newProc(t, &Config{Lateness: config.Duration(time.Second), Rules: []Rule{cpuRule(0)}})
	for i := 0; i < 100; i++ {
		host := fmt.Sprintf("h%d", i)
		run(t, p, event(host, 0, 95), event(host, 1, 10))
	}
	tick(t, p, wallStart.Add(time.Hour))
	if n := len(p.parts[0].series); n != 0 {
		t.Fatalf("%d resolved series still held in memory", n)
	}
}

func TestThresholdConfigErrors(t *testing.T) {
	pos := func(line, col int) config.Pos { return config.Pos{File: "p.yaml", Line: line, Col: col} }
	ok := func(r Rule) Rule {
		if r.Name == "" {
			r.Name = "a"
		}
		return r
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no rules", Config{}, "rules: at least one rule"},
		{"negative lateness", Config{Lateness: -1, Rules: []Rule{ok(Rule{When: x("true")})}}, "lateness: must not be negative"},
		{"no name", Config{Rules: []Rule{{When: x("true")}}}, "rules[0].name: a rule name is required"},
		{"duplicate name", Config{Rules: []Rule{{Name: "a", When: x("true")}, {Name: "a", When: x("true")}}}, `rules[1].name: duplicate rule name "a"`},
		{"no when", Config{Rules: []Rule{{Name: "a"}}}, "rules[0].when: a boolean expression is required"},
		{"bad severity", Config{Rules: []Rule{ok(Rule{When: x("true"), Severity: "page"})}}, "rules[0].severity: must be one of critical, warning, info"},
		{"negative for", Config{Rules: []Rule{ok(Rule{When: x("true"), For: -1})}}, "rules[0].for: must not be negative"},
		{"negative keep_firing_for", Config{Rules: []Rule{ok(Rule{When: x("true"), KeepFiringFor: -1})}}, "rules[0].keep_firing_for: must not be negative"},
		{"severity and severities", Config{Rules: []Rule{ok(Rule{Severity: "critical", Severities: []Level{{Severity: "warning", When: x("true")}}})}},
			"rules[0].severity: set either severity or severities, not both"},
		{"duplicate severities", Config{Rules: []Rule{ok(Rule{Severities: []Level{{Severity: "critical", When: x("value > 90")}, {Severity: "critical", When: x("value > 80")}}})}},
			`rules[0].severities[1].severity: duplicate severity "critical" (severities[0] has it too)`},
		{"ladder lowest first", Config{Rules: []Rule{ok(Rule{Severities: []Level{{Severity: "warning", When: x("value > 80")}, {Severity: "critical", When: x("value > 90")}}})}},
			"rules[0].severities[1].severity: severities must be listed highest first: critical comes after warning (severities[0])"},
		{"ladder level without when", Config{Rules: []Rule{ok(Rule{Severities: []Level{{Severity: "critical"}}})}},
			"rules[0].severities[0].when: a boolean expression is required"},
		{"ladder level with a bad severity", Config{Rules: []Rule{ok(Rule{Severities: []Level{{Severity: "page", When: x("true")}}})}},
			"rules[0].severities[0].severity: must be one of critical, warning, info"},
		{"absent with for", Config{Rules: []Rule{ok(Rule{Absent: minutes(5), For: minutes(1)})}}, "rules[0].for: does not apply to an absent (heartbeat) rule"},
		{"absent with clear_when", Config{Rules: []Rule{ok(Rule{Absent: minutes(5), ClearWhen: xp("true")})}}, "rules[0].clear_when: does not apply to an absent"},
		{"absent with keep_firing_for", Config{Rules: []Rule{ok(Rule{Absent: minutes(5), KeepFiringFor: minutes(1)})}}, "rules[0].keep_firing_for: does not apply to an absent"},
		{"absent with a ladder", Config{Rules: []Rule{ok(Rule{Absent: minutes(5), Severities: []Level{{Severity: "critical", When: x("true")}}})}}, "rules[0].severities: does not apply to an absent"},
		{"empty annotation", Config{Rules: []Rule{ok(Rule{When: x("true"), Annotations: map[string]*config.Expr{"runbook": {}}})}}, "rules[0].annotations.runbook: an expression is required"},
		{"when syntax error", Config{Rules: []Rule{{Name: "a", When: config.Expr{Src: "value >=", Pos: pos(8, 20)}}}}, "p.yaml:8:"},
		{"clear_when not boolean", Config{Rules: []Rule{ok(Rule{When: x("true"), ClearWhen: &config.Expr{Src: `"x"`, Pos: pos(9, 20)}})}}, "p.yaml:9:20"},
		{"ladder when syntax error", Config{Rules: []Rule{ok(Rule{Severities: []Level{{Severity: "critical", When: config.Expr{Src: "value >", Pos: pos(7, 30)}}}})}}, "p.yaml:7:"},
		{"unclosed placeholder", Config{Rules: []Rule{{Name: "a", When: x("true"),
			Message: &config.Expr{Src: "CPU {{value", Pos: pos(9, 18), Path: "rules[0].message"}}}},
			"p.yaml:9:22: rules[0].message: message: {{ without a closing }}"},
		{"unclosed placeholder in an annotation", Config{Rules: []Rule{{Name: "a", When: x("true"),
			Annotations: map[string]*config.Expr{"runbook": {Src: "x {{value", Pos: pos(9, 18), Path: "rules[0].annotations.runbook"}}}}},
			"p.yaml:9:20: rules[0].annotations.runbook: annotations.runbook: {{ without a closing }}"},
		{"placeholder syntax error points into the placeholder", Config{Rules: []Rule{{Name: "a", When: x("true"),
			Message: &config.Expr{Src: "CPU {{ value + }} now", Pos: pos(9, 18), Path: "rules[0].message"}}}},
			"p.yaml:9:"},
		{"series syntax error", Config{Series: []config.Expr{{Src: "host)", Pos: pos(5, 14)}}, Rules: []Rule{{Name: "a", When: x("true")}}}, "p.yaml:5:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate() // as the decoder does, before any build
			if err == nil {
				_, err = Factory.Build(&tt.cfg, engine.BuildEnv{Path: path})
			}
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
			Message: xp("memory {{value}}% on {{source.source_id}}")},
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
		// Event time moves on with each pass over recs, so records are never late.
		if i%len(recs) == 0 && i > 0 {
			for _, r := range recs {
				ts, _ := time.Parse(time.RFC3339, r.Value["ts_event"].(string))
				r.Value["ts_event"] = ts.Add(10 * time.Minute).Format(time.RFC3339)
			}
		}
		if _, err := p.Process(context.Background(), batch, &rejects); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAlertRulesNameEveryRule(t *testing.T) {
	tests := []struct {
		name  string
		rules []Rule
		want  []string
	}{
		{"one rule", []Rule{cpuRule(0)}, []string{"cpu_high"}},
		{"in file order", []Rule{ladderRule(), cpuRule(time.Minute)}, []string{"cpu", "cpu_high"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProc(t, &Config{Rules: tt.rules})
			if got := p.AlertRules(); !slices.Equal(got, tt.want) {
				t.Errorf("AlertRules() = %v, want %v", got, tt.want)
			}
		})
	}
}
