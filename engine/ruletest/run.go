// Package ruletest runs rule test files (eventops-engine test): the promtool experience for
// whole streams. A test file names a pipeline and gives test cases: records to produce (one
// by one, or as series in promtool's expanding notation) and expectations at points of a
// virtual clock (the alerts active, the records written to topics, the records rejected).
// Each case runs the pipeline's real processors on in-memory topics (runtime.Virtual), so
// windows close, `for` elapses and watermarks advance as the clock steps, without a broker
// or a database, in milliseconds.
package ruletest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/codec"
	"github.com/eventops/eventops-engine/engine/runtime"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// Suite is a loaded test file, ready to run.
type Suite struct {
	File     string
	Spec     File
	pos      config.Positions
	pipeline *config.Pipeline // as loaded, before lookup overrides
	cfg      *config.Pipeline // with the overrides
	// alertRules are the alert rules of the streams under test, from their built processors.
	alertRules []ruleRef
	// notificationTopics are the topics the streams under test with a notify processor
	// (engine.AlertDispatcher) write: where notifications expectations look.
	notificationTopics []string
	components         engine.Components
}

// Load reads and checks a test file and the pipeline it names, whose components are of the
// types in components. Problems come back as config.Errors, each at its file:line:col (the
// pipeline's own at the pipeline's).
func Load(file string, components engine.Components) (*Suite, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	s := &Suite{File: file, components: components}
	var errs config.Errors
	s.pos, err = config.DecodeFile(file, data, &s.Spec, "test file")
	if err != nil {
		// What decoded is still checked against the pipeline, so that one run shows all.
		if !errors.As(err, &errs) || s.pos == nil {
			return nil, err
		}
	}
	at := func(path string) config.Pos { return s.pos.Of(path) }
	pipelineFile := s.Spec.Pipeline
	if !filepath.IsAbs(pipelineFile) {
		pipelineFile = filepath.Join(filepath.Dir(file), pipelineFile)
	}
	cfg, err := config.Load(pipelineFile, components.Registry())
	if err != nil {
		var cerrs config.Errors
		if errors.As(err, &cerrs) {
			errs.Add(at("pipeline"), "pipeline", "%s does not load (%d problems; lint it): %v", s.Spec.Pipeline, len(cerrs), cerrs[0])
		} else {
			errs.Add(at("pipeline"), "pipeline", "%v", err)
		}
		return nil, errs.Err()
	}
	s.pipeline = cfg
	over := *cfg
	over.Lookups = maps.Clone(cfg.Lookups)
	for _, name := range slices.Sorted(maps.Keys(s.Spec.Lookups)) {
		o := s.Spec.Lookups[name]
		lk, ok := over.Lookups[name]
		if !ok {
			errs.Add(at("lookups."+name), "lookups."+name, "the pipeline has no lookup %q%s", name, oneOf(name, slices.Sorted(maps.Keys(cfg.Lookups))))
			continue
		}
		lk.File, lk.Rows, lk.Format = "", o.Rows, ""
		if lk.File = o.File; o.File != "" && !filepath.IsAbs(o.File) {
			lk.File = filepath.Join(filepath.Dir(file), o.File)
		}
		over.Lookups[name] = lk
	}
	s.cfg = &over
	// The pipeline with its overrides must build (a bad override file, say); its
	// processors say which alert rules expectations may name.
	plan, err := s.build(runtime.NewVirtualClock(epoch))
	if err == nil {
		s.alertRules = s.rulesOf(plan)
		s.notificationTopics = s.notificationTopicsOf(plan)
	}
	s.check(&errs, err == nil)
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs.Err()
	}
	if err != nil {
		errs.Add(at("pipeline"), "pipeline", "%s does not build with the test's lookups: %v", s.Spec.Pipeline, err)
		return nil, errs.Err()
	}
	return s, nil
}

