package runtime

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/eval"
	"github.com/eventops/eventops-engine/engine/lookup"
	"github.com/eventops/eventops-engine/engine/reload"
	"github.com/eventops/eventops-engine/engine/schema"
	"github.com/eventops/eventops-engine/engine/types"
)

// Options are the process-wide parts a pipeline is built with.
type Options struct {
	Logger *slog.Logger
	Clock  engine.Clock
	// Components are the processor and output types available (processors/all and
	// outputs/all).
	Components engine.Components
	// Lookups, when a running pipeline reloads, are its tables: a declared lookup whose
	// definition did not change uses the running table (read again in place when its file
	// changed), so every processor, old and new, shares one table.
	Lookups lookup.Set
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
	// Sink is true for entries of sinks: (no processors, a registered output).
	Sink bool
	// OutputType is the type of the records reaching the output (what its column
	// expressions are checked against; a Parquet file's custom columns are typed from it).
	OutputType *types.Type
}

// NamedProcessor is a built processor with its config path.
type NamedProcessor struct {
	Path string // streams[0].processors[1].enrich
	Name string // processors[1].enrich: the short name used in metrics and dead-letter headers
	Type string // enrich
	engine.Processor
	// Alerts says the processor emits alert records (engine.AlertEmitter with rules).
	Alerts bool
}

// Build compiles p. Every problem found is returned at once as config.Errors; warnings
// (problems that do not stop the pipeline) are added to p.Warnings.
//
// Building also type-checks every expression against the records that reach it: the input
// schema's type, or the type of what the streams writing the input topic produce, changed
// by each processor in turn (see engine/types). So streams are built producers first.
func Build(p *config.Pipeline, opts Options) (*Plan, error) {
	return build(p, opts, nil)
}

// build is Build on a pipeline whose file had the findings given (the loader's; a plan
// built with any is only checked, never run). Each part of the file is judged once: what
// the loader found broken is not loaded or checked again here. And a processor with an
// unknown key, or a stream whose processors key is misspelled, produces records of
// unknown type, since a setting meant to shape them is missing.
func build(p *config.Pipeline, opts Options, reported config.Errors) (*Plan, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = engine.WallClock{}
	}
	b := &builder{p: p, opts: opts, plan: &Plan{Pipeline: p, opts: opts}, reported: reported}
	b.loadLookups()
	b.compileSchemas()

	b.producers = map[string][]int{}
	for i, sc := range p.Streams {
		if sc.Output.Topic != "" {
			b.producers[sc.Output.Topic] = append(b.producers[sc.Output.Topic], i)
		}
	}
	b.written = make([]*types.Type, len(p.Streams))
	built := make([]*StreamPlan, len(p.Streams))
	for _, i := range b.order() {
		built[i] = b.stream(i)
	}
	b.plan.Streams = built

	for i, sk := range p.Sinks {
		b.sink(i, sk)
	}
	b.checkGroups()
	b.routes()

	p.Warnings = append(p.Warnings, b.warns...)
	p.Warnings.Sort()
	if len(b.errs) > 0 {
		return nil, b.errs.Err()
	}
	return b.plan, nil
}

// loadLookups loads the declared lookup tables, or takes the running ones that did not
// change (Options.Lookups). One whose file the loader reported missing is not read.
func (b *builder) loadLookups() {
	b.plan.Lookups = lookup.Set{}
	for _, name := range slices.Sorted(maps.Keys(b.p.Lookups)) {
		cfg := b.p.Lookups[name]
		if t, ok := b.opts.Lookups[name]; ok && t != nil && reload.Same(t.Config(), cfg) {
			b.plan.Lookups[name] = t
			continue
		}
		if b.isReported("lookups." + name) {
			b.unloaded = append(b.unloaded, name)
			continue
		}
		t, err := lookup.Load(name, cfg)
		if err != nil {
			b.add(err, "lookups."+name+".file", b.p.At("lookups."+name+".file"))
			b.unloaded = append(b.unloaded, name)
			continue
		}
		b.plan.Lookups[name] = t
	}
}

// compileSchemas compiles the declared JSON Schemas, except those the loader reported.
func (b *builder) compileSchemas() {
	b.schemas = map[string]*schema.Validator{}
	for _, name := range slices.Sorted(maps.Keys(b.p.Schemas)) {
		if b.isReported("schemas." + name) {
			continue
		}
		s, err := schema.Compile(b.p.Schemas[name]) // its errors name the file
		if err != nil {
			b.add(err, "schemas."+name, b.p.At("schemas."+name))
			continue
		}
		b.schemas[name] = s
	}
}

