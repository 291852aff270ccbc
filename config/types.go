package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Pos is a position in a pipeline file. Line and Col are 1-based, as yaml.v3 reports them.
type Pos struct {
	File string
	Line int
	Col  int
}

// String is file:line:col.
func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col) }

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
	// MaxRecordBytes is checked by the engine itself because a broker refuses a record over
	// its limit with an error that retrying never fixes: the stream would stop for good.
	MaxRecordBytes Size `yaml:"max_record_bytes" default:"1000000" doc:"Largest record (key, value and headers) a stream writes to a topic. A record over it goes to the dead-letter topic with its size, truncated to fit, and the stream goes on. Keep it under the broker's message.max.bytes (Kafka and Redpanda default to 1048588; the embedded broker is set to accept this limit)."`
}

// MaxRecordLimit is the ceiling of broker.max_record_bytes: the embedded broker and the
// producers are configured from it, and nothing above it is a sane single record.
const MaxRecordLimit = 64 << 20

// Validate checks the broker settings that do not depend on the rest of the file.
func (b *Broker) Validate() error {
	if b.MaxRecordBytes != 0 && (b.MaxRecordBytes < 1024 || b.MaxRecordBytes > MaxRecordLimit) {
		return fmt.Errorf("max_record_bytes %s: want between 1KiB and 64MiB", b.MaxRecordBytes)
	}
	return nil
}

// Embedded configures the in-process broker.
type Embedded struct {
	Listen          string   `yaml:"listen" default:"127.0.0.1:9092" doc:"Address the embedded broker listens on (always a loopback host)."`
	DataDir         string   `yaml:"data_dir" default:"data/broker" doc:"Directory where records and committed offsets persist across restarts."`
	CleanerInterval Duration `yaml:"cleaner_interval" default:"1m" doc:"How often the engine applies retention and compaction to the embedded broker's topics."`
}

// Topic is a topic's declared settings.
type Topic struct {
	Partitions     int      `yaml:"partitions" default:"1" doc:"Number of partitions."`
	Replication    int      `yaml:"replication" default:"1" doc:"Replication factor (external brokers only)."`
	Retention      Duration `yaml:"retention" doc:"How long records are kept (e.g. 3d); 'forever' keeps them."`
	RetentionBytes Size     `yaml:"retention_bytes" doc:"Maximum bytes kept per partition (e.g. 10GiB); 0 means no limit."`
	Cleanup        string   `yaml:"cleanup" default:"delete" enum:"delete,compact,compact+delete" doc:"Cleanup policy."`
	// MinCompactionLag protects readers that fall behind (a sink whose database is down):
	// a record they have not read yet must not be replaced by a later one of its key.
	MinCompactionLag Duration          `yaml:"min_compaction_lag" default:"1d" doc:"On a compacted topic, how long a record is kept before compaction may replace it by a later record of its key (min.compaction.lag.ms on Kafka and Redpanda). A stream or sink that falls further behind than this (a database down longer) would miss the replaced records. The embedded broker instead compacts only once every stream and sink of the pipeline has read the topic to its end. Longer keeps more superseded records on disk; 0 lets the broker compact at once."`
	Configs          map[string]string `yaml:"configs" doc:"Other Kafka topic configs, checked against the ones the engine knows."`
	Ingest           bool              `yaml:"ingest" doc:"Producers outside the pipeline (agents, kcat, other services) write to this topic. Lint warns about a stream reading a topic that nothing produces unless it is an ingest topic."`
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
	Topic      string   `yaml:"topic" required:"true" ref:"topics" doc:"Topic to read."`
	Schema     string   `yaml:"schema" ref:"schemas" doc:"Name of a JSON Schema (from schemas:) every record must satisfy."`
	DeadLetter string   `yaml:"dead_letter" ref:"topics" doc:"Topic that receives records that fail, with the reason in headers."`
	Group      string   `yaml:"group" doc:"Consumer group; default eventops.<stream name>."`
	Start      string   `yaml:"start" default:"earliest" enum:"earliest,latest" doc:"Where a new consumer group starts."`
	BatchSize  int      `yaml:"batch_size" default:"10000" doc:"Maximum records processed and committed together."`
	StallAfter Duration `yaml:"stall_after" default:"1m" doc:"/-/ready reports the stream stalled (503) when records wait on its input and it has committed no batch for this long."`
}

// Output is a stream's output: exactly one of Topic, Postgres and Parquet.
type Output struct {
	Topic    string           `yaml:"topic" ref:"topics" doc:"Topic to write records to."`
	Key      *Expr            `yaml:"key" doc:"Expression giving the record key."`
	Headers  map[string]*Expr `yaml:"headers" doc:"Header name to expression."`
	Schema   string           `yaml:"schema" ref:"schemas" doc:"Name of a JSON Schema every output record must satisfy (failures go to the dead-letter topic)."`
	Postgres *PostgresOutput  `yaml:"postgres" doc:"Write records to a PostgreSQL table."`
	Parquet  *ParquetOutput   `yaml:"parquet" doc:"Write records to Parquet files in a local directory (the local store)."`
}

