// Package enrich is the enrich processor: it joins each record against a lookup table (a
// CMDB export, say) and copies the matching row's columns into an object of the record.
package enrich

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/eval"
	"github.com/eventops/eventops-engine/engine/types"
)

// Factory declares the enrich processor.
var Factory = engine.ProcessorFactory{
	Type: "enrich",
	Example: `- enrich:
    lookup: cmdb
    key: source.source_id
    into: tags
    fields: [site, owner]
`,
	Doc: "Looks each record's key up in a lookup table and copies the row's columns into an object " +
		"field (tags by default), merging with what is there. A key not in the table keeps the " +
		"record unchanged, drops it, or merges default values, as on_miss says.",
	NewConfig: func() any { return &Config{} },
	Build:     build,
}

// Processor joins records against one lookup table.
type Processor struct {
	table     engine.LookupTable
	key       *eval.Program
	into      []string
	onMiss    string
	defaults  map[string]any
	fields    []string
	overwrite bool
	path      string
	clock     engine.Clock
	dropped   atomic.Uint64
	out       *types.Type
}

// OutputType is the input type with the into object holding the row's columns as well.
func (p *Processor) OutputType() *types.Type { return p.out }

// outputType adds the columns copied from the table to the object at path into. Their
// values are typed unknown: CSV gives strings, but JSON tables any JSON value.
func outputType(in *types.Type, into []string, columns []string, c *Config) *types.Type {
	if in.IsUnknown() || in.Kind != types.Object {
		return in
	}
	copied := columns
	if len(c.Fields) > 0 {
		copied = c.Fields
	}
	added := map[string]*types.Type{}
	for _, col := range copied {
		added[col] = types.Any
	}
	for k := range c.Default {
		added[k] = types.Any
	}
	row := types.ObjectOf("lookup "+c.Lookup, added)
	if columns == nil {
		row = types.OpenObject()
	}
	return setPath(in, into, row)
}

// checkInto reports an into path that crosses or ends at a field the records have with a
// type other than an object: the row's columns could not be merged into it.
func checkInto(in *types.Type, into []string) error {
	t := in
	for i, part := range into {
		f, ok := t.Field(part)
		if !ok || f.IsUnknown() || f.Kind == types.Nil {
			return nil
		}
		if f.Kind != types.Object {
			return config.FieldErrorf("into", "%s is a %s field of the records here, not an object, so the lookup row cannot be merged into it; name a new or an object field (e.g. tags)", strings.Join(into[:i+1], "."), f)
		}
		t = f
	}
	return nil
}

func setPath(t *types.Type, path []string, row *types.Type) *types.Type {
	existing, ok := t.Field(path[0])
	if !ok || existing == nil || existing.Kind != types.Object {
		existing = nil
	}
	if len(path) == 1 {
		if existing == nil {
			return t.With(path[0], row)
		}
		return t.With(path[0], types.Union(existing, row))
	}
	if existing == nil {
		existing = types.ObjectOf("enrich", map[string]*types.Type{})
	}
	return t.With(path[0], setPath(existing, path[1:], row))
}

