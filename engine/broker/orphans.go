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

// abortStaleTransactions aborts the transactions holding back partitions of topic (their
// last stable offset short of their end) that began longer than staleTransactionAge ago, and
// says how many it aborted. The producer is read from the first record at the last stable
// offset, not asked of the broker: kfake can hold a partition back for a transaction it no
// longer lists (restored from disk after a kill -9 without its producer's state), which
// DescribeProducers does not show and nothing else would ever end.
func (b *Broker) abortStaleTransactions(ctx context.Context, topic string, partitions []int32) (int, error) {
	cl, err := kgo.NewClient(b.ClientOpts()...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	held, err := heldBack(ctx, adm, topic, partitions)
	if err != nil || len(held) == 0 {
		return 0, err
	}
	markers, err := staleMarkers(ctx, b, topic, held)
	if err != nil {
		return 0, err
	}
	if err := abortTransactions(ctx, adm, markers); err != nil {
		return 0, err
	}
	for _, m := range markers {
		b.logger.Warn("aborted a transaction open for longer than twice the transaction timeout, which held back a state restore (its producer is gone and the broker did not abort it)",
			"producer_id", m.ProducerID, "epoch", m.ProducerEpoch, "partitions", m.Topics.Sorted())
	}
	return len(markers), nil
}

// heldBack maps each of partitions whose last stable offset is short of its end to that
// offset.
func heldBack(ctx context.Context, adm *kadm.Client, topic string, partitions []int32) (map[int32]int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	stable, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("last stable offsets of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	for _, p := range partitions {
		e, ok1 := ends.Lookup(topic, p)
		s, ok2 := stable.Lookup(topic, p)
		if ok1 && ok2 && e.Err == nil && s.Err == nil && s.Offset < e.Offset {
			out[p] = s.Offset
		}
	}
	return out, nil
}

// staleMarkers reads the record at each held-back partition's last stable offset (the
// first of the transaction holding it back) and makes an abort marker for its producer when
// the record is older than staleTransactionAge.
func staleMarkers(ctx context.Context, b *Broker, topic string, held map[int32]int64) ([]kadm.TxnMarkers, error) {
	at := map[int32]kgo.Offset{}
	for p, o := range held {
		at[p] = kgo.NewOffset().At(o)
	}
	cl, err := kgo.NewClient(append(b.ClientOpts(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: at}),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cutoff := time.Now().Add(-staleTransactionAge)
	var markers abortMarkers
	for len(held) > 0 && pctx.Err() == nil {
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			if o, ok := held[r.Partition]; !ok || r.Offset != o {
				return
			}
			delete(held, r.Partition)
			if r.Attrs.IsTransactional() && r.Timestamp.Before(cutoff) {
				markers.add(txnKey{r.ProducerID, r.ProducerEpoch}, 0, r.Topic, r.Partition)
			}
		})
	}
	return markers.list(), nil
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
	var markers abortMarkers
	described.EachProducer(func(p kadm.DescribedProducer) {
		if p.CurrentTxnStartOffset >= 0 && abort(p) {
			markers.add(txnKey{p.ProducerID, p.ProducerEpoch}, p.CoordinatorEpoch, p.Topic, p.Partition)
		}
	})
	return markers.list()
}

// abortMarkers gathers the partitions to abort a transaction on into one marker request per
// transaction (producer and epoch), in the order the transactions were first added.
type abortMarkers struct {
	byTxn map[txnKey]*kadm.TxnMarkers
	order []txnKey
}

func (a *abortMarkers) add(txn txnKey, coordinatorEpoch int32, topic string, partition int32) {
	m, ok := a.byTxn[txn]
	if !ok {
		if a.byTxn == nil {
			a.byTxn = map[txnKey]*kadm.TxnMarkers{}
		}
		m = &kadm.TxnMarkers{ProducerID: txn.Producer, ProducerEpoch: txn.Epoch, CoordinatorEpoch: coordinatorEpoch, Topics: kadm.TopicsSet{}}
		a.byTxn[txn] = m
		a.order = append(a.order, txn)
	}
	m.Topics.Add(topic, partition)
}

func (a *abortMarkers) list() []kadm.TxnMarkers {
	out := make([]kadm.TxnMarkers, 0, len(a.order))
	for _, k := range a.order {
		out = append(out, *a.byTxn[k])
	}
	return out
}

// orphanTimeout bounds the look for orphan transactions at start.
const orphanTimeout = 30 * time.Second
