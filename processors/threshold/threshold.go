// Package threshold is the threshold processor: it runs alert rules over records and emits
// alert records as each (rule, series) alert moves through its life — pending, firing
// (and up or down a severity ladder), resolved — following Prometheus's alert model, in
// event time.
//
// Time is event time, taken from the record (ts_event by default), so a `for: 2m` rule fires
// when the condition has held across two minutes of the events' own timestamps, whether the
// events arrive live or are replayed from the start of a topic. The one place the wall clock
// limits event time is max_future: a record stamped further ahead of the engine clock than
// that is refused (CheckFuture), since it would move its series' clock past every real
// record to come. The transitions are one pure function, Evaluate, of a small plain-data
// State.
//
// State is kept per input partition (engine.Stateful), so it moves with the partition
// between the instances of a consumer group: one changelog entry per series, holding the
// alert state of each rule by rule name; one for the partition's clocks; and, with
// lateness, one per record waiting for the watermark. Input records are consumed: the
// processor's output is the alert records only.
//
// # Alert records
//
// Every transition makes one record, keyed by its fingerprint (a hash of rule and series), so
// a compacted topic keeps the latest record of each alert:
//
//   - state pending: the condition started to hold and the rule has `for`.
//   - state firing: the alert fires; also on every move up or down the severity ladder while
//     firing, with the new severity and previous_severity.
//   - state resolved, reason cleared: a firing alert resolved.
//   - state resolved, reason cancelled: a pending alert whose condition stopped holding
//     before `for` elapsed. It was never firing, but without this record the compacted topic
//     would show it pending forever.
//
// started_at is when the condition started to hold (Prometheus's activeAt): the start of
// pending, or the firing time without `for`. fired_at is when it fired; resolved_at is never
// before started_at. event_id is a UUID hashed from the triggering record's id, the rule, the
// transition and the fingerprint, so a redelivered record makes the same ids. A heartbeat
// alert that fires on silence has no triggering record: its id is hashed from the moment it
// became due (last heartbeat + absent), so it is the same whether the partition's event time
// or the wall clock (Tick) found it.
//
// # Out-of-order records
//
// With lateness 0 a record is evaluated when it arrives. One older than the newest record
// already evaluated for its series would rewind the series' clock (a pending alert could fire
// early, a resolved one come back), so it is not evaluated: it goes to the dead-letter topic
// as late (engine.Rejects.AddLate), where it is counted and visible with its reason, rather
// than silently dropped. Set lateness to evaluate such records in order instead: records
// then wait per partition until the watermark (newest event time − lateness) passes them and
// are evaluated in event-time order (ties in arrival order); only records older than the
// watermark are late.
//
// # Memory
//
// A series costs a map entry keyed by a 128-bit hash of its key (about 150 bytes with a
// million series), plus about 50 bytes per rule with an alert. With lateness 0 a series
// without an alert is kept only to tell its late records, and forgotten an hour (of the
// partition's event time) after its last record; with lateness above 0 it is not kept at
// all. A heartbeat rule keeps every series it has seen (with its values, for the alert it
// may have to raise), until the partition is dropped.
//
// # Reloads
//
// Restore matches states to rules by name: a rule edited between evaluations keeps its
// series' states (a pending alert of a rule whose `for` grew keeps pending), and new rules
// start empty. Export hands the current entries over for that copy. A severity that no
// longer exists in an edited ladder becomes the ladder's lowest. The pending and firing
// alerts of a rule that no longer exists (or changed between threshold and heartbeat) end
// with a resolved record, reason "rule removed", in the next Process or Tick, so that no
// alert stays firing forever in a compacted topic or a firing-alerts view; to rebuild their
// fingerprints, a series keeps its values while it holds an alert. Changing series: ends
// every alert the same way, reason "series changed" (their keys no longer match), which
// Restore recognizes from the series expressions stored with the partition.
package threshold

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/eval"
	"github.com/eventops/eventops-engine/engine/types"
)

