package servicegraph

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/eval"
	"github.com/eventops/eventops-engine/engine/keyedstate"
	"github.com/eventops/eventops-engine/engine/types"
)

// Factory declares the service_graph processor.
var Factory = engine.ProcessorFactory{
	Type: "service_graph",
	Doc:  "Learns the service dependency graph from spans: a client or producer span of service A calling B (the otlp input's service and peer) is a call on the edge A → B. Counts calls and failed calls per edge and interval of event time; each batch writes, for each edge it called, the interval's count so far (complete: false), and once a span of a later interval arrives, the closed interval's (complete: true). Records are keyed by edge (\"A->B\"): {edge, from, to, calls, errors, error_rate, calls_per_s, interval_start, complete, first_seen, last_seen, ts}. Written to a compacted topic and read by a lookup kept in it (lookups: {calls: {topic: ...}}), they are the learned edges of correlate (topology.learned) and of topology routes. Input records are consumed; counts are per input partition (key spans by service for one count per edge). See docs/incidents.md.",
	Example: `- service_graph:
    interval: 1m
    max_age: 1h`,
	NewConfig: func() any { return &Config{} },
	Build:     build,
}

// Processor is a built service_graph processor.
type Processor struct {
	cfg                    *Config
	from, to, failed, time *eval.Program
	edges                  *keyedstate.Map[Edge] // by partition and edge key, checkpointed
	parts                  map[int32]*partState
}

// partState is what one input partition's spans showed: its edges, and the times derived
// from them.
type partState struct {
	current time.Time        // the interval being counted: the newest a span fell in
	newest  time.Time        // the newest span's time
	edges   map[string]*Edge // by edge key: the partition's entries of Processor.edges
}

