package runtime

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
)

// readersPlan is a plan whose topic "envelopes" has n streams reading it.
func readersPlan(n int) *Plan {
	p := &Plan{}
	for range n {
		p.Streams = append(p.Streams, &StreamPlan{Config: config.Stream{Input: config.Input{Topic: "envelopes"}}})
	}
	return p
}

func offerOne(s *sharedRecords, offset int64, raw string) {
	kr := &kgo.Record{Topic: "envelopes", Partition: 0, Offset: offset, Value: []byte(raw)}
	s.offer([]*kgo.Record{kr}, []map[string]any{{"raw": raw}}, nil)
}

func readBack(s *sharedRecords, offset int64, raw string) bool {
	rec := &engine.Record{Raw: []byte(raw), Source: engine.Source{Topic: "envelopes", Partition: 0, Offset: offset}}
	ok, _ := s.take(rec, nil)
	return ok && rec.Value["raw"] == raw
}

// Each reader of the process takes a record once; once all have, it is no longer held, so
// that memory follows how far the slowest reader is behind, not a fixed count.
func TestSharedRecordIsReleasedOnceEveryReaderTookIt(t *testing.T) {
	s := newSharedRecords()
	s.setReaders(readersPlan(2))
	offerOne(s, 7, `{"a":1}`)
	if got := s.held.Load(); got != 7 {
		t.Fatalf("held %d bytes after one offer of 7, want 7", got)
	}
	if !readBack(s, 7, `{"a":1}`) || !readBack(s, 7, `{"a":1}`) {
		t.Fatal("one of the two readers did not get the record")
	}
	if got := s.held.Load(); got != 0 {
		t.Fatalf("held %d bytes after both readers took the record, want 0", got)
	}
	if readBack(s, 7, `{"a":1}`) {
		t.Fatal("a third take (a redelivery) got the record: it should decode")
	}
}

// Records of a topic no stream of the process reads are not kept at all.
func TestSharedRecordsKeepNothingForATopicNobodyReads(t *testing.T) {
	s := newSharedRecords()
	s.setReaders(readersPlan(0))
	offerOne(s, 1, `{"a":1}`)
	if s.held.Load() != 0 || readBack(s, 1, `{"a":1}`) {
		t.Fatal("a record of a topic without readers was kept")
	}
}

// A reader that stops makes the writer keep no more than the budget; the records after it
// are decoded by their readers, and the record a later offer overwrites gives back its bytes.
func TestSharedRecordsHoldNoMoreThanTheBudget(t *testing.T) {
	s := newSharedRecords()
	s.setReaders(readersPlan(1))
	big := strings.Repeat("x", 1<<20)
	offset := int64(0)
	for ; s.held.Load() < sharedBudget; offset++ {
		offerOne(s, offset, big)
	}
	offerOne(s, offset, big)
	if got := s.held.Load(); got != sharedBudget {
		t.Fatalf("held %d bytes, want the budget %d", got, sharedBudget)
	}
	if readBack(s, offset, big) {
		t.Fatal("a record offered beyond the budget was kept")
	}
	if !readBack(s, 0, big) {
		t.Fatal("a record within the budget was not kept")
	}
	offerOne(s, 0+sharedPerPartition, "{}") // same slot as offset 0, taken already
	offerOne(s, 1+sharedPerPartition, "{}") // overwrites offset 1, never taken
	if got, want := s.held.Load(), int64(sharedBudget-2<<20+4); got != want {
		t.Fatalf("held %d bytes after overwriting, want %d", got, want)
	}
}
