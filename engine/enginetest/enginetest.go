// Package enginetest holds the conformance suites of the engine's contracts. Every input and
// output runs the same checks of the delivery contract the stream runtime depends on
// (durable after Write, retries tolerated, rejects reported, acked positions resume, unacked
// records come back); every stateful processor runs the same checks of the checkpoint
// contract (engine.Stateful: restored at any batch boundary it goes on as if it never
// stopped, Changes reports each change once, Drop forgets exactly its partition, the
// changelog holds the live state only, garbled entries are refused with a clear error).
//
// An implementation's own test calls TestOutput or TestInput with a setup function that
// returns a fresh instance (its own topic, table or group) each time it is called; a
// processor's test calls TestStateful with a setup function and a Script of its own.
//
// Changelog is the runtime's view of a stateful processor's changes (a compacted changelog
// topic), for the processors' own checkpoint tests.
package enginetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine"
)

// Timeout bounds every wait of the suite. Conditions are polled until they hold or it
// passes; nothing is asserted about how fast they hold.
var Timeout = 30 * time.Second

// Event returns the i-th test event, shaped like the engine's metric envelope:
// event_id ("evt-<i>"), tenant_id, source {type, source_id}, metric, value (float64(i)),
// unit, ts_event (RFC 3339), tags. Raw holds its JSON text; Source names a fake input position.
func Event(i int) *engine.Record {
	ts := time.Date(2025, 10, 16, 9, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
	v := map[string]any{
		"event_id":  fmt.Sprintf("evt-%d", i),
		"tenant_id": "acme",
		"source":    map[string]any{"type": "host", "source_id": fmt.Sprintf("host-%d", i%3)},
		"metric":    "cpu_load",
		"value":     float64(i),
		"unit":      "percent",
		"ts_event":  ts.Format(time.RFC3339),
		"tags":      map[string]any{"env": "prod"},
	}
	return &engine.Record{
		Value:     v,
		Raw:       fmt.Appendf(nil, `{"event_id":"evt-%d","metric":"cpu_load","value":%d}`, i, i),
		Key:       fmt.Appendf(nil, "host-%d", i%3),
		Source:    engine.Source{Topic: "enginetest.in", Partition: 0, Offset: int64(i)},
		Timestamp: ts,
	}
}

// Events returns Event(from) … Event(from+n-1).
func Events(from, n int) []*engine.Record {
	out := make([]*engine.Record, n)
	for i := range out {
		out[i] = Event(from + i)
	}
	return out
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}
