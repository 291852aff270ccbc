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
	Version    int                 `yaml:"version" doc:"File format version. Must be 1."`
	Broker     Broker              `yaml:"broker" doc:"Where the Kafka-protocol broker is: external brokers or an embedded one."`
	Topics     map[string]Topic    `yaml:"topics" doc:"Topics the engine creates (if missing) and validates."`
	Schemas    map[string]string   `yaml:"schemas" doc:"JSON Schema files by name, referenced by inputs and outputs."`
	Lookups    map[string]Lookup   `yaml:"lookups" doc:"Lookup tables by name, used by enrich processors."`
	DeadLetter string              `yaml:"dead_letter" ref:"topics" doc:"Default dead-letter topic for every stream that does not set input.dead_letter."`
	Streams    []Stream            `yaml:"streams" doc:"Streams: each reads one topic, runs processors and writes one output."`
	Sinks      []Sink              `yaml:"sinks" doc:"Sinks: copy a topic into a store (shorthand for a stream without processors)."`
	API        *API                `yaml:"api" doc:"The HTTP API and dashboard."`
	Topology   map[string][]string `yaml:"topology" doc:"The service dependency graph, node to what it depends on, e.g. {web: [api], api: [db, cache]}: what correlate processors group alerts over when they name no topology of their own. It is also the lookup table topology (key node, column depends_on)."`
	Registry   *SchemaRegistry     `yaml:"schema_registry" doc:"The Confluent-compatible schema registry that inputs and outputs with format: confluent use: the engine's own next to its embedded broker (listen), or Redpanda's or Confluent's (url). See docs/ingest.md."`

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
	TLS            *BrokerTLS  `yaml:"tls" doc:"Connect to the brokers over TLS (external brokers only): every managed Kafka and most Redpanda clusters ask for it."`
	SASL           *BrokerSASL `yaml:"sasl" doc:"Authenticate to the brokers with SASL. With an embedded broker, it requires this user (PLAIN or SCRAM) of every client, the engine's own and kcat alike."`
	MaxRecordBytes Size        `yaml:"max_record_bytes" default:"1000000" doc:"Largest record (key, value and headers) a stream writes to a topic. A record over it goes to the dead-letter topic with its size, truncated to fit, and the stream goes on. Keep it under the broker's message.max.bytes (Kafka and Redpanda default to 1048588; the embedded broker is set to accept this limit)."`
}

// BrokerTLS is how the engine connects to brokers over TLS.
type BrokerTLS struct {
	CA         string `yaml:"ca" doc:"CA certificates (PEM) that sign the brokers' certificates; default the system's."`
	Cert       string `yaml:"cert" doc:"Client certificate (PEM) for brokers that require one (mutual TLS); with key."`
	Key        string `yaml:"key" doc:"The client certificate's private key (PEM)."`
	ServerName string `yaml:"server_name" doc:"The name the brokers' certificates must hold; default the host of the address dialled."`
}

// BrokerSASL is how the engine authenticates to brokers.
type BrokerSASL struct {
	Mechanism    string `yaml:"mechanism" required:"true" enum:"PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER" doc:"SASL mechanism."`
	Username     string `yaml:"username" doc:"User name (PLAIN, SCRAM)."`
	Password     string `yaml:"password" doc:"Password (PLAIN, SCRAM), best from the environment: ${KAFKA_PASSWORD}. Set one of password and password_file."`
	PasswordFile string `yaml:"password_file" doc:"A file whose first line is the password (a mounted secret); read at start."`
	TokenFile    string `yaml:"token_file" doc:"OAUTHBEARER: a file holding the bearer token, read again at every authentication, so a sidecar that refreshes it keeps the engine connected."`
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
	Key    string              `yaml:"key" doc:"Column that holds the lookup key (with topic: the field of each record's value that holds it; default the record's key)."`
	Rows   []map[string]string `yaml:"rows" doc:"Inline rows, instead of a file."`
	Topic  string              `yaml:"topic" ref:"topics" doc:"A topic (best compacted) whose records are the rows, instead of a file: each record's value, a JSON object, is the row of its key; a record without a value deletes its key. Read from its start when the engine starts (streams start once it was read to its end) and followed as records arrive, so a stream writing the topic feeds the table (the edges a service_graph processor learns, a CMDB kept in Kafka). Only committed records are read."`
}