// buildLookups is what processors see of the lookups while building: a declared table that
// failed to load (its error is reported once, at its file) is there, with unknown columns,
// so that enrich processors using it are still checked and do not report it missing. So is
// any name when the loader had findings (checked): a name no lookup declares is one of them.
type buildLookups struct {
	loaded   lookup.Set
	unloaded []string
	checked  bool
}

func (l buildLookups) Lookup(name string) (engine.LookupTable, bool) {
	if t, ok := l.loaded.Lookup(name); ok {
		return t, true
	}
	if l.checked || slices.Contains(l.unloaded, name) {
		return unloadedTable{}, true
	}
	return nil, false
}

type unloadedTable struct{}

func (unloadedTable) Get(string) (map[string]any, bool) { return nil, false }
func (unloadedTable) Columns() []string                 { return nil }

// builder holds the state of one Build.
type builder struct {
	p       *config.Pipeline
	opts    Options
	plan    *Plan
	schemas map[string]*schema.Validator
	errs    config.Errors
	warns   config.Errors

	unloaded  []string            // lookups that are declared but did not load (already reported)
	producers map[string][]int    // topic -> streams writing it
	written   []*types.Type       // per stream, once built: the type of the records it writes (as read back)
	tables    map[string][]string // table -> columns written to it (nil: not known)

	reported config.Errors // the loader's findings (see build)
}

// misspelled reports whether an unknown key was found in the settings at path: what they
// make is then not known.
func (b *builder) misspelled(path string) bool {
	return slices.ContainsFunc(b.reported, func(e *config.Error) bool { return within(e.Covers, path) })
}

// isReported reports whether the loader found something wrong at path or below it: that
// part is judged already.
func (b *builder) isReported(path string) bool {
	return slices.ContainsFunc(b.reported, func(e *config.Error) bool { return within(e.Path, path) })
}

// order lists the streams so that a stream comes after the streams writing its input
// topic, when there is no cycle; streams in a cycle keep their file order.
func (b *builder) order() []int {
	var out []int
	placed := make([]bool, len(b.p.Streams))
	for progress := true; progress; {
		progress = false
		for i, sc := range b.p.Streams {
			if placed[i] {
				continue
			}
			ready := true
			if sc.Input.Schema == "" {
				for _, j := range b.producers[sc.Input.Topic] {
					if j != i && !placed[j] {
						ready = false
					}
				}
			}
			if ready {
				placed[i], progress = true, true
				out = append(out, i)
			}
		}
	}
	for i := range b.p.Streams {
		if !placed[i] {
			out = append(out, i)
		}
	}
	return out
}

// topicType is the type of the records read from topic: what the streams writing it
// produce, or unknown when something outside the pipeline writes it too.
func (b *builder) topicType(topic string) *types.Type {
	if t, ok := b.p.Topics[topic]; !ok || t.Ingest {
		return types.Any
	}
	prods := b.producers[topic]
	if len(prods) == 0 {
		return types.Any
	}
	var out *types.Type
	for _, j := range prods {
		var t *types.Type
		switch out := b.p.Streams[j].Output.Schema; {
		case b.written[j] != nil && !b.written[j].IsUnknown():
			// What the stream's processors build is exact (a map defines every field);
			// an output schema usually allows more than that.
			t = b.written[j]
		case out != "" && b.schemas[out] != nil:
			// The output validates every record against its schema.
			t = b.schemas[out].RecordType("schema " + out)
		default:
			t = types.Any
		}
		out = types.Union(out, t)
	}
	return out
}

