package postgres

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/eval"
)

// valueFunc computes one column's value for a record.
type valueFunc func(env eval.Env) (any, error)

// fieldPath matches expressions that only name a field, possibly nested: "metric",
// "source.source_id", "source?.source_id". Most column mappings are like that.
var fieldPath = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\??\.[A-Za-z_][A-Za-z0-9_]*)*$`)

// pathStep is one member of a field path; optional says it was followed by expr's ?.,
// which makes the rest of the path nil when this member is nil.
type pathStep struct {
	name     string
	optional bool
}

// literals are identifiers that expr reads as constants, not fields.
var literals = map[string]bool{"true": true, "false": true, "nil": true}

// compileValue compiles a column's expression. A plain field path is read straight from the
// record instead of through the expression VM: the result is the same (a missing field is
// nil, a path through a non-object is an error) at a fraction of the cost, which matters at
// hundreds of thousands of rows per second. Anything else is evaluated by expr.
func compileValue(f config.Field) (valueFunc, error) {
	if f.Expr == nil {
		m, err := eval.CompileFields(f.Nested)
		if err != nil {
			return nil, err
		}
		return func(env eval.Env) (any, error) { return m.Eval(env) }, nil
	}
	src := strings.TrimSpace(f.Expr.Src)
	if fieldPath.MatchString(src) && !literals[strings.SplitN(src, ".", 2)[0]] {
		var steps []pathStep
		for _, part := range strings.Split(src, ".") {
			name, optional := strings.CutSuffix(part, "?")
			steps = append(steps, pathStep{name: name, optional: optional})
		}
		return pathValue(src, steps), nil
	}
	p, err := eval.Compile(*f.Expr, eval.Any)
	if err != nil {
		return nil, err
	}
	return p.Eval, nil
}

// pathValue follows expr's member access rules: a missing field is nil, fetching from nil
// is an error unless the access is ?., and fetching from a non-object is an error.
func pathValue(src string, steps []pathStep) valueFunc {
	return func(env eval.Env) (any, error) {
		var cur any = env.Vars
		for i, st := range steps {
			switch obj := cur.(type) {
			case map[string]any:
				cur = obj[st.name]
			case nil:
				if i > 0 && steps[i-1].optional {
					return nil, nil
				}
				return nil, fmt.Errorf("%s: cannot fetch %s from <nil>", src, st.name)
			default:
				return nil, fmt.Errorf("%s: cannot fetch %s from %s", src, st.name, describeValue(obj))
			}
		}
		return cur, nil
	}
}
