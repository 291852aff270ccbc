// Package window is the window processor: it groups records by key into event-time
// windows (tumbling, hopping or session) and emits one record per window when the window
// closes, holding the group's key, the window's bounds and the aggregates over its records.
//
// Time is the records' own event time. Each input partition has a watermark: the newest
// event time seen in it minus the configured lateness. A window closes, and is emitted,
// once the watermark reaches its end; a record whose windows have all closed is late and
// goes to the late topic (or the dead-letter topic) with the reason. A partition that goes
// quiet would hold its last windows open forever, so after idle_timeout of wall-clock
// silence its watermark moves on with the wall clock. A record stamped more than max_future
// ahead of the wall clock is refused before it can move the watermark (eval.CheckFuture).
//
// State (open windows, watermarks) is kept per input partition and is engine.Stateful: it
// is checkpointed with the input offsets and restored when the partition moves, and a
// restored processor continues exactly as the original would have (same windows, same
// output records, byte for byte), except that a restored partition counts its idle time
// from the restore: its records written meanwhile are about to be replayed. The user-facing semantics are in the Factory's Doc and
// the config's doc tags (docs/components/processor-window.md is generated from them); the
// error bounds of the sketches are argued in sketch.go and distinct.go.
package window

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/eval"
	"github.com/eventops/eventops-engine/engine/types"
)

// Factory declares the window processor.
var Factory = engine.ProcessorFactory{
	Type: "window",
	Example: `- window:
    type: tumbling
    size: 1m
    time: ts_event
    group_by: [tenant_id, source.source_id, metric]
    aggregate: {avg: avg(value), p95: p95(value), n: count()}
    lateness: 10s
`,
	Doc: "Groups records into event-time windows per group (group_by field paths, group_as " +
		"computed keys) and emits one record per window when it closes: the group keys at " +
		"their paths, window_start, window_end, ts_event (the window end), event_id (the same " +
		"for a replay) and one field per aggregate. Windows are tumbling, hopping (size, hop) " +
		"or session (gap), aligned to the Unix epoch. Each input partition has a watermark, " +
		"its newest event time minus lateness; a window closes when the watermark reaches its " +
		"end, and a record whose windows have all closed is late: it goes to the late topic " +
		"(or the dead-letter topic) with the reason and is counted. A session window is late " +
		"for a record when a session of that record alone would already have closed. A record " +
		"stamped more than max_future (default 1h) ahead of the clock goes to the dead-letter " +
		"topic instead, so that one bad clock cannot close every window and make the real " +
		"records late. A " +
		"partition without records for idle_timeout (wall clock) has its watermark advanced " +
		"by the time since its last record, so its last windows close. State is kept per input " +
		"partition and checkpointed with the stream's offsets, so windows survive restarts and " +
		"rebalances; key the input topic by (part of) the group so that a group's records share " +
		"a partition. Quantiles (pNN) come from a mergeable log-bucket sketch within 1% of the " +
		"exact value (the lower nearest rank: of n sorted values, the one at 0-based rank " +
		"floor(q × (n-1))); distinct is exact up to 512 values, then a HyperLogLog with about 1.6% " +
		"standard error.",
	NewConfig: func() any { return &Config{} },
	Build:     build,
}

// Processor runs windows. Process, Tick, Changes, Restore and Drop are called by one
// goroutine at a time (engine.Stateful).
type Processor struct {
	kind      string
	size, hop int64 // nanoseconds; tumbling has hop == size
	gap       int64
	lateness  int64
	maxFuture int64 // -1: off
	idle      int64 // 0: off
	lateTopic string
	path      string
	clock     engine.Clock

	time    *eval.Program
	keys    []groupKey
	inputs  []*input
	slots   []slot
	aggs    []aggregate
	nWords  int
	nObjs   int
	out     *types.Type
	specs   []string // slot specs, in slot order
	specIdx map[string]int

	parts map[int32]*partition

	// scratch, reused between records
	vals []any
	nums []float64
}

