package runtime

import (
	"bytes"
	"maps"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/codec"
	"github.com/eventops/eventops-engine/engine/schema"
)

// sharedRecords hands the records a stream wrote to a topic, already decoded, to the
// streams of the same process that read them back (decode once): the rules stream and the
// metrics sink of the quickstart read what normalize wrote. A reader takes a record only if
// it is at the same topic, partition and offset and has the very same bytes; it gets a
// copy of the top-level object, so that its processors may set fields as they do on a
// decoded record (nested objects are never written to: engine.Record). The bytes still go
// to the broker, for other consumers and for recovery, and a record not found here (another
// producer's, one read long after it was written, any after a restart) is decoded as before.
//
// Each partition keeps the last sharedPerPartition records written to it: a reader more
// than that far behind the writer decodes.
type sharedRecords struct {
	mu    sync.RWMutex
	parts map[topicPartition]*sharedRing
}

type topicPartition struct {
	topic     string
	partition int32
}

type sharedRing struct {
	mu      sync.RWMutex
	entries [sharedPerPartition]sharedRecord
}

type sharedRecord struct {
	offset int64
	raw    []byte
	value  map[string]any
	// checked is the schema the writer validated value against (its output schema), or nil:
	// a reader whose input schema is the same validator need not check it again.
	checked *schema.Validator
}

// sharedPerPartition bounds what is kept: with the quickstart's envelopes (≈1 KB decoded)
// about 8 MB per partition.
const sharedPerPartition = 8192

func newSharedRecords() *sharedRecords {
	return &sharedRecords{parts: map[topicPartition]*sharedRing{}}
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
// shareable (codec.Shareable) beforehand, or nil.
func (s *sharedRecords) offer(records []*kgo.Record, values []map[string]any, checked *schema.Validator) {
	for i, kr := range records {
		if values[i] == nil {
			continue
		}
		r := s.ring(topicPartition{kr.Topic, kr.Partition}, true)
		r.mu.Lock()
		r.entries[kr.Offset%sharedPerPartition] = sharedRecord{offset: kr.Offset, raw: kr.Value, value: values[i], checked: checked}
		r.mu.Unlock()
	}
}

// take gives rec its value if it was written by this process and is still kept, and
// reports whether it did and whether the value was checked against schema.
func (s *sharedRecords) take(rec *engine.Record, schema *schema.Validator) (ok, checked bool) {
	r := s.ring(topicPartition{rec.Source.Topic, rec.Source.Partition}, false)
	if r == nil || rec.Source.Offset < 0 {
		return false, false
	}
	r.mu.RLock()
	e := r.entries[rec.Source.Offset%sharedPerPartition]
	r.mu.RUnlock()
	if e.value == nil || e.offset != rec.Source.Offset || !bytes.Equal(e.raw, rec.Raw) {
		return false, false
	}
	rec.Value = maps.Clone(e.value)
	return true, schema != nil && e.checked == schema
}

// shareable prepares the values records were encoded from (from[i] for records[i]) to be
// offered once committed: values[i] is nil where one cannot be shared.
func shareable(from []*engine.Record) []map[string]any {
	values := make([]map[string]any, len(from))
	for i, rec := range from {
		if rec.Value != nil && codec.Shareable(rec.Value) {
			values[i] = rec.Value
		}
	}
	return values
}
