package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// abortOrphanTransactions ends the transactions the embedded broker's previous run left open.
//
// The embedded broker lives in the engine's process, so a kill -9 of the engine also kills
// every producer that had a transaction open. kfake reloads those transactions' records from
// its data directory but not their timers, so nothing would ever abort them: the last stable
// offset of each partition they touched stays where they began, and every read_committed
// reader (each stream downstream, each state restore) waits there for good. No client of
// this run can have opened a transaction yet, so every open one is an orphan: abort it.
func (b *Broker) abortOrphanTransactions(ctx context.Context) error {
	cl, err := kgo.NewClient(b.ClientOpts()...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	if len(topics) == 0 {
		return nil
	}
	described, err := adm.DescribeProducers(ctx, topics.TopicsSet())
	if err != nil {
		return fmt.Errorf("describing producers: %w", err)
	}
	markers := orphanMarkers(described, func(kadm.DescribedProducer) bool { return true })
	if err := abortTransactions(ctx, adm, markers); err != nil {
		return err
	}
	for _, m := range markers {
		b.logger.Warn("aborted a transaction the previous run left open (the engine was killed mid-transaction); its batch is read again",
			"producer_id", m.ProducerID, "epoch", m.ProducerEpoch, "partitions", m.Topics.Sorted())
	}
	return nil
}

// staleTransactionAge is how long a transaction must have been open on a changelog before a
// reader that waits for it aborts it. The engine's producers give their transactions
// TransactionTimeout, after which a live broker aborts them itself: one open twice as long
// has no live producer and a broker that lost its timer (kfake restored it from disk after
// a restart), and would hold every read_committed reader back for good. A variable so that
// tests need not wait that long.
var staleTransactionAge = 2 * TransactionTimeout

// abortStaleTransactions aborts the transactions open on partitions of topic for longer than
// staleTransactionAge, and says how many producers it aborted.
func (b *Broker) abortStaleTransactions(ctx context.Context, topic string, partitions []int32) (int, error) {
	cl, err := kgo.NewClient(b.ClientOpts()...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	described, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: setOf(partitions)})
	if err != nil {
		return 0, fmt.Errorf("describing producers of %s: %w", topic, err)
	}
	cutoff := time.Now().Add(-staleTransactionAge).UnixMilli()
	markers := orphanMarkers(described, func(p kadm.DescribedProducer) bool { return p.LastTimestamp < cutoff })
	if err := abortTransactions(ctx, adm, markers); err != nil {
		return 0, err
	}
	for _, m := range markers {
		b.logger.Warn("aborted a transaction open for longer than twice the transaction timeout, which held back a state restore (its producer is gone and the broker did not abort it)",
			"producer_id", m.ProducerID, "epoch", m.ProducerEpoch, "partitions", m.Topics.Sorted())
	}
	return len(markers), nil
}

func setOf(partitions []int32) map[int32]struct{} {
	out := make(map[int32]struct{}, len(partitions))
	for _, p := range partitions {
		out[p] = struct{}{}
	}
	return out
}

// abortTransactions writes abort markers, and returns the first partition that refused one.
func abortTransactions(ctx context.Context, adm *kadm.Client, markers []kadm.TxnMarkers) error {
	if len(markers) == 0 {
		return nil
	}
	resps, err := adm.WriteTxnMarkers(ctx, markers...)
	if err != nil {
		return fmt.Errorf("aborting open transactions: %w", err)
	}
	var failed error
	resps.EachPartition(func(p kadm.TxnMarkersPartitionResponse) {
		if p.Err != nil && failed == nil {
			failed = fmt.Errorf("aborting the transaction of producer %d on %s/%d: %w", p.ProducerID, p.Topic, p.Partition, p.Err)
		}
	})
	return failed
}

// orphanMarkers is one abort marker request per producer with a transaction open on some
// partitions that abort selects.
func orphanMarkers(described kadm.DescribedProducersTopics, abort func(kadm.DescribedProducer) bool) []kadm.TxnMarkers {
	byProducer := map[int64]*kadm.TxnMarkers{}
	var order []int64
	described.EachProducer(func(p kadm.DescribedProducer) {
		if p.CurrentTxnStartOffset < 0 || !abort(p) {
			return
		}
		m, ok := byProducer[p.ProducerID]
		if !ok {
			m = &kadm.TxnMarkers{ProducerID: p.ProducerID, ProducerEpoch: p.ProducerEpoch, CoordinatorEpoch: p.CoordinatorEpoch, Topics: kadm.TopicsSet{}}
			byProducer[p.ProducerID] = m
			order = append(order, p.ProducerID)
		}
		m.Topics.Add(p.Topic, p.Partition)
	})
	out := make([]kadm.TxnMarkers, 0, len(order))
	for _, id := range order {
		out = append(out, *byProducer[id])
	}
	return out
}

// orphanTimeout bounds the look for orphan transactions at start.
const orphanTimeout = 30 * time.Second
