package postgres

import (
	"context"
	"fmt"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/eval"
	"github.com/eventops/eventops-engine/engine/store"
)

// Factory declares the postgres output.
var Factory = engine.OutputFactory{
	Type: "postgres",
	Doc: "Writes records as rows of a PostgreSQL table, as a stream's output or in a sink. " +
		"The built-in tables metrics and alerts have default columns and are created " +
		"with their indexes when missing; any other table must exist and needs columns:. Rows are " +
		"written with COPY, and a batch holding records already stored (same dedupe_key value, " +
		"e.g. after a redelivery) is inserted without duplicates.",
	Example: `output:
  postgres:
    dsn: ${PG_DSN}
    table: alerts
    columns: {message: 'rule + ": " + message'}
`,
	NewConfig: func() any { return &Config{} },
	InSinks:   true,
	Check:     check,
	Build:     build,
}

// check type-checks the configured column expressions against the records written, and
// returns the columns the table gets (the database is not asked).
func check(cfg any, env engine.BuildEnv) ([]string, error) {
	c, err := engine.ConfigOf[Config]("postgres output", cfg)
	if err != nil {
		return nil, err
	}
	_, fields, err := c.mapping()
	if err != nil {
		return nil, nil // Validate reported it
	}
	if len(c.Columns) > 0 {
		if _, err := eval.CheckFields(c.Columns, env.Input, "", env.Warnings); err != nil {
			return nil, err // placed at each expression
		}
	}
	return fieldNames(fields), nil
}

func build(ctx context.Context, cfg any, env engine.OutputEnv) (engine.Output, error) {
	c, err := engine.ConfigOf[Config]("postgres output", cfg)
	if err != nil {
		return nil, err
	}
	return NewOutput(ctx, c, OutputOptions{Stream: env.Stream, Metrics: env.Metrics, Logger: env.Logger, Clock: env.Clock})
}

var _ engine.TableOutput = (*Output)(nil)

// Table is the table written, as configured.
func (o *Output) Table() string { return o.table.name }

// OpenStore returns a store on the output's database; it holds nothing of its own (the
// connection pool is shared by the process), so release does nothing.
func (o *Output) OpenStore(ctx context.Context) (store.Store, func(), error) {
	st, err := NewStore(ctx, o.dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("store for table %s: %w", o.table.name, err)
	}
	return st, func() {}, nil
}
