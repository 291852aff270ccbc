package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
)

// entry is one record of a topic or row of a table: a hash of its compared content, and
// the content itself (cut short) for the examples printed on a difference.
type entry struct {
	hash uint64
	show string
}

// recordSet is one topic's or table's records by identity.
type recordSet struct {
	name  string
	items map[string][]entry
	total int
}

func newRecordSet(name string) *recordSet {
	return &recordSet{name: name, items: map[string][]entry{}}
}

func (s *recordSet) add(id string, content []byte, keep bool) {
	h := fnv.New64a()
	h.Write(content)
	e := entry{hash: h.Sum64()}
	if keep {
		e.show = shorten(string(content), 300)
	}
	s.items[id] = append(s.items[id], e)
	s.total++
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("…(%d bytes)", len(s))
}

// snapshot is everything one run produced.
type snapshot struct {
	sets map[string]*recordSet // by topic name, and "table metrics", "table alerts"
	// extraDeadLetters are the dead letters of the input's extra records (oversized),
	// which the clean run cannot have: checked on their own.
	extraDeadLetters map[int64][]deadLetter
	extraOffsets     []int64
	compacted        map[string]bool
	windows          *windowAccount
	notes            []string
	recoveries       []*recovery
	checks           []check
}

type deadLetter struct {
	stream, stage, reason string
	size                  int
}

var tableNames = []string{"table metrics", "table alerts"}

func (s *snapshot) counts() map[string]int {
	out := map[string]int{}
	for name, set := range s.sets {
		out[name] = set.total
	}
	return out
}

// collect stops the engine and reads every output topic and table.
func (r *run) collect(ctx context.Context) (*snapshot, error) {
	if e := r.currentEngine(); e != nil && e.running() {
		if !e.stop(15 * time.Second) {
			r.note("the engine did not stop within 15s of SIGTERM; killed")
		}
	}
	if err := r.ensureBroker(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	snap := &snapshot{sets: map[string]*recordSet{}, extraDeadLetters: map[int64][]deadLetter{}, extraOffsets: r.in.extra,
		compacted: r.compacted, notes: r.notes, recoveries: r.recoveries, checks: slices.Clone(r.checks), windows: newWindowAccount()}
	r.mu.Unlock()
	for _, t := range outputTopics {
		snap.sets[t] = newRecordSet(t)
	}
	if err := r.readTopics(ctx, snap); err != nil {
		return nil, err
	}
	snap.checks = append(snap.checks, snap.windows.check())
	if err := r.readTables(ctx, snap); err != nil {
		return nil, err
	}
	return snap, nil
}

// ensureBroker restarts the broker process if a scenario left it down.
func (r *run) ensureBroker() error {
	r.mu.Lock()
	b := r.broker
	r.mu.Unlock()
	if b.running() {
		return nil
	}
	nb, err := b.restart()
	if err != nil {
		return fmt.Errorf("restarting the broker to read the outputs: %w", err)
	}
	r.mu.Lock()
	r.broker = nb
	r.mu.Unlock()
	return nil
}

// readTopics reads every output topic from the start with read_committed isolation, up to
// the end offsets listed first. A partition whose last offsets hold only transaction
// markers or aborted records never delivers its last offset: it is done when nothing has
// come for 10 s.
//
// A compacted topic (ops.alert.v1 is compact+delete) keeps only the newest record of each key
// for sure: the broker may remove the others once the pipeline has read them, at a time that
// differs between runs. Such a topic is compared in its compacted form, the newest record of
// each key; its full history is compared where the pipeline put it (the alerts table).
func (r *run) readTopics(ctx context.Context, snap *snapshot) error {
	ends, err := r.adm.ListEndOffsets(ctx, outputTopics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("end offsets of the output topics: %w", err)
	}
	remaining := map[string]map[int32]int64{}
	for t, ps := range offsetsOf(ends) {
		for p, end := range ps {
			if end > 0 {
				if remaining[t] == nil {
					remaining[t] = map[int32]int64{}
				}
				remaining[t][p] = end
			}
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokerAddr), kgo.ConsumeTopics(outputTopics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// franz-go's default fetch sizes, as the engine's streams use: with 16 MiB per
		// partition, franz-go on the embedded broker (kfake) handed out records of aborted
		// transactions as committed (seen: 9,980 readings of an aborted batch that no stream
		// and no librdkafka reader saw).
		kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	newest := map[string]*kgo.Record{}
	defer func() {
		for _, k := range slices.Sorted(maps.Keys(newest)) {
			r.addRecord(snap, newest[k])
		}
	}()
	lastRecord := time.Now()
	for len(remaining) > 0 && time.Since(lastRecord) < 10*time.Second {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				r.logf("reading %s/%d: %v", t, p, err)
			}
		})
		fs.EachRecord(func(rec *kgo.Record) {
			lastRecord = time.Now()
			if r.compacted[rec.Topic] {
				newest[rec.Topic+"\x00"+string(rec.Key)] = rec // records of a key come in offset order
			} else {
				r.addRecord(snap, rec)
			}
			if end, ok := remaining[rec.Topic][rec.Partition]; ok && rec.Offset+1 >= end {
				delete(remaining[rec.Topic], rec.Partition)
				if len(remaining[rec.Topic]) == 0 {
					delete(remaining, rec.Topic)
				}
			}
		})
	}
	return nil
}