// groupKey is one part of the group: a field path (written back at the same path) or a
// named expression.
type groupKey struct {
	out  []string // output path
	prog *eval.Program
}

// input is one distinct aggregate argument, evaluated once per record.
type input struct {
	prog    *eval.Program
	numeric bool // some aggregate of it needs a number
}

func build(cfg any, env engine.BuildEnv) (engine.Processor, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("window: config is %T, want *window.Config", cfg)
	}
	// The decoder has validated c; with invalid settings (lint goes on after the decoder's
	// findings) the expressions are still checked, so that lint reports everything at once.
	var errs config.Errors
	p := &Processor{
		kind: c.Type, gap: int64(c.Gap), lateness: int64(max(c.Lateness, 0)), maxFuture: c.maxFuture(),
		idle: int64(c.idle()), lateTopic: c.Late, path: env.Path, clock: env.Clock,
		specIdx: map[string]int{}, parts: map[int32]*partition{},
	}
	p.size, p.hop = c.sizeHop()
	if p.clock == nil {
		p.clock = engine.WallClock{}
	}
	outFields := map[string]*types.Type{
		"window_start": types.TStr, "window_end": types.TStr, "ts_event": types.TStr, "event_id": types.TStr,
	}
	origin := "the window at " + env.Path
	unplaced := false // a group key whose output field is unknown (it is broken)
	if c.Time != nil && !c.Time.IsZero() {
		prog, _, err := eval.CompileChecked(*c.Time, eval.Any, env.Input, env.Warnings)
		errs.Append(c.Time.Pos, c.Time.Path, err)
		p.time = prog
	} else {
		// The default is not type-checked, as threshold's: it fits records of any shape
		// at run time, and a record without it is rejected with the reason.
		p.time = eval.MustCompile("ts_event", eval.Any)
	}
	for _, g := range c.GroupBy {
		parts := eval.FieldPath(g.Src)
		if parts == nil {
			unplaced = true
			continue // Validate said so
		}
		prog, t, err := eval.CompileChecked(g, eval.Any, env.Input, env.Warnings)
		if err != nil {
			errs.Append(g.Pos, g.Path, err)
			setPathType(outFields, parts, types.Any, origin)
			continue
		}
		p.keys = append(p.keys, groupKey{out: parts, prog: prog})
		setPathType(outFields, parts, t, origin)
	}
	for _, name := range slices.Sorted(maps.Keys(c.GroupAs)) {
		e := c.GroupAs[name]
		if e.IsZero() || !eval.IsIdentifier(name) {
			unplaced = unplaced || !e.IsZero()
			continue
		}
		prog, t, err := eval.CompileChecked(e, eval.Any, env.Input, env.Warnings)
		if err != nil {
			errs.Append(e.Pos, e.Path, err)
			outFields[name] = types.Any
			continue
		}
		p.keys = append(p.keys, groupKey{out: []string{name}, prog: prog})
		outFields[name] = orAny(t)
	}
	inputIdx := map[string]int{}
	for _, name := range slices.Sorted(maps.Keys(c.Aggregate)) {
		e := c.Aggregate[name]
		if e.IsZero() {
			continue
		}
		cl, err := parseCall(e)
		if err != nil {
			outFields[name] = types.Any
			continue // Validate said so
		}
		in, argType := -1, types.Any
		if cl.arg != nil {
			prog, t, err := eval.CompileChecked(*cl.arg, eval.Any, env.Input, env.Warnings)
			if err != nil {
				errs.Append(cl.arg.Pos, cl.arg.Path, err)
				outFields[name] = types.Any
				continue
			}
			argType = orAny(t)
			if cl.fn.numeric() && !numberLike(argType) {
				errs = append(errs, config.ExprError(*cl.arg, 1, "%s needs a number; %s is of type %s", cl.name, strings.TrimSpace(cl.arg.Src), argType))
				outFields[name] = types.Any
				continue
			}
			src := strings.TrimSpace(cl.arg.Src)
			i, seen := inputIdx[src]
			if !seen {
				i = len(p.inputs)
				inputIdx[src] = i
				p.inputs = append(p.inputs, &input{prog: prog})
			}
			p.inputs[i].numeric = p.inputs[i].numeric || cl.fn.numeric()
			in = i
		}
		kind, fname := slotFor(cl.fn)
		arg := ""
		if in >= 0 {
			arg = strings.TrimSpace(cl.arg.Src)
		}
		if cl.fn == fnRate && in < 0 {
			kind, fname = slotCount, "count" // rate() is the count over the window length
		}
		spec := fname + "(" + arg + ")"
		si, seen := p.specIdx[spec]
		if !seen {
			s := slot{kind: kind, spec: spec, input: in}
			if s.usesObj() {
				s.obj = p.nObjs
				p.nObjs++
			} else {
				s.word = p.nWords
				p.nWords += slotWords[kind]
			}
			si = len(p.slots)
			p.slots = append(p.slots, s)
			p.specs = append(p.specs, spec)
			p.specIdx[spec] = si
		}
		p.aggs = append(p.aggs, aggregate{name: name, call: cl, slot: si})
		switch cl.fn {
		case fnCount, fnDistinct:
			outFields[name] = types.TInt
		case fnFirst, fnLast:
			outFields[name] = argType
		default:
			outFields[name] = types.TFloat
		}
	}
	p.out = types.ObjectOf(origin, outFields)
	if unplaced {
		// A group key Validate refused has no known place in the output: the records may
		// have any other field, so that what reads them is not blamed for it.
		p.out.Extra = types.Any
	}
	if len(errs) > 0 {
		// It never runs, but its output type (broken parts unknown) lets lint go on
		// checking the rules that read the window's records (runtime.Build).
		return p, errs.Err()
	}
	p.vals = make([]any, len(p.inputs))
	p.nums = make([]float64, len(p.inputs))
	return p, nil
}

