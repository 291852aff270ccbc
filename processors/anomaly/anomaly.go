package anomaly

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/eval"
	"github.com/eventops/eventops-engine/engine/types"
	"github.com/eventops/eventops-engine/processors/threshold"
)

// Factory declares the anomaly processor.
var Factory = engine.ProcessorFactory{
	Type: "anomaly",
	Example: `- anomaly:
    series: [tenant_id, source.source_id, metric]
    value: value
    alert_above: 0.4
    keep_firing_for: 30m
    severity: warning
    message: 'unusual {{metric}} {{value}} on {{source.source_id}} (anomaly score {{anomaly.raw}})'
`,
	Doc: "Learns a baseline per series (tenant, source and metric by default) one value at a time and " +
		"scores each value in [0, 1]: how far the series just went beyond anything it has shown, on seven " +
		"signals (the value, its mean over the last 16 and 64 values, its volatility over the last " +
		"64, its distance from a learnt daily and weekly profile, and how long it has repeated one " +
		"value), the margins combined (several signals out of range say more than one) and calibrated " +
		"by the series' own recent incidents (a series whose noise keeps setting records must go " +
		"further to score again). Without alert_above it adds {score, raw, expected, " +
		"lower, upper, signal} to each record (under into) and passes it on: raw is the score of the " +
		"value itself, score the same but 0 when the last 20 values already scored as much (so an " +
		"incident is reported when it starts and again only if it grows). With alert_above it emits " +
		"alert records instead, through the threshold processor's alert lifecycle: an alert fires " +
		"when raw reaches alert_above, stays firing while it does, and keep_firing_for holds it after, " +
		"so that one incident is one alert. A record stamped more than max_future (default 1h) ahead " +
		"of the clock goes to the dead-letter topic unscored. A series scores 0 for its first two days (it learns its " +
		"baseline first). State is " + strconv.Itoa(stateSize) + " bytes per series, kept per " +
		"input partition and checkpointed by the runtime. The detector and its score on the Numenta " +
		"Anomaly Benchmark are described in docs/anomaly.md.",
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

// AlertRules names the alerts' rule when alert_above is set; without it the processor
// scores records and emits no alert.
func (p *Processor) AlertRules() []string {
	if p.alerts == nil {
		return nil
	}
	return p.alerts.AlertRules()
}

// Processor scores values per series and, with alert_above, raises alerts. Process, Tick,
// Changes, Restore, Drop and Export are called by one goroutine at a time.
type Processor struct {
	series   []*eval.Program
	value    *eval.Program
	time     *eval.Program
	into     string
	detector DetectorConfig
	// forgetAfter (seconds of event time) is how long a silent series is kept; 0: always.
	forgetAfter int64
	maxFuture   int64 // nanoseconds; -1: off
	// alerts turns scores into alerts (alert_above); nil when the processor only scores.
	alerts *threshold.Processor
	clock  engine.Clock
	path   string
	logger *slog.Logger
	out    *types.Type

	parts map[int32]*partition
}

type partition struct {
	series map[sid]*Detector
	dirty  map[sid]struct{}
	// clock is the newest event time (Unix seconds) of the partition's values; swept is when
	// (wall clock) its silent series were last looked for.
	clock int64
	swept time.Time
	// stale are changelog entries to delete with the next changes: detectors Restore could
	// not use (another detector version) and series forgotten for their silence.
	stale []sid
}

func newPartition() *partition {
	return &partition{series: map[sid]*Detector{}, dirty: map[sid]struct{}{}}
}

// sid identifies a series in the state: a 128-bit hash of its values (hex in changelog keys).
type sid [16]byte

func (id sid) String() string { return hex.EncodeToString(id[:]) }

func sortedSIDs[V any](m map[sid]V) []sid {
	return slices.SortedFunc(maps.Keys(m), func(a, b sid) int { return strings.Compare(string(a[:]), string(b[:])) })
}

func build(cfg any, env engine.BuildEnv) (engine.Processor, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("anomaly: config is %T, want *anomaly.Config", cfg)
	}
	var errs config.Errors
	compile := func(e config.Expr) *eval.Program {
		p, _, err := eval.CompileChecked(e, eval.Any, env.Input, env.Warnings)
		errs.Append(e.Pos, e.Path, err)
		return p
	}
	p := &Processor{into: c.Into, detector: detectorConfig(c), forgetAfter: int64(time.Duration(c.ForgetAfter) / time.Second), maxFuture: c.maxFuture(), clock: env.Clock, path: env.Path, logger: env.Logger, parts: map[int32]*partition{}}
	if p.clock == nil {
		p.clock = engine.WallClock{}
	}
	if p.logger == nil {
		p.logger = slog.Default()
	}
	if len(c.Series) == 0 {
		for _, s := range threshold.DefaultSeries {
			p.series = append(p.series, eval.MustCompile(s, eval.Any))
		}
	}
	for _, s := range c.Series {
		p.series = append(p.series, compile(s))
	}
	if c.Value != nil && !c.Value.IsZero() {
		p.value = compile(*c.Value)
	} else {
		p.value = eval.MustCompile("value", eval.Any)
	}
	if c.Time != nil && !c.Time.IsZero() {
		p.time = compile(*c.Time)
	} else {
		p.time = eval.MustCompile("ts_event", eval.Any)
	}
	if len(errs) > 0 {
		return nil, errs.Err()
	}
	scored := env.Input
	if scored != nil {
		scored = scored.With(c.Into, scoreType)
	}
	p.out = scored
	if c.AlertAbove != nil {
		rule := threshold.Rule{
			Name: c.Rule, Severity: c.Severity, For: c.For, KeepFiringFor: c.KeepFiringFor,
			When:    config.Expr{Src: c.Into + ".raw >= " + strconv.FormatFloat(*c.AlertAbove, 'g', -1, 64), Path: env.Path + ".alert_above"},
			Message: c.Message, Labels: c.Labels, Annotations: c.Annotations,
		}
		tc := &threshold.Config{Series: c.Series, Time: c.Time, MaxFuture: c.MaxFuture, Rules: []threshold.Rule{rule}}
		tenv := env
		tenv.Input = scored
		tp, err := threshold.Factory.Build(tc, tenv)
		if err != nil {
			return nil, err
		}
		p.alerts = tp.(*threshold.Processor)
		p.out = p.alerts.OutputType()
	}
	return p, nil
}

