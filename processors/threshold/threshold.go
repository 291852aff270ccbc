// Package threshold is the threshold processor: it runs alert rules over records and emits
// an alert record whenever a series starts firing and when it resolves.
//
// Each rule keeps one alert State per series (by default tenant, source and metric). Time is
// event time, taken from the record (ts_event by default), so a `for: 2m` rule fires when
// the condition has held across two minutes of the events' own timestamps, whether they
// arrive live or are replayed from the start of a topic. Input records are consumed: the
// processor's output is the alert records only.
package threshold

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
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
    rules:
      - name: cpu_load_critical
        when: 'metric == "cpu_load" && value >= 90'
        for: 2m
        severity: critical
        message: 'CPU load {{value}}% on {{source.source_id}}'
        labels: {team: 'tags.team ?? "ops"'}
`,
	Doc: "Evaluates alert rules on every record, per series (tenant, source and metric by default), " +
		"in event time. A rule whose condition holds for `for` fires; it resolves when the " +
		"condition is false again. Only those two transitions produce records (alerts with " +
		"event_id, fingerprint, rule, state, severity, ts, started_at, resolved_at, tenant_id, " +
		"source_id, metric, value, message, labels, tags, series); input records are consumed.",
	NewConfig: func() any { return &Config{} },
	Build:     build,
}

// Snapshot is a processor's alert state: rule name to series key to state. Only series that
// are pending or firing have an entry.
type Snapshot map[string]map[string]State

// Processor evaluates the rules. Process is called by one goroutine at a time (the stream);
// Snapshot and Restore may be called from others.
type Processor struct {
	series     []*eval.Program
	seriesName []string
	time       *eval.Program
	rules      []*rule
	path       string
	clock      engine.Clock

	mu     sync.Mutex
	states []map[string]State // per rule, keyed by series key
	out    *types.Type
}

type rule struct {
	Rule
	when       *eval.Program
	message    *template
	labels     []*eval.Program
	labelNames []string
}

func build(cfg any, env engine.BuildEnv) (engine.Processor, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("threshold: config is %T, want *threshold.Config", cfg)
	}
	// Invalid settings do not stop the expressions from being checked: lint reports
	// everything wrong with the processor at once.
	invalid := c.Validate()
	var errs config.Errors
	compile := func(e config.Expr, kind eval.Kind) *eval.Program {
		if e.IsZero() {
			return nil // Validate said so
		}
		p, _, err := eval.CompileChecked(e, kind, env.Input, env.Warnings)
		errs.Append(e.Pos, e.Path, err)
		return p
	}
	p := &Processor{path: env.Path, clock: env.Clock}
	if p.clock == nil {
		p.clock = engine.WallClock{}
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
	if c.Time != nil && !c.Time.IsZero() {
		p.time = compile(*c.Time, eval.Any)
	} else {
		p.time = eval.MustCompile("ts_event", eval.Any)
	}
	for _, rc := range c.Rules {
		r := &rule{Rule: rc, when: compile(rc.When, eval.Bool)}
		if r.Severity == "" {
			r.Severity = SeverityWarning
		}
		r.message = &template{parts: []templatePart{{text: rc.Name + ": " + rc.When.Src}}}
		if rc.Message != nil && !rc.Message.IsZero() {
			t, err := compileTemplate(*rc.Message, env)
			errs.Append(rc.Message.Pos, rc.Message.Path, err)
			r.message = t
		}
		for name := range rc.Labels {
			r.labelNames = append(r.labelNames, name)
		}
		sort.Strings(r.labelNames)
		for _, name := range r.labelNames {
			r.labels = append(r.labels, compile(*rc.Labels[name], eval.Any))
		}
		p.rules = append(p.rules, r)
	}
	if invalid != nil || len(errs) > 0 {
		return nil, errors.Join(invalid, errs.Err())
	}
	p.states = make([]map[string]State, len(p.rules))
	for i := range p.states {
		p.states[i] = map[string]State{}
	}
	p.out = alertType(env.Input, p.seriesName)
	return p, nil
}

// OutputType is the alert record (see alert).
func (p *Processor) OutputType() *types.Type { return p.out }

// alertType is the type of the records alert builds from records of type in.
func alertType(in *types.Type, seriesNames []string) *types.Type {
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
	return types.ObjectOf("the threshold processor's alert records", map[string]*types.Type{
		"event_id": types.TStr, "fingerprint": types.TStr, "rule": types.TStr, "state": types.TStr,
		"severity": types.TStr, "ts": types.TStr, "started_at": types.TStr, "resolved_at": types.TStr,
		"message": types.TStr, "labels": {Kind: types.Object, Extra: types.Any},
		"series":    types.ObjectOf("the rule's series", series),
		"tenant_id": copied("tenant_id"), "metric": copied("metric"), "value": copied("value"),
		"tags": copied("tags"), "source_id": sourceID,
	})
}

// change is a state change computed for a record, applied only once the whole record has
// been evaluated without error.
type change struct {
	rule  int
	key   string
	state State
}

// Process evaluates every rule on every record and returns the alerts. A record on which a
// rule, the series, the time or an alert's message cannot be evaluated is rejected and
// changes no state.
func (p *Processor) Process(_ context.Context, batch []*engine.Record, rejects *engine.Rejects) ([]*engine.Record, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*engine.Record
	now := p.clock.Now()
	var changes []change
	var alerts []*engine.Record
	for _, rec := range batch {
		var err error
		changes, alerts, err = p.evaluate(rec, now, changes[:0], alerts[:0])
		if err != nil {
			rejects.Add(rec, p.path, fmt.Errorf("threshold: %w", err))
			continue
		}
		for _, c := range changes {
			if c.state.Phase == Inactive {
				delete(p.states[c.rule], c.key)
			} else {
				p.states[c.rule][c.key] = c.state
			}
		}
		out = append(out, alerts...)
	}
	return out, nil
}

// evaluate runs every rule on rec without changing any state.
func (p *Processor) evaluate(rec *engine.Record, now time.Time, changes []change, alerts []*engine.Record) ([]change, []*engine.Record, error) {
	env := eval.Env{Vars: rec.Value, Source: rec.Source, Now: now}
	at, err := p.eventTime(env, now)
	if err != nil {
		return nil, nil, err
	}
	values := make([]any, len(p.series))
	var key strings.Builder
	for i, s := range p.series {
		v, err := s.Eval(env)
		if err != nil {
			return nil, nil, fmt.Errorf("series: %w", err)
		}
		values[i] = v
		if i > 0 {
			key.WriteByte('\x1f')
		}
		key.WriteString(format(v))
	}
	seriesKey := key.String()
	for i, r := range p.rules {
		matched, err := r.when.EvalBool(env)
		if err != nil {
			return nil, nil, fmt.Errorf("rule %s: %w", r.Name, err)
		}
		old := p.states[i][seriesKey]
		next, tr := Evaluate(old, matched, at, r.Rule)
		if next == old {
			continue
		}
		changes = append(changes, change{rule: i, key: seriesKey, state: next})
		if tr != ToFiring && tr != ToResolved {
			continue
		}
		alert, err := p.alert(rec, env, r, seriesKey, values, old, next, tr, at)
		if err != nil {
			return nil, nil, fmt.Errorf("rule %s: %w", r.Name, err)
		}
		alerts = append(alerts, alert)
	}
	return changes, alerts, nil
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
	return t, nil
}

// alert builds the alert record for a transition to firing or resolved.
func (p *Processor) alert(rec *engine.Record, env eval.Env, r *rule, seriesKey string, values []any,
	old, next State, tr Transition, at time.Time) (*engine.Record, error) {
	msg, err := r.message.render(env)
	if err != nil {
		return nil, err
	}
	labels := make(map[string]any, len(r.labels))
	for i, l := range r.labels {
		v, err := l.Eval(env)
		if err != nil {
			return nil, fmt.Errorf("labels.%s: %w", r.labelNames[i], err)
		}
		if v != nil {
			labels[r.labelNames[i]] = v
		}
	}
	series := make(map[string]any, len(values))
	for i, v := range values {
		series[p.seriesName[i]] = v
	}
	fp := Fingerprint(r.Name, seriesKey)
	started := next.Since
	if tr == ToResolved {
		started = old.Since
	}
	v := map[string]any{
		"event_id":    EventID(triggerID(rec), r.Name, string(tr), fp),
		"fingerprint": fp,
		"rule":        r.Name,
		"state":       string(tr),
		"severity":    r.Severity,
		"ts":          at.UTC().Format(time.RFC3339Nano),
		"started_at":  started.UTC().Format(time.RFC3339Nano),
		"message":     msg,
		"labels":      labels,
		"series":      series,
	}
	if tr == ToResolved {
		v["resolved_at"] = v["ts"]
	}
	for _, f := range []string{"tenant_id", "metric", "value", "tags"} {
		if x, ok := rec.Value[f]; ok && x != nil {
			v[f] = x
		}
	}
	if src, ok := rec.Value["source"].(map[string]any); ok && src["source_id"] != nil {
		v["source_id"] = src["source_id"]
	}
	return &engine.Record{
		Value:     v,
		Key:       []byte(fp),
		Source:    rec.Source,
		Timestamp: rec.Timestamp,
	}, nil
}

// triggerID identifies the record that caused a transition: its event_id when it has one
// (set by the normalizing map), else the id of its source position.
func triggerID(rec *engine.Record) string {
	if id, ok := rec.Value["event_id"].(string); ok && id != "" {
		return id
	}
	return eval.RecordID(rec.Source)
}

// Fingerprint identifies an alert across its transitions: the same rule and series always
// give the same fingerprint, so firing and resolved records share a key (and a compacted
// topic keeps the latest state of each alert).
func Fingerprint(rule, seriesKey string) string {
	h := sha256.New()
	h.Write([]byte(rule))
	h.Write([]byte{0})
	h.Write([]byte(seriesKey))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// EventID is the id of one alert record, as a version-8 UUID: a hash of the triggering
// record's id, the rule, the transition and the fingerprint, so a redelivered trigger
// produces the same id and the sink can drop the duplicate.
func EventID(trigger, rule, state, fingerprint string) string {
	h := sha256.New()
	for _, s := range []string{trigger, rule, state, fingerprint} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	b := h.Sum(nil)[:16]
	b[6] = (b[6] & 0x0f) | 0x80
	b[8] = (b[8] & 0x3f) | 0x80
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// Snapshot copies the alert state, for checkpointing.
func (p *Processor) Snapshot() Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(Snapshot, len(p.rules))
	for i, r := range p.rules {
		m := make(map[string]State, len(p.states[i]))
		for k, s := range p.states[i] {
			m[k] = s
		}
		out[r.Name] = m
	}
	return out
}

// Restore replaces the alert state with s. States of rules this processor does not have
// (removed by a config edit) are ignored, so that a reload keeps the alerts of the rules
// that stayed.
func (p *Processor) Restore(s Snapshot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, r := range p.rules {
		m := make(map[string]State, len(s[r.Name]))
		for k, st := range s[r.Name] {
			if st.Phase != Inactive {
				m[k] = st
			}
		}
		p.states[i] = m
	}
}
