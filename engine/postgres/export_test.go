package postgres

import (
	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/eval"
)

// SetWriteMode switches how o moves batches into its table, so that benchmarks (and the
// effectively-once tests) can compare the alternatives on the same data.
func SetWriteMode(o *Output, mode string) {
	switch mode {
	case "session-staging":
		o.mode = writeSessionStaging
	case "tx-staging":
		o.mode = writeTxStaging
	case "unnest":
		o.mode = writeUnnest
	default:
		panic("unknown write mode " + mode)
	}
}

// WriteModes lists the modes SetWriteMode accepts, the default first.
var WriteModes = []string{"session-staging", "tx-staging", "unnest"}

// ColumnValue compiles src as a column expression and evaluates it over vars.
func ColumnValue(src string, vars map[string]any) (any, error) {
	f, err := compileValue(config.Field{Name: "c", Expr: &config.Expr{Src: src}})
	if err != nil {
		return nil, err
	}
	return f(eval.Env{Vars: vars})
}
