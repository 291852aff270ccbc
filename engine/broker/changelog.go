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

// ReadChangelog reads the committed state records of the given partitions of a changelog
// topic, from the start to the end, and returns the latest value of each key per partition
// (deleted keys absent).
//
// It reads with isolation read_committed, so a transaction still open (one left by a member
// that crashed mid-commit) holds the read back until the broker aborts it: the state returned
// is always exactly what some committed transaction wrote, never a half-written checkpoint.
func ReadChangelog(ctx context.Context, b *Broker, topic string, partitions []int32) (map[int32]map[string][]byte, error) {
	out := make(map[int32]map[string][]byte, len(partitions))
	for _, p := range partitions {
		out[p] = map[string][]byte{}
	}
	if len(partitions) == 0 {
		return out, nil
	}
	adm, err := kgo.NewClient(b.ClientOpts()...)
	if err != nil {
		return nil, fmt.Errorf("broker: reading changelog %s: %w", topic, err)
	}
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	adm.Close()
	if err != nil {
		return nil, fmt.Errorf("broker: reading changelog %s: end offsets: %w", topic, err)
	}
	// next[p] is the offset still to be seen before partition p is read to its end.
	next := map[int32]int64{}
	start := map[int32]kgo.Offset{}
	for _, p := range partitions {
		o, ok := ends.Lookup(topic, p)
		if !ok {
			return nil, fmt.Errorf("broker: reading changelog %s: partition %d does not exist", topic, p)
		}
		if o.Err != nil {
			return nil, fmt.Errorf("broker: reading changelog %s: partition %d: %w", topic, p, o.Err)
		}
		if o.Offset > 0 {
			next[p] = o.Offset
			start[p] = kgo.NewOffset().AtStart()
		}
	}
	if len(start) == 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(append(b.ClientOpts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers are the last records of a changelog partition: keep them, so
		// that reaching the end offset is seen even when the last record is a marker.
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(200*time.Millisecond),
	)...)
	if err != nil {
		return nil, fmt.Errorf("broker: reading changelog %s: %w", topic, err)
	}
	defer cl.Close()
	started, unblocked := time.Now(), false
	for len(next) > 0 {
		if err := pollChangelog(ctx, cl, topic, next, out); err != nil {
			return nil, err
		}
		if len(next) > 0 && !unblocked && time.Since(started) > staleTransactionAge {
			// Still short of the end: a transaction holds the partition back. One older
			// than any live producer's is aborted, so the restore goes on.
			unblocked = true
			if _, err := b.abortStaleTransactions(ctx, topic, slices.Sorted(maps.Keys(next))); err != nil {
				b.logger.Warn("a state restore waits for a transaction on its changelog, which could not be aborted", "topic", topic, "err", err)
			}
		}
	}
	return out, nil
}

// pollChangelog reads what a second brings of a changelog into out; next holds, per
// partition still to read, the offset to reach, and loses the partitions read to their end.
func pollChangelog(ctx context.Context, cl *kgo.Client, topic string, next map[int32]int64, out map[int32]map[string][]byte) error {
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	fetches := cl.PollFetches(pctx)
	cancel()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("broker: reading changelog %s: %w", topic, err)
	}
	var fetchErr error
	fetches.EachError(func(_ string, p int32, err error) {
		if fetchErr == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			fetchErr = fmt.Errorf("partition %d: %w", p, err)
		}
	})
	if fetchErr != nil {
		return fmt.Errorf("broker: reading changelog %s: %w", topic, fetchErr)
	}
	fetches.EachRecord(func(r *kgo.Record) {
		end, open := next[r.Partition]
		if !open {
			return
		}
		if !r.Attrs.IsControl() {
			if r.Value == nil {
				delete(out[r.Partition], string(r.Key))
			} else {
				out[r.Partition][string(r.Key)] = r.Value
			}
		}
		if r.Offset+1 >= end {
			delete(next, r.Partition)
		}
	})
	return nil
}
