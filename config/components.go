package config

import "reflect"

// Component is a documented part of a stream that is not a processor: its input and its
// outputs. Processors are documented by their own packages through the Registry; these are
// the ones the engine itself implements, declared here so that the generated component
// pages (docs/components) come from data next to the config structs they describe.
type Component struct {
	// Kind is "input" or "output"; the page is docs/components/<kind>-<name>.md.
	Kind string
	Name string
	// Doc is a one-paragraph description.
	Doc string
	// Example is YAML as written inside one item of streams:, e.g. "input: {...}".
	Example string
	// Config is the struct whose tagged fields are the component's settings.
	Config reflect.Type
	// Settings, when set, are the only keys of Config that belong to this component:
	// the topic output and the postgres output share the Output struct.
	Settings []string
	// Paths are where the settings are written in a pipeline file, e.g. "streams[].input".
	Paths []string
}

// CoreComponents lists the engine's own inputs and outputs, in documentation order.
var CoreComponents = []Component{
	{
		Kind:  "input",
		Name:  "topic",
		Paths: []string{"streams[].input"},
		Doc: "Reads a topic through a consumer group (eventops.<stream name> by default) in batches of " +
			"up to batch_size records. Each record's value is decoded as a JSON object and, when schema " +
			"is set, validated against that JSON Schema; records that fail either go to the dead-letter " +
			"topic with the reason. A batch's offsets are committed only after its output and its dead " +
			"letters are written, so nothing is lost when the engine stops or crashes.",
		Example: `input:
  topic: ingest.raw.agent
  schema: raw-agent
  dead_letter: ops.deadletter.v1
  start: earliest
  batch_size: 10000
`,
		Config: reflect.TypeFor[Input](),
	},
	{
		Kind:  "output",
		Name:  "topic",
		Paths: []string{"streams[].output"},
		Doc: "Writes each record as JSON to a topic and waits for every write to be acknowledged " +
			"before the batch's input offsets are committed. The key expression sets the record key " +
			"(otherwise the input record's key is kept), headers add computed headers, and schema " +
			"checks every record before it is written (failures go to the dead-letter topic).",
		Example: `output:
  topic: signals.metric.v1
  key: tenant_id
  headers: {x-tenant: tenant_id}
  schema: envelope
`,
		Config:   reflect.TypeFor[Output](),
		Settings: []string{"topic", "key", "headers", "schema"},
	},
	{
		Kind:  "output",
		Name:  "postgres",
		Paths: []string{"streams[].output.postgres", "sinks[].postgres"},
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
		Config: reflect.TypeFor[PostgresOutput](),
	},
	{
		Kind:  "output",
		Name:  "parquet",
		Paths: []string{"streams[].output.parquet", "sinks[].parquet"},
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
		Config: reflect.TypeFor[ParquetOutput](),
	},
}
