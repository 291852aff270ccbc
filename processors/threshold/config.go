package threshold

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/eventops/eventops-engine/config"
)

// Severities a rule may have, highest first.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// severityRank orders severities: a ladder lists them highest first.
var severityRank = map[string]int{SeverityCritical: 3, SeverityWarning: 2, SeverityInfo: 1}

// DefaultSeries is what identifies a series when series: is not set.
var DefaultSeries = []string{"tenant_id", "source.source_id", "metric"}

// Config is the threshold processor's configuration.
type Config struct {
	Series   []config.Expr   `yaml:"series" doc:"Expressions whose values together identify a series; each rule keeps one alert state per series. Default: tenant_id, source.source_id, metric."`
	Time     *config.Expr    `yaml:"time" doc:"Expression giving the record's event time (RFC 3339 or epoch seconds/milliseconds); default ts_event. Records without one use the engine clock."`
	Lateness config.Duration `yaml:"lateness" default:"0s" doc:"How far out of event-time order records may arrive. 0: records are evaluated as they arrive, and one older than the last record evaluated for its series is counted late (dead-lettered with the reason, not evaluated). Above 0: records wait, per input partition, until the partition's newest event time minus lateness passes them and are evaluated in event-time order, so disorder within lateness gives exactly the alerts of ordered input; older ones are late. An idle partition's records are released by the wall clock."`
	// nil (a Config built in code) turns the check off; a pipeline file always has it, 1h
	// unless it says otherwise.
	MaxFuture *config.Duration `yaml:"max_future" default:"1h" doc:"How far ahead of the engine's clock (the wall clock) a record's event time may be. A record stamped further in the future goes to the dead-letter topic with the reason (\"in the future\") and is not evaluated, instead of moving its series' clock so far on that every later real record of the series would be late. forever turns the check off; 0 accepts no event time ahead of the clock."`
	Rules     []Rule           `yaml:"rules" required:"true" doc:"Alert rules, evaluated on every record."`
}

// maxFuture is max_future in nanoseconds, or -1 when the check is off.
func (c *Config) maxFuture() int64 {
	if c.MaxFuture == nil || *c.MaxFuture == config.Forever {
		return -1
	}
	return int64(*c.MaxFuture)
}

// Rule is one alert rule.
type Rule struct {
	Name          string                  `yaml:"name" required:"true" doc:"Rule name; unique within the processor. Alerts carry it as rule, and a reloaded rule with the same name keeps its alerts."`
	When          config.Expr             `yaml:"when" doc:"Boolean expression; while it is true for a series the alert is pending, then firing. With severities: a condition every level shares (e.g. metric == \"cpu_load\"). With absent: which records count as heartbeats of the series (default: every record). Required unless severities or absent is set."`
	Severities    []Level                 `yaml:"severities" doc:"A severity ladder instead of when/severity, highest first: the rule matches when any level matches, and the alert takes the highest level that matches. Moving between levels while firing emits a firing alert with the new severity and previous_severity."`
	For           config.Duration         `yaml:"for" default:"0s" doc:"How long (in event time) the condition must hold before the alert fires; until then it is pending. 0 fires on the first matching record."`
	KeepFiringFor config.Duration         `yaml:"keep_firing_for" default:"0s" doc:"How long (in event time) a firing alert keeps firing after its condition stopped holding; if the condition holds again meanwhile the alert just continues."`
	ClearWhen     *config.Expr            `yaml:"clear_when" doc:"Hysteresis: once firing, the alert resolves only on a record for which this is true (e.g. when: value >= 90, clear_when: value < 85). Default: when the condition no longer holds."`
	Absent        config.Duration         `yaml:"absent" default:"0s" doc:"Makes this a heartbeat rule: it fires when a series that sent records has sent none for this long, in event time against the partition's newest event time, or by the wall clock when the whole partition is silent. It resolves when the series sends again."`
	Severity      string                  `yaml:"severity" enum:"critical,warning,info" doc:"Alert severity (default warning). Not with severities."`
	Message       *config.Expr            `yaml:"message" doc:"Message template: text with {{expr}} placeholders evaluated on the triggering record, e.g. 'CPU {{value}}% on {{source.source_id}}'. Default: the rule name and condition."`
	Labels        map[string]*config.Expr `yaml:"labels" doc:"Label name to expression, evaluated on the triggering record and carried by the alert."`
	Annotations   map[string]*config.Expr `yaml:"annotations" doc:"Annotation name to template (like message), rendered on the triggering record and carried by the alert, e.g. runbook: 'https://runbooks/cpu?host={{source.source_id}}'."`
}

// Level is one step of a severity ladder.
type Level struct {
	Severity string      `yaml:"severity" required:"true" enum:"critical,warning,info" doc:"The alert's severity while this level is the highest that matches."`
	When     config.Expr `yaml:"when" required:"true" doc:"Boolean expression for this level, e.g. 'value >= 90'."`
}