func orAny(t *types.Type) *types.Type {
	if t == nil {
		return types.Any
	}
	return t
}

// numberLike reports whether a value of type t may be a number at run time.
func numberLike(t *types.Type) bool {
	switch t.Kind {
	case types.Unknown, types.Int, types.Float, types.Nil:
		return true
	}
	return false
}

// setPathType puts t at path in the output record's fields, creating the objects on the
// way (source.source_id makes an object source with a field source_id).
func setPathType(fields map[string]*types.Type, path []string, t *types.Type, origin string) {
	for _, name := range path[:len(path)-1] {
		obj, ok := fields[name]
		if !ok || obj.Kind != types.Object {
			obj = types.ObjectOf(origin, map[string]*types.Type{})
			fields[name] = obj
		}
		fields = obj.Fields
	}
	fields[path[len(path)-1]] = orAny(t)
}

// OutputType is the window record: group keys, window bounds, event_id and aggregates.
func (p *Processor) OutputType() *types.Type { return p.out }

// Process adds every record to its windows and returns the windows that closed as the
// watermark moved on. A record whose time, group or aggregate inputs cannot be read is
// rejected and changes nothing; a late one goes to rejects as late.
func (p *Processor) Process(_ context.Context, batch []*engine.Record, rejects *engine.Rejects) ([]*engine.Record, error) {
	now := p.clock.Now().UnixNano()
	var out []*engine.Record
	var key []byte
	for _, rec := range batch {
		part := p.partition(rec.Source.Partition)
		part.touch(now, rec.Source.Topic)
		env := eval.Env{Vars: rec.Value, Source: rec.Source, Now: time.Unix(0, now)}
		t, err := p.eventTime(env)
		if err == nil {
			err = eval.CheckFuture(time.Unix(0, t), time.Unix(0, now), time.Duration(p.maxFuture))
		}
		if err == nil {
			key, err = p.groupKey(env, key[:0])
		}
		if err == nil {
			err = p.evalInputs(env)
		}
		if err != nil {
			rejects.Add(rec, p.path, fmt.Errorf("window: %w", err))
			continue
		}
		if late := p.add(part, rec, t, key); late != nil {
			rejects.AddLate(rec, p.path, p.lateTopic, late)
			continue
		}
		part.observe(t)
		out = p.closeDue(part, rec.Source.Partition, out)
	}
	return out, nil
}