// Factory declares the threshold processor.
var Factory = engine.ProcessorFactory{
	Type: "threshold",
	Example: `- threshold:
    series: [tenant_id, source.source_id, metric]
    lateness: 30s
    rules:
      - name: cpu_load
        when: 'metric == "cpu_load"'
        severities:
          - {severity: critical, when: 'value >= 90'}
          - {severity: warning, when: 'value >= 80'}
        for: 2m
        keep_firing_for: 1m
        clear_when: 'value < 75'
        message: 'CPU load {{value}}% on {{source.source_id}}'
        labels: {team: 'tags.team ?? "ops"'}
        annotations: {runbook: 'https://runbooks.example/cpu?host={{source.source_id}}'}
      - name: agent_silent
        absent: 5m
        when: 'metric == "cpu_load"'
        severity: critical
        message: 'no CPU readings from {{source.source_id}} for 5 minutes'
`,
	Doc: "Evaluates alert rules per series (tenant, source and metric by default) in event time, " +
		"with Prometheus's alert lifecycle: a rule whose condition holds is pending until it has " +
		"held for `for`, then firing; it resolves when the condition stops holding (or, with " +
		"`clear_when`, when that is true), after `keep_firing_for`. A severity ladder " +
		"(`severities`) escalates and de-escalates a firing alert; `absent` rules fire when a " +
		"series stops sending. Every transition emits an alert record keyed by its fingerprint: " +
		"event_id, fingerprint, rule, state (pending, firing, resolved), severity, " +
		"previous_severity, reason (on resolved: cleared, cancelled, or after a reload rule removed / series changed), ts, started_at, fired_at, " +
		"resolved_at, tenant_id, source_id, metric, value, message, labels, annotations, tags, " +
		"series. Input records are consumed. State is kept per input partition and checkpointed " +
		"by the runtime; `lateness` orders out-of-order records, and a record stamped more than " +
		"`max_future` (default 1h) ahead of the clock goes to the dead-letter topic. Unlike Prometheus, where a " +
		"vanished series resolves, an alert is evaluated only on its series' records: a firing " +
		"alert whose series stops sending stays firing, so pair such rules with an `absent` rule.",
	NewConfig: func() any { return &Config{} },
	Build:     build,
}

var (
	_ engine.Stateful       = (*Processor)(nil)
	_ engine.Ticker         = (*Processor)(nil)
	_ engine.TypedProcessor = (*Processor)(nil)
	_ engine.StateExporter  = (*Processor)(nil)
	_ engine.AlertEmitter   = (*Processor)(nil)
)

// AlertRules names the processor's rules: every record it emits is an alert of one of them.
func (p *Processor) AlertRules() []string {
	names := make([]string, len(p.rules))
	for i, r := range p.rules {
		names[i] = r.Name
	}
	return names
}

// Processor evaluates the rules. Process, Tick, Changes, Restore, Drop and Export are called
// by one goroutine at a time.
type Processor struct {
	series     []*eval.Program
	seriesName []string
	// seriesSig identifies the series expressions, so that Restore can tell states keyed by
	// other series apart.
	seriesSig string
	time      *eval.Program
	rules     []*rule
	byName    map[string]int
	hasAbsent bool
	lateness  int64
	maxFuture int64 // -1: off
	path      string
	clock     engine.Clock
	logger    *slog.Logger

	parts map[int32]*partition
	// restored: Restore ran since the last Process or Tick (see settleRestored).
	restored bool
	out      *types.Type
}

type rule struct {
	Rule
	when   *eval.Program // nil: always (a ladder or a heartbeat rule without when)
	levels []*eval.Program
	// sevs are the severity names by level (one entry for a rule without a ladder).
	sevs            []string
	clear           *eval.Program
	message         *eval.Template
	labels          []*eval.Program
	labelNames      []string
	annotations     []*eval.Template
	annotationNames []string
}