// Stream reads one topic, runs processors and writes one output.
type Stream struct {
	Name       string           `yaml:"name" required:"true" doc:"Unique stream name; also names its consumer group."`
	Input      Input            `yaml:"input" required:"true" doc:"Where the stream reads from."`
	Processors []ProcessorEntry `yaml:"processors" doc:"Processors, applied in order."`
	Output     Output           `yaml:"output" required:"true" doc:"Where the stream writes to."`
}

// Input is a stream's input: a topic, or newline-delimited JSON from a file or standard
// input (for replays, debugging and measuring).
type Input struct {
	Topic          string            `yaml:"topic" ref:"topics" doc:"Topic to read. A stream reads exactly one of topic, file and stdin."`
	File           *FileInput        `yaml:"file" doc:"Read newline-delimited JSON (one record per line) from a file, once, from its start: for replays, debugging and measuring. The stream ends at the end of the file; a pipeline whose streams have all ended stops. Nothing of its position is kept: a restart reads the file again (what the stream wrote to a topic is written again; record_id() gives each line the same id each time, so sinks skip it)."`
	Stdin          *StdinInput       `yaml:"stdin" doc:"Read newline-delimited JSON (one record per line) from standard input, until it closes; otherwise as file."`
	RemoteWrite    *RemoteWriteInput `yaml:"prometheus_remote_write" doc:"Also receive Prometheus remote_write 1.0 (snappy-compressed protobuf) into topic: one record per sample, {metric, labels, value, ts}, answered 204 once stored; 429 with Retry-After when the topic cannot take them in time; a native histogram sample is one record with its buckets. See docs/ingest.md."`
	OTLP           *OTLPInput        `yaml:"otlp" doc:"Also receive OpenTelemetry metrics, logs and traces (OTLP/HTTP in protobuf or JSON on /v1/metrics, /v1/logs, /v1/traces; OTLP/gRPC) into topic: one record per metric data point, log record and span, with \"signal\" saying which (mapping in docs/ingest.md). Answered OK only once stored; 429 / RESOURCE_EXHAUSTED with a retry delay when the topic cannot take them in time, so exporters retry; a record over the broker's max_record_bytes is left out and reported as OTLP partial success."`
	HTTP           *HTTPInput        `yaml:"http" doc:"Also receive records over HTTP into topic: a JSON object, an array of objects, or one object per line, POSTed to path. A request is answered 200 only once its records are stored in topic; 429 with Retry-After when the topic cannot take them in time (send again: at least once); 400 or 413 saying which record and where, when the body is not records. The stream then reads topic as usual."`
	Format         string            `yaml:"format" default:"json" enum:"json,confluent" doc:"How the topic's record values are written: json, or confluent (the Confluent wire format: a 0 byte, the schema id, then Avro binary, JSON, or Protobuf after its message indexes, as Confluent's serializers write; schemas come from schema_registry)."`
	Schema         string            `yaml:"schema" ref:"schemas" doc:"Name of a JSON Schema (from schemas:) every record must satisfy."`
	DeadLetter     string            `yaml:"dead_letter" ref:"topics" doc:"Topic that receives records that fail, with the reason in headers."`
	Group          string            `yaml:"group" doc:"Consumer group; default eventops.<stream name>."`
	Start          string            `yaml:"start" default:"earliest" enum:"earliest,latest" doc:"Where a new consumer group starts."`
	BatchSize      int               `yaml:"batch_size" default:"10000" doc:"Maximum records processed and committed together."`
	StallAfter     Duration          `yaml:"stall_after" default:"1m" doc:"/-/ready reports the stream stalled (503) when records wait on its input and it has committed no batch for this long."`
	CommitInterval Duration          `yaml:"commit_interval" default:"100ms" doc:"A stream that writes a topic or keeps state commits what it read, wrote and changed in one Kafka transaction. It commits at once when nothing more waits on its input; while it works through a backlog, it goes on reading and processing as its writes go out and commits after at most this long (or once it has worked as long as its last commit took, if that is sooner: commits then take at most about half its time). Longer: fewer, larger transactions, more throughput in a backlog; what an open transaction wrote is invisible to readers until it commits. 0 commits after every batch; at most 5s, half the transaction timeout."`
}

