package config

import (
	"time"
)

// Pos is a position in a pipeline file. Line and Col are 1-based, as yaml.v3 reports them.
type Pos struct {
	File string
	Line int
	Col  int
}

// Duration is a time span written the way operators write them: "500ms", "30s", "5m",
// "2h", "3d", "2w", or combinations Go understands ("1h30m"). "forever" means -1.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Expr is an expr-lang expression as written in the file, with where it was written so that
// compile and type errors can point at the column inside the expression.
type Expr struct {
	Src string
	// Pos is the position of the first character of the expression source itself
	// (after an opening quote, or on the first content line of a block scalar).
	Pos Pos
	// Path is the dotted config path of the expression, e.g. streams[1].processors[0].threshold.rules[2].when.
	Path string
	// source is set when Src is not a verbatim copy of one line of the file (escapes in
	// quoted strings, folded and multi-line scalars): PosAt then finds each character in it.
	// Positions are only needed for findings, so they are worked out only then.
	source *sourceText
	// skip is how many runes of the aligned text come before Src, and parent that text,
	// for an Expr that is part of another (Sub).
	skip   int
	parent string
}

// sourceText is the text of a pipeline file, shared by its expressions.
type sourceText struct {
	file  string
	lines []string
}

// PosAt is the file position of the rune at offset (0-based, in runes) of Src, so that an
// error found inside the expression points at the character in the file, whatever quoting
// or folding YAML applied.
func (e Expr) PosAt(offset int) Pos {
	if e.source != nil && offset >= 0 {
		if runes := e.source.align(e.whole(), e.Pos); offset+e.skip < len(runes) {
			return runes[offset+e.skip]
		}
	}
	line, col, i := 0, 0, 0
	for _, r := range e.Src {
		if i == offset {
			break
		}
		if r == '\n' {
			line, col = line+1, 0
		} else {
			col++
		}
		i++
	}
	pos := e.Pos
	pos.Line += line
	pos.Col += col
	return pos
}

// Sub is the part of e that starts at rune offset and reads src (a template placeholder),
// keeping positions exact.
func (e Expr) Sub(offset int, src string) Expr {
	if e.source != nil {
		// Positions are worked out only if a finding needs one (PosAt).
		return Expr{Src: src, Pos: e.Pos, Path: e.Path, source: e.source, skip: e.skip + offset, parent: e.whole()}
	}
	return Expr{Src: src, Pos: e.PosAt(offset), Path: e.Path}
}

// whole is the text the aligned positions are for: Src, or for a Sub the parent's text.
func (e Expr) whole() string {
	if e.parent != "" {
		return e.parent
	}
	return e.Src
}

// IsZero reports whether no expression was written.
func (e Expr) IsZero() bool { return e.Src == "" }

// Field is one entry of an ordered field mapping: either an expression or a nested mapping.
type Field struct {
	Name   string
	Pos    Pos // position of the key
	Expr   *Expr
	Nested Fields
}

// Fields is an ordered mapping from names to expressions, decoded from a YAML mapping whose
// values are expression strings or nested mappings (which build nested objects).
type Fields []Field

// ProcessorEntry is one item of a stream's processors list: a mapping with exactly one key,
// the processor type, whose value decodes into that type's Config.
type ProcessorEntry struct {
	Type   string
	Pos    Pos
	Path   string // e.g. streams[0].processors[1].threshold
	Config any    // pointer returned by the registry's NewConfig, decoded and validated
}

