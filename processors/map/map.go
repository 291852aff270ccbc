// Package mapproc is the map processor: it replaces each record's value with a new object
// built by evaluating a field mapping against the old one. It is how raw agent events become
// the envelope (event_id, tenant_id, source, metric, value, ts_event, ...).
//
// The package is not called "map" because that is a Go keyword.
package mapproc

import (
	"context"
	"errors"
	"fmt"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/eval"
	"github.com/eventops/eventops-engine/engine/types"
)

// Factory declares the map processor.
var Factory = engine.ProcessorFactory{
	Type: "map",
	Example: `- map:
    event_id: record_id()
    tenant_id: 'tenant_id ?? "default"'
    source:
      type: '"host"'
      source_id: host
    metric: metric
    value: float(value)
    ts_event: 'ts_event != nil ? parse_time(ts_event) : now()'
`,
	Doc: "Replaces each record with a new object: every key is an output field, every value an " +
		"expression over the input record (or a nested mapping, which builds a nested object). " +
		"Fields whose expression yields null are left out. Key, headers and source position are kept.",
	NewConfig: newConfig,
	Build:     build,
}

// Processor evaluates a compiled mapping per record.
type Processor struct {
	mapping *eval.Mapping
	path    string
	clock   engine.Clock
	out     *types.Type
}

// OutputType is the object the mapping builds: exactly its fields.
func (p *Processor) OutputType() *types.Type { return p.out }

func build(cfg any, env engine.BuildEnv) (engine.Processor, error) {
	fields, ok := cfg.(*config.Fields)
	if !ok {
		return nil, fmt.Errorf("map: config is %T, want *config.Fields", cfg)
	}
	if len(*fields) == 0 {
		return nil, errors.New("map needs at least one field, e.g. map: {metric: metric, value: float(value)}")
	}
	m, out, err := eval.CompileFieldsChecked(*fields, env.Input, fmt.Sprintf("the map at %s of stream %s", env.Path, env.Stream), env.Warnings)
	if err != nil && out != nil {
		// It never runs, but its output type (broken fields unknown) lets lint go on
		// checking what reads its records (runtime.Build).
		return &Processor{out: out}, err
	}
	if err != nil {
		return nil, err
	}
	clock := env.Clock
	if clock == nil {
		clock = engine.WallClock{}
	}
	return &Processor{mapping: m, path: env.Path, clock: clock, out: out}, nil
}

// Process replaces each record's Value. A record whose mapping fails (a runtime error in an
// expression) is rejected with the failing field named, and the rest of the batch goes on.
// RecordWise says that each record is mapped on its own (engine.RecordWise).
func (*Processor) RecordWise() {}

func (p *Processor) Process(_ context.Context, batch []*engine.Record, rejects *engine.Rejects) ([]*engine.Record, error) {
	// A new slice, not batch[:0]: the caller still holds batch to acknowledge it.
	out := make([]*engine.Record, 0, len(batch))
	now := p.clock.Now()
	for _, rec := range batch {
		v, err := p.mapping.Eval(eval.Env{Vars: rec.Value, Source: rec.Source, Now: now})
		if err != nil {
			rejects.Add(rec, p.path, fmt.Errorf("map: %w", err))
			continue
		}
		rec.Value = v
		out = append(out, rec)
	}
	return out, nil
}