// FileInput reads a file of newline-delimited records.
type FileInput struct {
	Path         string `yaml:"path" required:"true" doc:"File to read; relative to the pipeline file's directory."`
	MaxLineBytes Size   `yaml:"max_line_bytes" default:"16MiB" doc:"Longest line read; a longer one stops the stream with an error naming the line, rather than be cut or skipped."`
}

// HTTPInput receives records over HTTP into the stream's topic (engine/httpinput).
type HTTPInput struct {
	Listen       string   `yaml:"listen" required:"true" doc:"Address to listen on, host:port (127.0.0.1:8090; :8090 for every interface). Each http input has its own."`
	Path         string   `yaml:"path" default:"/" doc:"Path records are POSTed to; others get 404."`
	MaxBodyBytes Size     `yaml:"max_body_bytes" default:"8MiB" doc:"Largest request body, after gzip (Content-Encoding: gzip) is undone; a larger one is answered 413."`
	MaxInFlight  int      `yaml:"max_in_flight" default:"64" doc:"Requests being stored at once; one more is answered 429 with Retry-After at once. With max_body_bytes, bounds the memory requests hold."`
	Timeout      Duration `yaml:"timeout" default:"10s" doc:"How long a request waits for the broker to store its records before it is answered 429 with Retry-After."`
}

// RemoteWriteInput receives Prometheus remote_write into the stream's topic; its settings
// are an HTTPInput's, with remote_write's usual path.
type RemoteWriteInput struct {
	Listen       string   `yaml:"listen" required:"true" doc:"Address to listen on, host:port (127.0.0.1:9201; :9201 for every interface). Each receiver has its own."`
	Path         string   `yaml:"path" default:"/api/v1/write" doc:"Path Prometheus writes to (remote_write url: http://HOST:PORT/api/v1/write)."`
	MaxBodyBytes Size     `yaml:"max_body_bytes" default:"8MiB" doc:"Largest request body, sent and once snappy is undone (a small body can claim gigabytes); a larger one is answered 413."`
	MaxInFlight  int      `yaml:"max_in_flight" default:"64" doc:"Requests being stored at once; one more is answered 429 with Retry-After at once."`
	Timeout      Duration `yaml:"timeout" default:"10s" doc:"How long a request waits for the broker to store its samples before it is answered 429 with Retry-After (Prometheus then sends it again)."`
}

// OTLPInput receives OpenTelemetry data into the stream's topic (engine/otlpinput), over
// OTLP/HTTP, OTLP/gRPC or both.
type OTLPInput struct {
	HTTP    *OTLPListener `yaml:"http" doc:"Serve OTLP/HTTP: exporters' endpoint http://HOST:PORT (they add /v1/metrics, /v1/logs, /v1/traces). Protobuf and JSON, plain or gzip."`
	GRPC    *OTLPListener `yaml:"grpc" doc:"Serve OTLP/gRPC: exporters' endpoint HOST:PORT, without TLS (insecure: true)."`
	Signals []string      `yaml:"signals" enum:"metrics,logs,traces" doc:"Signals taken; others are answered 404 / UNIMPLEMENTED. Default all three. To put each signal in its own topic, give each its own stream and port, and point the exporters' per-signal endpoints at them."`
}