// oneOf says what got could have been: the closest name, and the names there are.
func oneOf(got string, names []string) string {
	if len(names) == 0 {
		return ""
	}
	return config.Suggestion(got, names) + " (it has " + strings.Join(names, ", ") + ")"
}

// check finds references to things the pipeline does not have: streams, topics, and rules
// when the pipeline built (knowsRules), since its processors are what say which rules exist.
func (s *Suite) check(errs *config.Errors, knowsRules bool) {
	at := func(path string) config.Pos { return s.pos.Of(path) }
	streams := map[string]config.Stream{}
	var names []string
	for _, st := range s.cfg.Streams {
		streams[st.Name] = st
		names = append(names, st.Name)
	}
	for i, name := range s.Spec.Streams {
		if _, ok := streams[name]; !ok {
			errs.Add(at(fmt.Sprintf("streams[%d]", i)), fmt.Sprintf("streams[%d]", i), "the pipeline has no stream %q%s", name, oneOf(name, names))
		}
	}
	topics := slices.Sorted(maps.Keys(s.cfg.Topics))
	known := func(topic string) bool { return s.cfg.Broker.Embedded == nil || slices.Contains(topics, topic) }
	rules := s.ruleNames()
	if _, err := parseAt(orDefault(s.Spec.Start, "0")); err != nil {
		errs.Add(at("start"), "start", "%v", err)
	}
	for i, c := range s.Spec.Tests {
		cp := fmt.Sprintf("tests[%d]", i)
		if _, err := parseAt(orDefault(c.Start, "0")); err != nil {
			errs.Add(at(cp+".start"), cp+".start", "%v", err)
		}
		for j, in := range c.Inputs {
			if p := fmt.Sprintf("%s.inputs[%d].topic", cp, j); !known(in.Topic) {
				errs.Add(at(p), p, "topic %q is not declared in the pipeline%s", in.Topic, oneOf(in.Topic, topics))
			}
		}
		for j, se := range c.Series {
			if p := fmt.Sprintf("%s.series[%d].topic", cp, j); !known(se.Topic) {
				errs.Add(at(p), p, "topic %q is not declared in the pipeline%s", se.Topic, oneOf(se.Topic, topics))
			}
		}
		for j, e := range c.Expect {
			ep := fmt.Sprintf("%s.expect[%d]", cp, j)
			for _, topic := range slices.Sorted(maps.Keys(e.Records)) {
				if p := ep + ".records." + topic; !known(topic) {
					errs.Add(at(p), p, "topic %q is not declared in the pipeline%s", topic, oneOf(topic, topics))
				}
			}
			if e.Alerts == nil {
				continue
			}
			for k, a := range *e.Alerts {
				if p := fmt.Sprintf("%s.alerts[%d].rule", ep, k); knowsRules && a.Rule != "" && !slices.Contains(rules, a.Rule) {
					errs.Add(at(p), p, "no rule %q in the streams under test%s", a.Rule, oneOf(a.Rule, rules))
				}
			}
		}
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ruleNames lists the alert rules of the streams under test.
func (s *Suite) ruleNames() []string {
	var out []string
	for _, r := range s.alertRules {
		out = append(out, r.rule)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

type ruleRef struct{ stream, processor, rule string }

// underTest reports whether sp is one of the streams the suite tests: a stream, not a sink,
// named by the spec's streams: when it names any.
func (s *Suite) underTest(sp *runtime.StreamPlan) bool {
	return !sp.Sink && (len(s.Spec.Streams) == 0 || slices.Contains(s.Spec.Streams, sp.Name))
}

// notificationTopicsOf lists the topics written by the streams under test that dispatch
// alerts (a notify processor).
func (s *Suite) notificationTopicsOf(plan *runtime.Plan) []string {
	var out []string
	for _, sp := range plan.Streams {
		if !s.underTest(sp) {
			continue
		}
		for _, p := range sp.Processors {
			if _, ok := p.Processor.(engine.AlertDispatcher); ok && sp.Config.Output.Topic != "" && !slices.Contains(out, sp.Config.Output.Topic) {
				out = append(out, sp.Config.Output.Topic)
			}
		}
	}
	return out
}

// rulesOf lists every alert rule of the streams under test in plan, by stream and
// processor path: the rules of the processors that emit alerts (engine.AlertEmitter).
func (s *Suite) rulesOf(plan *runtime.Plan) []ruleRef {
	var out []ruleRef
	for _, sp := range plan.Streams {
		if !s.underTest(sp) {
			continue
		}
		for _, p := range sp.Processors {
			ae, ok := p.Processor.(engine.AlertEmitter)
			if !ok {
				continue
			}
			for _, rule := range ae.AlertRules() {
				out = append(out, ruleRef{stream: sp.Name, processor: p.Path, rule: rule})
			}
		}
	}
	return out
}

// build compiles a fresh plan (fresh processors, no state) on clock. Cases build at once:
// each gets its own copy of the pipeline, since Build adds its warnings to it.
func (s *Suite) build(clock *runtime.VirtualClock) (*runtime.Plan, error) {
	cfg := *s.cfg
	cfg.Warnings = slices.Clone(cfg.Warnings)
	return runtime.Build(&cfg, runtime.Options{Clock: clock, Components: s.components, Logger: discard})
}

// Result is the outcome of one test case.
type Result struct {
	Name     string
	Pos      config.Pos
	Failures []Failure
	Err      error // the case could not run
	Duration time.Duration
	// fired are the rules that raised an alert (stream/processor/rule); in are the records
	// each stream read.
	fired map[ruleRef]bool
	in    map[string]int
}

// Passed tells whether the case passed.
func (r Result) Passed() bool { return r.Err == nil && len(r.Failures) == 0 }

// Failure is one expectation that did not hold.
type Failure struct {
	Pos  config.Pos
	What string // "alerts at 2025-10-16T09:05:00Z"
	Diff string // expected and got, readable
}

func (f Failure) String() string {
	return fmt.Sprintf("%s: %s\n%s", f.Pos, f.What, f.Diff)
}

// event is a record to produce at a time.
type event struct {
	at      time.Time
	order   int
	topic   string
	key     []byte
	value   []byte
	headers []engine.Header
}

// Run runs every case of the suite.
func (s *Suite) Run(ctx context.Context) []Result {
	return s.RunMatching(ctx, func(string) bool { return true })
}

func (s *Suite) runCase(ctx context.Context, i int) (res Result) {
	t0 := time.Now()
	c := s.Spec.Tests[i]
	cp := fmt.Sprintf("tests[%d]", i)
	res = Result{Name: c.Name, Pos: s.pos.Of(cp), fired: map[ruleRef]bool{}, in: map[string]int{}}
	defer func() { res.Duration = time.Since(t0) }()
	fileStart, _ := parseAt(orDefault(s.Spec.Start, "0"))
	start := fileStart.from(epoch)
	if c.Start != "" {
		a, _ := parseAt(c.Start)
		start = a.from(start)
	}
	events, err := s.events(c, cp, start)
	if err != nil {
		res.Err = err
		return res
	}
	clock := runtime.NewVirtualClock(start)
	plan, err := s.build(clock)
	if err != nil {
		res.Err = err
		return res
	}
	v := plan.Virtual(clock, s.Spec.Streams)

	type check struct {
		at    time.Time
		index int
	}
	checks := make([]check, len(c.Expect))
	for j, e := range c.Expect {
		a, _ := parseAt(e.At)
		checks[j] = check{at: a.from(start), index: j}
	}
	sort.SliceStable(checks, func(a, b int) bool { return checks[a].at.Before(checks[b].at) })

	var since cursor
	next := 0
	for _, ch := range checks {
		for next < len(events) && !events[next].at.After(ch.at) {
			now := events[next].at
			clock.Set(now) // records of one instant arrive together, then the clock ticks
			for next < len(events) && events[next].at.Equal(now) {
				e := events[next]
				v.Produce(e.topic, e.key, e.value, e.headers)
				next++
			}
			v.Advance(ctx, now)
		}
		v.Advance(ctx, ch.at)
		ep := fmt.Sprintf("%s.expect[%d]", cp, ch.index)
		res.Failures = append(res.Failures, s.verify(v, c.Expect[ch.index], ep, ch.at, &since)...)
	}
	for _, a := range v.Alerts() {
		rule, _ := a.Record.Value["rule"].(string)
		res.fired[ruleRef{stream: a.Stream, processor: a.Processor, rule: rule}] = true
	}
	for _, st := range plan.Streams {
		if !st.Sink {
			res.in[st.Name] = v.RecordsIn(st.Name)
		}
	}
	return res
}

// events lists the case's records in the order they are produced: by time, then as
// written (inputs before series).
func (s *Suite) events(c Case, cp string, start time.Time) ([]event, error) {
	var out []event
	for j, in := range c.Inputs {
		a, _ := parseAt(in.At)
		e := event{at: a.from(start), order: len(out), topic: in.Topic}
		if in.Key != "" {
			e.key = []byte(in.Key)
		}
		if in.Raw != nil {
			e.value = []byte(*in.Raw)
		} else {
			b, err := json.Marshal(jsonable(in.Value))
			if err != nil {
				return nil, fmt.Errorf("%s: %s.inputs[%d].value: %w", s.pos.Of(fmt.Sprintf("%s.inputs[%d]", cp, j)), cp, j, err)
			}
			e.value = b
		}
		for _, k := range slices.Sorted(maps.Keys(in.Headers)) {
			e.headers = append(e.headers, engine.Header{Key: k, Value: []byte(in.Headers[k])})
		}
		out = append(out, e)
	}
	for j, se := range c.Series {
		values, _ := ExpandValues(se.Values)
		first := start
		if se.Start != "" {
			a, _ := parseAt(se.Start)
			first = a.from(start)
		}
		step := se.Interval.D()
		if step <= 0 {
			step = c.Interval.D()
		}
		if step <= 0 {
			step = time.Minute
		}
		for k, x := range values {
			if math.IsNaN(x) {
				continue
			}
			when := first.Add(time.Duration(k) * step)
			rec := cloneValue(se.Record) // a deep copy: the fields set below may be nested
			setPath(rec, orDefault(se.Field, "value"), x)
			if tf := orDefault(se.TimeField, "ts_event"); tf != "-" {
				setPath(rec, tf, when.Format(time.RFC3339Nano))
			}
			b, err := codec.AppendObject(nil, rec)
			if err != nil {
				return nil, fmt.Errorf("%s: %s.series[%d]: %w", s.pos.Of(fmt.Sprintf("%s.series[%d]", cp, j)), cp, j, err)
			}
			e := event{at: when, order: len(out), topic: se.Topic, value: b}
			if se.Key != "" {
				e.key = []byte(se.Key)
			}
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].at.Before(out[b].at) })
	return out, nil
}

// jsonable turns what YAML decoded into what JSON encodes the same way an event would be
// written: times as RFC 3339 text, map keys as strings.
func jsonable(v any) any {
	switch x := v.(type) {
	case nil:
		return map[string]any(nil)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonable(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonable(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(e)
		}
		return out
	}
	return v
}

// cloneValue is a deep copy of m as jsonable makes it.
func cloneValue(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return jsonable(m).(map[string]any)
}

// setPath sets a dotted path in rec, making the objects on the way.
func setPath(rec map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		child, ok := rec[p].(map[string]any)
		if !ok {
			child = map[string]any{}
			rec[p] = child
		}
		rec = child
	}
	rec[parts[len(parts)-1]] = v
}