// addRecord files a topic record under its identity with its compared content.
func (r *run) addRecord(snap *snapshot, rec *kgo.Record) {
	set := snap.sets[rec.Topic]
	switch rec.Topic {
	case "signals.metric.v1":
		v, ok := decodeObject(rec.Value)
		if !ok {
			set.add("unparseable "+hashHex(rec.Value), rec.Value, true)
			return
		}
		delete(v, "ts_ingest") // wall clock
		delete(v, "event_id")  // holds the broker's id of the input topic, new in every run
		set.add(readingID(v), withPlacement(v, rec), false)
		snap.windows.reading(v)
	case "signals.rollup.v1":
		v, ok := decodeObject(rec.Value)
		if !ok {
			set.add("unparseable "+hashHex(rec.Value), rec.Value, true)
			return
		}
		set.add(rollupID(v), withPlacement(v, rec), true)
		snap.windows.rollup(v)
	case "ops.alert.v1":
		v, ok := decodeObject(rec.Value)
		if !ok {
			set.add("unparseable "+hashHex(rec.Value), rec.Value, true)
			return
		}
		set.add(alertID(v), withPlacement(v, rec), true)
	default: // ops.late.v1, ops.deadletter.v1
		r.addDeadLetter(snap, set, rec)
	}
}

// addDeadLetter files a dead letter (or a late reading) under stream, stage, source topic
// and the identity of what it holds. For a record of the input, that is its position in
// the input (the source offset header); for a record of a topic the pipeline wrote, the
// identity of the reading or rollup in its value, since offsets there are not the same in
// two runs (transaction markers, redeliveries).
func (r *run) addDeadLetter(snap *snapshot, set *recordSet, rec *kgo.Record) {
	h := map[string]string{}
	for _, x := range rec.Headers {
		h[x.Key] = string(x.Value)
	}
	src := h["eventops.source.topic"]
	var origin string
	var content bytes.Buffer
	fmt.Fprintf(&content, "reason=%s\nkey=%s\nsource.partition=%s\n", h["eventops.reason"], rec.Key, h["eventops.source.partition"])
	if src == ingestTopic {
		off, _ := strconv.ParseInt(h["eventops.source.offset"], 10, 64)
		seq := r.in.seqOf(off)
		if seq < 0 {
			snap.extraDeadLetters[off] = append(snap.extraDeadLetters[off], deadLetter{stream: h["eventops.stream"], stage: h["eventops.stage"], reason: h["eventops.reason"], size: len(rec.Value)})
			return
		}
		origin = fmt.Sprintf("input record %d", seq)
		content.Write(rec.Value)
	} else if v, ok := decodeObject(rec.Value); ok {
		delete(v, "ts_ingest")
		delete(v, "event_id")
		switch {
		case v["window_start"] != nil:
			origin = "rollup " + rollupID(v)
		case v["fingerprint"] != nil:
			origin = "alert " + alertID(v)
		default:
			origin = "reading " + readingID(v)
			if h["eventops.stream"] == "rollup" {
				snap.windows.setAsideReading(v)
			}
		}
		b, _ := json.Marshal(v)
		content.Write(b)
	} else {
		origin = "value " + hashHex(rec.Value)
		content.Write(rec.Value)
	}
	id := fmt.Sprintf("%s/%s from %s: %s", h["eventops.stream"], h["eventops.stage"], src, origin)
	set.add(id, content.Bytes(), true)
}

