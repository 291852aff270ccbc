package window

import (
	"cmp"
	"container/heap"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/eventops/eventops-engine/engine"
)

// partition is the state of one input partition: its watermark and its open windows.
type partition struct {
	hasEvent bool
	maxEvent int64 // newest event time seen (ns)
	// idleWM is the watermark reached by idle advancement (math.MinInt64 until then): it
	// stays even when the newest event time is behind it, so windows it closed stay closed.
	idleWM  int64
	arrival int64 // wall-clock time of the last record read from the partition (ns)
	topic   string

	series map[string]*series // by group key
	due    closeHeap          // when each series' first window ends

	dirty     map[string]struct{} // group keys changed since Changes
	metaDirty bool
}

// series is one group's open windows, sorted by start.
type series struct {
	key  string // the group key, shared with the map's key (one allocation per series)
	wins []*window
	// sched is the end under which the series is in the heap; scheduled is false while it
	// is not. Heap entries whose end differs from sched are stale and skipped.
	sched     int64
	scheduled bool
}

// window is one open window and its aggregate state.
type window struct {
	start, end int64 // ns; a session's end is its last event + gap
	offset     int64 // of the last record added (the input offset of the output record)
	ts         int64 // broker timestamp of that record (ns), 0 when unknown
	words      []uint64
	objs       []any
}

func newPartition() *partition {
	return &partition{idleWM: math.MinInt64, series: map[string]*series{}, dirty: map[string]struct{}{}}
}

func (p *Processor) partition(id int32) *partition {
	part, ok := p.parts[id]
	if !ok {
		part = newPartition()
		p.parts[id] = part
	}
	return part
}

// touch notes that a record was read from the partition at wall-clock time now.
func (part *partition) touch(now int64, topic string) {
	part.arrival, part.topic = now, topic
	part.metaDirty = true
}

// observe takes event time t into the partition's newest event time.
func (part *partition) observe(t int64) {
	if !part.hasEvent || t > part.maxEvent {
		part.hasEvent, part.maxEvent = true, t
		part.metaDirty = true
	}
}

// watermark is the newest event time minus lateness, or what idle advancement reached if
// that is later; math.MinInt64 before any event.
func (part *partition) watermark(lateness int64) int64 {
	if !part.hasEvent {
		return part.idleWM
	}
	return max(part.maxEvent-lateness, part.idleWM)
}

