package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/store"
	"github.com/eventops/eventops-engine/engine/telemetry"
	"github.com/eventops/eventops-engine/engine/types"
)

// ErrEndOfInput is what Read returns once a finite input (a file, standard input) has
// returned every record: the stream delivers what it has and ends.
var ErrEndOfInput = errors.New("end of input")

// Input is where a stream reads from.
type Input interface {
	// Read blocks until at least one record is available and returns up to the input's batch
	// size, or returns ctx.Err() when ctx is done, or ErrEndOfInput when a finite input has
	// nothing more.
	Read(ctx context.Context) ([]*Record, error)
	// Ack says every record of batch (as returned by Read) is done: all its outputs are
	// durable, so its position may be committed. Acks come in Read order.
	Ack(ctx context.Context, batch []*Record) error
	Close() error
}

// Processor maps a batch to a batch. It may drop, change, add or replace records. A record it
// cannot process goes to rejects (and so to the dead-letter topic) with the reason; the
// returned error is only for failures that make the whole batch unprocessable.
type Processor interface {
	Process(ctx context.Context, batch []*Record, rejects *Rejects) ([]*Record, error)
}

// Output is where a stream writes to. Write returns only when every record of batch is
// durable (acknowledged by the broker, committed by the database), or with an error, in
// which case the caller retries the same batch: Write must tolerate seeing records again
// (the caller resets rejects before each attempt). A record that can never be written (a
// value that does not fit its column, say) goes to rejects with the reason, and the rest of
// the batch is written.
type Output interface {
	Write(ctx context.Context, batch []*Record, rejects *Rejects) error
	Close() error
}

// SelfTimedOutput is an Output that bounds every wait of its Write itself (a timeout per
// request, a retry budget per record after which the record goes to rejects), so that a
// Write lasting long is progress, not a hang: the runtime does not cut its Writes short
// after the time it allows any other output's Write (a webhook retrying a receiver that
// is down for minutes would otherwise start over, and its retry budget with it).
type SelfTimedOutput interface {
	Output
	TimesItsOwnWrites()
}

// GroupMember is an Input that reads as a member of a consumer group: Joined says whether
// it is one now and has restored the state of the partitions it was given. Until then the
// stream reads nothing, and what its processors hold (alerts, silences) is not yet true.
type GroupMember interface {
	Joined() bool
}

// HealthReporter is an Output that retries failures inside its Write (a SelfTimedOutput,
// whose failures the runtime therefore never sees): Problem says what it is retrying now, or
// nil, so that /-/ready can say the stream cannot write.
type HealthReporter interface {
	Problem() error
}

// Rejected is a record that failed, and why.
type Rejected struct {
	Record *Record
	// Stage is where it failed: "decode", "schema", a processor path such as "processors[0].map",
	// or "output".
	Stage string
	Err   error
	// Topic, if set, is where the record goes instead of the stream's dead-letter topic: a
	// side output such as a window's late: topic. The record is written the same way (its
	// original bytes, with the reason in headers).
	Topic string
	// Late marks a record that arrived after the window it belongs to had closed; it is
	// counted as late (eventops_late_records_total), not as a failure.
	Late bool
}

// Rejects collects the records of a batch that go to the dead-letter topic.
type Rejects struct {
	Items []Rejected
}

// Add records that rec failed at stage because of err.
func (r *Rejects) Add(rec *Record, stage string, err error) {
	r.Items = append(r.Items, Rejected{Record: rec, Stage: stage, Err: err})
}

// AddLate records that rec arrived too late at stage (err says by how much); it goes to
// topic, or to the dead-letter topic when topic is empty.
func (r *Rejects) AddLate(rec *Record, stage, topic string, err error) {
	r.Items = append(r.Items, Rejected{Record: rec, Stage: stage, Err: err, Topic: topic, Late: true})
}

// Len is the number of rejected records.
func (r *Rejects) Len() int { return len(r.Items) }

// Reset empties the collector for the next batch.
func (r *Rejects) Reset() { r.Items = r.Items[:0] }

