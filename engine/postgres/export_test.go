package postgres

import (
	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/eval"
)

// SetWriteMode switches how o moves batches into its table, so that benchmarks (and the
// effectively-once tests) can compare the alternatives on the same data.
func SetWriteMode(o *Output, mode string) {
	switch mode {
	case "copy-first":
		o.mode = writeCopyFirst
	case "session-staging":
		o.mode = writeSessionStaging
	default:
		panic("unknown write mode " + mode)
	}
}

// WriteModes lists the modes SetWriteMode accepts, the default first.
var WriteModes = []string{"copy-first", "session-staging"}

// ColumnValue compiles src as a column expression and evaluates it over vars.
func ColumnValue(src string, vars map[string]any) (any, error) {
	f, err := compileValue(config.Field{Name: "c", Expr: &config.Expr{Src: src}})
	if err != nil {
		return nil, err
	}
	return f(eval.Env{Vars: vars})
}

// ConvertBatch converts batch to rows the way Write does, without writing.
func ConvertBatch(o *Output, batch []*engine.Record, rejects *engine.Rejects) int {
	src := &rowSource{o: o, batch: batch, rejects: rejects}
	src.drain()
	return len(src.rows)
}

// AppendJSON encodes v as the output encodes jsonb values.
func AppendJSON(v any) ([]byte, error) { return appendJSON(v) }