// Pipeline is a whole pipeline file.
type Pipeline struct {
	Version    int               `yaml:"version" doc:"File format version. Must be 1."`
	Broker     Broker            `yaml:"broker" doc:"Where the Kafka-protocol broker is: external brokers or an embedded one."`
	Topics     map[string]Topic  `yaml:"topics" doc:"Topics the engine creates (if missing) and validates."`
	Schemas    map[string]string `yaml:"schemas" doc:"JSON Schema files by name, referenced by inputs and outputs."`
	Lookups    map[string]Lookup `yaml:"lookups" doc:"Lookup tables by name, used by enrich processors."`
	DeadLetter string            `yaml:"dead_letter" ref:"topics" doc:"Default dead-letter topic for every stream that does not set input.dead_letter."`
	Streams    []Stream          `yaml:"streams" doc:"Streams: each reads one topic, runs processors and writes one output."`
	Sinks      []Sink            `yaml:"sinks" doc:"Sinks: copy a topic into a store (shorthand for a stream without processors)."`
	API        *API              `yaml:"api" doc:"The HTTP API and dashboard."`

	// File is the path the pipeline was loaded from.
	File string `yaml:"-"`
	// Positions of named things, for messages that point at them (filled by the loader).
	Pos map[string]Pos `yaml:"-"`
	// Warnings are problems that do not stop the pipeline, such as an unset ${VAR}.
	Warnings Errors `yaml:"-"`
	// positions of every value written in the file, by dotted path (see At).
	positions map[string]Pos
}

// At is the position of the value at path (e.g. "api.routes[0].columns[1]"), or of its
// nearest parent that was written in the file, so that checks made after loading can point
// at what they complain about.
func (p *Pipeline) At(path string) Pos {
	for {
		if pos, ok := p.positions[path]; ok {
			return pos
		}
		if path == "" {
			return Pos{File: p.File, Line: 1, Col: 1}
		}
		path = parentPath(path)
	}
}

// Broker says where the broker is. Exactly one of Brokers and Embedded is set.
type Broker struct {
	Brokers  []string  `yaml:"brokers" doc:"Seed broker addresses (host:port) of a Redpanda or Kafka cluster."`
	Embedded *Embedded `yaml:"embedded" doc:"Run an in-process Kafka-protocol broker instead."`
	ClientID string    `yaml:"client_id" default:"eventops-engine" doc:"Kafka client id."`
}

// Embedded configures the in-process broker.
type Embedded struct {
	Listen          string   `yaml:"listen" default:"127.0.0.1:9092" doc:"Address the embedded broker listens on (always a loopback host)."`
	DataDir         string   `yaml:"data_dir" default:"data/broker" doc:"Directory where records and committed offsets persist across restarts."`
	CleanerInterval Duration `yaml:"cleaner_interval" default:"1m" doc:"How often the engine applies retention and compaction to the embedded broker's topics."`
}

// Topic is a topic's declared settings.
type Topic struct {
	Partitions     int               `yaml:"partitions" default:"1" doc:"Number of partitions."`
	Replication    int               `yaml:"replication" default:"1" doc:"Replication factor (external brokers only)."`
	Retention      Duration          `yaml:"retention" doc:"How long records are kept (e.g. 3d); 'forever' keeps them."`
	RetentionBytes Size              `yaml:"retention_bytes" doc:"Maximum bytes kept per partition (e.g. 10GiB); 0 means no limit."`
	Cleanup        string            `yaml:"cleanup" default:"delete" enum:"delete,compact,compact+delete" doc:"Cleanup policy."`
	Configs        map[string]string `yaml:"configs" doc:"Other Kafka topic configs, checked against the ones the engine knows."`
	Ingest         bool              `yaml:"ingest" doc:"Producers outside the pipeline (agents, kcat, other services) write to this topic. Lint warns about a stream reading a topic that nothing produces unless it is an ingest topic."`
}

// Lookup is a lookup table.
type Lookup struct {
	File   string              `yaml:"file" doc:"CSV (with a header row) or JSON file holding the rows."`
	Format string              `yaml:"format" enum:"csv,json" doc:"File format; default from the file extension."`
	Key    string              `yaml:"key" doc:"Column that holds the lookup key."`
	Rows   []map[string]string `yaml:"rows" doc:"Inline rows, instead of a file."`
}

// Stream reads one topic, runs processors and writes one output.
type Stream struct {
	Name       string           `yaml:"name" required:"true" doc:"Unique stream name; also names its consumer group."`
	Input      Input            `yaml:"input" required:"true" doc:"Where the stream reads from."`
	Processors []ProcessorEntry `yaml:"processors" doc:"Processors, applied in order."`
	Output     Output           `yaml:"output" required:"true" doc:"Where the stream writes to."`
}

