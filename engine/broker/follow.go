package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KeyValue is one committed record of a followed topic; a nil Value deletes its Key.
type KeyValue struct {
	Key, Value []byte
}

// Follower reads a topic from its start and goes on reading it as records arrive: the
// rows of a lookup table kept in a compacted topic.
type Follower struct {
	cl      *kgo.Client
	topic   string
	pending map[int32]int64 // per partition, the end offset it had at the start, until reached
	caught  chan struct{}
	done    chan struct{}
	// started and unblocked: while catching up, a transaction nobody will end is aborted
	// once, as a changelog restore does (ReadChangelog).
	started   time.Time
	unblocked bool
}

// Follow starts reading topic from its start, with isolation read_committed (a record of a
// transaction that aborted is never seen). apply gets the records of each fetch in order.
// CaughtUp closes once every partition was read to the end it had when Follow was called.
func Follow(ctx context.Context, b *Broker, topic string, apply func([]KeyValue)) (*Follower, error) {
	ends, err := topicEnds(ctx, b, topic)
	if err != nil {
		return nil, fmt.Errorf("broker: following %s: %w", topic, err)
	}
	cl, err := kgo.NewClient(append(b.ClientOpts(),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(), // a marker may be the last record: reaching the end is seen
		kgo.FetchMaxWait(500*time.Millisecond),
	)...)
	if err != nil {
		return nil, fmt.Errorf("broker: following %s: %w", topic, err)
	}
	f := &Follower{cl: cl, topic: topic, pending: ends, caught: make(chan struct{}), done: make(chan struct{}), started: time.Now()}
	if len(f.pending) == 0 {
		close(f.caught)
		f.pending = nil
	}
	go f.run(ctx, b, apply)
	return f, nil
}

// topicEnds are the partitions of topic that hold records, with their end offsets.
func topicEnds(ctx context.Context, b *Broker, topic string) (map[int32]int64, error) {
	adm, err := kgo.NewClient(b.ClientOpts()...)
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("end offsets: %w", err)
	}
	out := map[int32]int64{}
	var errs []error
	ends.Each(func(o kadm.ListedOffset) {
		switch {
		case o.Err != nil:
			errs = append(errs, fmt.Errorf("partition %d: %w", o.Partition, o.Err))
		case o.Offset > 0:
			out[o.Partition] = o.Offset
		}
	})
	return out, errors.Join(errs...)
}

// CaughtUp is closed once the topic was read to the end it had at the start.
func (f *Follower) CaughtUp() <-chan struct{} { return f.caught }

// Close stops reading (its context must be done, or end soon) and waits for it.
func (f *Follower) Close() {
	f.cl.Close()
	<-f.done
}

func (f *Follower) run(ctx context.Context, b *Broker, apply func([]KeyValue)) {
	defer close(f.done)
	for ctx.Err() == nil {
		fetches := f.poll(ctx)
		if fetches.IsClientClosed() {
			return
		}
		fetches.EachError(func(_ string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				b.logger.Warn("following a topic: a fetch failed; retrying", "topic", f.topic, "partition", p, "err", err)
			}
		})
		var batch []KeyValue
		fetches.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				batch = append(batch, KeyValue{Key: r.Key, Value: r.Value})
			}
			f.reached(r.Partition, r.Offset+1)
		})
		if len(batch) > 0 {
			apply(batch)
		}
		f.noteCaughtUp()
		f.unblock(ctx, b)
	}
}

// poll waits for records: while catching up, a second at most, so that a topic held back by
// a transaction is noticed (unblock).
func (f *Follower) poll(ctx context.Context) kgo.Fetches {
	if f.pending == nil {
		return f.cl.PollFetches(ctx)
	}
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return f.cl.PollFetches(pctx)
}

// unblock aborts, once, the transactions older than any live producer's that hold back the
// partitions still short of their start-time end (a producer killed mid-transaction whose
// transaction the broker does not end): otherwise the streams would never start.
func (f *Follower) unblock(ctx context.Context, b *Broker) {
	if f.pending == nil || f.unblocked || time.Since(f.started) <= staleTransactionAge {
		return
	}
	f.unblocked = true
	if _, err := b.abortStaleTransactions(ctx, f.topic, slices.Sorted(maps.Keys(f.pending))); err != nil {
		b.logger.Warn("following a topic: a transaction holds it back and could not be aborted", "topic", f.topic, "err", err)
	}
}

func (f *Follower) reached(partition int32, next int64) {
	if end, ok := f.pending[partition]; ok && next >= end {
		delete(f.pending, partition)
	}
}

func (f *Follower) noteCaughtUp() {
	if f.pending != nil && len(f.pending) == 0 {
		close(f.caught)
		f.pending = nil
	}
}
