package threshold

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/enginetest"
)

// changelog is what the runtime keeps of Changes: the latest value of each key per partition.
type changelog map[int32]map[string][]byte

func (c changelog) collect(p *Processor) { enginetest.Changelog(c).Collect(p) }

func (c changelog) restore(t *testing.T, p *Processor) {
	t.Helper()
	for part, entries := range c {
		if err := p.Restore(part, entries); err != nil {
			t.Fatal(err)
		}
	}
}

// ids lists "summary=event_id" per alert: what a downstream consumer would see.
func ids(alerts []*engine.Record) string {
	var out []string
	for _, a := range alerts {
		out = append(out, summary([]*engine.Record{a})+"="+a.Value["event_id"].(string))
	}
	return strings.Join(out, "\n")
}

func sortedIDs(alerts []*engine.Record) string {
	lines := strings.Split(ids(alerts), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func onPartition(r *engine.Record, part int32) *engine.Record {
	r.Source.Partition = part
	return r
}

// scenario is a stream of CPU readings for three hosts on two partitions that exercises
// for, a ladder, keep_firing_for, clear_when and a heartbeat rule.
func scenario() []*engine.Record {
	values := map[string][]float64{
		"a": {50, 85, 91, 95, 96, 97, 70, 92, 93, 60, 55, 50, 91, 92, 93, 94, 40, 40},
		"b": {95, 96, 97, 98, 60, 50, 97, 97, 97, 97},
		"c": {10, 20, 30, 99, 99, 99, 99, 99, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10},
	}
	var recs []*engine.Record
	for minute := 0; minute < 18; minute++ {
		for _, host := range []string{"a", "b", "c"} {
			if minute < len(values[host]) {
				part := int32(0)
				if host == "c" {
					part = 1
				}
				recs = append(recs, onPartition(event(host, minute, values[host][minute]), part))
			}
		}
	}
	return recs
}

func scenarioConfig(lateness time.Duration) *Config {
	ladder := ladderRule()
	ladder.For = minutes(2)
	ladder.KeepFiringFor = minutes(1)
	ladder.ClearWhen = xp("value < 75")
	return &Config{Lateness: config.Duration(lateness), Rules: []Rule{
		ladder,
		cpuRule(0),
		{Name: "silent", Absent: minutes(3), Severity: SeverityCritical, Message: xp("no data from {{source.source_id}}")},
	}}
}

func TestScenarioAlerts(t *testing.T) {
	p := newProc(t, scenarioConfig(0))
	var alerts []*engine.Record
	for _, r := range scenario() {
		alerts = append(alerts, first(run(t, p, r))...)
	}
	var forHost = map[string][]string{}
	for _, a := range alerts {
		s := summary([]*engine.Record{a})
		forHost[a.Value["rule"].(string)] = append(forHost[a.Value["rule"].(string)], s)
	}
	want := map[string]string{
		// a dips to 70 at minute 6 (below clear_when) and is back at 7, within
		// keep_firing_for: it keeps firing; at 9 it dips for good and resolves 1m later.
		"cpu": "b:pending@0 a:pending@1 b:firing/critical@2 a:firing/critical@3 c:pending@3 b:resolved@5 c:firing/critical@5 " +
			"b:pending@6 b:firing/critical@8 c:resolved@9 a:resolved@10 a:pending@12 a:firing/critical@14 a:resolved@17",
		"cpu_high": "b:firing/critical@0 a:firing/critical@2 c:firing/critical@3 b:resolved@4 a:resolved@6 b:firing/critical@6 " +
			"a:firing/critical@7 c:resolved@8 a:resolved@9 a:firing/critical@12 a:resolved@16",
		// b stops after minute 9: a's minute 12 record shows b silent since 9 for 3m.
		"silent": "b:firing/critical@12",
	}
	for rule, w := range want {
		if got := strings.Join(forHost[rule], " "); got != w {
			t.Errorf("rule %s:\n got %s\nwant %s", rule, got, w)
		}
	}
}

// TestCheckpointConformance runs the shared checkpoint suite (enginetest.TestStateful):
// restore at every step, Changes, Drop, tombstones and garbled entries, on the scenario
// (for, a ladder, keep_firing_for, clear_when and a heartbeat, firing and resolving, with
// and without lateness) and on hosts that come and go for hours.
func TestCheckpointConformance(t *testing.T) {
	for _, lateness := range []time.Duration{0, 2 * time.Minute} {
		t.Run(fmt.Sprint("scenario, lateness ", lateness), func(t *testing.T) {
			script := scenarioScript()
			// Without lateness nothing is buffered, and the heartbeat rule keeps every
			// series it has seen.
			script.KeepsAll = lateness == 0
			enginetest.TestStateful(t, setup(scenarioConfig(lateness)), script)
		})
	}
	t.Run("hosts come and go", func(t *testing.T) {
		cfg := func() *Config { return &Config{Rules: []Rule{cpuRule(10 * time.Minute)}} }
		enginetest.TestStateful(t, setup(cfg()), comingAndGoing())
	})
}

func setup(cfg *Config) enginetest.StatefulSetup {
	return func(t testing.TB, clock engine.Clock) enginetest.StatefulProcessor {
		p, err := Factory.Build(cfg, engine.BuildEnv{Path: path, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		return p.(*Processor)
	}
}

// scenarioScript is the scenario one record a step, ten seconds of wall clock apart, and
// then two ticks an hour apart that release what lateness still holds and fire the
// heartbeat rule of the hosts that went silent.
func scenarioScript() enginetest.Script {
	var steps []enginetest.Step
	for i, r := range scenario() {
		steps = append(steps, enginetest.Step{At: wallStart.Add(time.Duration(i) * 10 * time.Second), Batch: []*engine.Record{r}})
	}
	steps = append(steps,
		enginetest.Step{At: wallStart.Add(time.Hour), Tick: true},
		enginetest.Step{At: wallStart.Add(2 * time.Hour), Tick: true})
	// Three series and a partition entry per partition, and up to three minutes of three
	// hosts' records buffered by lateness.
	return enginetest.Script{Start: wallStart, Steps: steps, MaxEntries: 3 + 2 + 9}
}

// comingAndGoing is four hours of readings every five minutes from hosts that live for an
// hour each, four at a time over two partitions, a tick after every batch; every host runs
// hot for a while, so alerts go pending, fire and resolve, and silent hosts are forgotten.
func comingAndGoing() enginetest.Script {
	var steps []enginetest.Step
	for i := range 4 * 12 {
		at := t0.Add(time.Duration(i) * 5 * time.Minute)
		var batch []*engine.Record
		for h := range 4 {
			host := fmt.Sprintf("h%d-%d", i/12, h)
			value := 50.0
			if j := i % 12; j < 8 && (j+3*h)%12 < 5 {
				value = 95 // hot for a while, cool again before the host goes
			}
			batch = append(batch, onPartition(eventAt(host, at, value), int32(h%2)))
		}
		wall := wallStart.Add(time.Duration(i) * time.Minute)
		steps = append(steps, enginetest.Step{At: wall, Batch: batch}, enginetest.Step{At: wall.Add(30 * time.Second), Tick: true})
	}
	// Two partition entries, and the series of this hour's and the last hour's hosts: a
	// silent series is forgotten by the first tick an hour after its last record, so
	// between a batch and its tick those of the hour before are still there.
	return enginetest.Script{Start: wallStart, Steps: steps, MaxEntries: 2 + 3*4}
}

func TestChangesReportsOnlyChanges(t *testing.T) {
	p := newProc(t, &Config{Lateness: config.Duration(time.Minute), Rules: []Rule{cpuRule(0)}})
	count := func() (puts, deletes int) {
		p.Changes(func(_ int32, _ string, v []byte) {
			if v == nil {
				deletes++
			} else {
				puts++
			}
		})
		return
	}
	run(t, p, event("a", 0, 95))
	if puts, deletes := count(); puts != 2 || deletes != 0 { // meta and the buffered record
		t.Fatalf("after one buffered record: %d puts %d deletes", puts, deletes)
	}
	if puts, deletes := count(); puts != 0 || deletes != 0 {
		t.Fatalf("nothing changed, yet %d puts %d deletes", puts, deletes)
	}
	// Minute 2 releases minute 0 (firing: the series entry) and waits itself.
	run(t, p, event("a", 2, 95))
	if puts, deletes := count(); puts != 3 || deletes != 1 {
		t.Fatalf("after a release: %d puts %d deletes, want meta+series+buffer and the released record deleted", puts, deletes)
	}
}

func TestRuleEditedBetweenEvaluations(t *testing.T) {
	tests := []struct {
		name     string
		v1, v2   []Rule
		before   []*engine.Record
		after    []*engine.Record
		want     string // alerts after the edit
		wantRule string // which rule's alerts
	}{
		{"a longer for keeps pending from the original start",
			[]Rule{cpuRule(2 * time.Minute)}, []Rule{cpuRule(5 * time.Minute), {Name: "new", When: x("false")}},
			[]*engine.Record{event("a", 0, 95), event("a", 1, 95)},
			[]*engine.Record{event("a", 2, 95), event("a", 4, 95), event("a", 5, 95), event("a", 6, 10)},
			"a:firing/critical@5 a:resolved@6", "cpu_high"},
		{"a higher threshold resolves a firing alert on the next record",
			[]Rule{cpuRule(0)}, []Rule{{Name: "cpu_high", When: x("value >= 98"), Severity: SeverityCritical}},
			[]*engine.Record{event("a", 0, 95)},
			[]*engine.Record{event("a", 1, 95)},
			"a:resolved@1", "cpu_high"},
		{"a removed rule's alert resolves at once, the others' states are kept",
			[]Rule{cpuRule(0), {Name: "gone", When: x("true")}}, []Rule{cpuRule(0)},
			[]*engine.Record{event("a", 0, 95)},
			[]*engine.Record{event("a", 1, 96), event("a", 2, 10)},
			"a:resolved@0 a:resolved@2", ""},
		{"a severity that left the ladder becomes its lowest",
			[]Rule{ladderRule()}, []Rule{{Name: "cpu", Severities: []Level{{Severity: SeverityWarning, When: x("value >= 80")}, {Severity: SeverityInfo, When: x("value >= 70")}}}},
			[]*engine.Record{event("a", 0, 95)},
			[]*engine.Record{event("a", 1, 95), event("a", 2, 72)},
			"a:firing/warning<-info@1 a:firing/info<-warning@2", "cpu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v1 := newProc(t, &Config{Rules: tt.v1})
			run(t, v1, tt.before...)
			log := changelog{}
			log.collect(v1)
			v2 := newProc(t, &Config{Rules: tt.v2})
			log.restore(t, v2)
			alerts, _ := run(t, v2, tt.after...)
			alerts = slices.DeleteFunc(alerts, func(a *engine.Record) bool { return tt.wantRule != "" && a.Value["rule"] != tt.wantRule })
			if got := summary(alerts); got != tt.want {
				t.Fatalf("after the edit: %q, want %q", got, tt.want)
			}
		})
	}
}

// TestEditedSeriesForgetsStates: after series: is edited, the states keyed by the old series
// expressions are deleted from the changelog. The runtime discards what Changes reports right
// after Restore (it is what was just restored), so the deletions must come later; an old
// entry left behind would come back on the next restore as a phantom series, and its
// heartbeat rule would fire for it.
func TestEditedSeriesForgetsStates(t *testing.T) {
	heartbeat := Rule{Name: "silent", Absent: minutes(2)}
	v1 := newProc(t, &Config{Rules: []Rule{cpuRule(0), heartbeat}})
	run(t, v1, event("a", 0, 95))
	log := changelog{}
	log.collect(v1)
	edited := &Config{Series: []config.Expr{x("source.source_id")}, Rules: []Rule{cpuRule(0), heartbeat}}
	v2 := newProc(t, edited)
	log.restore(t, v2)
	v2.Changes(func(int32, string, []byte) {}) // what the runtime does after Restore
	// The alert keyed by the old series cannot be evaluated any more: it resolves.
	if got := summary(first(run(t, v2, event("a", 1, 96)))); got != "a:resolved@0 a:firing/critical@1" {
		t.Fatalf("alerts %q", got)
	}
	log.collect(v2)
	if n := len(log[0]); n != 2 {
		t.Errorf("changelog has %d entries %q, want the partition's and a's under the new series", n, keys(log[0]))
	}
	// Another restart: only a, last seen at minute 1, is due (at 3) when b's record at 5
	// moves the partition's event time on.
	v3 := newProc(t, edited)
	log.restore(t, v3)
	v3.Changes(func(int32, string, []byte) {})
	if got := summary(first(run(t, v3, event("b", 5, 10)))); got != "a:firing/warning@3" {
		t.Errorf("alerts after the second restore %q, want a's heartbeat only", got)
	}
}

// TestRemovedRuleResolvesItsAlerts: a reload (or a restart) that removes a rule resolves its
// firing and pending alerts with reason "rule removed", under the fingerprint they fired
// with, in the next output; the checkpoint then forgets them, so a later restore does not
// resolve them again.
func TestRemovedRuleResolvesItsAlerts(t *testing.T) {
	pending := Rule{Name: "slow", When: x("value >= 50"), For: config.Duration(time.Hour), Severity: SeverityInfo}
	v1 := newProc(t, &Config{Rules: []Rule{cpuRule(0), ladderRule(), pending}})
	// d's only alert is of a removed rule.
	before, _ := run(t, v1, event("a", 0, 95), event("b", 0, 85), onPartition(event("c", 3, 95), 1), event("d", 0, 60))
	fired := map[string]string{} // fingerprint by host and rule
	for _, a := range before {
		fired[fmt.Sprint(a.Value["source_id"], "/", a.Value["rule"])] = a.Value["fingerprint"].(string)
	}
	log := changelog{}
	log.collect(v1)

	v2 := newProc(t, &Config{Rules: []Rule{ladderRule()}})
	log.restore(t, v2)
	v2.Changes(func(int32, string, []byte) {}) // what the runtime does after Restore
	ended := tick(t, v2, wallStart)
	got := map[string]string{}
	for _, a := range ended {
		v := a.Value
		if v["state"] != "resolved" || v["reason"] != "rule removed" || string(a.Key) != v["fingerprint"] {
			t.Errorf("ended alert %v (key %s): want state resolved, reason rule removed, keyed by its fingerprint", v, a.Key)
		}
		if v["tenant_id"] != "acme" || v["metric"] != "cpu_load" || v["message"] != fmt.Sprint(v["rule"], ": rule removed") {
			t.Errorf("ended alert %v: want the series' tenant and metric and a message saying why", v)
		}
		got[fmt.Sprint(v["source_id"], "/", v["rule"])] = v["fingerprint"].(string)
	}
	want := map[string]string{"a/cpu_high": fired["a/cpu_high"], "b/slow": fired["b/slow"], "a/slow": fired["a/slow"], "c/cpu_high": fired["c/cpu_high"], "c/slow": fired["c/slow"], "d/slow": fired["d/slow"]}
	if !maps.Equal(got, want) {
		t.Fatalf("ended alerts %v, want %v (the removed rules' firing and pending alerts, by the fingerprints they fired with)", got, want)
	}
	if s := summary(ended); !strings.Contains(s, "c:resolved@3") || !strings.Contains(s, "a:resolved@0") {
		t.Errorf("ended alerts %q: want them dated at their partition's event time", s)
	}
	// The kept rule goes on from its state.
	if s := summary(first(run(t, v2, event("a", 4, 10)))); s != "a:resolved@4" {
		t.Errorf("the kept ladder rule after the reload: %q, want a:resolved@4", s)
	}
	if again := tick(t, v2, wallStart); len(again) != 0 {
		t.Errorf("a second tick ended %q again", summary(again))
	}
	log.collect(v2)
	v3 := newProc(t, &Config{Rules: []Rule{ladderRule()}})
	log.restore(t, v3)
	if again := tick(t, v3, wallStart); len(again) != 0 {
		t.Errorf("after another restore the removed rules' alerts ended again: %q", summary(again))
	}
}

func keys(m map[string][]byte) []string {
	return slices.Sorted(maps.Keys(m))
}

func TestLateRecordsWithoutLateness(t *testing.T) {
	p := newProc(t, &Config{Rules: []Rule{cpuRule(2 * time.Minute)}})
	alerts, rejects := run(t, p,
		event("a", 1, 50), event("a", 0, 95), // a: minute 0 after minute 1 is late
		event("b", 5, 95), event("a", 2, 95), // b's clock does not make a late
		event("a", 3, 95), event("a", 4, 95))
	if got := summary(alerts); got != "b:pending@5 a:pending@2 a:firing/critical@4" {
		t.Fatalf("alerts %q", got)
	}
	if rejects.Len() != 1 {
		t.Fatalf("rejects %v", rejects.Items)
	}
	r := rejects.Items[0]
	if !r.Late || r.Stage != path || r.Record.Value["ts_event"] != "2025-10-16T09:00:00Z" || r.Topic != "" ||
		!strings.Contains(r.Err.Error(), "1m0s older than the newest record already evaluated for its series") {
		t.Fatalf("late reject %+v", r)
	}
}

// shuffle moves each record by up to maxShift positions, deterministically.
func shuffle(recs []*engine.Record, maxShift int) []*engine.Record {
	rng := rand.New(rand.NewPCG(1, 2))
	type keyed struct {
		k float64
		r *engine.Record
	}
	ks := make([]keyed, len(recs))
	for i, r := range recs {
		ks[i] = keyed{float64(i) + rng.Float64()*float64(maxShift), r}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int {
		switch {
		case a.k < b.k:
			return -1
		case a.k > b.k:
			return 1
		}
		return 0
	})
	out := make([]*engine.Record, len(recs))
	for i, k := range ks {
		out[i] = k.r
	}
	return out
}

func TestLatenessOrdersOutOfOrderRecords(t *testing.T) {
	recs := scenario()
	ordered, _ := newProcClock(t, scenarioConfig(3*time.Minute))
	var want []*engine.Record
	for _, r := range recs {
		want = append(want, first(run(t, ordered, r))...)
	}
	want = append(want, tick(t, ordered, wallStart.Add(time.Hour))...)

	// Three hosts a minute: moving records by up to 7 places keeps them within 3 minutes.
	shuffled := shuffle(recs, 7)
	if slices.Equal(shuffled, recs) {
		t.Fatal("shuffle left the records in order")
	}
	p, _ := newProcClock(t, scenarioConfig(3*time.Minute))
	var got []*engine.Record
	for _, r := range shuffled {
		out, rejects := run(t, p, r)
		if rejects.Len() > 0 {
			t.Fatalf("rejects %v", rejects.Items[0].Err)
		}
		got = append(got, out...)
	}
	got = append(got, tick(t, p, wallStart.Add(time.Hour))...)
	// The same alerts; records of one event time are evaluated in arrival order, and
	// partitions release independently, so only the order of those may differ.
	if sortedIDs(got) != sortedIDs(want) {
		t.Fatalf("out of order:\n got %s\nwant %s", ids(got), ids(want))
	}
}

func TestLatenessWatermark(t *testing.T) {
	p := newProc(t, &Config{Lateness: config.Duration(2 * time.Minute), Rules: []Rule{cpuRule(0)}})
	alerts, _ := run(t, p, event("a", 0, 95), event("a", 1, 10))
	if len(alerts) != 0 {
		t.Fatalf("evaluated before the watermark passed: %s", summary(alerts))
	}
	// Minute 3 moves the watermark to 1: minutes 0 and 1 are evaluated, in order.
	alerts, _ = run(t, p, event("a", 3, 96), event("b", 1, 99))
	if got := summary(alerts); got != "a:firing/critical@0 a:resolved@1 b:firing/critical@1" {
		t.Fatalf("alerts %q", got)
	}
	// Minute 0 is now behind the watermark: late, for every series of the partition.
	alerts, rejects := run(t, p, event("c", 0, 99))
	if len(alerts) != 0 || rejects.Len() != 1 || !rejects.Items[0].Late ||
		!strings.Contains(rejects.Items[0].Err.Error(), "before the watermark 2025-10-16T09:01:00Z") {
		t.Fatalf("alerts %s rejects %+v", summary(alerts), rejects.Items)
	}
}

func TestIdlePartitionReleasesByWallClock(t *testing.T) {
	p, clock := newProcClock(t, &Config{Lateness: config.Duration(5 * time.Minute), Rules: []Rule{cpuRule(0)}})
	run(t, p, event("a", 0, 95))
	if out := tick(t, p, clock.t.Add(4*time.Minute)); len(out) != 0 {
		t.Fatalf("released before lateness passed on the wall clock: %s", summary(out))
	}
	if got := summary(tick(t, p, clock.t.Add(5*time.Minute))); got != "a:firing/critical@0" {
		t.Fatalf("tick released %q", got)
	}
}

func absentConfig() *Config {
	return &Config{Rules: []Rule{{Name: "silent", Absent: minutes(5), When: x(`metric == "cpu_load"`), Severity: SeverityCritical,
		Message:     xp("no data from {{source.source_id}}"),
		Labels:      map[string]*config.Expr{"host": xp("source.source_id")},
		Annotations: map[string]*config.Expr{"hint": xp("check {{tenant_id}}/{{source.source_id}}")}}}}
}

func TestAbsentByEventTime(t *testing.T) {
	p := newProc(t, absentConfig())
	mem := event("a", 2, 50)
	mem.Value["metric"] = "mem_used" // not a heartbeat of rule silent
	var alerts []*engine.Record
	for _, r := range []*engine.Record{event("a", 0, 1), event("b", 0, 1), mem, event("b", 3, 1), event("b", 5, 1), event("b", 6, 1), event("a", 8, 1)} {
		alerts = append(alerts, first(run(t, p, r))...)
	}
	if got := summary(alerts); got != "a:firing/critical@5 a:resolved@8" {
		t.Fatalf("alerts %q", got)
	}
	f := alerts[0].Value
	if f["started_at"] != "2025-10-16T09:05:00Z" || f["last_seen_at"] != "2025-10-16T09:00:00Z" || f["message"] != "no data from a" ||
		f["labels"].(map[string]any)["host"] != "a" || f["annotations"].(map[string]any)["hint"] != "check acme/a" || f["tenant_id"] != "acme" {
		t.Fatalf("firing = %v", f)
	}
	// mem_used is a different series (metric is part of it), so it never heartbeats a's cpu series.
}

func TestAbsentByWallClockWhenThePartitionIsSilent(t *testing.T) {
	p, clock := newProcClock(t, absentConfig())
	run(t, p, event("a", 0, 1))
	if out := tick(t, p, clock.t.Add(4*time.Minute)); len(out) != 0 {
		t.Fatalf("fired early: %s", summary(out))
	}
	fired := tick(t, p, clock.t.Add(5*time.Minute))
	if got := summary(fired); got != "a:firing/critical@5" {
		t.Fatalf("tick fired %q", got)
	}
	if out := tick(t, p, clock.t.Add(9*time.Minute)); len(out) != 0 {
		t.Fatalf("fired twice: %s", summary(out))
	}
	// The same silence found by event time gives the same alert id, so a sink drops one.
	q := newProc(t, absentConfig())
	byEvent, _ := run(t, q, event("a", 0, 1), onPartition(event("b", 5, 1), 0))
	if len(byEvent) != 1 || byEvent[0].Value["event_id"] != fired[0].Value["event_id"] {
		t.Fatalf("event-time alert %v, tick alert %v", byEvent, fired[0].Value)
	}
	// The partition was silent because its records were delayed: a reading from minute 3
	// arrives and resolves the alert, which never ends before it began.
	clock.t = clock.t.Add(10 * time.Minute)
	resolved, _ := run(t, p, event("a", 3, 1))
	if len(resolved) != 1 || resolved[0].Value["state"] != "resolved" || resolved[0].Value["resolved_at"] != "2025-10-16T09:05:00Z" {
		t.Fatalf("resolved %v", resolved)
	}
}

func TestIdleSeriesAreForgotten(t *testing.T) {
	p, clock := newProcClock(t, &Config{Rules: []Rule{cpuRule(0)}})
	run(t, p, event("quiet", 0, 10), event("firing", 0, 95))
	run(t, p, event("busy", 61, 10))
	log := changelog{}
	log.collect(p)
	tick(t, p, clock.t.Add(time.Minute))
	log.collect(p)
	var kept []string
	for _, s := range p.parts[0].series {
		kept = append(kept, fmt.Sprint(s.last == m(61), len(s.alerts)))
	}
	slices.Sort(kept)
	// quiet is forgotten (in memory and in the changelog); firing keeps its alert; busy is recent.
	if strings.Join(kept, ",") != "false 1,true 0" || len(log[0]) != 3 {
		t.Fatalf("kept %v, changelog %d entries", kept, len(log[0]))
	}
	// A record of the forgotten series, older than its last one, is evaluated now.
	if alerts, rejects := run(t, p, event("quiet", 0, 99)); len(alerts) != 1 || rejects.Len() != 0 {
		t.Fatalf("alerts %s rejects %d", summary(alerts), rejects.Len())
	}
}