func build(cfg any, env engine.BuildEnv) (engine.Processor, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("enrich: config is %T, want *enrich.Config", cfg)
	}
	// The decoder has validated c; everything else wrong is reported at once.
	var problems []error
	var table engine.LookupTable
	if env.Lookups != nil && c.Lookup != "" {
		table, ok = env.Lookups.Lookup(c.Lookup)
	}
	if c.Lookup != "" && (table == nil || !ok) {
		// A FieldError, so that whoever places Build errors can point at the lookup field.
		problems = append(problems, config.FieldErrorf("lookup", "no lookup table named %q is declared under lookups:", c.Lookup))
	}
	var key *eval.Program
	if !c.Key.IsZero() {
		var err error
		key, _, err = eval.CompileChecked(c.Key, eval.Any, env.Input, env.Warnings)
		if err != nil {
			var errs config.Errors
			errs.Append(c.Key.Pos, c.Key.Path, err)
			problems = append(problems, errs)
		}
	}
	var columns []string
	if table != nil {
		columns = table.Columns()
	}
	for i, f := range c.Fields {
		if columns != nil && !slices.Contains(columns, f) {
			problems = append(problems, config.FieldErrorf(fmt.Sprintf("fields[%d]", i), "lookup table %s has no column %q%s (columns: %s)", c.Lookup, f, config.Suggestion(f, columns), strings.Join(columns, ", ")))
		}
	}
	into := strings.Split(cmp(c.Into, "tags"), ".")
	// On a mistake it returns a processor that never runs, whose output type (the row's
	// columns unknown, or the into field when that is what is wrong) lets lint go on
	// checking what reads its records (runtime.Build).
	partial := &Processor{out: outputType(env.Input, into, nil, c)}
	if err := checkInto(env.Input, into); err != nil {
		problems = append(problems, err)
		if !env.Input.IsUnknown() && env.Input.Kind == types.Object {
			partial.out = setPath(env.Input, into, types.Any)
		}
	}
	problems = slices.DeleteFunc(problems, func(e error) bool { return e == nil })
	switch len(problems) {
	case 0:
	case 1:
		return partial, problems[0]
	default:
		return partial, errors.Join(problems...)
	}
	p := &Processor{
		table:     table,
		key:       key,
		into:      into,
		onMiss:    cmp(c.OnMiss, OnMissKeep),
		fields:    c.Fields,
		overwrite: c.Overwrite == nil || *c.Overwrite,
		path:      env.Path,
		clock:     env.Clock,
	}
	if p.clock == nil {
		p.clock = engine.WallClock{}
	}
	p.out = outputType(env.Input, p.into, columns, c)
	if len(c.Default) > 0 {
		p.defaults = make(map[string]any, len(c.Default))
		for k, v := range c.Default {
			p.defaults[k] = v
		}
	}
	return p, nil
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Dropped is how many records on_miss: drop has removed since the processor was built.
func (p *Processor) Dropped() uint64 { return p.dropped.Load() }

// Process enriches each record in place.
// RecordWise says that each record is mapped on its own (engine.RecordWise).
func (*Processor) RecordWise() {}

func (p *Processor) Process(_ context.Context, batch []*engine.Record, rejects *engine.Rejects) ([]*engine.Record, error) {
	out := make([]*engine.Record, 0, len(batch))
	now := p.clock.Now()
	for _, rec := range batch {
		k, err := p.key.Eval(eval.Env{Vars: rec.Value, Source: rec.Source, Now: now})
		if err != nil {
			rejects.Add(rec, p.path, fmt.Errorf("enrich: key: %w", err))
			continue
		}
		var row map[string]any
		found := false
		if ks, ok := keyString(k); ok {
			row, found = p.table.Get(ks)
		}
		overwrite, fields := p.overwrite, p.fields
		if !found {
			switch p.onMiss {
			case OnMissKeep:
				out = append(out, rec)
				continue
			case OnMissDrop:
				p.dropped.Add(1)
				continue
			case OnMissDefault:
				// Defaults stand in for missing data: they never replace what the record has.
				row, overwrite, fields = p.defaults, false, nil
			}
		}
		if err := p.merge(rec, row, fields, overwrite); err != nil {
			rejects.Add(rec, p.path, fmt.Errorf("enrich: %w", err))
			continue
		}
		out = append(out, rec)
	}
	return out, nil
}

// merge copies row into the object at p.into. It builds new maps along the path rather than
// writing into the existing ones, which may be shared with other records.
func (p *Processor) merge(rec *engine.Record, row map[string]any, fields []string, overwrite bool) error {
	if rec.Value == nil {
		rec.Value = map[string]any{}
	}
	parent := rec.Value
	for i, name := range p.into {
		existing := parent[name]
		obj, ok := existing.(map[string]any)
		if existing != nil && !ok {
			return fmt.Errorf("cannot add lookup columns to %s: it is %s, not an object",
				strings.Join(p.into[:i+1], "."), describe(existing))
		}
		extra := 0
		if i == len(p.into)-1 {
			extra = len(row)
		}
		fresh := make(map[string]any, len(obj)+extra)
		for k, v := range obj {
			fresh[k] = v
		}
		parent[name] = fresh
		parent = fresh
	}
	copyCol := func(col string, v any) {
		if _, has := parent[col]; has && !overwrite {
			return
		}
		parent[col] = v
	}
	if fields != nil {
		for _, col := range fields {
			if v, ok := row[col]; ok {
				copyCol(col, v)
			}
		}
		return nil
	}
	for col, v := range row {
		copyCol(col, v)
	}
	return nil
}

// keyString turns a key value into the table's string key; nil (a missing field) is a miss.
func keyString(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case int:
		return strconv.Itoa(x), true
	case bool:
		return strconv.FormatBool(x), true
	default:
		return fmt.Sprint(x), true
	}
}

func describe(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case float64, int:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("a %T", v)
}