// Input is a stream's input.
type Input struct {
	Topic      string `yaml:"topic" required:"true" ref:"topics" doc:"Topic to read."`
	Schema     string `yaml:"schema" ref:"schemas" doc:"Name of a JSON Schema (from schemas:) every record must satisfy."`
	DeadLetter string `yaml:"dead_letter" ref:"topics" doc:"Topic that receives records that fail, with the reason in headers."`
	Group      string `yaml:"group" doc:"Consumer group; default eventops.<stream name>."`
	Start      string `yaml:"start" default:"earliest" enum:"earliest,latest" doc:"Where a new consumer group starts."`
	BatchSize  int    `yaml:"batch_size" default:"10000" doc:"Maximum records processed and committed together."`
}

// Output is a stream's output: exactly one of Topic and Postgres.
type Output struct {
	Topic    string           `yaml:"topic" ref:"topics" doc:"Topic to write records to."`
	Key      *Expr            `yaml:"key" doc:"Expression giving the record key."`
	Headers  map[string]*Expr `yaml:"headers" doc:"Header name to expression."`
	Schema   string           `yaml:"schema" ref:"schemas" doc:"Name of a JSON Schema every output record must satisfy (failures go to the dead-letter topic)."`
	Postgres *PostgresOutput  `yaml:"postgres" doc:"Write records to a PostgreSQL table."`
}

// PostgresOutput writes records into a PostgreSQL table.
type PostgresOutput struct {
	DSN       string `yaml:"dsn" required:"true" doc:"PostgreSQL connection string."`
	Table     string `yaml:"table" required:"true" doc:"Table name; metrics and alerts have built-in columns."`
	Columns   Fields `yaml:"columns" doc:"Column name to expression; default for the built-in tables."`
	DedupeKey string `yaml:"dedupe_key" default:"event_id" doc:"Column with a unique index; a redelivered record with the same value is not inserted twice."`
	Create    *bool  `yaml:"create" default:"true" doc:"Create the table and its indexes if missing."`
}

// Sink copies a topic into a store.
type Sink struct {
	Name      string          `yaml:"name" doc:"Name; default sink.<from>.<table>."`
	From      string          `yaml:"from" required:"true" ref:"topics" doc:"Topic to read."`
	Group     string          `yaml:"group" doc:"Consumer group; default eventops.<name>."`
	BatchSize int             `yaml:"batch_size" default:"10000" doc:"Maximum records written in one transaction."`
	Postgres  *PostgresOutput `yaml:"postgres" doc:"Write to a PostgreSQL table."`
}

// API is the HTTP server.
type API struct {
	Listen    string  `yaml:"listen" default:":8088" doc:"Address to listen on."`
	Dashboard *bool   `yaml:"dashboard" default:"true" doc:"Serve the dashboard at /."`
	Routes    []Route `yaml:"routes" doc:"Query and stream routes."`
}

// Route is one API route: either a table query or a live stream of a topic.
type Route struct {
	Path    string   `yaml:"path" required:"true" doc:"URL path, e.g. /metrics/cpu."`
	Table   string   `yaml:"table" doc:"Table to query (one written by a sink or output)."`
	Where   Fields   `yaml:"where" doc:"Column to expression over the request (query.<param>); a missing query parameter is a 400."`
	Order   string   `yaml:"order" doc:"Column and direction, e.g. 'ts desc'."`
	Limit   int      `yaml:"limit" default:"100" doc:"Maximum rows; a request may ask for fewer with ?limit=."`
	Columns []string `yaml:"columns" doc:"Columns to return; default all."`
	// LatestBy makes a history table answer with current state: the alerts table keeps every
	// transition, and latest_by: fingerprint with where state = "firing" lists what fires now.
	LatestBy string `yaml:"latest_by" doc:"Keep only the newest row (by ts) of each value of this column before where applies, e.g. latest_by: fingerprint on the alerts table with where: {state: '\"firing\"'} lists the alerts firing now."`
	Stream   string `yaml:"stream" ref:"topics" doc:"Topic to stream as Server-Sent Events."`
}