// Tick advances the watermark of every partition that has been idle for idle_timeout and
// returns the windows that closed.
func (p *Processor) Tick(_ context.Context, now time.Time, _ *engine.Rejects) ([]*engine.Record, error) {
	if p.idle <= 0 {
		return nil, nil
	}
	var out []*engine.Record
	for _, id := range slices.Sorted(maps.Keys(p.parts)) {
		part := p.parts[id]
		if part.advanceIdle(now.UnixNano(), p.idle, p.lateness) {
			out = p.closeDue(part, id, out)
		}
	}
	return out, nil
}

func (p *Processor) eventTime(env eval.Env) (int64, error) {
	v, err := p.time.Eval(env)
	if err != nil {
		return 0, fmt.Errorf("time: %w", err)
	}
	if v == nil {
		return 0, fmt.Errorf("no event time: %s is missing", p.time.Source().Src)
	}
	t, err := eval.ParseTime(v, "")
	if err != nil {
		return 0, fmt.Errorf("event time (%s): %w", p.time.Source().Src, err)
	}
	return t.UnixNano(), nil
}

// groupKey appends the group's identity to b: the JSON array of its key values, which is
// also how the values are written back (decoded) when the window closes.
func (p *Processor) groupKey(env eval.Env, b []byte) ([]byte, error) {
	b = append(b, '[')
	for i, k := range p.keys {
		v, err := k.prog.Eval(env)
		if err != nil {
			return nil, fmt.Errorf("group key %s: %w", k.prog.Source().Src, err)
		}
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendJSON(b, v); err != nil {
			return nil, fmt.Errorf("group key %s: %w", k.prog.Source().Src, err)
		}
	}
	return append(b, ']'), nil
}

// appendJSON appends v's JSON encoding; strings and numbers without the reflection of
// encoding/json, which matters at a million records a second.
func appendJSON(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		if plainString(x) {
			b = append(b, '"')
			b = append(b, x...)
			return append(b, '"'), nil
		}
	case bool:
		return strconv.AppendBool(b, x), nil
	case float64:
		if !math.IsInf(x, 0) && !math.IsNaN(x) {
			return strconv.AppendFloat(b, x, 'g', -1, 64), nil
		}
	case time.Time:
		v = x.UTC().Format(time.RFC3339Nano)
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
}

func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// evalInputs evaluates every aggregate argument into p.vals (and p.nums for the numeric
// ones).
func (p *Processor) evalInputs(env eval.Env) error {
	for i, in := range p.inputs {
		v, err := in.prog.Eval(env)
		if err != nil {
			return fmt.Errorf("aggregate argument %s: %w", in.prog.Source().Src, err)
		}
		p.vals[i] = v
		if !in.numeric || v == nil {
			continue
		}
		f, ok := toFloat(v)
		switch {
		case !ok:
			return fmt.Errorf("aggregate argument %s is %s, not a number", in.prog.Source().Src, describeValue(v))
		case math.IsNaN(f):
			return fmt.Errorf("aggregate argument %s is NaN", in.prog.Source().Src)
		}
		p.nums[i] = f
	}
	return nil
}

func describeValue(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 40 {
			x = x[:37] + "..."
		}
		return fmt.Sprintf("the string %q", x)
	case bool:
		return fmt.Sprintf("the bool %v", x)
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("a %T", v)
}

