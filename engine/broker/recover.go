package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// cleanStopFile, in the embedded broker's data directory, says the broker that wrote the
// directory last was stopped by Close, not killed. It is removed at start and written again
// by Close.
const cleanStopFile = "eventops-clean-stop"

// recoveryTimeout bounds the work recoverDataDir does before the broker takes clients.
const recoveryTimeout = 5 * time.Minute

// recoverDataDir makes the data directory an earlier run left readable past every
// transaction that run could not end, before any client of this run can write to it, and
// opens the directory's txnOffsetLog.
//
// A transaction open when the broker process was killed has records on disk and no marker.
// kfake reloads it as aborted but writes no abort marker, and a read_committed reader
// (franz-go, like the Java client) that is told a producer's transaction was aborted drops
// every later transactional batch of that producer until it sees an abort marker. Once the
// producer's next run commits to the same partition, the reader would drop those committed
// records too — silently — and a state restore waiting to see the partition's last offset
// would wait for good. Writing the missing abort markers first closes both.
//
// A kill while kfake writes a transaction's commit markers, partition by partition, leaves
// the transaction committed on some partitions and not on others, and its consumer group
// offsets (applied last) lost. Such a transaction is finished instead: see rollForward.
//
// It is needed only after a kill (no cleanStopFile): a broker stopped by Close keeps its open
// transactions open, and endOrphans ends them. The work is done on a broker of its own on a
// loopback port nobody knows, so that no client (an engine retrying its connection, say)
// writes before the markers are in.
func (b *Broker) recoverDataDir(dir string, opts []kfake.Opt) error {
	log, err := openTxnOffsetLog(dir)
	if err != nil {
		return err
	}
	b.txnLog = log
	if _, err := os.Stat(filepath.Join(dir, "meta.json")); err != nil {
		return nil // a new directory: no earlier run
	}
	restored, err := restoreInterruptedCompaction(dir)
	if err != nil {
		log.Close()
		return fmt.Errorf("broker: embedded: putting back the partitions a kill cut a compaction of short (data dir %s): %w", dir, err)
	}
	if len(restored) > 0 {
		b.logger.Warn("the broker was killed while it compacted: the compacted partitions are back as they were before that compaction", "partitions", restored)
	}
	marker := filepath.Join(dir, cleanStopFile)
	if _, err := os.Stat(marker); err == nil {
		// Stopped cleanly: kfake kept its open transactions as open (endOrphans ends them).
		return removeCleanStop(marker)
	}
	cluster, err := kfake.NewCluster(opts...) // kfake's default: a random loopback port
	if err != nil {
		log.Close()
		return fmt.Errorf("broker: embedded: loading data dir %s: %w", dir, err)
	}
	b.cluster, b.addrs = cluster, cluster.ListenAddrs()
	defer func() {
		cluster.Close()
		b.cluster, b.addrs = nil, nil
	}()
	ctx, cancel := context.WithTimeout(context.Background(), recoveryTimeout)
	defer cancel()
	if err := b.endKilledTransactions(ctx); err != nil {
		b.logger.Error("could not end the transactions a kill of the broker cut short; read_committed readers of their partitions may skip later committed records", "err", err)
	}
	return nil
}

func removeCleanStop(marker string) error {
	if err := os.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("broker: embedded: %w", err)
	}
	return nil
}

// markCleanStop records that this broker was stopped by Close (see cleanStopFile).
func (b *Broker) markCleanStop() {
	if b.dataDir == "" {
		return
	}
	if err := os.WriteFile(filepath.Join(b.dataDir, cleanStopFile), nil, 0o644); err != nil {
		b.logger.Warn("could not record the clean stop; the next start reads every partition to find transactions a kill left without marker", "err", err)
	}
}