// PostgresOutput writes records into a PostgreSQL table.
type PostgresOutput struct {
	DSN       string `yaml:"dsn" required:"true" doc:"PostgreSQL connection string."`
	Table     string `yaml:"table" required:"true" doc:"Table name; metrics and alerts have built-in columns."`
	Columns   Fields `yaml:"columns" doc:"Column name to expression; default for the built-in tables."`
	DedupeKey string `yaml:"dedupe_key" default:"event_id" doc:"Column with a unique index; a redelivered record with the same value is not inserted twice."`
	Create    *bool  `yaml:"create" default:"true" doc:"Create the table and its indexes if missing."`
}

// ParquetOutput writes records as rows of Parquet files under Dir, in Hive-style partitions
// (dir/tenant=acme/metric=cpu_load/date=2025-10-16/part-*.parquet).
type ParquetOutput struct {
	Dir          string          `yaml:"dir" required:"true" doc:"Directory of the table's files, relative to the working directory (like broker.embedded.data_dir). Give each table its own directory, e.g. data/parquet for metrics and data/parquet-alerts for alerts, so that a glob over one does not read the other."`
	Table        string          `yaml:"table" required:"true" doc:"Table name; metrics and alerts have built-in columns, any other table needs columns:."`
	Columns      Fields          `yaml:"columns" doc:"Column name to expression; default for the built-in tables (entries here replace or add to them)."`
	PartitionBy  Fields          `yaml:"partition_by" doc:"Partition directory name to expression over the row's columns (not the record), in directory order. A timestamp value becomes its UTC date (YYYY-MM-DD). Default for metrics: {tenant: tenant, metric: metric, date: ts}; for alerts: {tenant: tenant, date: ts}; none for other tables."`
	FlushRows    int             `yaml:"flush_rows" default:"100000" doc:"Write the buffered rows to files once this many are buffered."`
	FlushBytes   Size            `yaml:"flush_bytes" default:"64MiB" doc:"Write the buffered rows to files once they take about this much memory."`
	FlushAge     Duration        `yaml:"flush_age" default:"10s" doc:"Write the buffered rows to files once the oldest has waited this long. Rows are durable (in the write-ahead log) and queryable before that."`
	SortBy       []string        `yaml:"sort_by" doc:"Columns each file's rows are sorted by, so that readers skip the pages of other hosts or alerts by their min/max statistics. Default for metrics: [tenant, metric, source_id, ts]; for alerts: [tenant, fingerprint, ts]; none for other tables."`
	RowGroupRows int             `yaml:"row_group_rows" default:"131072" doc:"Maximum rows per row group: row groups are the unit readers skip by their min/max statistics."`
	Compression  string          `yaml:"compression" default:"zstd" enum:"zstd,snappy,none" doc:"Column compression codec."`
	Retention    Duration        `yaml:"retention" default:"forever" doc:"Delete date= partitions whose date is older than this (e.g. 30d); 'forever' keeps everything."`
	Compact      *ParquetCompact `yaml:"compact" doc:"Merging of small files within a partition."`
}

// ParquetCompact configures the background merging of a partition's small files.
type ParquetCompact struct {
	MinFiles   int      `yaml:"min_files" default:"8" doc:"Merge a partition's small files once it has at least this many; 0 turns compaction off."`
	TargetSize Size     `yaml:"target_size" default:"128MiB" doc:"Files at least this large are left alone; merging stops adding inputs at this size."`
	Interval   Duration `yaml:"interval" default:"1m" doc:"How often partitions are checked for compaction and retention."`
}

// Validate reports every problem of the Parquet output's settings.
func (c *ParquetOutput) Validate() error {
	var errs []error
	if c.FlushRows < 1 {
		errs = append(errs, FieldErrorf("flush_rows", "must be at least 1, got %d", c.FlushRows))
	}
	if c.FlushBytes < 0 {
		errs = append(errs, FieldErrorf("flush_bytes", "must not be negative"))
	}
	if c.FlushAge <= 0 {
		errs = append(errs, FieldErrorf("flush_age", "must be positive, e.g. 10s"))
	}
	if c.RowGroupRows < 1 {
		errs = append(errs, FieldErrorf("row_group_rows", "must be at least 1, got %d", c.RowGroupRows))
	}
	if c.Retention == 0 || (c.Retention > 0 && c.Retention.D() < 24*time.Hour) {
		errs = append(errs, FieldErrorf("retention", "must be at least 1d (partitions are whole days) or forever, got %s", time.Duration(c.Retention)))
	}
	if c.Compact != nil {
		if c.Compact.MinFiles < 0 || c.Compact.MinFiles == 1 {
			errs = append(errs, FieldErrorf("compact.min_files", "must be 0 (off) or at least 2, got %d", c.Compact.MinFiles))
		}
		if c.Compact.Interval <= 0 {
			errs = append(errs, FieldErrorf("compact.interval", "must be positive, e.g. 1m"))
		}
	}
	for _, f := range c.PartitionBy {
		if f.Expr == nil {
			errs = append(errs, FieldErrorf("partition_by."+f.Name, "a partition needs an expression over the row's columns, e.g. tenant"))
		}
	}
	return errors.Join(errs...)
}