// OTLPListener is one protocol of an otlp input.
type OTLPListener struct {
	Listen       string   `yaml:"listen" required:"true" doc:"Address to listen on, host:port (OTLP's usual ports: 4318 for HTTP, 4317 for gRPC; 127.0.0.1:4318 for this machine only, :4318 for every interface)."`
	MaxBodyBytes Size     `yaml:"max_body_bytes" default:"8MiB" doc:"Largest request: an HTTP body after gzip is undone (413 above it), a gRPC message (RESOURCE_EXHAUSTED above it)."`
	MaxInFlight  int      `yaml:"max_in_flight" default:"64" doc:"Requests being stored at once; one more is answered 429 / RESOURCE_EXHAUSTED with a retry delay at once."`
	Timeout      Duration `yaml:"timeout" default:"10s" doc:"How long a request waits for the broker to store its records before it is answered 429 / RESOURCE_EXHAUSTED with a retry delay (exporters then send it again)."`
}

func (o OTLPListener) receiver(path string) HTTPInput {
	return HTTPInput{Listen: o.Listen, Path: path, MaxBodyBytes: o.MaxBodyBytes, MaxInFlight: o.MaxInFlight, Timeout: o.Timeout}
}

// Receiver keys of an otlp input's protocols (Input.Receivers).
const (
	OTLPHTTP = "otlp.http"
	OTLPGRPC = "otlp.grpc"
)

// Receivers lists the input's receivers (http, prometheus_remote_write, otlp.http,
// otlp.grpc) by config path below the input, with their settings as an HTTPInput's.
func (i Input) Receivers() map[string]HTTPInput {
	out := map[string]HTTPInput{}
	if i.HTTP != nil {
		out["http"] = *i.HTTP
	}
	if i.RemoteWrite != nil {
		out["prometheus_remote_write"] = HTTPInput(*i.RemoteWrite)
	}
	if i.OTLP != nil && i.OTLP.HTTP != nil {
		out[OTLPHTTP] = i.OTLP.HTTP.receiver("/v1/")
	}
	if i.OTLP != nil && i.OTLP.GRPC != nil {
		out[OTLPGRPC] = i.OTLP.GRPC.receiver("/")
	}
	return out
}

// SchemaRegistry is where the schemas of the Confluent wire format are (engine/registry,
// engine/confluent).
type SchemaRegistry struct {
	URL      string                     `yaml:"url" doc:"Base URL of an external Confluent-compatible registry (Redpanda: http://HOST:8081; Confluent). Not with listen."`
	Listen   string                     `yaml:"listen" doc:"Serve the engine's own registry here, host:port (127.0.0.1:8081): the Confluent Schema Registry API, kept in the embedded broker's data_dir. Needs broker.embedded."`
	Subjects map[string]RegistrySubject `yaml:"subjects" doc:"Schemas registered (as the next version, if they differ from the latest) at start, by subject, e.g. signals.metric.v1-value: {file: ../schemas/envelope.v1.avsc}. A schema the subject's compatibility level refuses stops the start, saying why."`
}

// RegistrySubject is a schema registered at start.
type RegistrySubject struct {
	File string `yaml:"file" required:"true" doc:"Schema file, relative to the pipeline file: .avsc (Avro), .json (JSON Schema) or .proto (Protobuf: the file's first message is what outputs write)."`
	Type string `yaml:"type" enum:"AVRO,JSON,PROTOBUF" doc:"Schema type; default from the file's extension (.avsc: AVRO, .json: JSON, .proto: PROTOBUF)."`
}

// Subject is the registry subject output o writes with (format: confluent).
func (o Output) RegistrySubject() string {
	if o.Subject != "" {
		return o.Subject
	}
	return o.Topic + "-value"
}

// StdinInput reads standard input as newline-delimited records.
type StdinInput struct {
	MaxLineBytes Size `yaml:"max_line_bytes" default:"16MiB" doc:"Longest line read; a longer one stops the stream with an error naming the line, rather than be cut or skipped."`
}

