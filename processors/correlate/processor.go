package correlate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/eval"
	"github.com/eventops/eventops-engine/engine/keyedstate"
	"github.com/eventops/eventops-engine/engine/topology"
	"github.com/eventops/eventops-engine/engine/types"
)

// Factory declares the correlate processor.
var Factory = engine.ProcessorFactory{
	Type: "correlate",
	Doc:  "Groups alert records into incidents over a service dependency graph and time: a firing alert joins an open incident of its tenant when one of its firing alerts started within window of it on a node that depends on the alert's, or that the alert's depends on, within max_hops (two services that only share a dependency join once that dependency alerts). Emits one incident record per change (state opened, updated, merged, resolved), keyed by incident_id, naming the probable root cause: the alerting nodes ranked by 0.4·explains (share of the incident's alerting nodes that are it or depend on it) + 0.3·healthy (none of its own dependencies alerts) + 0.2·onset (1 for the first to start, 0 a window later) + 0.1·strength (severity), with a confidence (the best score's share of the best two) and the dependency path from each symptom. Incidents are checkpointed per input partition: a tenant's alerts must share a partition (key the alerts by tenant_id, or use one partition). Pending alerts are ignored; input records are consumed. See docs/incidents.md.",
	Example: `- correlate:
    topology: {lookup: cmdb, depends_on: depends_on}
    window: 5m
    max_hops: 3`,
	NewConfig: func() any { return &Config{} },
	Build:     build,
}

// Processor is a built correlate processor.
type Processor struct {
	cfg     *Config
	set     Settings
	node    *eval.Program
	lookup  engine.IterableLookup
	learned engine.IterableLookup
	clock   engine.Clock
	// open is each partition's open incidents, by id, checkpointed.
	open *keyedstate.Map[Incident]
}

func build(raw any, env engine.BuildEnv) (engine.Processor, error) {
	cfg := raw.(*Config)
	p := &Processor{cfg: cfg, set: cfg.settings(), clock: env.Clock, open: keyedstate.New[Incident]("correlate: incident")}
	if p.clock == nil {
		p.clock = engine.WallClock{}
	}
	src := config.Expr{Src: "source_id"}
	if cfg.Node != nil {
		src = *cfg.Node
	}
	var err error
	if p.node, err = eval.Compile(src, eval.Any); err != nil {
		return nil, err
	}
	if cfg.Topology.Lookup == "" && len(cfg.Topology.Edges) == 0 {
		if err := p.usePipelineTopology(env); err != nil {
			return nil, err
		}
	}
	var err1, err2 error
	if cfg.Topology.Lookup != "" {
		p.lookup, err1 = iterableLookup(env, "topology.lookup", cfg.Topology.Lookup)
	}
	if cfg.Topology.Learned != "" {
		p.learned, err2 = iterableLookup(env, "topology.learned", cfg.Topology.Learned)
	}
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return p, nil
}

// usePipelineTopology takes the pipeline's topology: block (the lookup table topology),
// which a correlate without declared edges needs unless it learns them.
func (p *Processor) usePipelineTopology(env engine.BuildEnv) error {
	if env.Lookups == nil {
		return nil // lint without lookups loaded
	}
	if _, ok := env.Lookups.Lookup(config.TopologyLookup); ok {
		p.cfg.Topology.Lookup = config.TopologyLookup
		return nil
	}
	if p.cfg.Topology.Learned != "" {
		return nil
	}
	return config.FieldErrorf("topology", "no topology: add a topology: block to the pipeline file ({node: [what it depends on]}), or give topology.lookup (a table with a depends_on column), topology.edges or topology.learned (edges learned from spans)")
}

// iterableLookup finds a lookup table whose rows can be walked.
func iterableLookup(env engine.BuildEnv, field, name string) (engine.IterableLookup, error) {
	if env.Lookups == nil {
		return nil, nil // lint without lookups loaded: the loader checks the name
	}
	table, ok := env.Lookups.Lookup(name)
	if !ok {
		return nil, config.FieldErrorf(field, "no lookup table %q", name)
	}
	it, ok := table.(engine.IterableLookup)
	if !ok {
		return nil, config.FieldErrorf(field, "lookup %q cannot be read whole", name)
	}
	return it, nil
}