func build(cfg any, env engine.BuildEnv) (engine.Processor, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("threshold: config is %T, want *threshold.Config", cfg)
	}
	// The decoder has validated c; with invalid settings (lint goes on after the decoder's
	// findings) the expressions are still checked, so that lint reports everything at once.
	var errs config.Errors
	compile := func(e config.Expr, kind eval.Kind) *eval.Program {
		if e.IsZero() {
			return nil // optional, or Validate said so
		}
		p, _, err := eval.CompileChecked(e, kind, env.Input, env.Warnings)
		errs.Append(e.Pos, e.Path, err)
		return p
	}
	p := &Processor{path: env.Path, clock: env.Clock, logger: env.Logger, lateness: int64(c.Lateness), maxFuture: c.maxFuture(),
		byName: map[string]int{}, parts: map[int32]*partition{}}
	if p.clock == nil {
		p.clock = engine.WallClock{}
	}
	if p.logger == nil {
		p.logger = slog.Default()
	}
	// The defaults of series and time are not type-checked: they fit records of any shape at
	// run time (a missing field is nil), so flagging them would only be noise.
	if len(c.Series) == 0 {
		for _, s := range DefaultSeries {
			p.series = append(p.series, eval.MustCompile(s, eval.Any))
			p.seriesName = append(p.seriesName, s)
		}
	}
	for _, s := range c.Series {
		p.series = append(p.series, compile(s, eval.Any))
		p.seriesName = append(p.seriesName, strings.TrimSpace(s.Src))
	}
	p.seriesSig = strings.Join(p.seriesName, "\x1f")
	if c.Time != nil && !c.Time.IsZero() {
		p.time = compile(*c.Time, eval.Any)
	} else {
		p.time = eval.MustCompile("ts_event", eval.Any)
	}
	for i, rc := range c.Rules {
		r := &rule{Rule: rc, when: compile(rc.When, eval.Bool)}
		for _, l := range rc.Severities {
			r.levels = append(r.levels, compile(l.When, eval.Bool))
			r.sevs = append(r.sevs, l.Severity)
		}
		if len(r.sevs) == 0 {
			sev := rc.Severity
			if sev == "" {
				sev = SeverityWarning
			}
			r.sevs = []string{sev}
		}
		if rc.ClearWhen != nil {
			r.clear = compile(*rc.ClearWhen, eval.Bool)
		}
		r.message = eval.LiteralTemplate(defaultMessage(rc))
		if rc.Message != nil && !rc.Message.IsZero() {
			t, err := eval.CompileTemplate(*rc.Message, "message", env.Input, env.Warnings)
			errs.Append(rc.Message.Pos, rc.Message.Path, err)
			r.message = t
		}
		for name := range rc.Labels {
			r.labelNames = append(r.labelNames, name)
		}
		sort.Strings(r.labelNames)
		for _, name := range r.labelNames {
			if e := rc.Labels[name]; e != nil {
				r.labels = append(r.labels, compile(*e, eval.Any))
			}
		}
		for name := range rc.Annotations {
			r.annotationNames = append(r.annotationNames, name)
		}
		sort.Strings(r.annotationNames)
		for _, name := range r.annotationNames {
			if e := rc.Annotations[name]; e != nil && !e.IsZero() {
				t, err := eval.CompileTemplate(*e, "annotations."+name, env.Input, env.Warnings)
				errs.Append(e.Pos, e.Path, err)
				r.annotations = append(r.annotations, t)
			}
		}
		if rc.Absent > 0 {
			p.hasAbsent = true
		}
		p.byName[rc.Name] = i
		p.rules = append(p.rules, r)
	}
	p.out = alertType(env.Input, p.seriesName, ruleLabelNames(c.Rules))
	p.out.Fields["rule"] = &types.Type{Kind: types.String, Values: p.AlertRules()}
	if len(errs) > 0 {
		// It never runs, but alert records have the same shape whatever is wrong with the
		// rules, so lint goes on checking the streams that read them (runtime.Build).
		return p, errs.Err()
	}
	if len(p.rules) > 1<<16 {
		return nil, config.FieldErrorf("rules", "at most %d rules per processor", 1<<16)
	}
	return p, nil
}

func defaultMessage(r Rule) string {
	switch {
	case r.Absent > 0:
		return fmt.Sprintf("%s: no record for %s", r.Name, r.Absent.D())
	case len(r.Severities) > 0:
		return r.Name
	}
	return r.Name + ": " + r.When.Src
}

// OutputType is the alert record (see alert).
func (p *Processor) OutputType() *types.Type { return p.out }

