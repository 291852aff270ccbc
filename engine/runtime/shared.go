package runtime

import (
	"bytes"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/schema"
)

// sharedRecords hands the records a stream wrote to a topic, already decoded, to the
// streams of the same process that read them back (decode once): the rules stream and the
// metrics sink of the quickstart read what normalize wrote. A reader takes a record only if
// it is at the same topic, partition and offset and has the very same bytes; it gets a
// copy of the top-level object, so that its processors may set fields as they do on a
// decoded record (nested objects are never written to: engine.Record). The bytes still go
// to the broker, for other consumers and for recovery, and a record not found here (another
// producer's, one read long after it was written, one read a second time, any after a
// restart) is decoded as before.
//
// A record is kept until every stream of the process that reads its topic has taken it, so
// that in the steady state only the records between the writer and its slowest reader are
// held. Two bounds hold when a reader stops or falls far behind: each partition keeps at most
// the last sharedPerPartition records, and all partitions together at most sharedBudget bytes
// of records (counted by their encoded size; decoded, the quickstart's envelopes take about
// four times that). A reader beyond either bound decodes.
type sharedRecords struct {
	mu      sync.RWMutex
	parts   map[topicPartition]*sharedRing
	readers map[string]int32 // how many streams of the process read each topic
	held    atomic.Int64     // encoded bytes of the records kept
}

type topicPartition struct {
	topic     string
	partition int32
}

type sharedRing struct {
	mu      sync.Mutex
	entries [sharedPerPartition]sharedRecord
}

type sharedRecord struct {
	offset int64
	raw    []byte
	value  map[string]any
	// checked is the schema the writer validated value against (its output schema), or nil:
	// a reader whose input schema is the same validator need not check it again.
	checked *schema.Validator
	// left is how many readers have yet to take it; the last one releases it.
	left int32
}

const (
	// sharedPerPartition is the most records a partition keeps: at 100k events/s over
	// three partitions, a reader may be a second behind.
	sharedPerPartition = 32768
	// sharedBudget bounds the memory held for readers that stopped or fell behind.
	sharedBudget = 16 << 20
)

func newSharedRecords() *sharedRecords {
	return &sharedRecords{parts: map[topicPartition]*sharedRing{}, readers: map[string]int32{}}
}

// setReaders counts, for each topic, the streams of plan that read it. The counts only
// decide how long a record is kept: too high, a record stays until the bounds push it out;
// too low, a reader decodes.
func (s *sharedRecords) setReaders(plan *Plan) {
	readers := map[string]int32{}
	for _, sp := range plan.Streams {
		if sp.ReadsTopic() {
			readers[sp.Config.Input.Topic]++
		}
	}
	s.mu.Lock()
	s.readers = readers
	s.mu.Unlock()
}

// readersOf reports how many streams of the process read topic.
func (s *sharedRecords) readersOf(topic string) int32 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.readers[topic]
}

func (s *sharedRecords) ring(tp topicPartition, create bool) *sharedRing {
	s.mu.RLock()
	r := s.parts[tp]
	s.mu.RUnlock()
	if r != nil || !create {
		return r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r = s.parts[tp]; r == nil {
		r = &sharedRing{}
		s.parts[tp] = r
	}
	return r
}

// offer keeps the values of records just committed to their topics: values[i] is what
// records[i] (produced, so its partition and offset are set) was encoded from, made
// shareable (codec.AppendShareable) as it was encoded, or nil.
// The readers and the ring are looked up when the topic or partition changes, not for every
// record: a batch is one stream's output, one topic, in few partitions.
func (s *sharedRecords) offer(records []*kgo.Record, values []map[string]any, checked *schema.Validator) {
	var at topicPartition
	var r *sharedRing
	var readers int32
	for i, kr := range records {
		if values[i] == nil {
			continue
		}
		if tp := (topicPartition{kr.Topic, kr.Partition}); r == nil || tp != at {
			if readers = s.readersOf(kr.Topic); readers == 0 {
				continue // no ring for a topic nobody reads
			}
			at, r = tp, s.ring(tp, true)
		}
		if s.held.Load() >= sharedBudget {
			continue
		}
		r.mu.Lock()
		e := &r.entries[kr.Offset%sharedPerPartition]
		s.release(e)
		*e = sharedRecord{offset: kr.Offset, raw: kr.Value, value: values[i], checked: checked, left: readers}
		s.held.Add(int64(len(kr.Value)))
		r.mu.Unlock()
	}
}

// release drops what e keeps, if anything; the caller holds its ring's lock.
func (s *sharedRecords) release(e *sharedRecord) {
	if e.value != nil {
		s.held.Add(-int64(len(e.raw)))
	}
	*e = sharedRecord{}
}

// take gives rec its value if it was written by this process and is still kept, and
// reports whether it did and whether the value was checked against schema.
func (s *sharedRecords) take(rec *engine.Record, schema *schema.Validator) (ok, checked bool) {
	r := s.ring(topicPartition{rec.Source.Topic, rec.Source.Partition}, false)
	if r == nil || rec.Source.Offset < 0 {
		return false, false
	}
	r.mu.Lock()
	e := &r.entries[rec.Source.Offset%sharedPerPartition]
	if e.value == nil || e.offset != rec.Source.Offset || !bytes.Equal(e.raw, rec.Raw) {
		r.mu.Unlock()
		return false, false
	}
	value, valid := e.value, e.checked == schema
	if e.left--; e.left <= 0 {
		s.release(e)
	}
	r.mu.Unlock()
	rec.Value = maps.Clone(value)
	return true, schema != nil && valid
}
