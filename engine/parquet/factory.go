package parquet

import (
	"context"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/store"
)

// Factory declares the parquet output.
var Factory = engine.OutputFactory{
	Type: "parquet",
	Doc: "Writes records as rows of Parquet files in a local directory, in Hive-style partitions " +
		"(dir/tenant=acme/metric=cpu_load/date=2025-10-16/part-*.parquet) that DuckDB, Arrow and Spark read. " +
		"The built-in tables metrics and alerts have default columns; any other table needs columns:. " +
		"A batch is durable once it is in the output's write-ahead log; rows are written to files by " +
		"rows, bytes or age, each file appearing atomically, and a redelivered record (at or below the " +
		"highest source offset already stored) is not written twice. Small files are merged, and " +
		"retention: deletes old date= partitions.",
	Example: `output:
  parquet:
    dir: data/parquet
    table: metrics
    flush_age: 5s
    retention: 30d
`,
	NewConfig: func() any { return &Config{} },
	InSinks:   true,
	Check: func(cfg any, env engine.BuildEnv) ([]string, error) {
		c, err := engine.ConfigOf[Config]("parquet output", cfg)
		if err != nil {
			return nil, err
		}
		return Check(c, env.Input, env.Warnings)
	},
	Build: func(_ context.Context, cfg any, env engine.OutputEnv) (engine.Output, error) {
		c, err := engine.ConfigOf[Config]("parquet output", cfg)
		if err != nil {
			return nil, err
		}
		return NewOutput(c, Options{Stream: env.Stream, Logger: env.Logger, Clock: env.Clock, Input: env.Input})
	},
}

var _ engine.TableOutput = (*Output)(nil)

// OpenStore returns a store over the output's files and the rows it has not flushed yet;
// release closes the files the store keeps open between queries.
func (o *Output) OpenStore(context.Context) (store.Store, func(), error) {
	st, err := NewStore(o)
	if err != nil {
		return nil, nil, err
	}
	return st, func() { st.Close() }, nil
}
