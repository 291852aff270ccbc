package threshold

import (
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/codec"
)

// Changelog keys of a partition's entries (each processor has its own key space):
//
//	meta            the partition's clocks and the series expressions its keys were made with
//	s/<series id>   one series: its last event time and the state of each rule, by rule name
//	b/<seq>         one record waiting for the watermark (lateness > 0)
//
// Values are JSON, so that a changelog can be read by a person and decoded by a later version.
const (
	metaKey      = "meta"
	seriesPrefix = "s/"
	bufPrefix    = "b/"
)

type metaEntry struct {
	Clock    int64  `json:"clock,omitempty"`
	MaxEvent int64  `json:"max_event,omitempty"`
	WM       int64  `json:"watermark,omitempty"`
	Seq      uint64 `json:"seq,omitempty"`
	Series   string `json:"series"`
}

type seriesEntry struct {
	Last   int64           `json:"last,omitempty"`
	Vals   json.RawMessage `json:"vals,omitempty"`
	Alerts []stateEntry    `json:"alerts,omitempty"`
}

type stateEntry struct {
	Rule      string `json:"rule"`
	Phase     string `json:"phase"`
	Severity  string `json:"severity,omitempty"`
	ActiveAt  int64  `json:"active_at,omitempty"`
	FiredAt   int64  `json:"fired_at,omitempty"`
	ClearedAt int64  `json:"cleared_at,omitempty"`
	LastSeen  int64  `json:"last_seen,omitempty"`
}

type bufEntry struct {
	At        int64           `json:"at"`
	Seq       uint64          `json:"seq"`
	Value     json.RawMessage `json:"value"`
	Raw       []byte          `json:"raw,omitempty"`
	Key       []byte          `json:"key,omitempty"`
	Topic     string          `json:"topic,omitempty"`
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	TopicID   string          `json:"topic_id,omitempty"`
	Timestamp int64           `json:"ts,omitempty"`
}

func seriesKey(id sid) string  { return seriesPrefix + hex.EncodeToString(id[:]) }
func bufKey(seq uint64) string { return fmt.Sprintf("%s%016x", bufPrefix, seq) }

// Changes reports the entries changed since the last call (engine.Stateful).
func (p *Processor) Changes(put func(partition int32, key string, value []byte)) {
	for _, id := range p.partitionIDs() {
		part := p.parts[id]
		if part.dirtyMeta {
			put(id, metaKey, p.encodeMeta(part))
			part.dirtyMeta = false
		}
		for _, sidv := range sortedSIDs(part.dirtySeries) {
			s, ok := part.series[sidv]
			var v []byte
			if ok {
				v = p.encodeSeries(s)
			}
			put(id, seriesKey(sidv), v)
		}
		clear(part.dirtySeries)
		for _, seq := range slices.Sorted(maps.Keys(part.dirtyBuf)) {
			var v []byte
			if b := part.dirtyBuf[seq]; b != nil {
				v = encodeBuffered(*b)
			}
			put(id, bufKey(seq), v)
		}
		clear(part.dirtyBuf)
	}
}

// Export reports every entry of every partition, as Restore takes them. Hot reload uses it
// to carry the alerts of a running processor over into its replacement: states are matched
// by rule name, so rules that stayed keep their alerts, and states of removed rules are
// ignored.
func (p *Processor) Export(put func(partition int32, key string, value []byte)) {
	for _, id := range p.partitionIDs() {
		part := p.parts[id]
		put(id, metaKey, p.encodeMeta(part))
		for _, sidv := range sortedSIDs(part.series) {
			put(id, seriesKey(sidv), p.encodeSeries(part.series[sidv]))
		}
		for _, b := range part.buf {
			put(id, bufKey(b.seq), encodeBuffered(b))
		}
	}
}

func sortedSIDs[V any](m map[sid]V) []sid {
	return slices.SortedFunc(maps.Keys(m), func(a, b sid) int { return strings.Compare(string(a[:]), string(b[:])) })
}

// Drop forgets partition (engine.Stateful): it was assigned to another instance.
func (p *Processor) Drop(partition int32) { delete(p.parts, partition) }