func decodeObject(b []byte) (map[string]any, bool) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v map[string]any
	if d.Decode(&v) != nil || v == nil {
		return nil, false
	}
	return v, true
}

// withPlacement is the canonical JSON of v (keys sorted) with the record's key and
// partition: a host must land in the same partition in every run.
func withPlacement(v map[string]any, rec *kgo.Record) []byte {
	b, _ := json.Marshal(v)
	return fmt.Appendf(nil, "partition=%d key=%s %s", rec.Partition, rec.Key, b)
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func sourceID(v map[string]any) string {
	if s, ok := v["source"].(map[string]any); ok {
		return str(s["source_id"])
	}
	return str(v["source_id"])
}

// seriesAt is the identity of v's series (tenant / host / metric) at time at.
func seriesAt(v map[string]any, at string) string {
	return fmt.Sprintf("%s/%s/%s@%s", str(v["tenant_id"]), shorten(sourceID(v), 60), str(v["metric"]), at)
}

// readingID: a reading is its series and event time (the input never repeats them).
func readingID(v map[string]any) string { return seriesAt(v, str(v["ts_event"])) }

// rollupID: a rollup is its series and window start.
func rollupID(v map[string]any) string { return seriesAt(v, str(v["window_start"])) }

// alertID: an alert transition is its fingerprint, state and time.
func alertID(v map[string]any) string {
	return fmt.Sprintf("%s %s@%s", str(v["fingerprint"]), str(v["state"]), str(v["ts"]))
}

func hashHex(b []byte) string {
	h := fnv.New64a()
	h.Write(b)
	return strconv.FormatUint(h.Sum64(), 16)
}

// readTables reads the metrics and alerts tables: every column but id (a sequence, whose
// values depend on the order of inserts) and, for metrics, event_id (see signals.metric.v1).
func (r *run) readTables(ctx context.Context, snap *snapshot) error {
	conn, err := pgConnect(ctx, r.dsn)
	if err != nil {
		return fmt.Errorf("reading the tables: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SET TimeZone = 'UTC'"); err != nil {
		return err
	}
	queries := map[string]string{
		"table metrics": `SELECT format('%s/%s/%s@%s', tenant, left(source_id, 60), metric, to_char(ts, 'YYYY-MM-DD"T"HH24:MI:SS.US')),
			(to_jsonb(t) - 'id' - 'event_id')::text FROM metrics t`,
		"table alerts": `SELECT format('%s %s@%s', fingerprint, state, to_char(ts, 'YYYY-MM-DD"T"HH24:MI:SS.US')),
			(to_jsonb(t) - 'id')::text FROM alerts t`,
	}
	for _, name := range tableNames {
		set := newRecordSet(name)
		snap.sets[name] = set
		rows, err := conn.Query(ctx, queries[name])
		if err != nil {
			if isUndefinedTable(err) {
				continue // its sink never started: every row of the clean run is lost
			}
			return fmt.Errorf("reading %s: %w", name, err)
		}
		var id, content string
		_, err = pgx.ForEachRow(rows, []any{&id, &content}, func() error {
			set.add(id, []byte(content), name != "table metrics")
			return nil
		})
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
	}
	return nil
}

func isUndefinedTable(err error) bool {
	return strings.Contains(err.Error(), "SQLSTATE 42P01")
}