// endKilledTransactions finishes the commits a kill cut short (rollForward), writes an abort
// marker after every other transaction with records and no marker, and restores the group
// offsets of transactions whose markers were all written but whose offsets were not
// (restoreTxnOffsets).
func (b *Broker) endKilledTransactions(ctx context.Context) error {
	started := time.Now()
	scan, err := b.scanTransactions(ctx)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(b.ClientOpts()...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	rolled, err := b.rollForward(ctx, scan)
	if err != nil {
		return fmt.Errorf("finishing a commit the kill cut short: %w", err)
	}
	markers := markersFor(scan.open())
	if err := abortTransactions(ctx, adm, markers); err != nil {
		return err
	}
	for _, m := range markers {
		b.logger.Warn("aborted a transaction the broker was killed in (its records had no marker)",
			"producer_id", m.ProducerID, "epoch", m.ProducerEpoch, "partitions", m.Topics.Sorted())
	}
	if err := b.restoreTxnOffsets(ctx, adm, scan.committed, rolled); err != nil {
		return fmt.Errorf("restoring the offsets of committed transactions: %w", err)
	}
	b.logger.Info("read the data dir for transactions a kill cut short", "aborted", len(markers), "rolled_forward", len(rolled), "took", time.Since(started).Round(time.Millisecond))
	return nil
}

// scanTransactions reads every partition to its end, uncommitted records and markers
// included.
func (b *Broker) scanTransactions(ctx context.Context) (*tailScan, error) {
	cl, err := kgo.NewClient(b.ClientOpts()...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := partitionEnds(ctx, kadm.NewClient(cl))
	if err != nil {
		return nil, err
	}
	scan := newTailScan(ends)
	if scan.pending == 0 {
		return scan, nil
	}
	start := map[string]map[int32]kgo.Offset{}
	for t, ps := range ends {
		start[t] = map[int32]kgo.Offset{}
		for p := range ps {
			start[t][p] = kgo.NewOffset().AtStart()
		}
	}
	reader, err := kgo.NewClient(append(b.ClientOpts(), kgo.ConsumePartitions(start),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return nil, err
	}
	defer reader.Close()
	for scan.pending > 0 {
		fetches := reader.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading the data dir for open transactions (%d partitions still to read): %w", scan.pending, err)
		}
		fetches.EachRecord(scan.add)
	}
	return scan, nil
}

// partitionEnds maps every partition that holds records to its end offset.
func partitionEnds(ctx context.Context, adm *kadm.Client) (map[string]map[int32]int64, error) {
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	if len(topics) == 0 {
		return nil, nil
	}
	starts, err := adm.ListStartOffsets(ctx, topics.Names()...)
	if err != nil {
		return nil, fmt.Errorf("start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics.Names()...)
	if err != nil {
		return nil, fmt.Errorf("end offsets: %w", err)
	}
	out := map[string]map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(o.Topic, o.Partition); o.Err != nil || !ok || s.Offset >= o.Offset {
			return
		}
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out, nil
}

// openTail is a producer's transaction with records and, so far, no marker, in one partition.
type openTail struct {
	topic     string
	partition int32
	txnKey
	records []*kgo.Record
}

// tailScan follows, per partition, which producers have a transaction with no marker yet,
// and which transactions have a commit marker somewhere.
type tailScan struct {
	ends    map[string]map[int32]int64
	pending int
	// unended[topic][partition][producer] is the producer's unended transaction.
	unended   map[string]map[int32]map[int64]*openTail
	committed map[txnKey]bool
}

func newTailScan(ends map[string]map[int32]int64) *tailScan {
	s := &tailScan{ends: ends, unended: map[string]map[int32]map[int64]*openTail{}, committed: map[txnKey]bool{}}
	for t, ps := range ends {
		s.pending += len(ps)
		s.unended[t] = map[int32]map[int64]*openTail{}
		for p := range ps {
			s.unended[t][p] = map[int64]*openTail{}
		}
	}
	return s
}

func (s *tailScan) add(r *kgo.Record) {
	end, ok := s.ends[r.Topic][r.Partition]
	if !ok || r.Offset >= end {
		return // written after the read began, or already read to its end
	}
	if r.Attrs.IsTransactional() {
		s.follow(r)
	}
	if r.Offset+1 >= end {
		delete(s.ends[r.Topic], r.Partition)
		s.pending--
	}
}

// follow notes a transactional record: a marker ends its producer's transaction in the
// partition, a data record begins or extends one.
func (s *tailScan) follow(r *kgo.Record) {
	producers := s.unended[r.Topic][r.Partition]
	key := txnKey{r.ProducerID, r.ProducerEpoch}
	if r.Attrs.IsControl() {
		delete(producers, r.ProducerID)
		if isCommitMarker(r) {
			s.committed[key] = true
		}
		return
	}
	t := producers[r.ProducerID]
	if t == nil || t.txnKey != key {
		t = &openTail{topic: r.Topic, partition: r.Partition, txnKey: key}
		producers[r.ProducerID] = t
	}
	t.records = append(t.records, r)
}

// isCommitMarker says whether a control record is a commit marker (key: version int16, type
// int16 with 1 for commit).
func isCommitMarker(r *kgo.Record) bool {
	return len(r.Key) >= 4 && r.Key[2] == 0 && r.Key[3] == 1
}

// open returns the transactions with records and no marker, in a fixed order.
func (s *tailScan) open() []*openTail {
	var out []*openTail
	for _, t := range slices.Sorted(maps.Keys(s.unended)) {
		for _, p := range slices.Sorted(maps.Keys(s.unended[t])) {
			for _, id := range slices.Sorted(maps.Keys(s.unended[t][p])) {
				out = append(out, s.unended[t][p][id])
			}
		}
	}
	return out
}

// markersFor groups open transactions into one abort marker request per producer and epoch.
func markersFor(open []*openTail) []kadm.TxnMarkers {
	var markers abortMarkers
	for _, o := range open {
		markers.add(o.txnKey, 0, o.topic, o.partition)
	}
	return markers.list()
}