// Sink copies a topic into a store.
type Sink struct {
	Name      string          `yaml:"name" doc:"Name; default sink.<from>.<table>."`
	From      string          `yaml:"from" required:"true" ref:"topics" doc:"Topic to read."`
	Group     string          `yaml:"group" doc:"Consumer group; default eventops.<name>."`
	BatchSize int             `yaml:"batch_size" default:"10000" doc:"Maximum records written in one transaction."`
	Postgres  *PostgresOutput `yaml:"postgres" doc:"Write to a PostgreSQL table."`
	Parquet   *ParquetOutput  `yaml:"parquet" doc:"Write to Parquet files in a local directory (the local store)."`
}

// API is the HTTP server.
type API struct {
	Listen    string `yaml:"listen" default:":8088" doc:"Address to listen on."`
	Dashboard *bool  `yaml:"dashboard" default:"true" doc:"Serve the dashboard at /."`
	// The limits below keep the server answering under abuse (slow or idle clients holding
	// connections, floods, oversized requests); docs/reliability.md explains them.
	ReadTimeout    Duration `yaml:"read_timeout" default:"10s" doc:"Longest time a client may take to send a whole request (headers and body); a slower one, such as a client sending its headers a byte at a time, gets 408 and is disconnected."`
	WriteTimeout   Duration `yaml:"write_timeout" default:"30s" doc:"Longest time writing a response may wait for a client that does not read it. A live stream (SSE) is not cut by its age: each event and heartbeat gets this long to be written."`
	IdleTimeout    Duration `yaml:"idle_timeout" default:"60s" doc:"How long a keep-alive connection may wait for its next request before the server closes it."`
	MaxConnections int      `yaml:"max_connections" default:"1024" doc:"Connections served at once, open SSE streams included; a connection beyond it gets 503 and is closed at once."`
	MaxHeaderBytes Size     `yaml:"max_header_bytes" default:"8KiB" doc:"Largest request head (request line and headers); a larger one gets 431, or 414 when the request line alone does not fit. Each connection holds a buffer of this size."`
	MaxURLBytes    Size     `yaml:"max_url_bytes" default:"4KiB" doc:"Longest request URL (path and query); a longer one gets 414. A URL is also limited by max_header_bytes."`
	Routes         []Route  `yaml:"routes" doc:"Query and stream routes."`
}

// Bounds of the API's size limits: below them ordinary requests (a browser's cookies and
// headers) would be refused; above MaxAPIHeaderBytes every connection's read buffer costs
// more memory than any sensible request needs.
const (
	MinAPIHeaderBytes = 1 << 10
	MaxAPIHeaderBytes = 1 << 20
	MinAPIURLBytes    = 256
)

// Validate reports every problem of the API's limits.
func (a *API) Validate() error {
	var errs []error
	for _, d := range []struct {
		field string
		v     Duration
		eg    string
	}{{"read_timeout", a.ReadTimeout, "10s"}, {"write_timeout", a.WriteTimeout, "30s"}, {"idle_timeout", a.IdleTimeout, "60s"}} {
		if d.v <= 0 {
			errs = append(errs, FieldErrorf(d.field, "must be positive, e.g. %s: without it one client can hold a connection for ever", d.eg))
		}
	}
	if a.MaxConnections < 1 {
		errs = append(errs, FieldErrorf("max_connections", "must be at least 1, got %d", a.MaxConnections))
	}
	if a.MaxHeaderBytes < MinAPIHeaderBytes || a.MaxHeaderBytes > MaxAPIHeaderBytes {
		errs = append(errs, FieldErrorf("max_header_bytes", "must be between %s and %s, got %s", Size(MinAPIHeaderBytes), Size(MaxAPIHeaderBytes), a.MaxHeaderBytes))
	}
	if a.MaxURLBytes < MinAPIURLBytes {
		errs = append(errs, FieldErrorf("max_url_bytes", "must be at least %d, got %s", MinAPIURLBytes, a.MaxURLBytes))
	}
	return errors.Join(errs...)
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

// Files lists the files the pipeline is made of: the pipeline file itself and every file it
// references (schemas, lookup tables), as resolved paths. A hot reload watches them.
func (p *Pipeline) Files() []string {
	files := []string{}
	if p.File != "" {
		files = append(files, p.File)
	}
	for _, name := range slices.Sorted(maps.Keys(p.Schemas)) {
		if f := p.Schemas[name]; f != "" {
			files = append(files, f)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.Lookups)) {
		if f := p.Lookups[name].File; f != "" {
			files = append(files, f)
		}
	}
	return slices.Compact(files)
}
