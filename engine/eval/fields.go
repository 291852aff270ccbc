package eval

import (
	"fmt"
	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/types"
)

// Mapping is a compiled config.Fields: it builds a new object from expressions.
type Mapping struct {
	entries []mappingEntry
	// needsCtx is set when any expression, at any depth, needs the hidden context: Eval
	// then adds it to the variables once per record instead of once per expression.
	needsCtx bool
}

type mappingEntry struct {
	name   string
	prog   *Program
	nested *Mapping
}

// CompileFields compiles every expression of f, returning all compile errors at once.
func CompileFields(f config.Fields) (*Mapping, error) {
	var errs config.Errors
	m := compileFields(f, &errs)
	if len(errs) > 0 {
		return nil, errs
	}
	return m, nil
}

// CompileFieldsChecked is CheckFields followed by CompileFields: the mapping and the type of
// the object it builds (with errors, no mapping, and the type as CheckFields gives it). The
// expressions compile for running on first use.
func CompileFieldsChecked(f config.Fields, in *types.Type, origin string, warnings *config.Errors) (*Mapping, *types.Type, error) {
	out, err := CheckFields(f, in, origin, warnings)
	if err != nil {
		return nil, out, err
	}
	var errs config.Errors
	m := buildFields(f, &errs, func(e config.Expr) (*Program, error) { return compileLater(e, Any), nil })
	return m, out, errs.Err()
}

func compileFields(f config.Fields, errs *config.Errors) *Mapping {
	return buildFields(f, errs, func(e config.Expr) (*Program, error) { return Compile(e, Any) })
}

func buildFields(f config.Fields, errs *config.Errors, compile func(config.Expr) (*Program, error)) *Mapping {
	m := &Mapping{entries: make([]mappingEntry, 0, len(f))}
	for _, fld := range f {
		ent := mappingEntry{name: fld.Name}
		switch {
		case fld.Expr != nil:
			p, err := compile(*fld.Expr)
			if err != nil {
				errs.Append(fld.Pos, "", err)
				continue
			}
			ent.prog = p
			m.needsCtx = m.needsCtx || p.needsCtx
		default:
			ent.nested = buildFields(fld.Nested, errs, compile)
			m.needsCtx = m.needsCtx || ent.nested.needsCtx
		}
		m.entries = append(m.entries, ent)
	}
	return m
}

// Names returns the top-level field names, in order.
func (m *Mapping) Names() []string {
	out := make([]string, len(m.entries))
	for i, e := range m.entries {
		out[i] = e.name
	}
	return out
}

// Eval builds the object. Fields whose expression yields nil are left out, so that optional
// input fields do not become explicit nulls downstream.
func (m *Mapping) Eval(env Env) (map[string]any, error) {
	return withContext(env, m.needsCtx, m.eval)
}

// eval builds the object from vars, which already hold the context if it is needed.
func (m *Mapping) eval(vars map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(m.entries))
	for _, e := range m.entries {
		var v any
		var err error
		if e.prog != nil {
			v, err = e.prog.evalPrepared(vars)
		} else {
			v, err = e.nested.eval(vars)
		}
		if err != nil {
			return nil, fieldErr{name: e.name, err: err}
		}
		if v != nil {
			out[e.name] = stringKeys(v)
		}
	}
	return out, nil
}

// stringKeys is v with every map[any]any (what expr's fromPairs and groupBy make) made a
// map[string]any, as a record's objects are: JSON, schemas and sinks know no other.
func stringKeys(v any) any {
	m, ok := v.(map[any]any)
	if !ok {
		return v
	}
	out := make(map[string]any, len(m))
	for k, item := range m {
		key, isString := k.(string)
		if !isString {
			key = fmt.Sprint(k)
		}
		out[key] = stringKeys(item)
	}
	return out
}

type fieldErr struct {
	name string
	err  error
}

func (e fieldErr) Error() string { return "field " + e.name + ": " + e.err.Error() }
func (e fieldErr) Unwrap() error { return e.err }