// Kind names where the input reads from, for messages: the topic's name, "file PATH" or
// "standard input".
func (i Input) Kind() string {
	switch {
	case i.File != nil:
		return "file " + i.File.Path
	case i.Stdin != nil:
		return "standard input"
	}
	return "topic " + i.Topic
}

// Output is a stream's output: the topic output's settings (Topic, Key, Headers, Schema),
// or one output of a registered type in Plugin.
type Output struct {
	Topic   string           `yaml:"topic" ref:"topics" doc:"Topic to write records to."`
	Key     *Expr            `yaml:"key" doc:"Expression giving the record key."`
	Headers map[string]*Expr `yaml:"headers" doc:"Header name to expression."`
	Schema  string           `yaml:"schema" ref:"schemas" doc:"Name of a JSON Schema every output record must satisfy (failures go to the dead-letter topic)."`
	Format  string           `yaml:"format" default:"json" enum:"json,confluent" doc:"How record values are written: json, or confluent (the Confluent wire format with subject's latest schema from schema_registry: Avro, JSON Schema, or Protobuf as the schema's first message; a record that does not fit the schema goes to the dead-letter topic saying which field)."`
	Subject string           `yaml:"subject" doc:"Registry subject whose latest schema format: confluent writes with; default TOPIC-value (Confluent's topic name strategy)."`
	// Plugin is the output when it is not a topic: the registered type written as a key
	// here (postgres: {...}), decoded into that type's config.
	Plugin *OutputEntry `outputs:"streams"`
}

// OutputEntry is an output of a registered type: a key of a stream's output or of a sink
// naming the type, whose value decodes into that type's Config.
type OutputEntry struct {
	Type   string
	Pos    Pos    // of the key
	Path   string // e.g. streams[0].output.postgres, sinks[1].parquet
	Config any    // pointer returned by the registry's NewConfig, decoded and validated
}

// Sink copies a topic into a store.
type Sink struct {
	Name      string `yaml:"name" doc:"Name; default sink.<from>.<table>."`
	From      string `yaml:"from" required:"true" ref:"topics" doc:"Topic to read."`
	Format    string `yaml:"format" default:"json" enum:"json,confluent" doc:"How the topic's values are written: json, or confluent (the Confluent wire format, schemas from schema_registry), as a stream's input.format."`
	Group     string `yaml:"group" doc:"Consumer group; default eventops.<name>."`
	BatchSize int    `yaml:"batch_size" default:"10000" doc:"Maximum records written in one transaction."`
	// Plugin is the store: an output type that may be used in sinks, written as a key here.
	Plugin *OutputEntry `outputs:"sinks"`
}

// StreamName is the name of the stream that runs the sink: its name, or sink.<from>.<table>
// (the output type instead of the table when the output writes none).
func (s Sink) StreamName() string {
	if s.Name != "" {
		return s.Name
	}
	what := "store"
	if s.Plugin != nil {
		what = s.Plugin.Type
		if tw, ok := s.Plugin.Config.(TableWriter); ok {
			what = tw.TableName()
		}
	}
	return "sink." + s.From + "." + what
}