// Edge is one learned edge's state: plain data, checkpointed as JSON.
type Edge struct {
	From      string    `json:"from"`
	To        string    `json:"to"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Interval  time.Time `json:"interval"` // the interval its counts belong to
	Calls     int64     `json:"calls"`
	Errors    int64     `json:"errors"`
}

func build(raw any, _ engine.BuildEnv) (engine.Processor, error) {
	cfg := raw.(*Config)
	p := &Processor{cfg: cfg, edges: keyedstate.New[Edge]("service_graph: edge"), parts: map[int32]*partState{}}
	progs := []struct {
		dst  **eval.Program
		src  config.Expr
		kind eval.Kind
	}{
		{&p.from, exprOr(cfg.From, "service"), eval.Any},
		{&p.to, exprOr(cfg.To, "peer"), eval.Any},
		{&p.failed, exprOr(cfg.Failed, `status == "error"`), eval.Bool},
		{&p.time, exprOr(cfg.Time, "ts"), eval.Any},
	}
	for _, pr := range progs {
		prog, err := eval.Compile(pr.src, pr.kind)
		if err != nil {
			return nil, err
		}
		*pr.dst = prog
	}
	return p, nil
}

// call is what one span says of an edge.
type call struct {
	from, to string
	failed   bool
	at       time.Time
}

// Process counts the calls of a batch of spans and writes, for each input partition, the
// records of the intervals that closed, then the count so far of each edge the batch called.
func (p *Processor) Process(_ context.Context, batch []*engine.Record, rejects *engine.Rejects) ([]*engine.Record, error) {
	var out []*engine.Record
	touched := map[int32]map[string]*engine.Record{} // per partition, edge → a record that called it
	for _, rec := range batch {
		c, ok, err := p.call(rec)
		if err != nil {
			rejects.Add(rec, "service_graph", err)
			continue
		}
		if !ok {
			continue
		}
		out = p.count(rec, c, out)
		if touched[rec.Source.Partition] == nil {
			touched[rec.Source.Partition] = map[string]*engine.Record{}
		}
		touched[rec.Source.Partition][c.from+"->"+c.to] = rec
	}
	for _, partition := range slices.Sorted(maps.Keys(touched)) {
		part := p.parts[partition]
		for _, key := range slices.Sorted(maps.Keys(touched[partition])) {
			out = append(out, p.edgeRecord(touched[partition][key], key, part.edges[key], part.newest))
		}
	}
	for partition, part := range p.parts {
		p.forget(partition, part)
	}
	return out, nil
}

// call reads a span; ok is false for a span that is not a call (no callee).
func (p *Processor) call(rec *engine.Record) (call, bool, error) {
	env := eval.Env{Vars: rec.Value, Source: rec.Source}
	to, err := p.to.Eval(env)
	if err != nil || to == nil || to == "" {
		return call{}, false, wrap("to", err)
	}
	from, err := p.from.Eval(env)
	if err != nil || from == nil || from == "" {
		return call{}, false, orMissing("from", p.from, err)
	}
	c := call{from: fmt.Sprint(from), to: fmt.Sprint(to)}
	if c.failed, err = p.failed.EvalBool(env); err != nil {
		return call{}, false, wrap("failed", err)
	}
	at, err := p.time.Eval(env)
	if err != nil || at == nil {
		return call{}, false, orMissing("time", p.time, err)
	}
	if c.at, err = eval.ParseTime(at, ""); err != nil {
		return call{}, false, wrap("time", err)
	}
	return c, true, nil
}

func wrap(field string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", field, err)
}

func orMissing(field string, prog *eval.Program, err error) error {
	if err != nil {
		return wrap(field, err)
	}
	return fmt.Errorf("%s: the span has no %s", field, prog.Source().Src)
}

// count adds c to its edge, after closing the intervals before c's when c starts a new one.
func (p *Processor) count(rec *engine.Record, c call, out []*engine.Record) []*engine.Record {
	partition := rec.Source.Partition
	part := p.partition(partition)
	interval := c.at.Truncate(p.cfg.Interval.D())
	if interval.After(part.current) {
		out = p.closeIntervals(rec, part, interval, out)
		part.current = interval
	}
	if c.at.After(part.newest) {
		part.newest = c.at
	}
	key := c.from + "->" + c.to
	e := part.edges[key]
	if e == nil {
		e = &Edge{From: c.from, To: c.to, FirstSeen: c.at, Interval: part.current}
		part.edges[key] = e
	}
	e.Calls++
	if c.failed {
		e.Errors++
	}
	if c.at.After(e.LastSeen) {
		e.LastSeen = c.at
	}
	p.noteChange(partition, key)
	return out
}

// closeIntervals writes the record of every edge with calls in an interval before next, and
// starts its count again in next.
func (p *Processor) closeIntervals(rec *engine.Record, part *partState, next time.Time, out []*engine.Record) []*engine.Record {
	for _, key := range slices.Sorted(maps.Keys(part.edges)) {
		e := part.edges[key]
		if e.Interval.Before(next) {
			if e.Calls > 0 {
				out = append(out, p.edgeRecord(rec, key, e, e.Interval.Add(p.cfg.Interval.D())))
				p.noteChange(rec.Source.Partition, key)
			}
			e.Interval, e.Calls, e.Errors = next, 0, 0
		}
	}
	return out
}

// forget drops the edges of part not seen for max_age behind its newest interval.
func (p *Processor) forget(partition int32, part *partState) {
	horizon := part.current.Add(-p.cfg.MaxAge.D())
	for key, e := range part.edges {
		if e.LastSeen.Before(horizon) {
			delete(part.edges, key)
			p.noteChange(partition, key)
		}
	}
}

func (p *Processor) partition(id int32) *partState {
	part := p.parts[id]
	if part == nil {
		part = &partState{edges: p.edges.Partition(id)}
		p.parts[id] = part
	}
	return part
}

func (p *Processor) noteChange(partition int32, key string) { p.edges.Changed(partition, key) }

// edgeRecord is e's record of its interval up to until: the interval's end once it
// closed (complete), else the partition's newest span.
func (p *Processor) edgeRecord(rec *engine.Record, key string, e *Edge, until time.Time) *engine.Record {
	end := e.Interval.Add(p.cfg.Interval.D())
	if until.After(end) {
		until = end
	}
	secs := max(until.Sub(e.Interval).Seconds(), 1)
	rate := 0.0
	if e.Calls > 0 {
		rate = float64(e.Errors) / float64(e.Calls)
	}
	v := map[string]any{
		"edge": key, "from": e.From, "to": e.To, "calls": float64(e.Calls), "errors": float64(e.Errors),
		"error_rate": rate, "calls_per_s": float64(e.Calls) / secs, "interval_start": fmtTime(e.Interval),
		"complete":   until.Equal(end),
		"first_seen": fmtTime(e.FirstSeen), "last_seen": fmtTime(e.LastSeen), "ts": fmtTime(e.LastSeen),
	}
	return &engine.Record{Key: []byte(key), Value: v, Source: rec.Source}
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

var edgeType = types.ObjectOf("the service_graph processor's edge records", map[string]*types.Type{
	"edge": types.TStr, "from": types.TStr, "to": types.TStr, "calls": types.TFloat, "errors": types.TFloat,
	"error_rate": types.TFloat, "calls_per_s": types.TFloat, "interval_start": types.TStr,
	"first_seen": types.TStr, "last_seen": types.TStr, "ts": types.TStr, "complete": types.TBool,
})

// OutputType is the shape of the edge records.
func (p *Processor) OutputType() *types.Type { return edgeType }

// Changes reports the edges changed since the last call (engine.Stateful).
func (p *Processor) Changes(put func(partition int32, key string, value []byte)) {
	p.edges.Changes(put)
}

// Export reports every edge (engine.StateExporter), as Changes reports them.
func (p *Processor) Export(put func(partition int32, key string, value []byte)) {
	p.edges.Export(put)
}

// Restore replaces partition's edges with entries; its interval and newest span are the
// latest its edges hold.
func (p *Processor) Restore(partition int32, entries map[string][]byte) error {
	if err := p.edges.Restore(partition, entries); err != nil {
		return err
	}
	delete(p.parts, partition)
	part := p.partition(partition)
	for _, e := range part.edges {
		if e.Interval.After(part.current) {
			part.current = e.Interval
		}
		if e.LastSeen.After(part.newest) {
			part.newest = e.LastSeen
		}
	}
	return nil
}

// Drop forgets partition's edges.
func (p *Processor) Drop(partition int32) {
	p.edges.Drop(partition)
	delete(p.parts, partition)
}