// Restore replaces the state of partition with entries (engine.Stateful). States of rules
// this processor does not have are ignored, and so are series made by other series
// expressions. Restore itself leaves nothing for Changes to report (the runtime discards
// that report); the deletion of such entries is reported after the partition's next
// Process or Tick.
func (p *Processor) Restore(partition int32, entries map[string][]byte) error {
	part := newPartition(partition, p.clock.Now())
	var meta metaEntry
	meta.Series = p.seriesSig
	if v, ok := entries[metaKey]; ok {
		if err := json.Unmarshal(v, &meta); err != nil {
			return fmt.Errorf("threshold: restore partition %d: %s: %w", partition, metaKey, err)
		}
	}
	part.clock, part.maxEvent, part.wm, part.seq = meta.Clock, meta.MaxEvent, meta.WM, meta.Seq
	sameSeries := meta.Series == p.seriesSig
	if !sameSeries {
		part.staleMeta = true
	}
	for _, key := range slices.Sorted(maps.Keys(entries)) {
		v := entries[key]
		switch {
		case strings.HasPrefix(key, seriesPrefix):
			var id sid
			if b, err := hex.DecodeString(key[len(seriesPrefix):]); err != nil || len(b) != len(id) {
				return fmt.Errorf("threshold: restore partition %d: bad series key %q", partition, key)
			} else {
				copy(id[:], b)
			}
			s, ended, err := p.decodeSeries(v, sameSeries)
			if err != nil {
				return fmt.Errorf("threshold: restore partition %d: %s: %w", partition, key, err)
			}
			for _, e := range ended {
				reason := "rule removed"
				names := p.seriesName
				if !sameSeries {
					reason, names = "series changed", strings.Split(meta.Series, "\x1f")
				}
				if a := p.endedAlert(part, e, s.vals, names, reason); a != nil {
					part.ended = append(part.ended, a)
				}
			}
			if !p.hasAbsent && len(s.alerts) == 0 {
				s.vals = "" // kept only while an alert may need it
			}
			if len(ended) > 0 {
				p.restored = true
				if sameSeries {
					part.staleSeries = append(part.staleSeries, id) // to be rewritten without them
				}
			}
			if !sameSeries {
				part.staleSeries = append(part.staleSeries, id) // to be deleted
				continue
			}
			if p.lateness > 0 && len(s.alerts) == 0 {
				part.staleSeries = append(part.staleSeries, id) // not kept with lateness
				continue
			}
			part.series[id] = s
			for _, sl := range s.alerts {
				if r := p.rules[sl.rule]; r.Absent > 0 && sl.Phase != Firing {
					part.noteDeadline(sl.LastSeen + int64(r.Absent))
				}
			}
		case strings.HasPrefix(key, bufPrefix):
			b, err := decodeBuffered(v)
			if err != nil {
				return fmt.Errorf("threshold: restore partition %d: %s: %w", partition, key, err)
			}
			part.buf = append(part.buf, b)
		}
	}
	slices.SortFunc(part.buf, func(x, y buffered) int {
		if x.at != y.at {
			return cmp.Compare(x.at, y.at)
		}
		return cmp.Compare(int64(x.seq), int64(y.seq))
	})
	p.parts[partition] = part
	if len(part.staleSeries) > 0 || part.staleMeta {
		p.restored = true
	}
	return nil
}

func (p *Processor) encodeMeta(part *partition) []byte {
	b, _ := json.Marshal(metaEntry{Clock: part.clock, MaxEvent: part.maxEvent, WM: part.wm, Seq: part.seq, Series: p.seriesSig})
	return b
}

func (p *Processor) encodeSeries(s series) []byte {
	e := seriesEntry{Last: s.last}
	if s.vals != "" {
		e.Vals = json.RawMessage(s.vals)
	}
	for _, sl := range s.alerts {
		r := p.rules[sl.rule]
		st := stateEntry{Rule: r.Name, Phase: sl.Phase.String(), ActiveAt: sl.ActiveAt, FiredAt: sl.FiredAt, ClearedAt: sl.ClearedAt, LastSeen: sl.LastSeen}
		if r.Absent == 0 {
			st.Severity = r.sevs[min(int(sl.Level), len(r.sevs)-1)]
		}
		e.Alerts = append(e.Alerts, st)
	}
	b, _ := json.Marshal(e)
	return b
}

// decodeSeries decodes a series entry. States of rules the processor has are kept; pending
// and firing alerts it can no longer evaluate (the rule was removed or changed between
// threshold and heartbeat, or sameSeries is false: the entry was keyed by other series
// expressions) are returned as ended, for endedAlert to resolve.
func (p *Processor) decodeSeries(v []byte, sameSeries bool) (s series, ended []stateEntry, err error) {
	var e seriesEntry
	if err := json.Unmarshal(v, &e); err != nil {
		return series{}, nil, err
	}
	s = series{last: e.Last, vals: string(e.Vals)}
	for _, st := range e.Alerts {
		active := st.Phase == "pending" || st.Phase == "firing"
		i, ok := p.byName[st.Rule]
		if !ok || !sameSeries {
			if active {
				ended = append(ended, st)
			}
			continue
		}
		r := p.rules[i]
		state := State{ActiveAt: st.ActiveAt, FiredAt: st.FiredAt, ClearedAt: st.ClearedAt, LastSeen: st.LastSeen}
		switch st.Phase {
		case "pending":
			state.Phase = Pending
		case "firing":
			state.Phase = Firing
		}
		// The rule may have been edited: a severity that left the ladder becomes its lowest.
		state.Level = uint8(len(r.sevs) - 1)
		if j := slices.Index(r.sevs, st.Severity); j >= 0 {
			state.Level = uint8(j)
		}
		// A rule that changed between heartbeat and threshold keeps nothing of the other
		// kind: an alert of the other kind ends.
		wasAbsent := st.LastSeen != 0
		if (r.Absent > 0) != wasAbsent && active {
			ended = append(ended, st)
			continue
		}
		if r.Absent > 0 {
			if state.LastSeen == 0 {
				continue
			}
			state.Level, state.ClearedAt = 0, 0
		} else {
			if state.Phase == Inactive {
				continue
			}
			state.LastSeen = 0
		}
		s.alerts = append(s.alerts, slot{rule: uint16(i), State: state})
	}
	return s, ended, nil
}