// API is the HTTP server.
type API struct {
	Listen    string    `yaml:"listen" default:"127.0.0.1:8088" doc:"Address to listen on. An address other machines reach (\":8088\", \"0.0.0.0:8088\", a LAN address) needs auth, or insecure: true."`
	Dashboard Dashboard `yaml:"dashboard" doc:"The dashboard served at /: its title, the routes' query parameters it starts with, and its panels (charts, stats, what fires now, alert history, incidents, silences); without panels it shows an overview of the routes. dashboard: false serves none (/ is then an ordinary route)."`
	// The limits below keep the server answering under abuse (slow or idle clients holding
	// connections, floods, oversized requests); docs/reliability.md explains them.
	ReadTimeout    Duration `yaml:"read_timeout" default:"10s" doc:"Longest time a client may take to send a whole request (headers and body); a slower one, such as a client sending its headers a byte at a time, gets 408 and is disconnected."`
	WriteTimeout   Duration `yaml:"write_timeout" default:"30s" doc:"Longest time writing a response may wait for a client that does not read it. A live stream (SSE) is not cut by its age: each event and heartbeat gets this long to be written."`
	IdleTimeout    Duration `yaml:"idle_timeout" default:"60s" doc:"How long a keep-alive connection may wait for its next request before the server closes it."`
	MaxConnections int      `yaml:"max_connections" default:"1024" doc:"Connections served at once, open SSE streams included; a connection beyond it gets 503 and is closed at once."`
	MaxHeaderBytes Size     `yaml:"max_header_bytes" default:"8KiB" doc:"Largest request head (request line and headers); a larger one gets 431, or 414 when the request line alone does not fit. Each connection holds a buffer of this size."`
	MaxURLBytes    Size     `yaml:"max_url_bytes" default:"4KiB" doc:"Longest request URL (path and query); a longer one gets 414. A URL is also limited by max_header_bytes."`
	Routes         []Route  `yaml:"routes" doc:"Query and stream routes."`
	TLS            *APITLS  `yaml:"tls" doc:"Serve HTTPS: the certificate and key (PEM), read again when their files change (a renewal needs no restart); with client_ca, clients must present a certificate it signed (mutual TLS)."`
	Auth           *APIAuth `yaml:"auth" doc:"Who may call the API: bearer tokens, each with scopes and optionally a tenant. Without it every request is served, and the API may listen only on a loopback address (127.0.0.1, ::1, localhost) unless insecure: true. docs/security.md."`
	Insecure       bool     `yaml:"insecure" doc:"Serve without auth on an address other machines reach. Anyone who can connect reads every tenant's data and can reload the pipeline: only for a network that is itself protected."`
	AllowOrigins   []string `yaml:"allow_origins" doc:"Web origins (scheme://host[:port], or *) whose pages may read the API from a browser (CORS): reads with an Authorization header are allowed from them. Default none: other origins' pages cannot read responses."`
}

// Dashboard is the page served at /. It may be written as one boolean: dashboard: false is
// dashboard: {enabled: false}.
type Dashboard struct {
	Enabled *bool             `yaml:"enabled" default:"true" doc:"Serve the dashboard at /."`
	Title   string            `yaml:"title" default:"EventOps" doc:"The page's title."`
	Params  map[string]string `yaml:"params" doc:"The routes' query parameters the page starts with (tenant: acme); it shows an input for each parameter its routes need, and keeps what is typed in the page's address."`
	Panels  []Panel           `yaml:"panels" doc:"The panels, in order: each is one of timeseries, stat, firing, history, incidents and silences. Without panels, the page shows a chart of every table route with a value column, what fires now and the live stream routes."`
}

// Shorthand makes dashboard: false mean dashboard: {enabled: false}.
func (Dashboard) Shorthand() string { return "enabled" }

// On reports whether the dashboard is served.
func (d *Dashboard) On() bool { return d == nil || d.Enabled == nil || *d.Enabled }

// Panel is one panel of the dashboard: exactly one of its kinds.
type Panel struct {
	Timeseries *TimeseriesPanel `yaml:"timeseries" doc:"A chart of a table route's rows over the page's time range, one line per series."`
	Stat       *StatPanel       `yaml:"stat" doc:"One number from a table route's rows over the page's time range: the last, the highest, a count, ..."`
	Firing     *FiringPanel     `yaml:"firing" doc:"What fires now, grouped by alert: loaded from a table route (latest_by: fingerprint), then kept live from a stream route of the alert topic."`
	History    *HistoryPanel    `yaml:"history" doc:"The alert transitions of the page's time range, newest first, from a table route over the alerts table."`
	Incidents  *IncidentsPanel  `yaml:"incidents" doc:"Incidents with their root cause and members, from a table route or a stream route over the topic a correlate processor writes."`
	Silences   *SilencesPanel   `yaml:"silences" doc:"The silences of the pipeline's notify processors (/api/v2/silences): who, until when, matching what; an admin token may expire them."`
}

