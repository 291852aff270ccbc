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
// transaction that run could not end, before any client of this run can write to it.
//
// A transaction open when the broker process was killed has records on disk and no marker.
// kfake reloads it as aborted but writes no abort marker, and a read_committed reader
// (franz-go, like the Java client) that is told a producer's transaction was aborted drops
// every later transactional batch of that producer until it sees an abort marker. Once the
// producer's next run commits to the same partition, the reader would drop those committed
// records too — silently — and a state restore waiting to see the partition's last offset
// would wait for good. Writing the missing abort markers first closes both.
//
// It is needed only after a kill (no cleanStopFile): a broker stopped by Close keeps its open
// transactions open, and endOrphans ends them. The work is done on a broker of its own on a
// loopback port nobody knows, so that no client (an engine retrying its connection, say)
// writes before the markers are in.
func (b *Broker) recoverDataDir(dir string, opts []kfake.Opt) error {
	if _, err := os.Stat(filepath.Join(dir, "meta.json")); err != nil {
		return nil // a new directory: no earlier run
	}
	marker := filepath.Join(dir, cleanStopFile)
	_, err := os.Stat(marker)
	if err == nil {
		// Stopped cleanly: kfake kept its open transactions as open (endOrphans ends them).
		return removeCleanStop(marker)
	}
	cluster, err := kfake.NewCluster(opts...) // kfake's default: a random loopback port
	if err != nil {
		return fmt.Errorf("broker: embedded: loading data dir %s: %w", dir, err)
	}
	b.cluster, b.addrs = cluster, cluster.ListenAddrs()
	defer func() {
		cluster.Close()
		b.cluster, b.addrs = nil, nil
	}()
	ctx, cancel := context.WithTimeout(context.Background(), recoveryTimeout)
	defer cancel()
	b.endKilledTransactions(ctx)
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

// endKilledTransactions writes an abort marker after each transaction that has records and no
// marker (see recoverDataDir). A failure is logged, not fatal: the broker is still of use,
// and readers of the partitions concerned may then lose records, which the log says.
func (b *Broker) endKilledTransactions(ctx context.Context) {
	started := time.Now()
	markers, err := b.killedTransactions(ctx)
	if err == nil {
		cl, cerr := kgo.NewClient(b.ClientOpts()...)
		if err = cerr; err == nil {
			err = abortTransactions(ctx, kadm.NewClient(cl), markers)
			cl.Close()
		}
	}
	if err != nil {
		b.logger.Error("could not end the transactions a kill of the broker left without marker; read_committed readers of their partitions may skip later committed records", "err", err)
		return
	}
	for _, m := range markers {
		b.logger.Warn("aborted a transaction the broker was killed in (its records had no marker)",
			"producer_id", m.ProducerID, "epoch", m.ProducerEpoch, "partitions", m.Topics.Sorted())
	}
	b.logger.Info("read the data dir for transactions a kill left without marker", "aborted", len(markers), "took", time.Since(started).Round(time.Millisecond))
}

// killedTransactions reads every partition to its end, uncommitted records and markers
// included, and returns an abort marker request for each producer whose last transactional
// batch in some partition is not followed by a marker.
func (b *Broker) killedTransactions(ctx context.Context) ([]kadm.TxnMarkers, error) {
	cl, err := kgo.NewClient(b.ClientOpts()...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := partitionEnds(ctx, kadm.NewClient(cl))
	if err != nil || len(ends) == 0 {
		return nil, err
	}
	open, err := b.openTransactions(ctx, ends)
	if err != nil {
		return nil, err
	}
	return markersFor(open), nil
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
	producer  int64
	epoch     int16
}

// openTransactions reads the partitions in ends to their end offsets and returns the
// transactions whose records no marker follows.
func (b *Broker) openTransactions(ctx context.Context, ends map[string]map[int32]int64) ([]openTail, error) {
	start := map[string]map[int32]kgo.Offset{}
	for t, ps := range ends {
		start[t] = map[int32]kgo.Offset{}
		for p := range ps {
			start[t][p] = kgo.NewOffset().AtStart()
		}
	}
	cl, err := kgo.NewClient(append(b.ClientOpts(), kgo.ConsumePartitions(start),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	scan := newTailScan(ends)
	for scan.pending > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading the data dir for open transactions (%d partitions still to read): %w", scan.pending, err)
		}
		fetches.EachRecord(scan.add)
	}
	return scan.open(), nil
}

// tailScan follows, per partition, which producers have a transaction with no marker yet.
type tailScan struct {
	ends    map[string]map[int32]int64
	pending int
	// unended[topic][partition][producer] is the epoch of the producer's unended transaction.
	unended map[string]map[int32]map[int64]int16
}

func newTailScan(ends map[string]map[int32]int64) *tailScan {
	s := &tailScan{ends: ends, unended: map[string]map[int32]map[int64]int16{}}
	for t, ps := range ends {
		s.pending += len(ps)
		s.unended[t] = map[int32]map[int64]int16{}
		for p := range ps {
			s.unended[t][p] = map[int64]int16{}
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
		producers := s.unended[r.Topic][r.Partition]
		if r.Attrs.IsControl() {
			delete(producers, r.ProducerID)
		} else {
			producers[r.ProducerID] = r.ProducerEpoch
		}
	}
	if r.Offset+1 >= end {
		delete(s.ends[r.Topic], r.Partition)
		s.pending--
	}
}

func (s *tailScan) open() []openTail {
	var out []openTail
	for _, t := range slices.Sorted(maps.Keys(s.unended)) {
		for _, p := range slices.Sorted(maps.Keys(s.unended[t])) {
			for _, id := range slices.Sorted(maps.Keys(s.unended[t][p])) {
				out = append(out, openTail{t, p, id, s.unended[t][p][id]})
			}
		}
	}
	return out
}

// markersFor groups open transactions into one abort marker request per producer and epoch.
func markersFor(open []openTail) []kadm.TxnMarkers {
	type key struct {
		producer int64
		epoch    int16
	}
	byKey := map[key]*kadm.TxnMarkers{}
	var order []key
	for _, o := range open {
		k := key{o.producer, o.epoch}
		m, ok := byKey[k]
		if !ok {
			m = &kadm.TxnMarkers{ProducerID: o.producer, ProducerEpoch: o.epoch, Topics: kadm.TopicsSet{}}
			byKey[k] = m
			order = append(order, k)
		}
		m.Topics.Add(o.topic, o.partition)
	}
	out := make([]kadm.TxnMarkers, 0, len(order))
	for _, k := range order {
		out = append(out, *byKey[k])
	}
	return out
}