// endedAlert is the resolved record of an alert no rule evaluates any more, with reason
// "rule removed" (or "series changed"). The rule's templates are gone with it, so the record
// has the series, the severity and the times but no labels or annotations; its fingerprint
// is the alert's, so a compacted topic and the firing-alerts view see it resolve. It is
// dated at the partition's event time. Without the series values (a checkpoint written
// before they were kept with alerts) the fingerprint cannot be rebuilt: the alert is
// logged instead.
func (p *Processor) endedAlert(part *partition, st stateEntry, vals string, seriesNames []string, reason string) *engine.Record {
	if vals == "" {
		p.logger.Warn("threshold: an alert ended without a resolved record (its checkpoint predates the series values)",
			"processor", p.path, "rule", st.Rule, "reason", reason, "partition", part.id)
		return nil
	}
	values, key, rec := seriesRecord(vals, seriesNames)
	fp := Fingerprint(st.Rule, key)
	at := max(part.clock, part.maxEvent, st.ActiveAt, st.FiredAt)
	series := make(map[string]any, len(values))
	for i, v := range values {
		series[seriesNames[i]] = v
	}
	v := map[string]any{
		"fingerprint": fp,
		"rule":        st.Rule,
		"state":       "resolved",
		"reason":      reason,
		"ts":          fmtTime(at),
		"started_at":  fmtTime(st.ActiveAt),
		"resolved_at": fmtTime(at),
		"message":     st.Rule + ": " + reason,
		"labels":      map[string]any{},
		"annotations": map[string]any{},
		"series":      series,
		"event_id":    EventID("ended@"+fmtTime(st.ActiveAt), st.Rule, reason, fp),
	}
	if st.Severity != "" {
		v["severity"] = st.Severity
	}
	if st.FiredAt != 0 {
		v["fired_at"] = fmtTime(st.FiredAt)
	}
	if st.LastSeen != 0 {
		v["last_seen_at"] = fmtTime(st.LastSeen)
	}
	for _, f := range []string{"tenant_id", "metric"} {
		if x, ok := rec[f]; ok && x != nil {
			v[f] = x
		}
	}
	if src, ok := rec["source"].(map[string]any); ok && src["source_id"] != nil {
		v["source_id"] = src["source_id"]
	}
	return &engine.Record{Value: v, Key: []byte(fp), Source: engine.Source{Partition: part.id, Offset: -1}, Timestamp: p.clock.Now()}
}

func encodeBuffered(b buffered) []byte {
	val, err := codec.AppendObject(nil, b.rec.Value)
	if err != nil {
		// Values come from decoded JSON or from expressions over it; if one cannot be
		// encoded, keep what can be: the record is still evaluated from memory.
		val, _ = json.Marshal(map[string]any{})
	}
	e := bufEntry{At: b.at, Seq: b.seq, Value: val, Raw: b.rec.Raw, Key: b.rec.Key,
		Topic: b.rec.Source.Topic, Partition: b.rec.Source.Partition, Offset: b.rec.Source.Offset}
	if b.rec.Source.TopicID != ([16]byte{}) {
		e.TopicID = hex.EncodeToString(b.rec.Source.TopicID[:])
	}
	if !b.rec.Timestamp.IsZero() {
		e.Timestamp = b.rec.Timestamp.UnixNano()
	}
	out, _ := json.Marshal(e)
	return out
}

func decodeBuffered(v []byte) (buffered, error) {
	var e bufEntry
	if err := json.Unmarshal(v, &e); err != nil {
		return buffered{}, err
	}
	val, err := codec.DecodeObject(e.Value)
	if err != nil {
		return buffered{}, fmt.Errorf("value: %w", err)
	}
	rec := &engine.Record{Value: val, Raw: e.Raw, Key: e.Key,
		Source: engine.Source{Topic: e.Topic, Partition: e.Partition, Offset: e.Offset}}
	if e.TopicID != "" {
		id, err := hex.DecodeString(e.TopicID)
		if err != nil || len(id) != 16 {
			return buffered{}, fmt.Errorf("bad topic_id %q", e.TopicID)
		}
		copy(rec.Source.TopicID[:], id)
	}
	if e.Timestamp != 0 {
		rec.Timestamp = time.Unix(0, e.Timestamp).UTC()
	}
	return buffered{at: e.At, seq: e.Seq, rec: rec}, nil
}