func (b *builder) stream(i int) *StreamPlan {
	p, sc := b.p, b.p.Streams[i]
	path := fmt.Sprintf("streams[%d]", i)
	sp := &StreamPlan{Name: sc.Name, Config: sc, DeadLetter: sc.Input.DeadLetter}
	if sp.DeadLetter == "" {
		sp.DeadLetter = p.DeadLetter
	}
	sp.InputSchema = b.schemas[sc.Input.Schema]
	sp.OutputSchema = b.schemas[sc.Output.Schema]
	in := b.topicType(sc.Input.Topic)
	if sc.Input.Schema != "" {
		in = sp.InputSchema.RecordType("schema " + sc.Input.Schema)
	}
	for j, pe := range sc.Processors {
		if pe.Config == nil {
			in = types.Any // its config did not decode; the loader reported why
			continue
		}
		f, ok := b.opts.Components.Processor(pe.Type)
		if !ok {
			b.errs.Add(pe.Pos, pe.Path, "unknown processor type %q", pe.Type)
			in = types.Any
			continue
		}
		name := fmt.Sprintf("processors[%d].%s", j, pe.Type)
		warned := len(b.warns)
		proc, err := safeBuild(f, pe.Config, engine.BuildEnv{
			Stream:   sc.Name,
			Path:     name,
			Lookups:  buildLookups{b.plan.Lookups, b.unloaded, len(b.reported) > 0},
			Clock:    b.opts.Clock,
			Logger:   b.opts.Logger.With("stream", sc.Name, "processor", name),
			Input:    in,
			Warnings: &b.warns,
		})
		b.placeSettingWarnings(b.warns[warned:], name, pe.Path)
		if proc != nil {
			b.warnPartitionBound(proc, sc, pe)
		}
		if err != nil {
			b.add(err, pe.Path, pe.Pos)
			in = partialOutput(proc, in)
			continue
		}
		if typed, ok := proc.(engine.TypedProcessor); ok {
			in = typed.OutputType()
		}
		if b.misspelled(pe.Path) {
			in = types.Any
		}
		sp.Processors = append(sp.Processors, NamedProcessor{Path: pe.Path, Name: name, Type: pe.Type, Processor: proc, Alerts: emitsAlerts(proc)})
	}
	if b.misspelled(path+".processors") && len(sc.Processors) == 0 {
		in = types.Any // the processors: key itself is misspelled
	}
	written := in
	if sp.OutputSchema != nil && b.checkOutputSchema(path, sc.Output.Schema, sp.OutputSchema, in) {
		written = sp.OutputSchema.RecordType("schema " + sc.Output.Schema)
	}
	if k := sc.Output.Key; k != nil && !k.IsZero() {
		if endsWithAlerts(sc, sp) && strings.Contains(p.Topics[sc.Output.Topic].Cleanup, "compact") && strings.TrimSpace(k.Src) != "fingerprint" {
			b.warns.AddWarning(k.Pos, path+".output.key", "alerts are keyed by their fingerprint (rule + series) so that a compacted topic keeps the latest state of each alert; this key replaces it, and a compacted %s keeps one alert per key value. Remove output.key unless that is what you want", sc.Output.Topic)
		}
		prog, _, err := eval.CompileChecked(*k, eval.Any, in, &b.warns)
		b.add(err, path+".output.key", k.Pos)
		sp.OutputKey = prog
	}
	for _, h := range slices.Sorted(maps.Keys(sc.Output.Headers)) {
		e := sc.Output.Headers[h]
		if e == nil || e.IsZero() {
			b.errs.Add(p.At(path+".output.headers."+h), path+".output.headers."+h, "header %q has no expression; write the expression that gives its value, e.g. tenant_id", h)
			continue
		}
		prog, _, err := eval.CompileChecked(*e, eval.Any, in, &b.warns)
		if err != nil {
			b.add(err, path+".output.headers."+h, e.Pos)
			continue
		}
		if sp.OutputHeader == nil {
			sp.OutputHeader = map[string]*eval.Program{}
		}
		sp.OutputHeader[h] = prog
	}
	if out := sc.Output.Plugin; out != nil {
		b.output(sc.Name, out, in)
	}
	b.written[i] = types.Encoded(written)
	sp.OutputType = in
	return sp
}

// sinkStallAfter is input.stall_after for sinks (streams declare their own).
const sinkStallAfter = config.Duration(time.Minute)

func (b *builder) sink(i int, sk config.Sink) {
	p := b.p
	name := sk.StreamName()
	sc := config.Stream{
		Name:   name,
		Input:  config.Input{Topic: sk.From, Format: sk.Format, Group: sk.Group, Start: "earliest", BatchSize: sk.BatchSize, DeadLetter: p.DeadLetter, StallAfter: sinkStallAfter},
		Output: config.Output{Plugin: sk.Plugin},
	}
	if sk.Plugin != nil {
		b.output(name, sk.Plugin, b.topicType(sk.From))
	}
	b.plan.Streams = append(b.plan.Streams, &StreamPlan{Name: name, Config: sc, DeadLetter: p.DeadLetter, Sink: true, OutputType: b.topicType(sk.From)})
}

