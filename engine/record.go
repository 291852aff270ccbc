package engine

import "time"

// Record is one event moving through a stream.
type Record struct {
	// Value is the decoded event: JSON objects as map[string]any, numbers as float64,
	// arrays as []any. Processors read it, replace it, or set its top-level fields; the
	// objects and arrays nested in it may be shared with other records (and, through decode
	// once, with other streams), so nothing writes into them: a processor that changes one
	// builds a new one (as enrich does). Outputs only read it.
	Value map[string]any
	// Raw is the record's bytes as read from the input; dead letters carry them unchanged.
	Raw     []byte
	Key     []byte
	Headers []Header
	// Source says where the record (or the record it was derived from) was read.
	Source Source
	// Timestamp is the broker timestamp of the source record.
	Timestamp time.Time
}

// Header is a Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Source identifies a record in its input topic. Records derived from it keep it, so that
// deterministic ids (record_id()) and dead-letter headers can name the original.
type Source struct {
	Topic     string
	Partition int32
	Offset    int64
	// TopicID is the broker's id of this incarnation of the topic: a topic deleted and
	// created again, or a fresh embedded-broker data directory, restarts offsets at 0 under
	// a new id. Zero when the broker does not report topic ids.
	TopicID [16]byte
}

// Clock tells the time. Runtime code never calls time.Now directly, so tests (and the rule
// test runner) can step a virtual clock.
type Clock interface {
	Now() time.Time
}

// WallClock is the real clock.
type WallClock struct{}

func (WallClock) Now() time.Time { return time.Now() }