// advanceIdle moves the watermark of a partition that has read nothing for idle on with
// the wall clock: newest event time + time since the last record - lateness. It reports
// whether the watermark moved.
func (part *partition) advanceIdle(now, idle, lateness int64) bool {
	if !part.hasEvent || now-part.arrival < idle {
		return false
	}
	wm := part.maxEvent + (now - part.arrival) - lateness
	if wm <= part.idleWM {
		return false
	}
	part.idleWM = wm
	part.metaDirty = true
	return true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// add puts the record (its inputs already evaluated into p.vals) into its windows, or
// returns why it is late.
func (p *Processor) add(part *partition, rec *engine.Record, t int64, key []byte) error {
	wm := part.watermark(p.lateness)
	if p.kind == Session {
		return p.addSession(part, rec, t, key, wm)
	}
	last := floorDiv(t, p.hop) * p.hop
	if last+p.size <= wm {
		return p.lateError(t, wm, p.closedWindows(last))
	}
	s := part.seriesFor(key)
	for start := last - floorDiv(p.size-1, p.hop)*p.hop; start <= last; start += p.hop {
		end := start + p.size
		if end <= wm || t < start || t >= end {
			continue // closed already (the record is late for this one only), or not its window
		}
		// Windows are matched by both bounds: one restored from before an edit of size or
		// hop has the same start as a window of the new shape but is another window.
		i, found := slices.BinarySearchFunc(s.wins, [2]int64{start, end}, func(w *window, b [2]int64) int {
			if c := cmp.Compare(w.start, b[0]); c != 0 {
				return c
			}
			return cmp.Compare(w.end, b[1])
		})
		if !found {
			s.wins = slices.Insert(s.wins, i, p.newWindow(start, end))
		}
		p.addValues(s.wins[i], t, rec)
	}
	part.changed(s)
	return nil
}

func (p *Processor) closedWindows(last int64) string {
	if p.kind == Hopping {
		return fmt.Sprintf("all its windows have closed, the last one [%s, %s)", formatTime(last), formatTime(last+p.size))
	}
	return fmt.Sprintf("its window [%s, %s) has closed", formatTime(last), formatTime(last+p.size))
}

// addSession adds a record to its group's session: it joins every open session it is
// less than gap away from (bridging two of them merges them), or starts a new one. It is
// late when it joins none and a session of it alone would already have closed.
func (p *Processor) addSession(part *partition, rec *engine.Record, t int64, key []byte, wm int64) error {
	s := part.series[string(key)]
	var touching []int
	if s != nil {
		for i, w := range s.wins {
			if t > w.start-p.gap && t < w.end {
				touching = append(touching, i)
			}
		}
	}
	if len(touching) == 0 && t+p.gap <= wm {
		return p.lateError(t, wm, fmt.Sprintf("a session of it alone would have ended at %s (gap %s)", formatTime(t+p.gap), time.Duration(p.gap)))
	}
	if s == nil {
		s = part.seriesFor(key)
	}
	var w *window
	if len(touching) == 0 {
		w = p.newWindow(t, t+p.gap)
		i, _ := slices.BinarySearchFunc(s.wins, t, func(w *window, start int64) int { return cmp.Compare(w.start, start) })
		s.wins = slices.Insert(s.wins, i, w)
	} else {
		w = s.wins[touching[0]]
		for _, j := range touching[1:] {
			o := s.wins[j]
			for k := range p.slots {
				p.slots[k].merge(w, o)
			}
			w.end = max(w.end, o.end)
			if o.offset > w.offset {
				w.offset, w.ts = o.offset, o.ts
			}
		}
		// The merged sessions were adjacent in start order: drop all but the first.
		s.wins = slices.Delete(s.wins, touching[0]+1, touching[len(touching)-1]+1)
		w.start = min(w.start, t)
		w.end = max(w.end, t+p.gap)
	}
	p.addValues(w, t, rec)
	part.changed(s)
	return nil
}

func (p *Processor) lateError(t, wm int64, why string) error {
	return fmt.Errorf("late: event time %s is before the watermark %s (lateness %s): %s",
		formatTime(t), formatTime(wm), time.Duration(p.lateness), why)
}

// seriesFor returns the group's series, creating it.
func (part *partition) seriesFor(key []byte) *series {
	s := part.series[string(key)]
	if s == nil {
		s = &series{key: string(key)}
		part.series[s.key] = s
	}
	return s
}

// changed marks a series for the next Changes and makes sure it is in the heap under an
// end no later than its first window's.
func (part *partition) changed(s *series) {
	part.dirty[s.key] = struct{}{}
	part.schedule(s.key, s)
}

func (part *partition) schedule(key string, s *series) {
	if len(s.wins) == 0 {
		return
	}
	first := s.wins[0].end
	for _, w := range s.wins[1:] {
		first = min(first, w.end)
	}
	if !s.scheduled || first < s.sched {
		s.sched, s.scheduled = first, true
		heap.Push(&part.due, due{end: first, key: key})
	}
}

// closeDue emits, in order of window end then group key, every window of the partition
// that the watermark has reached, and forgets it.
func (p *Processor) closeDue(part *partition, id int32, out []*engine.Record) []*engine.Record {
	wm := part.watermark(p.lateness)
	for part.due.Len() > 0 && part.due[0].end <= wm {
		d := heap.Pop(&part.due).(due)
		s := part.series[d.key]
		if s == nil || !s.scheduled || s.sched != d.end {
			continue // stale: the series closed, or is scheduled under another end
		}
		s.scheduled = false
		kept := s.wins[:0]
		for _, w := range s.wins {
			if w.end <= d.end {
				out = append(out, p.emit(part, id, d.key, w))
			} else {
				kept = append(kept, w)
			}
		}
		clear(s.wins[len(kept):])
		s.wins = kept
		part.dirty[d.key] = struct{}{}
		if len(s.wins) == 0 {
			delete(part.series, d.key)
			continue
		}
		// Its next window ends later: back in the heap under that end.
		part.schedule(d.key, s)
	}
	return out
}

// due is a heap entry: series key is due to close a window at end.
type due struct {
	end int64
	key string
}

type closeHeap []due

func (h closeHeap) Len() int { return len(h) }
func (h closeHeap) Less(i, j int) bool {
	if h[i].end != h[j].end {
		return h[i].end < h[j].end
	}
	return h[i].key < h[j].key
}
func (h closeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *closeHeap) Push(x any)   { *h = append(*h, x.(due)) }
func (h *closeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = due{}
	*h = old[:len(old)-1]
	return x
}

// State entries. Each partition has:
//
//	"m"         the watermark: newest event time, idle watermark, last arrival, topic
//	"g" + key   a group's open windows, key being the JSON array of its key values
//
// A group entry names the state it holds per window ("count()", "avg(value)",
// "quantiles(value)"), so that state written before a config edit restores into the
// aggregates that are still there; new aggregates start empty for windows already open.
const (
	metaKey       = "m"
	seriesPrefix  = "g"
	formatVersion = 1
)

// Changes reports the partitions' changed entries since the last call.
func (p *Processor) Changes(put func(partition int32, key string, value []byte)) {
	for _, id := range slices.Sorted(maps.Keys(p.parts)) {
		part := p.parts[id]
		if part.metaDirty {
			put(id, metaKey, part.encodeMeta())
			part.metaDirty = false
		}
		if len(part.dirty) == 0 {
			continue
		}
		for _, key := range slices.Sorted(maps.Keys(part.dirty)) {
			if s := part.series[key]; s != nil {
				put(id, seriesPrefix+key, p.encodeSeries(s))
			} else {
				put(id, seriesPrefix+key, nil)
			}
		}
		clear(part.dirty)
	}
}

// Restore replaces partition id's state with entries.
func (p *Processor) Restore(id int32, entries map[string][]byte) error {
	part := newPartition()
	if b, ok := entries[metaKey]; ok {
		if err := part.decodeMeta(b); err != nil {
			return fmt.Errorf("window state %q: %w", metaKey, err)
		}
	}
	// The partition's silence counts from the restore, not from its last checkpointed
	// record: the records written while no instance read it are about to be replayed, and
	// a tick before they arrive must not close their windows as idle.
	part.arrival = p.clock.Now().UnixNano()
	for _, key := range slices.Sorted(maps.Keys(entries)) {
		if key == metaKey {
			continue
		}
		group, ok := cutPrefix(key, seriesPrefix)
		if !ok {
			return fmt.Errorf("window state %q: unknown entry", key)
		}
		s, err := p.decodeSeries(entries[key])
		if err != nil {
			return fmt.Errorf("window state %q: %w", key, err)
		}
		if len(s.wins) == 0 {
			continue
		}
		s.key = group
		part.series[group] = s
		part.schedule(group, s)
	}
	p.parts[id] = part
	return nil
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || s[:len(prefix)] != prefix {
		return "", false
	}
	return s[len(prefix):], true
}

// Drop forgets partition id.
func (p *Processor) Drop(id int32) {
	delete(p.parts, id)
}

func (part *partition) encodeMeta() []byte {
	e := encoder{b: make([]byte, 0, 32+len(part.topic))}
	e.uvarint(formatVersion)
	has := uint64(0)
	if part.hasEvent {
		has = 1
	}
	e.uvarint(has)
	e.varint(part.maxEvent)
	e.varint(part.idleWM)
	e.varint(part.arrival)
	e.string(part.topic)
	return e.b
}

func (part *partition) decodeMeta(b []byte) error {
	d := decoder{b: b}
	if v := d.uvarint(); d.err == nil && v != formatVersion {
		return fmt.Errorf("format version %d, this engine reads %d", v, formatVersion)
	}
	part.hasEvent = d.uvarint() == 1
	part.maxEvent = d.varint()
	part.idleWM = d.varint()
	part.arrival = d.varint()
	part.topic = d.string()
	return d.err
}

func (p *Processor) encodeSeries(s *series) []byte {
	e := encoder{b: make([]byte, 0, 64)}
	e.uvarint(formatVersion)
	e.uvarint(uint64(len(p.specs)))
	for _, spec := range p.specs {
		e.string(spec)
	}
	e.uvarint(uint64(len(s.wins)))
	var slotBuf encoder
	for _, w := range s.wins {
		e.varint(w.start)
		e.varint(w.end)
		e.varint(w.offset)
		e.varint(w.ts)
		for i := range p.slots {
			slotBuf.b = slotBuf.b[:0]
			p.slots[i].encode(w, &slotBuf)
			e.bytes(slotBuf.b)
		}
	}
	return e.b
}

func (p *Processor) decodeSeries(b []byte) (*series, error) {
	d := decoder{b: b}
	if v := d.uvarint(); d.err == nil && v != formatVersion {
		return nil, fmt.Errorf("format version %d, this engine reads %d", v, formatVersion)
	}
	nspecs := d.uvarint()
	if nspecs > uint64(len(d.b)) {
		return nil, errTruncated
	}
	// slotOf[i] is our slot for the entry's i-th state, -1 for state of an aggregate this
	// config no longer has.
	slotOf := make([]int, nspecs)
	for i := range slotOf {
		spec := d.string()
		if j, ok := p.specIdx[spec]; ok {
			slotOf[i] = j
		} else {
			slotOf[i] = -1
		}
	}
	n := d.uvarint()
	if d.err != nil {
		return nil, d.err
	}
	if n > uint64(len(d.b)) {
		return nil, errTruncated
	}
	s := &series{wins: make([]*window, 0, n)}
	for range n {
		w := p.newWindow(d.varint(), d.varint())
		w.offset = d.varint()
		w.ts = d.varint()
		for _, j := range slotOf {
			sb := d.bytes()
			if j < 0 || d.err != nil {
				continue
			}
			sd := decoder{b: sb}
			if err := p.slots[j].decode(w, &sd); err != nil {
				return nil, err
			}
		}
		if d.err != nil {
			return nil, d.err
		}
		s.wins = append(s.wins, w)
	}
	return s, d.err
}
