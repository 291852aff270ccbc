// Package stdout holds the outputs that keep nothing: stdout (each record as a JSON line on
// the engine's standard output, for debugging and replays) and drop (records counted and
// thrown away, for measuring a pipeline without its sinks).
package stdout

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/eventops/eventops-engine/engine"
)

// Config is the stdout output's settings.
type Config struct {
	Raw bool `yaml:"raw" doc:"Write each record's bytes as they were read instead of its value as JSON (a record without bytes is written as JSON)."`
}

// DropConfig is the drop output's settings: none.
type DropConfig struct{}

// Factory declares the stdout output.
var Factory = engine.OutputFactory{
	Type: "stdout",
	Doc: "Writes each record as one line of JSON on the engine's standard output, in the order of " +
		"the batch, and flushes once per batch: a batch is acknowledged once its lines are written. " +
		"For debugging a stream, replaying a topic, or piping records into another tool.",
	Example: `output:
  stdout: {}
`,
	NewConfig: func() any { return &Config{} },
	InSinks:   true,
	Check:     func(any, engine.BuildEnv) ([]string, error) { return nil, nil },
	Build: func(_ context.Context, cfg any, _ engine.OutputEnv) (engine.Output, error) {
		c, err := engine.ConfigOf[Config]("stdout output", cfg)
		if err != nil {
			return nil, err
		}
		return New(os.Stdout, c.Raw), nil
	},
}

// DropFactory declares the drop output.
var DropFactory = engine.OutputFactory{
	Type: "drop",
	Doc: "Acknowledges every record and keeps none (the stream's metrics still count them): for " +
		"measuring what the streams cost without their sinks, or for a stream whose only effect " +
		"is its state or its dead letters.",
	Example: `output:
  drop: {}
`,
	NewConfig: func() any { return &DropConfig{} },
	InSinks:   true,
	Check:     func(any, engine.BuildEnv) ([]string, error) { return nil, nil },
	Build: func(context.Context, any, engine.OutputEnv) (engine.Output, error) {
		return Drop{}, nil
	},
}

// Output writes records as JSON lines to a writer.
type Output struct {
	mu  sync.Mutex
	w   *bufio.Writer
	raw bool
}

var _ engine.Output = (*Output)(nil)

// New writes to w; raw writes each record's bytes as read instead of its value.
func New(w io.Writer, raw bool) *Output {
	return &Output{w: bufio.NewWriter(w), raw: raw}
}

// Write writes one line per record and flushes. A record whose value cannot be encoded goes
// to rejects with the reason.
func (o *Output) Write(_ context.Context, batch []*engine.Record, rejects *engine.Rejects) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, rec := range batch {
		line, err := o.line(rec)
		if err != nil {
			rejects.Add(rec, "output", err)
			continue
		}
		o.w.Write(line)
		o.w.WriteByte('\n')
	}
	if err := o.w.Flush(); err != nil {
		return fmt.Errorf("stdout output: %w", err)
	}
	return nil
}

func (o *Output) line(rec *engine.Record) ([]byte, error) {
	if o.raw && rec.Raw != nil {
		return rec.Raw, nil
	}
	b, err := json.Marshal(rec.Value)
	if err != nil {
		return nil, fmt.Errorf("cannot encode the record as JSON: %w", err)
	}
	return b, nil
}

// Close flushes what is buffered.
func (o *Output) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.w.Flush()
}

// Drop acknowledges every record and keeps none.
type Drop struct{}

// Write keeps nothing.
func (Drop) Write(context.Context, []*engine.Record, *engine.Rejects) error { return nil }

// Close does nothing.
func (Drop) Close() error { return nil }
