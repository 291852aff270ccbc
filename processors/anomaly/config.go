package anomaly

import (
	"errors"

	"github.com/eventops/eventops-engine/config"
)

// Config is the anomaly processor's configuration.
type Config struct {
	Series []config.Expr `yaml:"series" doc:"Expressions whose values together identify a series; each series learns its own baseline. Default: tenant_id, source.source_id, metric."`
	Value  *config.Expr  `yaml:"value" doc:"Expression giving the number to score; default value. A record whose value is not a number goes to the dead-letter topic."`
	Time   *config.Expr  `yaml:"time" doc:"Expression giving the record's event time (RFC 3339 or epoch seconds/milliseconds); default ts_event. It places the value in its hour of the day, so that a daily cycle is learnt."`
	Into   string        `yaml:"into" default:"anomaly" doc:"Field that receives the score and what explains it: {score, expected, lower, upper, signal}. score is in [0, 1]; expected is the middle of the value's level; lower and upper the range the series has shown; signal says what was unusual (rare level, rare transition)."`

	AlertAbove *float64        `yaml:"alert_above" doc:"When set, the processor emits alert records instead of the scored records: an alert fires when the score reaches this value, through the threshold processor's alert lifecycle (one alert per series, keyed by its fingerprint). 0.42 is the default the NAB benchmark was scored at."`
	Rule       string          `yaml:"rule" default:"anomaly" doc:"The alerts' rule name."`
	Severity   string          `yaml:"severity" default:"warning" enum:"critical,warning,info" doc:"The alerts' severity."`
	For        config.Duration `yaml:"for" default:"0s" doc:"How long (in event time) the score must stay at alert_above or above before the alert fires."`
	// A spike scores high for a few values; keeping the alert firing for a while after
	// makes one incident one alert.
	KeepFiringFor config.Duration         `yaml:"keep_firing_for" default:"30m" doc:"How long (in event time) an alert keeps firing after the score fell below alert_above: suppression, so that one incident is one alert; if the score rises again meanwhile the alert just continues."`
	Message       *config.Expr            `yaml:"message" doc:"Message template, as for threshold: text with {{expr}} placeholders, e.g. 'unusual CPU {{value}} on {{source.source_id}} (score {{anomaly.score}})'."`
	Labels        map[string]*config.Expr `yaml:"labels" doc:"Label name to expression, carried by the alerts."`
	Annotations   map[string]*config.Expr `yaml:"annotations" doc:"Annotation name to template, carried by the alerts."`
}

// Validate checks the settings.
func (c *Config) Validate() error {
	var errs []error
	if c.AlertAbove != nil && (*c.AlertAbove <= 0 || *c.AlertAbove > 1) {
		errs = append(errs, config.FieldErrorf("alert_above", "must be in (0, 1]: scores are in [0, 1]"))
	}
	if c.For < 0 {
		errs = append(errs, config.FieldErrorf("for", "must not be negative"))
	}
	if c.KeepFiringFor < 0 {
		errs = append(errs, config.FieldErrorf("keep_firing_for", "must not be negative"))
	}
	if c.Into == "" {
		errs = append(errs, config.FieldErrorf("into", "a field name is required"))
	}
	if c.AlertAbove == nil {
		for _, f := range []struct {
			name string
			set  bool
		}{{"message", c.Message != nil}, {"labels", len(c.Labels) > 0}, {"annotations", len(c.Annotations) > 0}} {
			if f.set {
				errs = append(errs, config.FieldErrorf(f.name, "only used with alert_above: without it the processor scores records and raises no alerts"))
			}
		}
	}
	return errors.Join(errs...)
}