// graph is the topology now: the lookup is read again each time, so a CMDB file that
// changed (lookups reload) changes the graph.
func (p *Processor) graph() *topology.Graph {
	g := topology.New()
	for from, tos := range p.cfg.Topology.Edges {
		for _, to := range tos {
			g.Declare(from, to)
		}
	}
	if p.lookup != nil {
		g.DeclareLookup(p.lookup, p.cfg.Topology.DependsOn)
	}
	if p.learned != nil {
		g.LearnLookup(p.learned, p.cfg.Topology.MaxAge.D())
	}
	return g
}

// Process turns alert records into incident records.
func (p *Processor) Process(_ context.Context, batch []*engine.Record, rejects *engine.Rejects) ([]*engine.Record, error) {
	g := p.graph()
	var out []*engine.Record
	for _, rec := range batch {
		a, ok, err := p.alert(rec)
		if err != nil {
			rejects.Add(rec, "correlate", err)
			continue
		}
		if !ok {
			continue // pending, or not an alert's change correlation follows
		}
		st := p.state(rec.Source.Partition)
		for _, c := range Evaluate(st, a, g, p.set) {
			p.noteChange(rec.Source.Partition, c.Incident.ID)
			out = append(out, incidentRecord(rec, c, g, p.set))
		}
	}
	return out, nil
}

func (p *Processor) state(partition int32) *State {
	return &State{Open: p.open.Partition(partition)}
}

func (p *Processor) noteChange(partition int32, id string) { p.open.Changed(partition, id) }

// alert reads an alert record; ok is false for what correlation does not follow (pending).
func (p *Processor) alert(rec *engine.Record) (Alert, bool, error) {
	v := rec.Value
	fp, _ := v["fingerprint"].(string)
	state, _ := v["state"].(string)
	if fp == "" || state == "" {
		return Alert{}, false, fmt.Errorf("not an alert record: it has no fingerprint and state (correlate reads what threshold and anomaly write)")
	}
	if state != "firing" && state != "resolved" {
		return Alert{}, false, nil
	}
	node, err := p.node.Eval(eval.Env{Vars: v, Source: rec.Source})
	if err != nil {
		return Alert{}, false, fmt.Errorf("node: %w", err)
	}
	if node == nil {
		return Alert{}, false, fmt.Errorf("node: the alert names no node (%s is nil)", nodeSource(p.cfg))
	}
	a := Alert{Fingerprint: fp, Firing: state == "firing", Node: fmt.Sprint(node), Tenant: "default"}
	if t, ok := v["tenant_id"].(string); ok && t != "" {
		a.Tenant = t
	}
	a.Rule, _ = v["rule"].(string)
	a.Severity, _ = v["severity"].(string)
	a.Strength = strength(v)
	at := "started_at"
	if !a.Firing {
		at = "resolved_at"
	}
	if a.At, err = eventTime(v[at]); err != nil {
		return Alert{}, false, fmt.Errorf("%s: %w", at, err)
	}
	return a, true, nil
}

func nodeSource(c *Config) string {
	if c.Node != nil {
		return c.Node.Src
	}
	return "source_id"
}

func eventTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("want an RFC 3339 time, got %v", v)
	}
	return time.Parse(time.RFC3339Nano, s)
}

// strength is an anomaly alert's raw score, or else its severity's weight.
func strength(v map[string]any) float64 {
	if an, ok := v["anomaly"].(map[string]any); ok {
		if raw, ok := an["raw"].(float64); ok {
			return min(max(raw, 0), 1)
		}
	}
	switch v["severity"] {
	case "critical":
		return 1
	case "warning":
		return 0.6
	case "info":
		return 0.3
	}
	return 0.5
}

// OutputType is the shape of the incident records.
func (p *Processor) OutputType() *types.Type { return incidentType }

// Changes reports the incidents changed since the last call: an open one's state, or its
// deletion once it resolved or merged.
func (p *Processor) Changes(put func(partition int32, key string, value []byte)) {
	p.open.Changes(put)
}

// Export reports every open incident (engine.StateExporter), as Changes reports them.
func (p *Processor) Export(put func(partition int32, key string, value []byte)) {
	p.open.Export(put)
}

// Restore replaces partition's open incidents with entries.
func (p *Processor) Restore(partition int32, entries map[string][]byte) error {
	return p.open.Restore(partition, entries)
}

// Drop forgets partition's incidents.
func (p *Processor) Drop(partition int32) { p.open.Drop(partition) }