// output checks a registered output of stream against the records it receives (its
// factory's Check), and notes the columns of the table it writes for the routes that read
// it.
func (b *builder) output(stream string, out *config.OutputEntry, in *types.Type) {
	if out.Config == nil || b.isReported(out.Path) {
		if tw, ok := out.Config.(config.TableWriter); ok {
			b.noteTable(tw.TableName(), nil) // written, columns not known
		}
		return // the loader reported what is wrong with it
	}
	f, ok := b.opts.Components.Output(out.Type)
	if !ok {
		b.errs.Add(out.Pos, out.Path, "unknown output type %q", out.Type)
		return
	}
	warned := len(b.warns)
	cols, err := safeCheck(f, out.Config, engine.BuildEnv{
		Stream: stream, Path: out.Path, Clock: b.opts.Clock, Logger: b.opts.Logger, Input: in, Warnings: &b.warns,
	})
	b.add(err, out.Path, b.p.At(out.Path))
	for _, w := range b.warns[warned:] {
		if w.Pos.Line <= 0 {
			// About a setting, which the output's Check names by path but cannot place.
			w.Pos = b.p.At(w.Path)
		}
	}
	if tw, ok := out.Config.(config.TableWriter); ok {
		b.noteTable(tw.TableName(), cols)
	}
}

// warnPartitionBound warns when a processor that must see its input through one partition
// (engine.PartitionBound) reads a topic with several.
func (b *builder) warnPartitionBound(proc engine.Processor, sc config.Stream, pe config.ProcessorEntry) {
	pb, ok := proc.(engine.PartitionBound)
	if !ok {
		return
	}
	if t, ok := b.p.Topics[sc.Input.Topic]; ok && t.Partitions > 1 {
		b.warns.AddWarning(pe.Pos, pe.Path, "its input topic %s has %d partitions: %s; give the topic one partition", sc.Input.Topic, t.Partitions, pb.OnePartitionReason())
	}
}

// placeSettingWarnings places the warnings a processor's build added about its settings
// without a position: it names them by its short path (processors[1].notify.route...),
// which becomes the full one (streams[2].processors[1].notify.route...).
func (b *builder) placeSettingWarnings(warns config.Errors, short, full string) {
	for _, w := range warns {
		if w.Pos.Line > 0 || !strings.HasPrefix(w.Path, short) {
			continue
		}
		w.Path = full + strings.TrimPrefix(w.Path, short)
		w.Pos = b.p.At(w.Path)
	}
}

// noteTable adds cols (nil: not known) to the columns known to be written to table.
func (b *builder) noteTable(table string, cols []string) {
	if b.tables == nil {
		b.tables = map[string][]string{}
	}
	if prev, seen := b.tables[table]; !seen {
		b.tables[table] = cols
	} else if prev != nil && cols != nil {
		b.tables[table] = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(prev), cols...))))
	}
}

// routes checks the API's table routes: their filters are expressions over the request,
// and every column they name must be one the table's writers fill.
func (b *builder) routes() {
	if b.p.API == nil {
		return
	}
	for i, r := range b.p.API.Routes {
		path := fmt.Sprintf("api.routes[%d]", i)
		for _, f := range r.Where {
			if f.Expr != nil {
				_, err := eval.Check(*f.Expr, eval.Any, eval.RequestType, &b.warns)
				b.add(err, path+".where."+f.Name, f.Pos)
			}
		}
		cols, known := b.tables[r.Table]
		if r.Table == "" || !known || cols == nil {
			continue
		}
		unknown := func(pos config.Pos, at, c string) {
			if !slices.Contains(cols, c) {
				b.errs.Add(pos, at, "table %q has no column %q%s (columns: %s)", r.Table, c, config.Suggestion(c, cols), strings.Join(cols, ", "))
			}
		}
		for _, f := range r.Where {
			unknown(f.Pos, path+".where."+f.Name, f.Name) // at the key: it names the column
		}
		for j, c := range r.Columns {
			at := fmt.Sprintf("%s.columns[%d]", path, j)
			unknown(b.p.At(at), at, c)
		}
		if fields := strings.Fields(r.Order); len(fields) > 0 {
			unknown(b.p.At(path+".order"), path+".order", fields[0])
		}
		if r.LatestBy != "" {
			unknown(b.p.At(path+".latest_by"), path+".latest_by", r.LatestBy)
			if !slices.Contains(cols, "ts") {
				b.errs.Add(b.p.At(path+".latest_by"), path+".latest_by", "latest_by needs a \"ts\" column to tell the newest row; table %q has none", r.Table)
			}
		}
	}
}

