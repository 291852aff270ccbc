package runtime

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/eval"
	"github.com/eventops/eventops-engine/engine/lookup"
	"github.com/eventops/eventops-engine/engine/schema"
)

// Options are the process-wide parts a pipeline is built with.
type Options struct {
	Logger *slog.Logger
	Clock  engine.Clock
	// Factories are the processor types available (processors/all.Factories()).
	Factories []engine.ProcessorFactory
}

// Plan is a pipeline compiled and checked, ready to Run.
type Plan struct {
	Pipeline *config.Pipeline
	Streams  []*StreamPlan
	Lookups  lookup.Set
	opts     Options
}

// StreamPlan is one stream (or sink) compiled.
type StreamPlan struct {
	Name         string
	Config       config.Stream
	InputSchema  *schema.Validator
	OutputSchema *schema.Validator
	Processors   []NamedProcessor
	OutputKey    *eval.Program
	OutputHeader map[string]*eval.Program
	DeadLetter   string
	// Sink is true for entries of sinks: (no processors, postgres output).
	Sink bool
}

// NamedProcessor is a built processor with its config path.
type NamedProcessor struct {
	Path string // streams[0].processors[1].enrich
	Name string // processors[1].enrich: the short name used in metrics and dead-letter headers
	engine.Processor
}

// Build compiles p. Every problem found is returned at once as config.Errors.
func Build(p *config.Pipeline, opts Options) (*Plan, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = engine.WallClock{}
	}
	var errs config.Errors
	plan := &Plan{Pipeline: p, opts: opts}

	factories := map[string]engine.ProcessorFactory{}
	for _, f := range opts.Factories {
		factories[f.Type] = f
	}

	plan.Lookups = lookup.Set{}
	for _, name := range slices.Sorted(maps.Keys(p.Lookups)) {
		t, err := lookup.Load(name, p.Lookups[name])
		if err != nil {
			errs.Append(p.Pos["lookups."+name], "lookups."+name, err)
			continue
		}
		plan.Lookups[name] = t
	}

	schemas := map[string]*schema.Validator{}
	for _, name := range slices.Sorted(maps.Keys(p.Schemas)) {
		s, err := schema.Compile(p.Schemas[name]) // its errors name the file
		if err != nil {
			errs.Append(p.Pos["schemas."+name], "schemas."+name, err)
			continue
		}
		schemas[name] = s
	}

	for i, sc := range p.Streams {
		path := fmt.Sprintf("streams[%d]", i)
		sp := &StreamPlan{Name: sc.Name, Config: sc, DeadLetter: sc.Input.DeadLetter}
		if sp.DeadLetter == "" {
			sp.DeadLetter = p.DeadLetter
		}
		sp.InputSchema = schemas[sc.Input.Schema]
		sp.OutputSchema = schemas[sc.Output.Schema]
		for j, pe := range sc.Processors {
			if pe.Config == nil {
				continue // its config did not decode; the loader reported why
			}
			f, ok := factories[pe.Type]
			if !ok {
				errs.Add(pe.Pos, pe.Path, "unknown processor type %q", pe.Type)
				continue
			}
			name := fmt.Sprintf("processors[%d].%s", j, pe.Type)
			proc, err := safeBuild(f, pe.Config, engine.BuildEnv{
				Stream:  sc.Name,
				Path:    name,
				Lookups: plan.Lookups,
				Clock:   opts.Clock,
				Logger:  opts.Logger.With("stream", sc.Name, "processor", name),
			})
			if err != nil {
				errs.Append(pe.Pos, pe.Path, err)
				continue
			}
			sp.Processors = append(sp.Processors, NamedProcessor{Path: pe.Path, Name: name, Processor: proc})
		}
		if k := sc.Output.Key; k != nil && !k.IsZero() {
			prog, err := eval.Compile(*k, eval.Any)
			if err != nil {
				errs.Append(k.Pos, path+".output.key", err)
			}
			sp.OutputKey = prog
		}
		for _, h := range slices.Sorted(maps.Keys(sc.Output.Headers)) {
			e := sc.Output.Headers[h]
			if e == nil {
				continue
			}
			prog, err := eval.Compile(*e, eval.Any)
			if err != nil {
				errs.Append(e.Pos, path+".output.headers."+h, err)
				continue
			}
			if sp.OutputHeader == nil {
				sp.OutputHeader = map[string]*eval.Program{}
			}
			sp.OutputHeader[h] = prog
		}
		if sc.Output.Postgres != nil {
			if err := checkPostgresColumns(sc.Output.Postgres); err != nil {
				errs.Append(p.Pos["streams."+sc.Name], path+".output.postgres", err)
			}
		}
		plan.Streams = append(plan.Streams, sp)
	}

	for i, sk := range p.Sinks {
		name := sk.Name
		if name == "" {
			name = fmt.Sprintf("sink.%s.%s", sk.From, sinkTable(sk))
		}
		group := sk.Group
		sc := config.Stream{
			Name:   name,
			Input:  config.Input{Topic: sk.From, Group: group, Start: "earliest", BatchSize: sk.BatchSize, DeadLetter: p.DeadLetter},
			Output: config.Output{Postgres: sk.Postgres},
		}
		if sk.Postgres != nil {
			if err := checkPostgresColumns(sk.Postgres); err != nil {
				errs.Append(p.Pos[fmt.Sprintf("sinks[%d]", i)], fmt.Sprintf("sinks[%d].postgres", i), err)
			}
		}
		plan.Streams = append(plan.Streams, &StreamPlan{Name: name, Config: sc, DeadLetter: p.DeadLetter, Sink: true})
	}

	if len(errs) > 0 {
		return nil, errs.Err()
	}
	return plan, nil
}