// PanelCommon are the settings every panel has.
type PanelCommon struct {
	Title string `yaml:"title" doc:"The panel's heading; default from what it shows."`
	Width string `yaml:"width" default:"half" enum:"full,half,third" doc:"Share of the page's width at 1280 px and more: full, half or third (panels stack on a narrow screen)."`
}

// TimeseriesPanel charts a table route's rows.
type TimeseriesPanel struct {
	PanelCommon `yaml:",inline"`
	Route       string           `yaml:"route" required:"true" doc:"A table route (its path, as under api.routes) whose rows are the points; asked for the page's time range with from and to."`
	Time        string           `yaml:"time" default:"ts" doc:"The rows' time column."`
	Value       string           `yaml:"value" default:"value" doc:"The rows' value column."`
	Series      string           `yaml:"series" doc:"The column whose values split the rows into lines (source_id: one line per host); default one line."`
	Unit        string           `yaml:"unit" doc:"The values' unit, for the axis and the tooltips: percent, bytes, seconds, ms, or any word."`
	Band        string           `yaml:"band" doc:"An object column with expected, lower and upper (the anomaly processor's anomaly field), drawn as a band around each line."`
	Thresholds  []PanelThreshold `yaml:"thresholds" doc:"Horizontal lines: a rule's levels."`
}

// PanelThreshold is a horizontal line on a chart.
type PanelThreshold struct {
	Value    float64 `yaml:"value" required:"true" doc:"Where the line is."`
	Label    string  `yaml:"label" doc:"What it means (warning at 80)."`
	Severity string  `yaml:"severity" default:"warning" enum:"critical,warning,info" doc:"Its colour."`
}

// StatPanel shows one number.
type StatPanel struct {
	PanelCommon `yaml:",inline"`
	Route       string   `yaml:"route" required:"true" doc:"A table route (its path) whose rows over the page's time range give the number."`
	Value       string   `yaml:"value" default:"value" doc:"The rows' column the number is made of."`
	Reduce      string   `yaml:"reduce" default:"last" enum:"last,max,min,avg,sum,count,distinct" doc:"How the rows become one number: the newest row's value, the highest, lowest, mean, sum, the number of rows, or the number of distinct values."`
	Unit        string   `yaml:"unit" doc:"The number's unit."`
	Warning     *float64 `yaml:"warning" doc:"At or above it, the number is shown as a warning."`
	Critical    *float64 `yaml:"critical" doc:"At or above it, the number is shown as critical."`
}

// FiringPanel lists what fires now.
type FiringPanel struct {
	PanelCommon `yaml:",inline"`
	Route       string `yaml:"route" required:"true" doc:"A table route over the alerts table that answers the newest row of each alert (latest_by: fingerprint), read when the page opens."`
	Stream      string `yaml:"stream" doc:"A stream route of the alert topic: new alerts appear, resolved ones leave, without reloading."`
	Chart       string `yaml:"chart" doc:"The title of the timeseries panel an alert opens when clicked (its series, around the alert's start); default the first timeseries panel."`
}

// HistoryPanel lists alert transitions.
type HistoryPanel struct {
	PanelCommon `yaml:",inline"`
	Route       string `yaml:"route" required:"true" doc:"A table route over the alerts table (every transition), asked for the page's time range."`
}

// IncidentsPanel lists incidents.
type IncidentsPanel struct {
	PanelCommon `yaml:",inline"`
	Route       string `yaml:"route" doc:"A table route over the incidents a correlate processor writes, read when the page opens."`
	Stream      string `yaml:"stream" doc:"A stream route of the incident topic, for live updates. Set route, stream or both."`
}

// SilencesPanel lists silences.
type SilencesPanel struct {
	PanelCommon `yaml:",inline"`
}

// APITLS is the API's HTTPS.
type APITLS struct {
	Cert     string `yaml:"cert" required:"true" doc:"The server certificate chain, PEM."`
	Key      string `yaml:"key" required:"true" doc:"Its private key, PEM."`
	ClientCA string `yaml:"client_ca" doc:"CA certificates (PEM) that sign the client certificates every connection must present (mutual TLS). Default: no client certificate asked."`
}