// ruleLabelNames are the names of the labels any rule sets.
func ruleLabelNames(rules []Rule) []string {
	var out []string
	for _, r := range rules {
		for name := range r.Labels {
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// alertType is the type of the records alert builds from records of type in.
func alertType(in *types.Type, seriesNames, labelNames []string) *types.Type {
	copied := func(name string) *types.Type {
		if t, ok := in.Field(name); ok && t != nil {
			return t
		}
		return types.Any
	}
	sourceID := types.Any
	if src, ok := in.Field("source"); ok && src != nil {
		if t, ok := src.Field("source_id"); ok && t != nil {
			sourceID = t
		}
	}
	series := map[string]*types.Type{}
	for _, n := range seriesNames {
		series[n] = types.Any
	}
	labels := map[string]*types.Type{}
	for _, n := range labelNames {
		labels[n] = types.Any
	}
	return types.ObjectOf("the threshold processor's alert records", map[string]*types.Type{
		"event_id": types.TStr, "fingerprint": types.TStr, "rule": types.TStr, "state": types.TStr,
		"severity": types.TStr, "previous_severity": types.TStr, "reason": types.TStr,
		"ts": types.TStr, "started_at": types.TStr, "fired_at": types.TStr, "resolved_at": types.TStr,
		"last_seen_at": types.TStr,
		"message":      types.TStr, "labels": types.ObjectOf("the rules' labels", labels),
		"annotations": {Kind: types.Object, Extra: types.TStr},
		"series":      types.ObjectOf("the rule's series", series),
		"tenant_id":   copied("tenant_id"), "metric": copied("metric"), "value": copied("value"),
		"tags": copied("tags"), "source_id": sourceID,
	})
}

// lateError says a record came too late to be evaluated.
type lateError struct{ msg string }

func (e *lateError) Error() string { return e.msg }

// Process evaluates every rule on every record (or, with lateness, buffers records until the
// watermark passes them) and returns the alerts. A record on which a rule, the series, the
// time or an alert's template cannot be evaluated is rejected and changes no state.
func (p *Processor) Process(_ context.Context, batch []*engine.Record, rejects *engine.Rejects) ([]*engine.Record, error) {
	now := p.clock.Now()
	out := p.settleRestored(nil)
	for _, rec := range batch {
		part := p.partition(rec.Source.Partition, now)
		part.arrival = now
		at, err := p.eventTime(eval.Env{Vars: rec.Value, Source: rec.Source, Now: now}, now)
		if err != nil {
			rejects.Add(rec, p.path, fmt.Errorf("threshold: %w", err))
			continue
		}
		t := at.UnixNano()
		if p.lateness == 0 {
			out = p.evalRecord(part, rec, t, now, out, rejects)
			continue
		}
		if t < part.wm {
			rejects.AddLate(rec, p.path, "", fmt.Errorf("threshold: event time %s is %s before the watermark %s (the partition's newest event time minus lateness %s); it was not evaluated",
				fmtTime(t), time.Duration(part.wm-t), fmtTime(part.wm), time.Duration(p.lateness)))
			continue
		}
		part.buffer(rec, t)
		out = p.release(part, part.maxEvent-p.lateness, now, out, rejects)
	}
	return out, nil
}

// Tick releases the records of partitions that have been idle (by the wall clock) for the
// time they would have waited for the watermark, and fires heartbeat rules of partitions
// that went silent: a partition idle for d is treated as if its event time had moved on by d.
func (p *Processor) Tick(_ context.Context, now time.Time, rejects *engine.Rejects) ([]*engine.Record, error) {
	out := p.settleRestored(nil)
	for _, id := range p.partitionIDs() {
		part := p.parts[id]
		idle := max(int64(now.Sub(part.arrival)), 0)
		if len(part.buf) > 0 {
			out = p.release(part, min(part.maxEvent-p.lateness+idle, part.maxEvent), now, out, rejects)
		}
		if p.hasAbsent && part.clock != 0 {
			out = p.scanAbsent(part, part.clock+idle, nil, now, out)
		}
		if p.lateness == 0 && now.Sub(part.swept) >= sweepEvery {
			part.forgetIdle(part.clock - int64(forgetAfter))
			part.swept = now
		}
	}
	return out, nil
}

// A series without an alert is kept (with lateness 0) only to tell its late records; it is
// forgotten once its partition's event time is forgetAfter past its last record, so that
// series that come and go (containers, short-lived hosts) do not pile up. A record older
// than that for a forgotten series is evaluated instead of counted late. Tick looks for
// such series every sweepEvery of wall time.
const (
	forgetAfter = time.Hour
	sweepEvery  = time.Minute
)

// evalRecord evaluates rec (at event time t) and then the heartbeat rules of the partition
// against its event time.
func (p *Processor) evalRecord(part *partition, rec *engine.Record, t int64, now time.Time, out []*engine.Record, rejects *engine.Rejects) []*engine.Record {
	alerts, err := p.evaluate(part, rec, t, now)
	if late := (*lateError)(nil); errors.As(err, &late) {
		rejects.AddLate(rec, p.path, "", fmt.Errorf("threshold: %w", err))
		return out
	}
	if err != nil {
		rejects.Add(rec, p.path, fmt.Errorf("threshold: %w", err))
		return out
	}
	out = append(out, alerts...)
	if t > part.clock {
		part.clock = t
		part.dirtyMeta = true
	}
	if p.hasAbsent {
		out = p.scanAbsent(part, part.clock, rec, now, out)
	}
	return out
}

// change is a rule's new state for the series being evaluated, applied only once the whole
// record has been evaluated without error.
type change struct {
	rule int
	slot int // index in series.alerts, -1 for a new one
	next State
}

// evaluate runs every rule on rec for its series and applies the new states, or changes
// nothing and returns an error.
func (p *Processor) evaluate(part *partition, rec *engine.Record, t int64, now time.Time) ([]*engine.Record, error) {
	env := eval.Env{Vars: rec.Value, Source: rec.Source, Now: now}
	// The series' values and key are built on the stack: most records change no alert, and
	// only an alert needs them after this call (alertOf takes copies).
	var valuesBuf [4]any
	var keyBuf [128]byte
	values, keyBytes, err := p.seriesOf(env, valuesBuf[:0], keyBuf[:0])
	if err != nil {
		return nil, err
	}
	id := seriesID(keyBytes)
	s, had := part.series[id]
	if p.lateness == 0 && had && t < s.last {
		return nil, &lateError{fmt.Sprintf("event time %s is %s older than the newest record already evaluated for its series (%s); set lateness to evaluate out-of-order records in order",
			fmtTime(t), time.Duration(s.last-t), fmtTime(s.last))}
	}
	at := time.Unix(0, t).UTC()
	var changes []change
	var alerts []*engine.Record
	for i, r := range p.rules {
		slot, old := -1, State{}
		for j := range s.alerts {
			if int(s.alerts[j].rule) == i {
				slot, old = j, s.alerts[j].State
				break
			}
		}
		in, skip, err := r.input(env, old)
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", r.Name, err)
		}
		if skip {
			continue
		}
		next, tr := Evaluate(old, in, at, r.Rule)
		if next == old {
			continue
		}
		changes = append(changes, change{rule: i, slot: slot, next: next})
		if tr == NoChange {
			continue
		}
		a, err := p.alert(alertOf{rec: rec, env: env, r: r, key: string(keyBytes), values: slices.Clone(values), old: old, next: next, tr: tr, at: t, trigger: triggerID(rec)})
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", r.Name, err)
		}
		alerts = append(alerts, a)
	}

	// Apply.
	dirty := false
	if p.lateness == 0 && t > s.last {
		s.last, dirty = t, true
	}
	if len(changes) > 0 {
		dirty = true
		for _, c := range changes {
			if c.slot >= 0 {
				s.alerts[c.slot].State = c.next
			} else if kept(c.next) {
				s.alerts = append(s.alerts, slot{rule: uint16(c.rule), State: c.next})
			}
			if r := p.rules[c.rule]; r.Absent > 0 && c.next.Phase != Firing {
				part.noteDeadline(c.next.LastSeen + int64(r.Absent))
			}
		}
		s.alerts = deleteUnkept(s.alerts)
	}
	switch {
	case s.vals == "" && (p.hasAbsent || len(s.alerts) > 0):
		if b, err := json.Marshal(slices.Clone(values)); err == nil { // a copy keeps values on the stack
			s.vals, dirty = string(b), true
		}
	case s.vals != "" && !p.hasAbsent && len(s.alerts) == 0:
		s.vals = "" // kept only while an alert may need it
	}
	if !dirty {
		return alerts, nil
	}
	part.dirty(id)
	if p.lateness == 0 || len(s.alerts) > 0 {
		part.series[id] = s
	} else if had {
		delete(part.series, id)
	}
	return alerts, nil
}

// input evaluates rule r's expressions on a record. skip is set for a heartbeat rule and a
// record that is not a heartbeat: such a record says nothing to the rule.
func (r *rule) input(env eval.Env, old State) (in Input, skip bool, err error) {
	in.Level = -1
	holds := true
	if r.when != nil {
		if holds, err = r.when.EvalBool(env); err != nil {
			return in, false, err
		}
	}
	if r.Absent > 0 {
		return Input{Level: 0}, !holds, nil
	}
	if holds {
		if len(r.levels) == 0 {
			in.Level = 0
		}
		for i, l := range r.levels {
			m, err := l.EvalBool(env)
			if err != nil {
				return in, false, fmt.Errorf("severities[%d]: %w", i, err)
			}
			if m {
				in.Level = i
				break
			}
		}
	}
	if old.Phase == Firing && r.clear != nil {
		if in.Clear, err = r.clear.EvalBool(env); err != nil {
			return in, false, fmt.Errorf("clear_when: %w", err)
		}
	}
	return in, false, nil
}

// seriesOf evaluates the series expressions: their values and the series key.
func (p *Processor) seriesOf(env eval.Env, values []any, key []byte) ([]any, []byte, error) {
	for i, s := range p.series {
		v, err := s.Eval(env)
		if err != nil {
			return nil, nil, fmt.Errorf("series: %w", err)
		}
		values = append(values, v)
		if i > 0 {
			key = append(key, '\x1f')
		}
		key = append(key, eval.Text(v)...)
	}
	return values, key, nil
}

// seriesID is the compact map key of a series: a 128-bit hash of its key.
func seriesID(key []byte) sid {
	h := fnv.New128a()
	h.Write(key)
	var id sid
	h.Sum(id[:0])
	return id
}

// eventTime is the record's event time, or now when the record has none.
func (p *Processor) eventTime(env eval.Env, now time.Time) (time.Time, error) {
	v, err := p.time.Eval(env)
	if err != nil {
		return time.Time{}, fmt.Errorf("time: %w", err)
	}
	if v == nil {
		return now, nil
	}
	t, err := eval.ParseTime(v, "")
	if err != nil {
		return time.Time{}, fmt.Errorf("event time (%s): %w", p.time.Source().Src, err)
	}
	if err := eval.CheckFuture(t, now, time.Duration(p.maxFuture)); err != nil {
		return time.Time{}, err
	}
	return t, nil
}

// alertOf is what an alert record is made from.
type alertOf struct {
	rec       *engine.Record // the triggering record; nil for a heartbeat alert made by Tick
	env       eval.Env       // what templates are rendered on
	r         *rule
	key       string
	values    []any
	old, next State
	tr        Transition
	at        int64
	trigger   string
	// lenient: a template that fails does not stop the alert (there is no record to
	// reject when a series' silence fires it).
	lenient bool
	// tickTime is the wall time of the Tick that made an alert without a record.
	tickTime time.Time
}

// alert builds the alert record of a transition.
func (p *Processor) alert(a alertOf) (*engine.Record, error) {
	r := a.r
	msg, err := r.message.Render(a.env)
	if err != nil {
		if !a.lenient {
			return nil, err
		}
		msg = fmt.Sprintf("%s (%v)", defaultMessage(r.Rule), err)
	}
	labels := make(map[string]any, len(r.labels))
	for i, l := range r.labels {
		v, err := l.Eval(a.env)
		if err != nil && !a.lenient {
			return nil, fmt.Errorf("labels.%s: %w", r.labelNames[i], err)
		}
		if err == nil && v != nil {
			labels[r.labelNames[i]] = v
		}
	}
	annotations := make(map[string]any, len(r.annotations))
	for i, t := range r.annotations {
		v, err := t.Render(a.env)
		if err != nil && !a.lenient {
			return nil, err
		}
		if err == nil {
			annotations[r.annotationNames[i]] = v
		}
	}
	series := make(map[string]any, len(a.values))
	for i, v := range a.values {
		series[p.seriesName[i]] = v
	}
	fp := Fingerprint(r.Name, a.key)
	cur := a.next
	state := "firing"
	switch a.tr {
	case ToPending:
		state = "pending"
	case Cancelled, ToResolved:
		state, cur = "resolved", a.old
	}
	sev := r.sevs[min(int(cur.Level), len(r.sevs)-1)]
	v := map[string]any{
		"fingerprint": fp,
		"rule":        r.Name,
		"state":       state,
		"severity":    sev,
		"ts":          fmtTime(a.at),
		"started_at":  fmtTime(cur.ActiveAt),
		"message":     msg,
		"labels":      labels,
		"annotations": annotations,
		"series":      series,
	}
	transition := a.tr.String()
	if cur.FiredAt != 0 {
		v["fired_at"] = fmtTime(cur.FiredAt)
	}
	switch a.tr {
	case Escalated, Deescalated:
		v["previous_severity"] = r.sevs[min(int(a.old.Level), len(r.sevs)-1)]
		transition += ":" + sev
	case Cancelled:
		v["reason"] = "cancelled"
	case ToResolved:
		v["reason"] = "cleared"
	}
	if state == "resolved" {
		// A heartbeat alert fired by the wall clock may be resolved by a record whose event
		// time is before the moment it fired; an alert never ends before it began.
		v["resolved_at"] = fmtTime(max(a.at, cur.ActiveAt))
	}
	if r.Absent > 0 && cur.LastSeen != 0 {
		v["last_seen_at"] = fmtTime(cur.LastSeen)
	}
	v["event_id"] = EventID(a.trigger, r.Name, transition, fp)
	vars := a.env.Vars
	for _, f := range []string{"tenant_id", "metric", "value", "tags"} {
		if x, ok := vars[f]; ok && x != nil {
			v[f] = x
		}
	}
	if src, ok := vars["source"].(map[string]any); ok && src["source_id"] != nil {
		v["source_id"] = src["source_id"]
	}
	out := &engine.Record{Value: v, Key: []byte(fp)}
	if a.rec != nil {
		out.Source, out.Timestamp = a.rec.Source, a.rec.Timestamp
	} else {
		out.Source, out.Timestamp = a.env.Source, a.tickTime
	}
	return out, nil
}

func fmtTime(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

// triggerID identifies the record that caused a transition: its event_id when it has one
// (set by the normalizing map), else the id of its source position.
func triggerID(rec *engine.Record) string {
	if id, ok := rec.Value["event_id"].(string); ok && id != "" {
		return id
	}
	return eval.RecordID(rec.Source)
}

// Fingerprint identifies an alert across its transitions: the same rule and series always
// give the same fingerprint, so all records of one alert share a key (and a compacted
// topic keeps the latest state of each alert).
func Fingerprint(rule, seriesKey string) string {
	h := sha256.New()
	h.Write([]byte(rule))
	h.Write([]byte{0})
	h.Write([]byte(seriesKey))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// EventID is the id of one alert record, as a version-8 UUID: a hash of the trigger (the
// triggering record's id, or for an alert fired by a series' silence the moment it became
// due), the rule, the transition and the fingerprint, so a redelivered trigger produces the
// same id and the sink can drop the duplicate.
func EventID(trigger, rule, transition, fingerprint string) string {
	h := sha256.New()
	for _, s := range []string{trigger, rule, transition, fingerprint} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	b := h.Sum(nil)[:16]
	b[6] = (b[6] & 0x0f) | 0x80
	b[8] = (b[8] & 0x3f) | 0x80
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}