// scoreType is the type of the field the processor adds.
var scoreType = types.ObjectOf("the anomaly processor's score", map[string]*types.Type{
	"score": types.TFloat, "raw": types.TFloat, "expected": types.TFloat, "lower": types.TFloat, "upper": types.TFloat, "signal": types.TStr,
})

// OutputType is the scored record, or with alert_above the alert record.
func (p *Processor) OutputType() *types.Type { return p.out }

// Process scores every record; a record whose series, time or value cannot be evaluated,
// or whose value is not a number, is rejected and changes nothing.
func (p *Processor) Process(ctx context.Context, batch []*engine.Record, rejects *engine.Rejects) ([]*engine.Record, error) {
	now := p.clock.Now()
	scored := make([]*engine.Record, 0, len(batch))
	for _, rec := range batch {
		r, err := p.score(rec, now)
		if err != nil {
			rejects.Add(rec, p.path, fmt.Errorf("anomaly: %w", err))
			continue
		}
		rec.Value[p.into] = map[string]any{"score": r.Score, "raw": r.Raw, "expected": r.Expected, "lower": r.Lower, "upper": r.Upper, "signal": r.Signal}
		scored = append(scored, rec)
	}
	if p.alerts == nil {
		return scored, nil
	}
	return p.alerts.Process(ctx, scored, rejects)
}

func (p *Processor) score(rec *engine.Record, now time.Time) (Result, error) {
	env := eval.Env{Vars: rec.Value, Source: rec.Source, Now: now}
	h := fnv.New128a()
	for i, s := range p.series {
		v, err := s.Eval(env)
		if err != nil {
			return Result{}, fmt.Errorf("series: %w", err)
		}
		if i > 0 {
			h.Write([]byte{0x1f})
		}
		if str, ok := v.(string); ok {
			h.Write([]byte(str))
		} else {
			fmt.Fprint(h, v)
		}
	}
	raw, err := p.value.Eval(env)
	if err != nil {
		return Result{}, fmt.Errorf("value: %w", err)
	}
	v, ok := raw.(float64)
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		return Result{}, fmt.Errorf("value (%s) is %v, not a number", p.value.Source().Src, raw)
	}
	at := now
	if tv, err := p.time.Eval(env); err != nil {
		return Result{}, fmt.Errorf("time: %w", err)
	} else if tv != nil {
		if at, err = eval.ParseTime(tv, ""); err != nil {
			return Result{}, fmt.Errorf("time (%s): %w", p.time.Source().Src, err)
		}
		if err := eval.CheckFuture(at, now, time.Duration(p.maxFuture)); err != nil {
			return Result{}, err
		}
	}
	part := p.parts[rec.Source.Partition]
	if part == nil {
		part = newPartition()
		p.parts[rec.Source.Partition] = part
	}
	var id sid
	h.Sum(id[:0])
	d := part.series[id]
	if d == nil {
		d = NewDetector(p.detector)
		part.series[id] = d
	}
	part.dirty[id] = struct{}{}
	// A value stamped far in the future must not make every other series look silent; with
	// max_future above futureSlack (or forever) this still bounds the partition's clock.
	part.clock = max(part.clock, min(at.Unix(), now.Add(futureSlack).Unix()))
	return d.Update(at.Unix(), v), nil
}

