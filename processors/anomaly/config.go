package anomaly

import (
	"errors"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/eval"
)

// Config is the anomaly processor's configuration.
type Config struct {
	Series []config.Expr `yaml:"series" doc:"Expressions whose values together identify a series; each series learns its own baseline. Default: tenant_id, source.source_id, metric."`
	Value  *config.Expr  `yaml:"value" doc:"Expression giving the number to score; default value. A record whose value is not a number goes to the dead-letter topic."`
	Time   *config.Expr  `yaml:"time" doc:"Expression giving the record's event time (RFC 3339 or epoch seconds/milliseconds); default ts_event. It places the value in its half hour of the day, so that a daily cycle is learnt, and drives the ranges' forgetting (a 90-day half-life)."`
	// Series that come and go (containers, replaced hosts) would otherwise keep their
	// detectors for ever.
	// nil (a Config built in code) turns the check off; a pipeline file always has it, 1h
	// unless it says otherwise.
	MaxFuture   *config.Duration `yaml:"max_future" default:"1h" doc:"How far ahead of the engine's clock (the wall clock) a record's event time may be. A record stamped further in the future goes to the dead-letter topic with the reason (\"in the future\") and is not scored, instead of erasing what its series has learnt (the ranges forget by event time) and, with alert_above, making every later real record of the series late for its alert. forever turns the check off; 0 accepts no event time ahead of the clock."`
	ForgetAfter config.Duration  `yaml:"forget_after" default:"7d" doc:"A series that has had no value for this long, in its input partition's event time (the newest value's time there), is forgotten: its detector leaves memory and the changelog, and it learns again, for two days, if it comes back. Keeps series that come and go (containers, replaced hosts) from piling up. 0 keeps every series."`
	Weekly      *bool            `yaml:"weekly" default:"true" doc:"Also learn the shape of each half hour of the week and score the distance from it, after three weeks of learning: a Wednesday that looks like a Sunday is then an anomaly. On by default: it changes no score on the NAB files and raises no false alert on calm cycles (docs/anomaly.md); false turns it off."`
	Into        string           `yaml:"into" default:"anomaly" doc:"Field that receives the score and what explains it: {score, raw, expected, lower, upper, signal}. raw is in [0, 1]: how far the most unusual signal went beyond its range at this value (0.5: by a tenth of the range's width); score is raw, or 0 when one of the last 20 values scored as much; expected is what the daily profile expects at this time of day; lower and upper the range the values have held; signal says what went beyond its range (new high, new low, level shift up/down, more/less volatile, above/below the daily pattern, above/below the weekly pattern, stuck)."`

	AlertAbove *float64        `yaml:"alert_above" doc:"When set, the processor emits alert records instead of the scored records: an alert fires when the raw score reaches this value and stays firing while it does, through the threshold processor's alert lifecycle (one alert per series, keyed by its fingerprint). 0.4 is the value the NAB benchmark reports a score at (near its best threshold); a score of 0.4 means a signal went beyond its range by two thirds of Margin (about 7% of the range)."`
	Rule       string          `yaml:"rule" default:"anomaly" doc:"The alerts' rule name."`
	Severity   string          `yaml:"severity" default:"warning" enum:"critical,warning,info" doc:"The alerts' severity."`
	For        config.Duration `yaml:"for" default:"0s" doc:"How long (in event time) the raw score must stay at alert_above or above before the alert fires."`
	// An unusual stretch can dip under alert_above and come back; keeping the alert firing
	// for a while after makes one incident one alert.
	KeepFiringFor config.Duration         `yaml:"keep_firing_for" default:"30m" doc:"How long (in event time) an alert keeps firing after the raw score fell below alert_above: suppression, so that one incident is one alert; if the score rises again meanwhile the alert just continues."`
	Message       *config.Expr            `yaml:"message" doc:"Message template, as for threshold: text with {{expr}} placeholders, e.g. 'unusual CPU {{value}} on {{source.source_id}} (score {{anomaly.raw}})'."`
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
	if c.MaxFuture != nil && *c.MaxFuture < 0 && *c.MaxFuture != config.Forever {
		errs = append(errs, config.FieldErrorf("max_future", "must be a duration of 0 or more, or forever"))
	}
	if c.ForgetAfter < 0 {
		errs = append(errs, config.FieldErrorf("forget_after", "must not be negative (0 keeps every series)"))
	}
	if c.KeepFiringFor < 0 {
		errs = append(errs, config.FieldErrorf("keep_firing_for", "must not be negative"))
	}
	if c.Into == "" {
		errs = append(errs, config.FieldErrorf("into", "a field name is required"))
	} else if !eval.IsIdentifier(c.Into) {
		errs = append(errs, config.FieldErrorf("into", "%q is not a field name (letters, digits and _, not starting with a digit)", c.Into))
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

// maxFuture is max_future in nanoseconds, or -1 when the check is off.
func (c *Config) maxFuture() int64 {
	if c.MaxFuture == nil || *c.MaxFuture == config.Forever {
		return -1
	}
	return int64(*c.MaxFuture)
}
