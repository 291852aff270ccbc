package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/broker"
)

// checkpointInput is an input that commits its offsets in a transaction with the stream's
// state (broker.Input with a transactional id).
type checkpointInput interface {
	engine.Input
	AddToTransaction(ctx context.Context, batch []*engine.Record, changelog string, state []broker.StateRecord, out []*kgo.Record) error
	CommitTransaction(ctx context.Context, changelog string, written func()) error
	// Buffered reports whether records wait, fetched, to be read.
	Buffered() bool
	Assigned() []int32
	// ResumeAt moves the read position of partitions to the given offsets.
	ResumeAt(offsets map[int32]int64)
}

// transactionalOutput is a topic output whose records a stateful stream writes inside its
// checkpoint transaction instead of producing them itself (broker.Output). Encode may be
// called on disjoint parts of a batch at once. With share set, values[i] is what out[i] was
// encoded from, made shareable (decode once: shared.go), or nil.
type transactionalOutput interface {
	Encode(batch []*engine.Record, rejects *engine.Rejects, share bool) (out []*kgo.Record, values []map[string]any)
}

// changelogReader reads the committed state of partitions from a changelog topic.
type changelogReader func(ctx context.Context, topic string, partitions []int32) (map[int32]map[string][]byte, error)

// stateKeeper checkpoints and restores the state of a stream's stateful processors.
//
// A changelog record's key is the processor's short name (processors[1].window), a NUL, and
// the processor's own key; its partition is the input partition the state belongs to.
type stateKeeper struct {
	changelog string
	procs     []statefulProc
	read      changelogReader
	log       *slog.Logger

	// mu is held while processors run (Process, Tick) and while state is restored or
	// dropped: partition callbacks come from the consumer group's goroutine.
	mu sync.Mutex
	// retired is set when a hot reload replaced this keeper: restores and drops then go to
	// its successor (swap.go).
	retired atomic.Bool
	// aliases are the former names of processors a hot reload moved (by current name): a
	// restore also reads their entries under the former name and moves them (swap.go).
	aliases map[string]string
	// pending are changelog records the next checkpoint writes before the processors'
	// changes: moved state and deletions (call with mu held).
	pending []broker.StateRecord
}

type statefulProc struct {
	name string
	engine.Stateful
}

// ChangelogTopic is the compacted topic where the stream of consumer group group keeps its
// state checkpoints.
func ChangelogTopic(group string) string { return group + ".changelog" }

// newStateKeeper returns nil when sp does not commit in transactions (see Transactional).
// A transactional stream without stateful processors gets a keeper too: its checkpoints
// hold only the input offsets.
func newStateKeeper(sp *StreamPlan, changelog string, read changelogReader, log *slog.Logger) *stateKeeper {
	if !sp.Transactional() {
		return nil
	}
	k := &stateKeeper{changelog: changelog, read: read, log: log}
	for _, p := range sp.Processors {
		if st, ok := p.Processor.(engine.Stateful); ok {
			k.procs = append(k.procs, statefulProc{name: p.Name, Stateful: st})
		}
	}
	return k
}

// Transactional reports whether the stream commits each batch in one Kafka transaction:
// its topic output, dead letters, state and input offsets together, so that no crash
// duplicates or loses a record in any topic. A stream with a registered output (PostgreSQL,
// Parquet files, ...) is transactional only for its state: its output is written before the
// commit, idempotently.
func (sp *StreamPlan) Transactional() bool {
	return sp.ReadsTopic() && (sp.WritesTopic() || sp.Stateful())
}

// ReadsTopic reports whether the stream reads a topic (rather than a file or standard input,
// which keep no position to checkpoint).
func (sp *StreamPlan) ReadsTopic() bool {
	return sp.Config.Input.File == nil && sp.Config.Input.Stdin == nil
}

// WritesTopic reports whether the stream's output is a topic.
func (sp *StreamPlan) WritesTopic() bool {
	return sp.Config.Output.Plugin == nil
}

// Stateful reports whether any processor of sp keeps state (and so the stream checkpoints).
func (sp *StreamPlan) Stateful() bool {
	for _, p := range sp.Processors {
		if _, ok := p.Processor.(engine.Stateful); ok {
			return true
		}
	}
	return false
}

// changes collects what the processors changed since the last call, after the pending
// records. Call with mu held.
func (k *stateKeeper) changes() []broker.StateRecord {
	out := k.pending
	k.pending = nil
	for _, p := range k.procs {
		prefix := p.name + "\x00"
		p.Changes(func(partition int32, key string, value []byte) {
			out = append(out, broker.StateRecord{Partition: partition, Key: prefix + key, Value: value})
		})
	}
	return out
}

// rename queues p's whole state under its name and the deletion of the same keys under its
// former name from.
func (k *stateKeeper) rename(p statefulProc, from string) {
	ex, ok := p.Stateful.(engine.StateExporter)
	if !ok {
		return
	}
	ex.Export(func(partition int32, key string, value []byte) {
		k.pending = append(k.pending,
			broker.StateRecord{Partition: partition, Key: p.name + "\x00" + key, Value: value},
			broker.StateRecord{Partition: partition, Key: from + "\x00" + key})
	})
}

