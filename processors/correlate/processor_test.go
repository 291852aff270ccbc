package correlate

import (
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/enginetest"
)

func testProcessor(t testing.TB, clock engine.Clock) *Processor {
	t.Helper()
	cfg := &Config{Topology: Topology{Edges: map[string][]string{"web": {"api"}, "api": {"db", "cache"}, "worker": {"db"}}}, Window: 120e9, MaxHops: 3}
	p, err := build(cfg, engine.BuildEnv{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Processor)
}

// alertRecord is an alert record as the threshold processor writes it, read from partition.
func alertRecord(node, state string, at time.Time, partition int32) *engine.Record {
	v := map[string]any{"fingerprint": "fp-" + node, "state": state, "rule": "errors", "severity": "critical", "source_id": node, "tenant_id": "acme", "started_at": at.Format(time.RFC3339Nano)}
	if state == "resolved" {
		v["resolved_at"] = at.Add(time.Minute).Format(time.RFC3339Nano)
	}
	return &engine.Record{Value: v, Source: engine.Source{Topic: "ops.alert.v1", Partition: partition}}
}

// TestCheckpointConformance runs the shared checkpoint suite: restored at every step, the
// processor makes exactly the incidents of one that never stopped; merged and resolved
// incidents leave the changelog.
func TestCheckpointConformance(t *testing.T) {
	setup := func(t testing.TB, clock engine.Clock) enginetest.StatefulProcessor { return testProcessor(t, clock) }
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	script := enginetest.Script{Start: t0, MaxEntries: 4, Steps: []enginetest.Step{
		{At: at(0), Batch: []*engine.Record{alertRecord("db", "firing", at(0), 0), alertRecord("payments", "firing", at(0), 1)}},
		{At: at(5 * time.Second), Batch: []*engine.Record{alertRecord("cache", "firing", at(5*time.Second), 0)}},
		{At: at(10 * time.Second), Batch: []*engine.Record{alertRecord("api", "firing", at(10*time.Second), 0)}}, // merges db's and cache's
		{At: at(20 * time.Second), Batch: []*engine.Record{alertRecord("web", "firing", at(20*time.Second), 0), alertRecord("payments", "resolved", at(0), 1)}},
		{At: at(2 * time.Minute), Batch: []*engine.Record{
			alertRecord("db", "resolved", at(0), 0), alertRecord("cache", "resolved", at(5*time.Second), 0),
			alertRecord("api", "resolved", at(10*time.Second), 0), alertRecord("web", "resolved", at(20*time.Second), 0),
		}},
	}}
	enginetest.TestStateful(t, setup, script)
}
