package correlate

import (
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/enginetest"
	"github.com/eventops/eventops-engine/engine/lookup"
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
		{At: at(0), Batch: []*engine.Record{alertRecord("web", "firing", at(0), 0), alertRecord("payments", "firing", at(0), 1)}},
		{At: at(5 * time.Second), Batch: []*engine.Record{alertRecord("worker", "firing", at(5*time.Second), 0)}},
		{At: at(10 * time.Second), Batch: []*engine.Record{alertRecord("db", "firing", at(10*time.Second), 0)}}, // the common cause: merges web's and worker's
		{At: at(20 * time.Second), Batch: []*engine.Record{alertRecord("api", "firing", at(20*time.Second), 0), alertRecord("payments", "resolved", at(0), 1)}},
		{At: at(2 * time.Minute), Batch: []*engine.Record{
			alertRecord("db", "resolved", at(10*time.Second), 0), alertRecord("worker", "resolved", at(5*time.Second), 0),
			alertRecord("api", "resolved", at(20*time.Second), 0), alertRecord("web", "resolved", at(0), 0),
		}},
	}}
	enginetest.TestStateful(t, setup, script)
}

type lookups map[string]engine.LookupTable

func (l lookups) Lookup(name string) (engine.LookupTable, bool) { t, ok := l[name]; return t, ok }

// Without a topology of its own the processor takes the pipeline's topology: block (the
// lookup table topology), and says what to add when there is none.
func TestThePipelinesTopologyIsTheDefault(t *testing.T) {
	table := lookup.New(config.TopologyLookup, lookup.Rows{"api": {"node": "api", "depends_on": "db"}, "db": {"node": "db", "depends_on": ""}})
	p, err := build(&Config{Window: 120e9, MaxHops: 3, Topology: Topology{DependsOn: "depends_on"}}, engine.BuildEnv{Lookups: lookups{config.TopologyLookup: table}})
	if err != nil {
		t.Fatal(err)
	}
	if g := p.(*Processor).graph(); !g.DependsOn("api", "db", 1) {
		t.Errorf("edges %v, want api → db from the topology: block", g.Edges())
	}
	_, err = build(&Config{Window: 120e9, MaxHops: 3, Topology: Topology{DependsOn: "depends_on"}}, engine.BuildEnv{Lookups: lookups{}})
	if err == nil || !strings.Contains(err.Error(), "add a topology: block") {
		t.Errorf("without any topology: %v", err)
	}
}