// forget queues the deletion of the entries of a processor that left the stream.
func (k *stateKeeper) forget(name string, ex engine.StateExporter) {
	ex.Export(func(partition int32, key string, _ []byte) {
		k.pending = append(k.pending, broker.StateRecord{Partition: partition, Key: name + "\x00" + key})
	})
}

// restore loads the checkpointed state of partitions into every stateful processor,
// replacing what they hold for those partitions, and returns the input offsets the
// checkpoint was taken at (partitions without a checkpoint are absent).
func (k *stateKeeper) restore(ctx context.Context, partitions []int32) (map[int32]int64, error) {
	if len(partitions) == 0 {
		return nil, nil
	}
	t0 := time.Now()
	readCtx, cancel := context.WithTimeout(ctx, restoreReadTimeout)
	state, err := k.read(readCtx, k.changelog, partitions)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("restoring state of partitions %v: %w", partitions, err)
	}
	offsets, err := broker.CheckpointOffsets(state)
	if err != nil {
		return nil, fmt.Errorf("restoring state of partitions %v: %w", partitions, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.retired.Load() {
		return nil, errRetired
	}
	if err := k.load(partitions, state); err != nil {
		return nil, err
	}
	k.log.Info("state restored", "partitions", partitions, "offsets", offsets, "took", time.Since(t0).Round(time.Millisecond))
	return offsets, nil
}

// restoreReadTimeout bounds one read of the changelog. A read waits for transactions still
// open on it, which the broker aborts after broker.TransactionTimeout; a read that takes
// longer is retried (and said in the log and in /-/ready), never waited on forever.
const restoreReadTimeout = 3 * broker.TransactionTimeout

// load hands the changelog entries of partitions to the processors. Call with mu held.
func (k *stateKeeper) load(partitions []int32, state map[int32]map[string][]byte) error {
	entries := 0
	for _, part := range partitions {
		byProc := make(map[string]map[string][]byte, len(k.procs))
		for _, p := range k.procs {
			byProc[p.name] = map[string][]byte{}
		}
		// A moved processor's entries still under its former name (the checkpoint that
		// moves them has not committed) are read first; entries under its name win.
		formerOf := map[string]string{}
		for name, former := range k.aliases {
			formerOf[former] = name
		}
		for key, v := range state[part] {
			name, rest, ok := strings.Cut(key, "\x00")
			if now, moved := formerOf[name]; ok && moved {
				if _, newer := state[part][now+"\x00"+rest]; !newer {
					byProc[now][rest] = v
					entries++
					k.pending = append(k.pending, broker.StateRecord{Partition: part, Key: now + "\x00" + rest, Value: v})
				}
				k.pending = append(k.pending, broker.StateRecord{Partition: part, Key: key})
				continue
			}
			if m, known := byProc[name]; ok && known {
				m[rest] = v
				entries++
			}
			// Entries of a processor that is no longer in the stream are left alone: they
			// are not this pipeline's state.
		}
		for _, p := range k.procs {
			if err := p.Restore(part, byProc[p.name]); err != nil {
				return fmt.Errorf("restoring %s, partition %d: %w", p.name, part, err)
			}
		}
	}
	// What Restore loaded is already checkpointed: drop it from the next changes. Nothing
	// else can be pending here: every Process and Tick collects its changes before it lets
	// go of mu.
	for _, p := range k.procs {
		p.Changes(func(int32, string, []byte) {})
	}
	k.log.Debug("state entries loaded", "partitions", partitions, "entries", entries)
	return nil
}

// restoreRetrying restores until it succeeds or ctx ends: a partition cannot be processed
// without its state. While it tries, pending says what it waits for (for /-/ready).
func (k *stateKeeper) restoreRetrying(ctx context.Context, partitions []int32, pending *health) (map[int32]int64, error) {
	wait := 100 * time.Millisecond
	pending.set(condRestore, fmt.Sprintf("restoring the state of partitions %v from %s", partitions, k.changelog))
	defer pending.clear(condRestore)
	for {
		offsets, err := k.restore(ctx, partitions)
		if err == nil || ctx.Err() != nil || errors.Is(err, errRetired) {
			return offsets, err
		}
		k.log.Warn("state restore failed; retrying", "err", err, "wait", wait)
		pending.set(condRestore, fmt.Sprintf("restoring the state of partitions %v from %s: %v", partitions, k.changelog, err))
		if !sleepCtx(ctx, wait) {
			return nil, ctx.Err()
		}
		wait = min(wait*2, 5*time.Second)
	}
}

// drop forgets the state of partitions (assigned to another member).
func (k *stateKeeper) drop(partitions []int32) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.retired.Load() {
		return errRetired
	}
	for _, p := range k.procs {
		for _, part := range partitions {
			p.Drop(part)
		}
	}
	// Moves and deletions queued for those partitions are their new owner's business now.
	k.pending = slices.DeleteFunc(k.pending, func(r broker.StateRecord) bool { return slices.Contains(partitions, r.Partition) })
	k.log.Info("state dropped", "partitions", partitions)
	return nil
}

// hasTicker reports whether any processor needs the clock to tick.
func hasTicker(procs []NamedProcessor) bool {
	return slices.ContainsFunc(procs, func(p NamedProcessor) bool {
		_, ok := p.Processor.(engine.Ticker)
		return ok
	})
}
