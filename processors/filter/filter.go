// Package filter is the filter processor: it keeps the records for which a boolean
// expression is true and drops the rest.
package filter

import (
	"context"
	"fmt"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/eval"
)

// Factory declares the filter processor.
var Factory = engine.ProcessorFactory{
	Type: "filter",
	Example: `- filter:
    when: 'metric == "cpu_load" && tenant_id != "test"'
`,
	Doc: "Keeps records for which the boolean expression `when` is true and drops the others. " +
		"A record whose expression fails at run time (e.g. comparing a string with a number) goes " +
		"to the dead-letter topic with the reason.",
	NewConfig: func() any { return &Config{} },
	Build:     build,
}

// Processor evaluates the predicate per record.
type Processor struct {
	when  *eval.Program
	path  string
	clock engine.Clock
}

func build(cfg any, env engine.BuildEnv) (engine.Processor, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("filter: config is %T, want *filter.Config", cfg)
	}
	// On a mistake it returns a processor that never runs: a filter keeps the shape of its
	// records, so lint goes on checking what comes after it (runtime.Build). A missing
	// when is the decoder's to report (Validate); it leaves nothing to check.
	if c.When.IsZero() {
		return &Processor{}, nil
	}
	when, _, err := eval.CompileChecked(c.When, eval.Bool, env.Input, env.Warnings)
	if err != nil {
		return &Processor{}, err
	}
	clock := env.Clock
	if clock == nil {
		clock = engine.WallClock{}
	}
	return &Processor{when: when, path: env.Path, clock: clock}, nil
}

// Process keeps matching records. A runtime error rejects the record; it is neither kept
// nor silently dropped.
// RecordWise says that each record is mapped on its own (engine.RecordWise).
func (*Processor) RecordWise() {}

func (p *Processor) Process(_ context.Context, batch []*engine.Record, rejects *engine.Rejects) ([]*engine.Record, error) {
	out := make([]*engine.Record, 0, len(batch))
	now := p.clock.Now()
	for _, rec := range batch {
		keep, err := p.when.EvalBool(eval.Env{Vars: rec.Value, Source: rec.Source, Now: now})
		if err != nil {
			rejects.Add(rec, p.path, fmt.Errorf("filter: %w", err))
			continue
		}
		if keep {
			out = append(out, rec)
		}
	}
	return out, nil
}