// Validate checks the rules' names, severities and durations, reporting every problem.
func (c *Config) Validate() error {
	var errs []error
	if c.Lateness < 0 {
		errs = append(errs, config.FieldErrorf("lateness", "must not be negative"))
	}
	if c.MaxFuture != nil && *c.MaxFuture < 0 && *c.MaxFuture != config.Forever {
		errs = append(errs, config.FieldErrorf("max_future", "must be a duration of 0 or more, or forever"))
	}
	if len(c.Rules) == 0 {
		return errors.Join(append(errs, config.FieldErrorf("rules", "at least one rule is required"))...)
	}
	first := map[string]int{}
	for i, r := range c.Rules {
		at := func(f string) string { return fmt.Sprintf("rules[%d].%s", i, f) }
		if r.Name == "" {
			errs = append(errs, config.FieldErrorf(at("name"), "a rule name is required"))
		} else if j, dup := first[r.Name]; dup {
			errs = append(errs, config.FieldErrorf(at("name"), "duplicate rule name %q (rules[%d] has it too); alerts are identified by rule name, so names must be unique", r.Name, j))
		} else {
			first[r.Name] = i
		}
		if r.When.IsZero() && len(r.Severities) == 0 && r.Absent == 0 {
			errs = append(errs, config.FieldErrorf(at("when"), "a boolean expression is required, e.g. 'value >= 90' (or a severities: ladder, or absent: for a heartbeat rule)"))
		}
		for _, d := range []struct {
			name string
			v    config.Duration
		}{{"for", r.For}, {"keep_firing_for", r.KeepFiringFor}, {"absent", r.Absent}} {
			if d.v < 0 {
				errs = append(errs, config.FieldErrorf(at(d.name), "must not be negative"))
			}
		}
		if _, ok := severityRank[r.Severity]; !ok && r.Severity != "" {
			errs = append(errs, config.FieldErrorf(at("severity"), "must be one of critical, warning, info (got %q)", r.Severity))
		}
		if len(r.Severities) > 0 && r.Severity != "" {
			errs = append(errs, config.FieldErrorf(at("severity"), "set either severity or severities, not both: the ladder gives the severity"))
		}
		errs = append(errs, validateLadder(r.Severities, at)...)
		if r.Absent > 0 {
			// A heartbeat rule has no condition that could hold "for" a while or stop holding:
			// it fires on silence and resolves on the next record.
			for _, bad := range []struct {
				name string
				set  bool
			}{
				{"for", r.For != 0},
				{"keep_firing_for", r.KeepFiringFor != 0},
				{"clear_when", r.ClearWhen != nil},
				{"severities", len(r.Severities) > 0},
			} {
				if bad.set {
					errs = append(errs, config.FieldErrorf(at(bad.name), "does not apply to an absent (heartbeat) rule: it fires once the series has been silent for absent and resolves when the series sends again"))
				}
			}
		}
		if r.ClearWhen != nil && r.ClearWhen.IsZero() {
			errs = append(errs, config.FieldErrorf(at("clear_when"), "an expression is required"))
		}
		for _, m := range []struct {
			name string
			m    map[string]*config.Expr
		}{{"labels", r.Labels}, {"annotations", r.Annotations}} {
			for _, name := range slices.Sorted(maps.Keys(m.m)) {
				if e := m.m[name]; e == nil || e.IsZero() {
					errs = append(errs, config.FieldErrorf(at(m.name+"."+name), "an expression is required"))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// validateLadder checks that a ladder's levels are known, distinct and highest first.
func validateLadder(levels []Level, at func(string) string) []error {
	var errs []error
	seen := map[string]int{}
	prev := -1
	for j, l := range levels {
		lat := func(f string) string { return at(fmt.Sprintf("severities[%d].%s", j, f)) }
		if l.When.IsZero() {
			errs = append(errs, config.FieldErrorf(lat("when"), "a boolean expression is required, e.g. 'value >= 90'"))
		}
		rank, ok := severityRank[l.Severity]
		switch {
		case !ok:
			errs = append(errs, config.FieldErrorf(lat("severity"), "must be one of critical, warning, info (got %q)", l.Severity))
			continue
		case seen[l.Severity] > 0:
			errs = append(errs, config.FieldErrorf(lat("severity"), "duplicate severity %q (severities[%d] has it too); each severity may appear once", l.Severity, seen[l.Severity]-1))
			continue
		case prev >= 0 && rank > severityRank[levels[prev].Severity]:
			errs = append(errs, config.FieldErrorf(lat("severity"), "severities must be listed highest first: %s comes after %s (severities[%d])", l.Severity, levels[prev].Severity, prev))
		}
		seen[l.Severity] = j + 1
		prev = j
	}
	return errs
}