// BuildEnv is what a component gets when it is built from its config.
type BuildEnv struct {
	// Stream is the name of the stream the component belongs to.
	Stream string
	// Path is the component's config path, e.g. streams[0].processors[2].threshold; it names
	// the component in metrics, logs and dead-letter headers.
	Path    string
	Lookups LookupSource
	Clock   Clock
	Logger  *slog.Logger
	// Input is the type of the records that reach the component, for checking its
	// expressions while building (lint and run alike); nil when nothing is known.
	Input *types.Type
	// Warnings collects problems that do not stop the build (a field an open schema does
	// not declare); nil to drop them. An output's Check may add one about a setting
	// without a position, with the setting's full path (Path + "." + field): the runtime
	// places it where the setting is written.
	Warnings *config.Errors
}

// RecordWise is a Processor whose Process handles each record on its own: it keeps no state
// and no order between records, so it may be called on parts of one batch at once. The
// runtime runs the record-wise processors at the head of a stream on a large batch's parts in
// parallel, together with the decode (map, filter and enrich are record-wise).
type RecordWise interface {
	Processor
	RecordWise()
}

// TypedProcessor is implemented by processors whose output records differ in shape from
// their input (map, enrich, threshold); a processor without it passes its input type on.
type TypedProcessor interface {
	OutputType() *types.Type
}

// AlertEmitter is a processor whose output records are alert transitions (threshold's alert
// records: rule, state, severity, fingerprint, ...), keyed by the alert's fingerprint. The
// runtime counts what it emits by rule and state, rule tests collect it as the alerts of a
// case, and lint knows that a key other than the fingerprint breaks a compacted alert topic.
type AlertEmitter interface {
	// AlertRules names the rules whose alerts the processor emits; empty when, as built,
	// it emits none (an anomaly processor without alert_above scores records instead).
	AlertRules() []string
}

// LookupSource finds lookup tables by name.
type LookupSource interface {
	Lookup(name string) (LookupTable, bool)
}

// LookupTable maps a key to a row of named values. Implementations are safe for concurrent
// use and may be swapped atomically when their file changes.
type LookupTable interface {
	Get(key string) (map[string]any, bool)
	// Columns lists the columns a row may have, for type checks; nil when unknown.
	Columns() []string
}

// IterableLookup is a LookupTable whose rows can be walked (a topology read from a CMDB
// needs every row, not one by key).
type IterableLookup interface {
	LookupTable
	Each(fn func(key string, row map[string]any))
}

// ProcessorFactory declares one processor type: its config and how to build it.
type ProcessorFactory struct {
	Type string
	// Doc is a one-paragraph description for docs and the JSON Schema.
	Doc string
	// Example is a YAML snippet: one item of a stream's processors list using this type
	// (it is checked by a test and shown in docs/components).
	Example string
	// NewConfig returns a pointer to a zero Config struct (with yaml/doc/default tags).
	NewConfig func() any
	// Build compiles cfg (as decoded from NewConfig's pointer) into a Processor. Expression
	// compile errors are returned as config.Errors placed at the expression. With an error
	// it may also return a processor that is never run, to say what it would produce (its
	// OutputType, broken parts unknown; or, without OutputType, the shape of its input), so
	// that lint goes on checking what comes after it.
	Build func(cfg any, env BuildEnv) (Processor, error)
}

