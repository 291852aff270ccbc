package threshold

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/eventops/eventops-engine/config"
)

// Severities a rule may have.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// DefaultSeries is what identifies a series when series: is not set.
var DefaultSeries = []string{"tenant_id", "source.source_id", "metric"}

// Config is the threshold processor's configuration.
type Config struct {
	Series []config.Expr `yaml:"series" doc:"Expressions whose values together identify a series; each rule keeps one alert state per series. Default: tenant_id, source.source_id, metric."`
	Time   *config.Expr  `yaml:"time" doc:"Expression giving the record's event time (RFC 3339 or epoch seconds/milliseconds); default ts_event. Records without one use the engine clock."`
	Rules  []Rule        `yaml:"rules" required:"true" doc:"Alert rules, evaluated on every record."`
}

// Rule is one alert rule.
type Rule struct {
	Name     string                  `yaml:"name" required:"true" doc:"Rule name; unique within the processor. Alerts carry it as rule."`
	When     config.Expr             `yaml:"when" required:"true" doc:"Boolean expression; while it is true for a series the alert is pending, then firing."`
	For      config.Duration         `yaml:"for" default:"0s" doc:"How long (in event time) the condition must hold before the alert fires; 0 fires on the first matching record."`
	Severity string                  `yaml:"severity" default:"warning" enum:"critical,warning,info" doc:"Alert severity."`
	Message  *config.Expr            `yaml:"message" doc:"Message template: text with {{expr}} placeholders evaluated on the triggering record, e.g. 'CPU {{value}}% on {{source.source_id}}'. Default: the rule name and condition."`
	Labels   map[string]*config.Expr `yaml:"labels" doc:"Label name to expression, evaluated on the triggering record and carried by the alert."`
}

// Validate checks the rules' names, severities and durations, reporting every problem.
func (c *Config) Validate() error {
	if len(c.Rules) == 0 {
		return config.FieldErrorf("rules", "at least one rule is required")
	}
	var errs []error
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
		if r.When.IsZero() {
			errs = append(errs, config.FieldErrorf(at("when"), "a boolean expression is required, e.g. 'value >= 90'"))
		}
		if r.For < 0 {
			errs = append(errs, config.FieldErrorf(at("for"), "must not be negative"))
		}
		switch r.Severity {
		case "", SeverityCritical, SeverityWarning, SeverityInfo:
		default:
			errs = append(errs, config.FieldErrorf(at("severity"), "must be one of critical, warning, info (got %q)", r.Severity))
		}
		for _, name := range slices.Sorted(maps.Keys(r.Labels)) {
			if l := r.Labels[name]; l == nil || l.IsZero() {
				errs = append(errs, config.FieldErrorf(at("labels."+name), "an expression is required"))
			}
		}
	}
	return errors.Join(errs...)
}
