package threshold

import (
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/eval"
)

// sid identifies a series inside the processor: a 128-bit hash of its key. Keys are not kept,
// so that a series costs the same whatever its key's length.
type sid [16]byte

// series is what the processor keeps about one series of a partition. It is small on
// purpose: a million idle series must fit in a few hundred megabytes.
type series struct {
	// last is the newest event time evaluated for the series (lateness 0 only: it tells an
	// out-of-order record from an in-order one).
	last int64
	// vals are the series values as a JSON array, kept while the series holds an alert
	// state and, with heartbeat rules, always: an alert fired by a series' silence, or
	// resolved because its rule was removed, has no record to take them from.
	vals string
	// alerts are the states of the rules that are not inactive for the series (and of
	// heartbeat rules that have seen it).
	alerts []slot
}

type slot struct {
	rule uint16
	State
}

// kept reports whether a state must be remembered: an inactive threshold state is the zero
// state and is forgotten.
func kept(s State) bool { return s.Phase != Inactive || s.LastSeen != 0 }

func deleteUnkept(alerts []slot) []slot {
	alerts = slices.DeleteFunc(alerts, func(s slot) bool { return !kept(s.State) })
	if len(alerts) == 0 {
		return nil
	}
	return alerts
}

// partition is the state of one input partition.
type partition struct {
	id     int32
	series map[sid]series
	// clock is the newest event time evaluated in the partition.
	clock int64
	// maxEvent is the newest event time that arrived (with lateness; the watermark is
	// maxEvent - lateness).
	maxEvent int64
	// wm is the watermark reached: records before it are late. It only moves forward.
	wm int64
	// seq numbers buffered records in arrival order.
	seq uint64
	// buf are the records waiting for the watermark, in (event time, arrival) order.
	buf []buffered
	// arrival is when (by the wall clock) the partition's last record arrived. Not
	// checkpointed: a restored partition counts its silence from the restore.
	arrival time.Time
	// swept is when Tick last looked for series to forget.
	swept time.Time
	// nextAbsent is at most the earliest time a heartbeat rule of the partition can fire
	// (0: none can), so that the series are only scanned when one may be due.
	nextAbsent int64

	// What changed since the last Changes.
	dirtySeries map[sid]struct{}
	dirtyBuf    map[uint64]*buffered // nil: deleted
	dirtyMeta   bool

	// What Restore found out of date in the changelog (series keyed by other series
	// expressions, series without alerts under lateness): it goes into the dirty sets at
	// the partition's next Process or Tick, because the runtime discards what Changes
	// reports right after Restore. An entry left in the changelog would come back on
	// every restore.
	staleSeries []sid
	staleMeta   bool
	// ended are the alerts Restore found without a rule to evaluate them (the rule was
	// removed, or the series expressions changed), resolved; they are emitted by the next
	// Process or Tick, in the same checkpoint as the changelog entries that forget them.
	ended []*engine.Record
}

type buffered struct {
	at  int64
	seq uint64
	rec *engine.Record
}

func newPartition(id int32, now time.Time) *partition {
	return &partition{id: id, series: map[sid]series{}, arrival: now, dirtySeries: map[sid]struct{}{}, dirtyBuf: map[uint64]*buffered{}}
}

// partition returns the state of partition id, creating it on its first record.
func (p *Processor) partition(id int32, now time.Time) *partition {
	part := p.parts[id]
	if part == nil {
		part = newPartition(id, now)
		part.dirtyMeta = true
		p.parts[id] = part
	}
	return part
}

// settleRestored settles every partition restored since the last Process or Tick (see
// partition.staleSeries) and returns the alerts Restore ended.
func (p *Processor) settleRestored(out []*engine.Record) []*engine.Record {
	if !p.restored {
		return out
	}
	p.restored = false
	for _, id := range p.partitionIDs() {
		out = p.parts[id].settleStale(out)
	}
	return out
}

// settleStale marks what Restore found out of date as changed, for the next Changes, and
// hands over the alerts it ended.
func (part *partition) settleStale(out []*engine.Record) []*engine.Record {
	out = append(out, part.ended...)
	part.ended = nil
	for _, id := range part.staleSeries {
		part.dirty(id)
	}
	part.staleSeries = nil
	if part.staleMeta {
		part.dirtyMeta, part.staleMeta = true, false
	}
	return out
}

func (p *Processor) partitionIDs() []int32 {
	return slices.Sorted(maps.Keys(p.parts))
}

func (part *partition) dirty(id sid) { part.dirtySeries[id] = struct{}{} }

func (part *partition) noteDeadline(due int64) {
	if part.nextAbsent == 0 || due < part.nextAbsent {
		part.nextAbsent = due
	}
}

// buffer adds a record that waits for the watermark.
func (part *partition) buffer(rec *engine.Record, at int64) {
	part.seq++
	b := buffered{at: at, seq: part.seq, rec: rec}
	i, _ := slices.BinarySearchFunc(part.buf, b, func(x, y buffered) int {
		if x.at != y.at {
			return cmp.Compare(x.at, y.at)
		}
		return cmp.Compare(int64(x.seq), int64(y.seq))
	})
	part.buf = slices.Insert(part.buf, i, b)
	part.dirtyBuf[b.seq] = &b
	part.maxEvent = max(part.maxEvent, at)
	part.dirtyMeta = true
}