// add records err, found while building the thing at path (written at pos). Errors that
// know their place keep it; a *config.FieldError names a field below path and is placed
// where that field is written.
func (b *builder) add(err error, path string, pos config.Pos) {
	if pos.Line <= 0 {
		pos = b.p.At(path)
	}
	for _, e := range config.FlattenErrors(err) {
		var ce *config.Error
		var fe *config.FieldError
		switch {
		case errors.As(e, &ce):
			if ce.Pos.Line <= 0 {
				// A component that knew what was wrong but not where: at its own place.
				b.errs.Add(pos, path, "%s", ce.Msg)
				continue
			}
			b.errs = append(b.errs, ce)
		case errors.As(e, &fe):
			fpath := fe.Under(path)
			b.errs.Add(b.p.At(fpath), fpath, "%s", fe.Msg)
		default:
			b.errs.Add(pos, path, "%v", e)
		}
	}
}

// emitsAlerts reports whether proc emits alert records.
func emitsAlerts(proc engine.Processor) bool {
	ae, ok := proc.(engine.AlertEmitter)
	return ok && len(ae.AlertRules()) > 0
}

// endsWithAlerts reports whether the stream's last processor (as written, and built) emits
// alert records: they are what reaches its output.
func endsWithAlerts(sc config.Stream, sp *StreamPlan) bool {
	n, built := len(sc.Processors), len(sp.Processors)
	return n > 0 && built > 0 && sp.Processors[built-1].Path == sc.Processors[n-1].Path && sp.Processors[built-1].Alerts
}

// partialOutput is the type of what a processor that failed to build would produce, for
// checking the rest of the stream and the streams reading its output. A factory may
// return a processor together with its error to say it (one that never runs): its
// OutputType, with the broken parts unknown, or for a processor that keeps the shape of
// its records, in. Without one nothing is known, so nothing after it is reported, since a
// broken part is reported once.
func partialOutput(proc engine.Processor, in *types.Type) *types.Type {
	if proc == nil {
		return types.Any
	}
	if typed, ok := proc.(engine.TypedProcessor); ok {
		if t := typed.OutputType(); t != nil {
			return t
		}
		return types.Any
	}
	return in
}

// safeBuild turns a panic in a processor's Build (possible on a partially decoded config)
// into an error, so that checking a broken file never crashes.
func safeBuild(f engine.ProcessorFactory, cfg any, env engine.BuildEnv) (p engine.Processor, err error) {
	defer recoverAs(&err, "cannot build %s processor: %v", f.Type)
	return f.Build(cfg, env)
}

// safeCheck is safeBuild for an output's Check.
func safeCheck(f engine.OutputFactory, cfg any, env engine.BuildEnv) (cols []string, err error) {
	defer recoverAs(&err, "cannot check %s output: %v", f.Type)
	return f.Check(cfg, env)
}

// recoverAs, deferred, turns a panic into *err, formatted with the component type and the
// panic's value.
func recoverAs(err *error, format, typ string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf(format, typ, r)
	}
}

// Check loads and builds path without running anything, and returns every problem found:
// the loader's, and the build phase's (expression compile errors, schemas, lookups) for the
// parts that decoded, with the component types of opts. On success it returns the plan.
func Check(path string, opts Options) (*Plan, *config.Pipeline, error) {
	cfg, err := config.Load(path, opts.Components.Registry())
	return checkLoaded(cfg, err, opts)
}

// CheckBytes is Check on a file already read (fuzzing, editors); lookupEnv resolves ${VAR}.
func CheckBytes(path string, data []byte, opts Options, lookupEnv func(string) (string, bool)) (*Plan, *config.Pipeline, error) {
	cfg, err := config.LoadBytes(path, data, opts.Components.Registry(), lookupEnv)
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
	plan, err := build(cfg, opts, errs)
	if err == nil && len(errs) == 0 {
		return plan, cfg, nil
	}
	var buildErrs config.Errors
	if err != nil && !errors.As(err, &buildErrs) {
		return nil, cfg, err
	}
	return nil, cfg, append(errs, buildErrs...).Err()
}

// within reports whether path is part or below it (part a non-root config path; streams[1]
// does not hold streams[10]).
func within(path, part string) bool {
	if part == "" || !strings.HasPrefix(path, part) {
		return false
	}
	rest := path[len(part):]
	return rest == "" || rest[0] == '.' || rest[0] == '['
}
