package engine

import (
	"context"
	"time"
)

// Stateful is a processor that keeps state between batches: open windows, alert states,
// baselines. Its state is split by the input partition of the records that built it
// (Record.Source.Partition), so that a partition's state can move with the partition from
// one instance of a consumer group to another.
//
// After every batch (and every Tick) the runtime asks for the changes and writes them, in one
// Kafka transaction with the batch's input offsets, to the stream's compacted changelog topic
// (one changelog partition per input partition, keyed by the processor's path and the entry
// key). So what is checkpointed is always the state at the committed offset: restoring it and
// replaying from the committed offset gives the same result as if nothing had stopped.
//
// Process, Tick, Changes, Restore and Drop are called by one goroutine at a time.
type Stateful interface {
	// Changes reports every state entry changed since the last call, once per key: put is
	// called with the entry's current encoding, or with a nil value for an entry that no
	// longer exists. Keys are the processor's own and unique within it; values are its own
	// encoding (plain data: JSON or a compact binary), decoded by Restore.
	Changes(put func(partition int32, key string, value []byte))
	// Restore replaces the state of partition with entries (the latest value of each key that
	// Changes reported, deleted keys absent). It is called when the partition is assigned to
	// this instance, before any of its records is processed; entries may be empty.
	Restore(partition int32, entries map[string][]byte) error
	// Drop forgets the state of partition: it was assigned to another instance. Changes must
	// not report its keys afterwards.
	Drop(partition int32)
}

// Ticker is a processor whose output depends on wall-clock time passing as well as on
// records: windows of an idle partition close after an idle timeout, a heartbeat rule fires
// when a series stops sending. The runtime calls Tick about once a second (and the rule test
// runner at every step of its virtual clock) with the current time; what Tick returns goes
// through the processors after this one, like the output of Process. A record made in Tick
// carries in Source.Partition the input partition whose state made it, so a stateful
// processor after this one keeps its state with that partition's.
type Ticker interface {
	Tick(ctx context.Context, now time.Time, rejects *Rejects) ([]*Record, error)
}

// StateExporter is a Stateful processor that can report its whole state at once, in the
// form Restore takes it. A hot reload uses it to carry the state of a changed processor into
// its replacement, to move state that a reordering renamed, and to delete the changelog
// entries of a removed processor; a processor without it starts empty after such a change.
type StateExporter interface {
	Export(put func(partition int32, key string, value []byte))
}