// safeBuild turns a panic in a processor's Build (possible on a partially decoded config)
// into an error, so that checking a broken file never crashes.
func safeBuild(f engine.ProcessorFactory, cfg any, env engine.BuildEnv) (p engine.Processor, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot build %s processor: %v", f.Type, r)
		}
	}()
	return f.Build(cfg, env)
}

// Check loads and builds path without running anything, and returns every problem found:
// the loader's, and the build phase's (expression compile errors, schemas, lookups) for the
// parts that decoded. On success it returns the plan.
func Check(path string, reg config.Registry, opts Options) (*Plan, *config.Pipeline, error) {
	cfg, err := config.Load(path, reg)
	return checkLoaded(cfg, err, opts)
}

func checkLoaded(cfg *config.Pipeline, loadErr error, opts Options) (*Plan, *config.Pipeline, error) {
	var errs config.Errors
	if loadErr != nil && !errors.As(loadErr, &errs) {
		return nil, cfg, loadErr
	}
	if cfg == nil {
		return nil, nil, loadErr
	}
	plan, err := Build(cfg, opts)
	if err == nil && len(errs) == 0 {
		return plan, cfg, nil
	}
	var buildErrs config.Errors
	if err != nil && !errors.As(err, &buildErrs) {
		return nil, cfg, err
	}
	for _, be := range buildErrs {
		if !overlaps(be, errs) {
			errs = append(errs, be)
		}
	}
	return nil, cfg, errs.Err()
}

// overlaps reports whether e is about something the loader already complained about, so a
// broken part of a file is reported once.
func overlaps(e *config.Error, prior config.Errors) bool {
	for _, p := range prior {
		if p.Pos == e.Pos || strings.HasPrefix(e.Path, p.Path) || strings.HasPrefix(p.Path, e.Path) {
			return true
		}
	}
	return false
}

func sinkTable(sk config.Sink) string {
	if sk.Postgres != nil {
		return sk.Postgres.Table
	}
	return "store"
}

// checkPostgresColumns compiles the column expressions so that mistakes show up before
// anything connects; the output compiles them again for itself.
func checkPostgresColumns(pg *config.PostgresOutput) error {
	if len(pg.Columns) == 0 {
		return nil
	}
	_, err := eval.CompileFields(pg.Columns)
	return err
}