// APIAuth is the API's authentication: bearer tokens with scopes.
type APIAuth struct {
	Tokens  []APIToken `yaml:"tokens" required:"true" doc:"The tokens the API accepts, sent as Authorization: Bearer TOKEN (or X-API-Key: TOKEN)."`
	Metrics string     `yaml:"metrics" default:"read" enum:"open,read" doc:"/-/metrics: open (a Prometheus scrapes it without a token) or read (a token with scope read)."`
}

// APIToken is one accepted token. Only its SHA-256 is kept in memory; it never appears in
// logs, errors or /-/reload.
type APIToken struct {
	Name   string   `yaml:"name" required:"true" doc:"Names the token in logs and metrics (never the token itself)."`
	Token  string   `yaml:"token" doc:"The token itself, best from the environment: ${EVENTOPS_API_TOKEN}. At least 16 characters. Set exactly one of token and file."`
	File   string   `yaml:"file" doc:"A file whose first line is the token (a mounted secret); read at start."`
	Scopes []string `yaml:"scopes" doc:"read (table routes, streams, topology, /-/routes, /api/v2 reads, GET /-/reload) and admin (POST /-/reload, making and expiring silences; admin includes read). Default [read]."`
	Tenant string   `yaml:"tenant" doc:"Binds the token to one tenant: table routes answer only that tenant's rows (a tenant query parameter that names another is a 403), streams send only its records, /api/v2/alerts only its alerts. A tenant-bound token cannot have scope admin."`
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
	Path         string   `yaml:"path" required:"true" doc:"URL path, e.g. /metrics/cpu."`
	Table        string   `yaml:"table" doc:"Table to query (one written by a sink or output)."`
	Where        Fields   `yaml:"where" doc:"Column to expression over the request (query.<param>); a missing query parameter is a 400."`
	Order        string   `yaml:"order" doc:"Column and direction, e.g. 'ts desc'."`
	Limit        int      `yaml:"limit" default:"100" doc:"Maximum rows; a request may ask for fewer with ?limit=."`
	Columns      []string `yaml:"columns" doc:"Columns to return; default all."`
	TimeColumn   string   `yaml:"time_column" doc:"The table's time column that the request parameters from and to bound (from included, to not; each an RFC 3339 time, now, or a duration before now: -1h, -30m, -7d); default ts when the table has one."`
	TenantColumn string   `yaml:"tenant_column" doc:"The table's column holding each row's tenant, which a tenant-bound token (api.auth) is held to; default tenant when the table has one (the built-in tables do). A route over a table without one cannot be read with a tenant-bound token."`
	// LatestBy makes a history table answer with current state: the alerts table keeps every
	// transition, and latest_by: fingerprint with where state = "firing" lists what fires now.
	LatestBy string   `yaml:"latest_by" doc:"Keep only the newest row (by ts) of each value of this column before where applies, e.g. latest_by: fingerprint on the alerts table with where: {state: '\"firing\"'} lists the alerts firing now."`
	Stream   string   `yaml:"stream" ref:"topics" doc:"Topic to stream as Server-Sent Events."`
	Topology string   `yaml:"topology" ref:"lookups" doc:"Lookup table whose rows are nodes with a depends_on column (topology is the pipeline's topology: block) to serve as a dependency graph: {nodes: [{name, depends_on, dependents}], edges: [{from, to, source, last_seen, calls, errors, error_rate, calls_per_s}]}, read again on every request."`
	Learned  string   `yaml:"learned" ref:"lookups" doc:"Lookup table of edges learned from spans (kept in the topic a service_graph processor writes) to add to the graph this route serves, with when each was last seen and its latest call and error counts."`
	MaxAge   Duration `yaml:"max_age" default:"1h" doc:"With learned: a learned edge not seen for this long before the newest one was is left out, as correlate leaves it out. 0 keeps every edge."`
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