// addValues adds the evaluated inputs of one record at event time t to w.
func (p *Processor) addValues(w *window, t int64, rec *engine.Record) {
	for i := range p.slots {
		s := &p.slots[i]
		var v any
		var f float64
		if s.input >= 0 {
			v, f = p.vals[s.input], p.nums[s.input]
		}
		s.add(w, v, f, t)
	}
	if rec.Source.Offset >= w.offset {
		w.offset = rec.Source.Offset
		w.ts = rec.Timestamp.UnixNano()
		if rec.Timestamp.IsZero() {
			w.ts = 0
		}
	}
}

func (p *Processor) newWindow(start, end int64) *window {
	w := &window{start: start, end: end, offset: -1}
	if p.nWords > 0 {
		w.words = make([]uint64, p.nWords)
	}
	if p.nObjs > 0 {
		w.objs = make([]any, p.nObjs)
	}
	for i := range p.slots {
		p.slots[i].init(w)
	}
	return w
}

// emit builds the record of a closed window.
func (p *Processor) emit(part *partition, id int32, key string, w *window) *engine.Record {
	// The key is the JSON array of the group's values, written by groupKey (or restored
	// from a checkpoint written by it): it always decodes. After a config edit that
	// changed the group keys, a restored window's values are matched by position as far
	// as they go.
	var values []any
	_ = json.Unmarshal([]byte(key), &values)
	v := make(map[string]any, len(p.keys)+len(p.aggs)+4)
	for i, k := range p.keys {
		var x any
		if i < len(values) {
			x = values[i]
		}
		setPath(v, k.out, x)
	}
	start := formatTime(w.start)
	end := formatTime(w.end)
	v["window_start"] = start
	v["window_end"] = end
	v["ts_event"] = end
	v["event_id"] = eventID(p.path, id, key, w.start, p.shapeEnd(w))
	for i := range p.aggs {
		a := &p.aggs[i]
		r := a.result(&p.slots[a.slot], w)
		if f, ok := r.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			r = nil // JSON has no NaN or infinity
		}
		v[a.name] = r
	}
	rec := &engine.Record{
		Value:  v,
		Source: engine.Source{Topic: part.topic, Partition: id, Offset: w.offset},
	}
	if w.ts != 0 {
		rec.Timestamp = time.Unix(0, w.ts).UTC()
	}
	return rec
}

func setPath(v map[string]any, path []string, x any) {
	for _, name := range path[:len(path)-1] {
		next, ok := v[name].(map[string]any)
		if !ok {
			next = map[string]any{}
			v[name] = next
		}
		v = next
	}
	v[path[len(path)-1]] = x
}

func formatTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

// shapeEnd is the end of a tumbling or hopping window whose length is not the configured
// size (it was opened before size was edited), 0 for every other window: the start alone
// identifies a window of the configured shape (and a session of a group), but not one of
// an older shape that starts at the same time.
func (p *Processor) shapeEnd(w *window) int64 {
	if p.kind == Session || w.end-w.start == p.size {
		return 0
	}
	return w.end
}

// eventID identifies a window's record as a version-8 UUID: a hash of the processor's
// path, the input partition, the group and the window start (and end, when not 0). A
// replay that closes the same window gives the same id, so sinks drop the duplicate.
func eventID(path string, partition int32, key string, start, end int64) string {
	h := sha256.New()
	h.Write([]byte(path))
	h.Write([]byte{0})
	fmt.Fprintf(h, "%d", partition)
	h.Write([]byte{0})
	h.Write([]byte(key))
	h.Write([]byte{0})
	fmt.Fprintf(h, "%d", start)
	if end != 0 {
		fmt.Fprintf(h, "\x00%d", end)
	}
	b := h.Sum(nil)[:16]
	b[6] = (b[6] & 0x0f) | 0x80
	b[8] = (b[8] & 0x3f) | 0x80
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}