// Tick forgets the series that have been silent for forget_after, and lets the alert
// lifecycle move on by the wall clock (an idle partition's pending records under lateness);
// scores only change with values.
func (p *Processor) Tick(ctx context.Context, now time.Time, rejects *engine.Rejects) ([]*engine.Record, error) {
	if p.forgetAfter > 0 {
		for _, part := range p.parts {
			if now.Sub(part.swept) >= sweepEvery {
				part.forgetSilent(part.clock - p.forgetAfter)
				part.swept = now
			}
		}
	}
	if p.alerts == nil {
		return nil, nil
	}
	return p.alerts.Tick(ctx, now, rejects)
}

// futureSlack is how far past the wall clock an event time may move a partition's clock.
const futureSlack = time.Hour

// sweepEvery is how often (wall clock) Tick looks for silent series: a pass over every
// series of a partition, so not on every tick.
const sweepEvery = time.Minute

// forgetSilent drops the detectors whose latest value is before horizon (event time), and
// deletes their changelog entries with the next changes.
func (part *partition) forgetSilent(horizon int64) {
	for id, d := range part.series {
		if d.st.Last < horizon {
			delete(part.series, id)
			delete(part.dirty, id)
			part.stale = append(part.stale, id)
		}
	}
}

// Changelog keys: d/<series id> is a series' detector, t/<key> the alert lifecycle's own
// entries.
const (
	detectorPrefix = "d/"
	alertsPrefix   = "t/"
)

// Changes reports the detectors that changed since the last call, and the alert
// lifecycle's changes (engine.Stateful).
func (p *Processor) Changes(put func(partition int32, key string, value []byte)) {
	for _, id := range slices.Sorted(maps.Keys(p.parts)) {
		part := p.parts[id]
		for _, key := range part.stale {
			put(id, detectorPrefix+key.String(), nil)
		}
		part.stale = nil
		for _, key := range sortedSIDs(part.dirty) {
			b, _ := part.series[key].MarshalBinary()
			put(id, detectorPrefix+key.String(), b)
		}
		clear(part.dirty)
	}
	if p.alerts != nil {
		p.alerts.Changes(func(part int32, key string, v []byte) { put(part, alertsPrefix+key, v) })
	}
}

// Export reports every entry, as Restore takes them (hot reload carries state with it).
func (p *Processor) Export(put func(partition int32, key string, value []byte)) {
	for _, id := range slices.Sorted(maps.Keys(p.parts)) {
		part := p.parts[id]
		for _, key := range sortedSIDs(part.series) {
			b, _ := part.series[key].MarshalBinary()
			put(id, detectorPrefix+key.String(), b)
		}
	}
	if p.alerts != nil {
		p.alerts.Export(func(part int32, key string, v []byte) { put(part, alertsPrefix+key, v) })
	}
}

// Restore replaces partition's state with entries (engine.Stateful). A detector saved by
// another detector version starts learning again.
func (p *Processor) Restore(partition int32, entries map[string][]byte) error {
	part := newPartition()
	alertEntries := map[string][]byte{}
	for key, v := range entries {
		switch {
		case strings.HasPrefix(key, detectorPrefix):
			var id sid
			if b, err := hex.DecodeString(key[len(detectorPrefix):]); err != nil || len(b) != len(id) {
				return fmt.Errorf("anomaly: restore partition %d: bad series key %q", partition, key)
			} else {
				copy(id[:], b)
			}
			d := NewDetector(p.detector)
			if err := d.UnmarshalBinary(v); err != nil {
				if !errors.Is(err, errStateVersion) {
					return fmt.Errorf("anomaly: restore partition %d: %s: %w", partition, key, err)
				}
				part.stale = append(part.stale, id)
				continue
			}
			part.series[id] = d
			part.clock = max(part.clock, d.st.Last)
		case strings.HasPrefix(key, alertsPrefix):
			alertEntries[key[len(alertsPrefix):]] = v
		}
	}
	p.parts[partition] = part
	if p.alerts == nil {
		return nil
	}
	if err := p.alerts.Restore(partition, alertEntries); err != nil {
		// The alert lifecycle names its entries without the prefix they have here.
		return fmt.Errorf("anomaly: restore partition %d: alert lifecycle entries %s*: %w", partition, alertsPrefix, err)
	}
	return nil
}

// Drop forgets partition (engine.Stateful).
func (p *Processor) Drop(partition int32) {
	delete(p.parts, partition)
	if p.alerts != nil {
		p.alerts.Drop(partition)
	}
}

// detectorConfig is the shipped detector with the processor's choices.
func detectorConfig(c *Config) DetectorConfig {
	d := DefaultDetectorConfig
	if c.Weekly != nil && !*c.Weekly {
		d.WeeklyAfter = -1
	}
	return d
}
