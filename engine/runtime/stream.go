package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

// deadLetterSink writes rejected records durably to a dead-letter topic.
type deadLetterSink interface {
	Write(ctx context.Context, topic string, items []engine.Rejected) error
}

// stream is one running stream: the loop that carries the delivery guarantee.
type stream struct {
	plan    *StreamPlan
	input   engine.Input
	output  engine.Output
	dlq     deadLetterSink
	metrics *telemetry.Metrics
	log     *slog.Logger
	// drain is how long an in-flight batch may take to finish after shutdown begins.
	drain time.Duration
	// backoff bounds the wait between retries of a failed write.
	backoffMin, backoffMax time.Duration

	rejects    engine.Rejects
	outRejects engine.Rejects
}

// run reads, processes, writes and acks batches until ctx ends. It returns nil on a clean
// shutdown; the batch in flight when ctx ends is finished (or abandoned unacked, to be
// redelivered) within the drain time.
func (s *stream) run(ctx context.Context) error {
	for {
		batch, err := s.input.Read(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			s.log.Warn("input read failed; retrying", "err", err)
			if !sleepCtx(ctx, s.backoffMin) {
				return nil
			}
			continue
		}
		if len(batch) == 0 {
			continue
		}
		// Once a batch is read it is finished even if shutdown begins, bounded by drain.
		work, cancel := drainContext(ctx, s.drain)
		err = s.handle(work, batch)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil // shutting down: the unacked batch is redelivered on restart
			}
			return err
		}
	}
}

// handle carries one batch from read to ack.
func (s *stream) handle(ctx context.Context, batch []*engine.Record) error {
	name := s.plan.Name
	s.metrics.RecordsIn.WithLabelValues(name).Add(float64(len(batch)))
	s.rejects.Reset()

	recs := s.decode(batch)
	for _, p := range s.plan.Processors {
		s.metrics.ProcessorIn.WithLabelValues(name, p.Name).Add(float64(len(recs)))
		out, err := p.Process(ctx, recs, &s.rejects)
		if err != nil {
			// The processor could not handle the batch at all: nothing may be lost, so every
			// record of it goes to the dead-letter topic with the reason.
			s.log.Error("processor failed on a whole batch; sending it to the dead-letter topic", "processor", p.Name, "err", err)
			for _, r := range recs {
				s.rejects.Add(r, p.Name, err)
			}
			out = nil
		}
		s.metrics.ProcessorOut.WithLabelValues(name, p.Name).Add(float64(len(out)))
		recs = out
	}
	if s.plan.OutputSchema != nil {
		recs = s.validate(recs, s.plan.OutputSchema, "output.schema")
	}

	if err := s.write(ctx, recs); err != nil {
		return err
	}
	if len(s.rejects.Items) > 0 {
		if err := s.writeDeadLetters(ctx); err != nil {
			return err
		}
	}
	return retry(ctx, s, "ack", func() error { return s.input.Ack(ctx, batch) })
}

// decode turns raw bytes into values and applies the input schema.
func (s *stream) decode(batch []*engine.Record) []*engine.Record {
	out := make([]*engine.Record, 0, len(batch))
	for _, r := range batch {
		if r.Value == nil {
			v, err := decodeJSONObject(r.Raw)
			if err != nil {
				s.rejects.Add(r, "decode", err)
				continue
			}
			r.Value = v
		}
		out = append(out, r)
	}
	if s.plan.InputSchema != nil {
		out = s.validate(out, s.plan.InputSchema, "input.schema")
	}
	return out
}

func (s *stream) validate(recs []*engine.Record, schema *jsonschema.Schema, stage string) []*engine.Record {
	kept := recs[:0]
	for _, r := range recs {
		if err := schema.Validate(toSchemaValue(r.Value)); err != nil {
			s.rejects.Add(r, stage, schemaError(err))
			continue
		}
		kept = append(kept, r)
	}
	return kept
}

// write writes recs durably, retrying transient failures until it succeeds or ctx ends.
func (s *stream) write(ctx context.Context, recs []*engine.Record) error {
	err := retry(ctx, s, "output", func() error {
		s.outRejects.Reset()
		return s.output.Write(ctx, recs, &s.outRejects)
	})
	if err != nil {
		return err
	}
	s.metrics.RecordsOut.WithLabelValues(s.plan.Name).Add(float64(len(recs) - len(s.outRejects.Items)))
	s.rejects.Items = append(s.rejects.Items, s.outRejects.Items...)
	return nil
}

func (s *stream) writeDeadLetters(ctx context.Context) error {
	for _, it := range s.rejects.Items {
		s.metrics.Errors.WithLabelValues(s.plan.Name, it.Stage).Inc()
		s.log.Debug("record rejected", "stage", it.Stage, "reason", it.Err,
			"topic", it.Record.Source.Topic, "partition", it.Record.Source.Partition, "offset", it.Record.Source.Offset)
	}
	err := retry(ctx, s, "dead-letter", func() error {
		return s.dlq.Write(ctx, s.plan.DeadLetter, s.rejects.Items)
	})
	if err == nil {
		s.metrics.DeadLetters.WithLabelValues(s.plan.Name, s.plan.DeadLetter).Add(float64(len(s.rejects.Items)))
	}
	return err
}

// retry runs fn until it succeeds, with capped exponential backoff, or until ctx ends.
func retry(ctx context.Context, s *stream, what string, fn func() error) error {
	wait := s.backoffMin
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		if what == "output" {
			s.metrics.OutputRetries.WithLabelValues(s.plan.Name).Inc()
		}
		s.log.Warn("write failed; retrying", "what", what, "attempt", attempt, "err", err, "wait", wait)
		if !sleepCtx(ctx, wait) {
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		wait *= 2
		if wait > s.backoffMax {
			wait = s.backoffMax
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// drainContext returns a context that ends drain after parent does.
func drainContext(parent context.Context, drain time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() {
		t := time.AfterFunc(drain, cancel)
		context.AfterFunc(ctx, func() { t.Stop() })
	})
	return ctx, func() { stop(); cancel() }
}

// decodeJSONObject decodes one record value, which must be a JSON object.
func decodeJSONObject(raw []byte) (map[string]any, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("malformed JSON: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("malformed event: want a JSON object, got %s", jsonKind(v))
	}
	return m, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

// toSchemaValue converts what processors may have put into a record (typed slices, maps of
// strings, ints) into the JSON data model the schema validator understands.
func toSchemaValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = toSchemaValue(e)
		}
		return out
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = e
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toSchemaValue(e)
		}
		return out
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case int32:
		return float64(x)
	case float32:
		return float64(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return v
}

// schemaError flattens a validation error into one line naming each failing location.
func schemaError(err error) error {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("schema violation: %w", err)
	}
	var parts []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			loc := e.InstanceLocation
			if loc == "" {
				loc = "/"
			}
			parts = append(parts, fmt.Sprintf("%s: %s", loc, e.Message))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return fmt.Errorf("schema violation: %s", strings.Join(parts, "; "))
}
