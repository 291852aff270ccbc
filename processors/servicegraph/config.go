// Package servicegraph is the service_graph processor: it learns the service dependency
// graph from spans. A client (or producer) span of service A calling B is a call on the edge
// A → B; the processor counts calls and failed calls per edge and interval of event time
// and writes edge records, which a lookup kept in their topic turns into the learned edges
// that correlate groups alerts over (docs/incidents.md).
package servicegraph

import (
	"errors"

	"github.com/eventops/eventops-engine/config"
)

// Config is the service_graph processor's configuration.
type Config struct {
	From     *config.Expr    `yaml:"from" doc:"Expression giving the calling service; default service (what the otlp input writes for a span's service.name)."`
	To       *config.Expr    `yaml:"to" doc:"Expression giving the service called; default peer (the otlp input's callee of a client or producer span). A span for which it is nil or empty (a server or internal span) is not a call and is left alone."`
	Failed   *config.Expr    `yaml:"failed" doc:"Predicate saying a call failed; default status == \"error\"."`
	Time     *config.Expr    `yaml:"time" doc:"Expression giving the span's event time (RFC 3339 or epoch seconds/milliseconds); default ts (a span's start)."`
	Interval config.Duration `yaml:"interval" default:"1m" doc:"The calls and failures of an edge are counted per interval of event time (aligned to the Unix epoch): each batch writes the count so far of the edges it called, and an interval is written complete once a span of a later interval arrives on the same input partition (calls_per_s is then over the whole interval, before over the part seen)."`
	MaxAge   config.Duration `yaml:"max_age" default:"1h" doc:"An edge not seen for this long (in event time, behind the newest span of its partition) is forgotten: its state goes, and it is written again as new if it comes back. Readers of the edges (correlate's and routes' max_age) age them out on their own."`
}

// Validate checks the settings.
func (c *Config) Validate() error {
	var errs []error
	if c.Interval.D() <= 0 {
		errs = append(errs, config.FieldErrorf("interval", "must be more than 0"))
	}
	if c.MaxAge.D() < c.Interval.D() {
		errs = append(errs, config.FieldErrorf("max_age", "must be at least interval (%s)", c.Interval.D()))
	}
	return errors.Join(errs...)
}

func exprOr(e *config.Expr, def string) config.Expr {
	if e != nil {
		return *e
	}
	return config.Expr{Src: def}
}