// OutputFactory declares one output type besides the topic output. The topic output is
// built by the runtime itself: it is the core of a stream's Kafka transaction (records,
// dead letters, state and offsets commit together), which no other output can join. Every
// other output is written before that commit and must be idempotent (Output).
type OutputFactory struct {
	// Type is the key the output is written under: output: {postgres: {...}}.
	Type string
	// Doc is a one-paragraph description for docs and the JSON Schema.
	Doc string
	// Example is YAML as written inside one item of streams: ("output:\n  postgres: ...");
	// it is checked by a test and shown in docs/components.
	Example string
	// NewConfig returns a pointer to a zero Config struct (with yaml/doc/default tags); the
	// config decoder fills it and runs its Validate, so Check and Build get a valid config.
	// A config may also tell lint what it writes or holds (config.TableWriter,
	// config.Claimer).
	NewConfig func() any
	// InSinks says the type may also be used in sinks:, which copy a topic into it.
	InSinks bool
	// Check checks cfg against the records that reach the output (env.Input) without
	// touching anything outside the process: lint runs it, and so does every build. An
	// output writing a table returns the table's columns, which the API's routes reading
	// it are checked against; nil when it writes no table or they are not known. Errors are
	// placed like a processor's (config.Errors at expressions, config.FieldError at fields).
	Check func(cfg any, env BuildEnv) (columns []string, err error)
	// Build opens the output for running: connects, creates what it needs, recovers.
	Build func(ctx context.Context, cfg any, env OutputEnv) (Output, error)
}

// ConfigOf is cfg as the config a factory's NewConfig makes (*C), or an error naming the
// component (kind, e.g. "postgres output") when something else was passed.
func ConfigOf[C any](kind string, cfg any) (*C, error) {
	c, ok := cfg.(*C)
	if !ok {
		return nil, fmt.Errorf("%s: config is %T, want %T", kind, cfg, c)
	}
	return c, nil
}

// OutputEnv is what an output gets when it is opened to run.
type OutputEnv struct {
	BuildEnv
	// Metrics is where the output counts what it writes.
	Metrics *telemetry.Metrics
}

// TableOutput is an Output writing a table that the API's routes can query.
type TableOutput interface {
	Output
	// Table is the table's name, as written in the output's config.
	Table() string
	// OpenStore opens the table's read side; release frees what it holds (open files) once
	// no route reads it any more.
	OpenStore(ctx context.Context) (st store.Store, release func(), err error)
}

// Components are the component types a pipeline may use: the explicit lists the loader,
// lint, the JSON Schema, the docs and the runtime all read (processors/all, outputs/all).
type Components struct {
	Processors []ProcessorFactory
	Outputs    []OutputFactory
}

// Registry is the config loader's view of the components.
func (c Components) Registry() config.Registry {
	reg := config.Registry{Processors: map[string]config.ProcessorSpec{}, Outputs: map[string]config.OutputSpec{}}
	for _, f := range c.Processors {
		reg.Processors[f.Type] = config.ProcessorSpec{NewConfig: f.NewConfig, Doc: f.Doc, Example: f.Example}
	}
	for _, f := range c.Outputs {
		reg.Outputs[f.Type] = config.OutputSpec{NewConfig: f.NewConfig, Doc: f.Doc, Example: f.Example, InSinks: f.InSinks}
	}
	return reg
}

// Processor returns the factory of processor type typ.
func (c Components) Processor(typ string) (ProcessorFactory, bool) {
	for _, f := range c.Processors {
		if f.Type == typ {
			return f, true
		}
	}
	return ProcessorFactory{}, false
}

// Output returns the factory of output type typ.
func (c Components) Output(typ string) (OutputFactory, bool) {
	for _, f := range c.Outputs {
		if f.Type == typ {
			return f, true
		}
	}
	return OutputFactory{}, false
}

// ValueDecoder turns a record's bytes into its value, where they are not JSON (the
// default): the Confluent wire format, for one (engine/confluent). Decode may be called on
// parts of a batch at once.
type ValueDecoder interface {
	Decode(raw []byte) (map[string]any, error)
}

// BatchPreparer is a ValueDecoder that must fetch something (a schema) before it can decode
// a batch: an error from Prepare means it could not (a registry out of reach), and the
// runtime tries again rather than refuse the batch's records.
type BatchPreparer interface {
	ValueDecoder
	Prepare(ctx context.Context, batch []*Record) error
}

// ValueEncoder writes a record's value as bytes, where they are not to be JSON (the
// default): it appends v's encoding to dst.
type ValueEncoder interface {
	Encode(dst []byte, v map[string]any) ([]byte, error)
}