// release moves the watermark to wm and evaluates, in order, the buffered records it passed.
func (p *Processor) release(part *partition, wm int64, now time.Time, out []*engine.Record, rejects *engine.Rejects) []*engine.Record {
	if wm > part.wm {
		part.wm = wm
		part.dirtyMeta = true
	}
	n := 0
	for n < len(part.buf) && part.buf[n].at <= part.wm {
		n++
	}
	if n == 0 {
		return out
	}
	ready := slices.Clone(part.buf[:n])
	part.buf = slices.Delete(part.buf, 0, n)
	for _, b := range ready {
		if unsaved := part.dirtyBuf[b.seq]; unsaved != nil {
			delete(part.dirtyBuf, b.seq) // never written to the changelog: nothing to delete
		} else {
			part.dirtyBuf[b.seq] = nil
		}
		out = p.evalRecord(part, b.rec, b.at, now, out, rejects)
	}
	return out
}

// scanAbsent fires the heartbeat rules of every series of the partition that has been silent
// for its rule's absent duration at event time clock. trigger is the record whose
// evaluation moved the clock, nil in Tick.
func (p *Processor) scanAbsent(part *partition, clock int64, trigger *engine.Record, now time.Time, out []*engine.Record) []*engine.Record {
	if part.nextAbsent == 0 || clock < part.nextAbsent {
		return out
	}
	at := time.Unix(0, clock).UTC()
	var next int64
	var fired []*engine.Record
	for id, s := range part.series {
		changed := false
		for j := range s.alerts {
			sl := &s.alerts[j]
			r := p.rules[sl.rule]
			if r.Absent == 0 || sl.Phase == Firing || sl.LastSeen == 0 {
				continue
			}
			nextState, tr := Evaluate(sl.State, Input{Level: -1}, at, r.Rule)
			if tr != ToFiring {
				if due := sl.LastSeen + int64(r.Absent); next == 0 || due < next {
					next = due
				}
				continue
			}
			a, _ := p.alert(p.silenceAlert(part, r, s.vals, sl.State, nextState, trigger, now))
			fired = append(fired, a)
			sl.State = nextState // s.alerts shares its array with the map's value
			changed = true
		}
		if changed {
			part.dirty(id)
		}
	}
	part.nextAbsent = next
	// Map order is random; alerts come out in the order they became due.
	slices.SortFunc(fired, func(a, b *engine.Record) int {
		if c := strings.Compare(a.Value["ts"].(string), b.Value["ts"].(string)); c != 0 {
			return c
		}
		return strings.Compare(a.Value["fingerprint"].(string), b.Value["fingerprint"].(string))
	})
	return append(out, fired...)
}

// silenceAlert describes the firing of a heartbeat rule: its templates see a record made of
// the series values (source.source_id becomes {source: {source_id: ...}}), since there is
// no triggering record.
func (p *Processor) silenceAlert(part *partition, r *rule, vals string, old, next State, trigger *engine.Record, now time.Time) alertOf {
	values, key, rec := seriesRecord(vals, p.seriesName)
	a := alertOf{
		rec: trigger, r: r, key: key, values: values, old: old, next: next,
		tr: ToFiring, at: next.FiredAt, trigger: "absent@" + fmtTime(next.FiredAt), lenient: true,
	}
	a.env = eval.Env{Vars: rec, Now: now}
	if trigger != nil {
		a.env.Source = trigger.Source
	} else {
		a.env.Source = engine.Source{Partition: part.id, Offset: -1}
		a.tickTime = now
	}
	return a
}

// seriesRecord decodes a series' values (series.vals) made by the series expressions names:
// the values, the series key and a record holding them at their paths.
func seriesRecord(vals string, names []string) (values []any, key string, rec map[string]any) {
	_ = json.Unmarshal([]byte(vals), &values) // written by evaluate; empty if absent
	values = append(values, make([]any, max(len(names)-len(values), 0))...)[:len(names)]
	rec = map[string]any{}
	keyParts := make([]string, len(values))
	for i, v := range values {
		keyParts[i] = eval.Text(v)
		setPath(rec, names[i], v)
	}
	return values, strings.Join(keyParts, "\x1f"), rec
}

// setPath sets a dotted field path (a series expression that is a plain path) in rec; any
// other expression is set under its own text.
func setPath(rec map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	for _, p := range parts {
		if !eval.IsIdentifier(p) {
			rec[path] = v
			return
		}
	}
	for _, p := range parts[:len(parts)-1] {
		child, ok := rec[p].(map[string]any)
		if !ok {
			child = map[string]any{}
			rec[p] = child
		}
		rec = child
	}
	rec[parts[len(parts)-1]] = v
}

// forgetIdle forgets the series that hold no alert state and whose last record is before
// horizon (event time).
func (part *partition) forgetIdle(horizon int64) {
	for id, s := range part.series {
		if len(s.alerts) == 0 && s.last < horizon {
			delete(part.series, id)
			part.dirty(id)
		}
	}
}
