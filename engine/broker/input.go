package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

// InputConfig configures a Kafka input.
type InputConfig struct {
	// Stream names the stream in metrics and logs.
	Stream string
	Topic  string
	// Group is the consumer group; it owns the committed position.
	Group string
	// Start is where a group without a committed position starts: "earliest" (default) or "latest".
	Start string
	// BatchSize bounds the records one Read returns (default 10000).
	BatchSize int
	// Metrics, if set, receives consumer lag.
	Metrics *telemetry.Metrics
	Logger  *slog.Logger
	// TransactionalID, if set, makes the input commit its offsets inside Kafka transactions,
	// together with the stream's state checkpoint (AddToTransaction, CommitTransaction). It
	// must be unique among the live members of the group; a member restarted with the same id
	// fences its predecessor and aborts the transaction it left open.
	TransactionalID string
	// Revoked, if set, is called when partitions are taken away or lost, in the group's
	// goroutine, never while a batch is unacked (see BlockRebalanceOnPoll).
	Revoked func(partitions []int32)
	// Restore, if set, is called for newly assigned partitions once their committed offsets
	// are known and before any of their records is read: the stream restores their state
	// there. It returns the offsets its checkpoint was taken at (see CommitTransaction); where
	// they differ from the group's committed offsets, the input resumes from them, so that
	// state is never ahead of (or behind) the records read after it.
	Restore func(ctx context.Context, partitions []int32) (map[int32]int64, error)
	// InstanceID, if set, makes this member a static member of its group (KIP-345): a
	// restarted instance with the same id takes its partitions back at once instead of
	// waiting for the session of its predecessor to time out. Close then leaves the group
	// explicitly, so a clean stop hands the partitions over at once too.
	InstanceID string
	// Changelog is the topic the checkpoint transaction writes state records to: they go to
	// the partition they name, while output records it is given are partitioned by key as
	// usual.
	Changelog string
}

// checkpointPartitioner sends state records to the partition they name (the twin of the
// input partition they belong to) and everything else by key, as the default producer does.
type checkpointPartitioner struct{ changelog string }

func (p checkpointPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if topic == p.changelog {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return kgo.StickyKeyPartitioner(nil).ForTopic(topic)
}

// StateRecord is one entry of a stream's state checkpoint: Value nil deletes Key.
type StateRecord struct {
	Partition int32
	Key       string
	Value     []byte
}

// OffsetKey is the changelog key under which a checkpoint records the input offset it was
// taken at (the next offset to read), in the same transaction as the state and the group's
// offset commit. Processor keys always start with the processor's name, so none is empty
// before the NUL.
const OffsetKey = "\x00offset"

func encodeOffset(o int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(o)) }

// CheckpointOffsets takes the checkpointed input offsets out of a changelog read (see
// ReadChangelog): partitions whose changelog has none (written before offsets were
// checkpointed) are absent.
func CheckpointOffsets(state map[int32]map[string][]byte) (map[int32]int64, error) {
	out := map[int32]int64{}
	for p, entries := range state {
		v, ok := entries[OffsetKey]
		if !ok {
			continue
		}
		delete(entries, OffsetKey)
		if len(v) != 8 {
			return nil, fmt.Errorf("broker: changelog partition %d: checkpointed offset of %d bytes, want 8", p, len(v))
		}
		out[p] = int64(binary.BigEndian.Uint64(v))
	}
	return out, nil
}

// ErrRebalanced says a batch cannot be committed by this member any more: the group moved on
// to a new generation (a rebalance, or a broker that restarted and forgot the member). The
// input has gone back to its committed offsets and rejoins the group; the batch, and every
// batch read after it, is read again (Ack of those later batches does nothing), so the
// caller only goes on.
var ErrRebalanced = errors.New("broker: the consumer group moved on; the batch will be read again")

// isGenerationError reports an offset commit refused because this member's generation is
// over: retrying it can never succeed.
func isGenerationError(err error) bool {
	return errors.Is(err, kerr.IllegalGeneration) || errors.Is(err, kerr.UnknownMemberID) ||
		errors.Is(err, kerr.RebalanceInProgress) || errors.Is(err, kerr.FencedInstanceID) ||
		errors.Is(err, kerr.StaleMemberEpoch)
}

// giveUpPending drops the batches read and not committed, rewinds to the committed offsets
// and lets the group rebalance: BlockRebalanceOnPoll would otherwise keep this member from
// rejoining for as long as it holds them, and every commit would fail.
func (in *Input) giveUpPending() {
	in.mu.Lock()
	in.stale = max(len(in.pending)-1, 0) // the failing one is answered by ErrRebalanced
	in.pending = nil
	in.mu.Unlock()
	if committed := in.client.CommittedOffsets(); len(committed[in.cfg.Topic]) > 0 {
		in.client.SetOffsets(map[string]map[int32]kgo.EpochOffset{in.cfg.Topic: committed[in.cfg.Topic]})
	}
	in.client.AllowRebalance()
	in.logger.Info("the consumer group moved on; reading again from the committed offsets")
}

// ErrAborted says a transaction did not commit (the group rebalanced, or a write failed):
// the input rewound to its committed offsets, so the batch is read again, and the stream
// must restore its state from the changelog before it goes on.
var ErrAborted = errors.New("broker: transaction aborted; the batch will be read again")

// Input reads a topic as a member of a consumer group. It commits only what is acked, so a
// record whose outputs never became durable is read again after a restart or a rebalance.
//
// Between a Read and the Ack of every batch read so far, the group cannot take partitions
// away from this member (kgo's BlockRebalanceOnPoll): otherwise a batch could be committed
// for partitions that another member already re-reads. Acks should therefore follow Reads
// promptly; a member that blocks rebalancing past the rebalance timeout is evicted.
type Input struct {
	cfg     InputConfig
	client  *kgo.Client
	session *kgo.GroupTransactSession // set when cfg.TransactionalID is
	logger  *slog.Logger

	broker *Broker
	// topicID identifies the topic's incarnation (see engine.Source.TopicID).
	topicID [16]byte

	mu sync.Mutex
	// pending holds, in Read order, the offsets to commit for each batch not yet acked.
	pending []map[int32]kgo.EpochOffset
	closed  bool
	// assigned is the set of partitions this member owns now.
	assigned map[int32]bool
	// unrestored holds the assigned partitions whose state Restore has not loaded yet: the
	// group assigns them before it fetches their offsets, which is when Restore runs.
	unrestored map[int32]bool
	// lag is, per partition, how many records were still to read after the last fetch.
	lag map[int32]int64
	// stale counts batches read before the group moved on whose Ack is to be ignored.
	stale int

	// txnMu serializes what touches the open checkpoint transaction (AddToTransaction,
	// CommitTransaction, the commit of a position past markers), and txn is that transaction.
	txnMu sync.Mutex
	txn   *openTxn
}

// openTxn is a checkpoint transaction that batches are being added to.
type openTxn struct {
	batches int                       // how many batches, from the front of pending, it holds
	offsets map[int32]kgo.EpochOffset // where those batches end, per partition
	// ctx bounds its writes: a record that cannot be buffered or written within endTimeout
	// of the transaction's start (a producer buffer that stays full because the broker takes
	// nothing) fails, and with it the transaction, instead of blocking the stream without a
	// word. It outlives the calls that produce: the writes are asynchronous.
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	failed error // the first write that failed
}

func (t *openTxn) fail(_ *kgo.Record, err error) {
	if err == nil {
		return
	}
	t.mu.Lock()
	if t.failed == nil {
		t.failed = err
	}
	t.mu.Unlock()
}

func (t *openTxn) err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

var _ engine.Input = (*Input)(nil)

// NewInput creates the consumer. It joins the group on the first Read.
func NewInput(b *Broker, cfg InputConfig) (*Input, error) {
	if cfg.Topic == "" || cfg.Group == "" {
		return nil, errors.New("broker: input needs a topic and a group")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 10000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	start := kgo.NewOffset().AtStart()
	switch cfg.Start {
	case "", "earliest":
	case "latest":
		start = kgo.NewOffset().AtEnd()
	default:
		return nil, fmt.Errorf("broker: input start %q: want earliest or latest", cfg.Start)
	}
	in := &Input{cfg: cfg, logger: cfg.Logger.With("stream", cfg.Stream, "topic", cfg.Topic, "group", cfg.Group), assigned: map[int32]bool{}, unrestored: map[int32]bool{}, lag: map[int32]int64{}}
	opts := append(b.ClientOpts(),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeStartOffset(start),
		// Records that fell off the log (retention) while the group was away: resume at the
		// log start rather than skip what still exists.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		// Kafka's own default (kgo's is 5 s). With 5 s, the first long poll after a start
		// was not woken by new records on the embedded broker: the first event after a
		// restart surfaced 5 s late although /-/ready already said ready.
		kgo.FetchMaxWait(500*time.Millisecond),
		// Records of aborted transactions never reach a stream (ours write state that way,
		// and a producer of an input topic may too).
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// A transaction ends with a control record: without it the position would stop one
		// short of the end of a transactional topic, and the lag would never reach 0.
		kgo.KeepControlRecords(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			in.mu.Lock()
			for _, p := range m[cfg.Topic] {
				in.assigned[p] = true
				if cfg.Restore != nil {
					in.unrestored[p] = true
				}
			}
			in.mu.Unlock()
		}),
	)
	revoked := func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
		in.mu.Lock()
		for _, p := range m[cfg.Topic] {
			delete(in.assigned, p)
			delete(in.unrestored, p)
		}
		in.mu.Unlock()
		if cfg.Revoked != nil && len(m[cfg.Topic]) > 0 {
			cfg.Revoked(m[cfg.Topic])
		}
	}
	opts = append(opts, kgo.OnPartitionsRevoked(revoked), kgo.OnPartitionsLost(revoked))
	if cfg.Restore != nil {
		opts = append(opts, kgo.AdjustFetchOffsetsFn(in.restore))
	}
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	var err error
	if cfg.TransactionalID != "" {
		opts = append(opts, in.transactionOpts(b)...)
		in.session, err = kgo.NewGroupTransactSession(opts...)
		if err == nil {
			in.client = in.session.Client()
		}
	} else {
		in.client, err = kgo.NewClient(opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("broker: input %s: creating consumer: %w", cfg.Topic, err)
	}
	in.topicID = in.lookupTopicID()
	if in.session != nil {
		in.fencePredecessor()
	}
	in.broker = b
	return in, nil
}

// leaveGroup takes a static member out of its group: a static member's client does not
// leave when it closes (so that a restart finds its partitions waiting), and without this
// the other members would wait for its session to time out after a clean stop.
func (in *Input) leaveGroup() {
	if in.cfg.InstanceID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(in.broker.ClientOpts()...)
	if err == nil {
		defer cl.Close()
		_, err = kadm.NewClient(cl).LeaveGroup(ctx, kadm.LeaveGroup(in.cfg.Group).InstanceIDs(in.cfg.InstanceID).Reason("clean stop"))
	}
	if err != nil {
		in.logger.Warn("could not leave the consumer group; its other members wait for this member's session to time out", "err", err)
	}
}

// TransactionTimeout is how long a transaction may stay open before the broker aborts it.
// It bounds how long a crashed member's open transaction can hold back the readers of its
// outputs and changelog: Kafka Streams uses the same 10 s for exactly-once.
const TransactionTimeout = 10 * time.Second

func (in *Input) transactionOpts(b *Broker) []kgo.Opt {
	return []kgo.Opt{
		kgo.TransactionalID(in.cfg.TransactionalID),
		kgo.TransactionTimeout(TransactionTimeout),
		kgo.RecordPartitioner(checkpointPartitioner{changelog: in.cfg.Changelog}),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(int32(b.MaxRecordBytes() + recordOverheadBytes)),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.MaxBufferedRecords(100_000),
		b.compression(), // as the outputs': franz-go's default would be snappy
	}
}

// fencePredecessor initialises the producer id now rather than at the first commit. For a
// transactional id whose previous holder (this instance before a crash) left a transaction
// open, that aborts the transaction at once: otherwise the changelog read of the first
// assignment would wait for it until the broker's transaction timeout.
func (in *Input) fencePredecessor() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := in.client.ProducerID(ctx); err != nil {
		in.logger.Warn("could not initialise the transactional producer yet; an open transaction of this instance's predecessor is aborted by the broker's timeout instead", "err", err)
	}
}

// restore is the group's offset hook: it restores the state of newly assigned partitions
// and resumes each from the offsets its checkpoint was taken at.
func (in *Input) restore(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	parts := make([]int32, 0, len(offsets[in.cfg.Topic]))
	for p := range offsets[in.cfg.Topic] {
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return offsets, nil
	}
	slices.Sort(parts)
	at, err := in.cfg.Restore(ctx, parts)
	if err != nil {
		return nil, err
	}
	in.mu.Lock()
	for _, p := range parts {
		delete(in.unrestored, p)
	}
	in.mu.Unlock()
	for p, o := range at {
		committed, ok := offsets[in.cfg.Topic][p]
		if !ok {
			continue
		}
		if c := committed.EpochOffset().Offset; c >= 0 && c != o {
			// The group's commit and the checkpoint were written in one transaction, so
			// they can only differ when a broker lost part of one (the embedded broker
			// writes the two to different files): the checkpoint is the truth.
			in.logger.Warn("the group's committed offset differs from the checkpoint's; resuming from the checkpoint", "partition", p, "committed", c, "checkpoint", o)
		}
		offsets[in.cfg.Topic][p] = kgo.NewOffset().At(o).WithEpoch(-1)
	}
	return offsets, nil
}

// lookupTopicID asks the cluster for the topic's id, which record_id() folds into event ids
// so that a re-created topic (offsets from 0 again) never repeats an old record's id.
func (in *Input) lookupTopicID() [16]byte {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := kadm.NewClient(in.client).Metadata(ctx, in.cfg.Topic)
	if err == nil {
		if t, ok := md.Topics[in.cfg.Topic]; ok && t.Err == nil && t.ID != (kadm.TopicID{}) {
			return t.ID
		}
	}
	in.logger.Warn("the broker did not report the topic's id: event ids made by record_id() repeat if the topic is re-created", "err", err)
	return [16]byte{}
}

// Joined reports whether the consumer is a member of its group (has a generation) and the
// state of every partition it was assigned is restored, which is when it starts receiving
// records: the engine is not ready before every input has joined, and what it says about
// its state (silences, alerts) before then is not yet true.
func (in *Input) Joined() bool {
	_, generation := in.client.GroupMetadata()
	in.mu.Lock()
	defer in.mu.Unlock()
	return generation >= 0 && len(in.unrestored) == 0
}

// Read returns the next batch of up to BatchSize records, waiting until there is at least
// one, or ctx.Err() when ctx is done.
func (in *Input) Read(ctx context.Context) ([]*engine.Record, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fetches := in.client.PollRecords(ctx, in.cfg.BatchSize)
		if fetches.IsClientClosed() {
			return nil, errors.New("broker: input is closed")
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				in.logger.Warn("fetch error", "partition", p, "err", err)
			}
		})
		// What the poll returned is kept even when ctx ended meanwhile (the stream's next
		// tick, a reload waking the read): the consumer's position has moved past it, and
		// the next commit would cover records nobody processed.
		batch, commit := in.convert(fetches)
		if len(batch) == 0 {
			if err := ctx.Err(); err != nil {
				in.allowRebalanceIfIdle()
				return nil, err
			}
			in.commitMarkers(ctx, commit)
			in.allowRebalanceIfIdle()
			continue
		}
		in.mu.Lock()
		in.pending = append(in.pending, commit)
		in.mu.Unlock()
		return batch, nil
	}
}

func (in *Input) convert(fetches kgo.Fetches) ([]*engine.Record, map[int32]kgo.EpochOffset) {
	batch := make([]*engine.Record, 0, fetches.NumRecords())
	commit := map[int32]kgo.EpochOffset{}
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		for _, r := range p.Records {
			if r.Attrs.IsControl() {
				continue // a transaction marker: no data, but the position moves past it
			}
			batch = append(batch, in.record(r))
		}
		last := p.Records[len(p.Records)-1]
		commit[p.Partition] = kgo.EpochOffset{Epoch: last.LeaderEpoch, Offset: last.Offset + 1}
		in.observeLag(p, last.Offset+1)
		in.logger.Debug("read", "partition", p.Partition, "from", p.Records[0].Offset, "to", last.Offset, "records", len(p.Records))
	})
	return batch, commit
}

// record converts a fetched Kafka record.
func (in *Input) record(r *kgo.Record) *engine.Record {
	rec := &engine.Record{
		Raw:       r.Value,
		Key:       r.Key,
		Source:    engine.Source{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, TopicID: in.topicID},
		Timestamp: r.Timestamp,
	}
	if len(r.Headers) > 0 {
		rec.Headers = make([]engine.Header, len(r.Headers))
		for i, h := range r.Headers {
			rec.Headers[i] = engine.Header{Key: h.Key, Value: h.Value}
		}
	}
	return rec
}

// observeLag records how far position is behind the partition's end. For a read_committed
// consumer the end is the last stable offset: records of open transactions cannot be read yet.
func (in *Input) observeLag(p kgo.FetchTopicPartition, position int64) {
	end := p.LastStableOffset
	if end < 0 {
		end = p.HighWatermark
	}
	lag := max(end-position, 0)
	in.mu.Lock()
	in.lag[p.Partition] = lag
	in.mu.Unlock()
	if in.cfg.Metrics != nil && end >= 0 {
		in.cfg.Metrics.ConsumerLag.WithLabelValues(in.cfg.Stream, p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(lag))
	}
}

// Lag is the number of records (transaction markers included) between what this member
// last read and the end of its partitions, as of its last fetch.
func (in *Input) Lag() int64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	var total int64
	for p, l := range in.lag {
		if in.assigned[p] {
			total += l
		}
	}
	return total
}

// Ack commits the position after the oldest unacked batch, synchronously. Acks must come in
// Read order; batch is the slice Read returned (processors may have changed its records, so
// the offsets come from what Read recorded, not from batch).
func (in *Input) Ack(ctx context.Context, batch []*engine.Record) error {
	in.mu.Lock()
	if in.stale > 0 {
		// Read before the group moved on (see ErrRebalanced): read again, not committed.
		in.stale--
		in.mu.Unlock()
		return nil
	}
	if len(in.pending) == 0 {
		in.mu.Unlock()
		if len(batch) == 0 {
			return nil
		}
		return errors.New("broker: ack without a batch read")
	}
	commit := in.pending[0]
	in.mu.Unlock()

	if err := in.commit(ctx, commit); err != nil {
		if isGenerationError(err) {
			in.giveUpPending()
			return fmt.Errorf("%w: %w", ErrRebalanced, err)
		}
		return err
	}
	in.mu.Lock()
	in.pending = in.pending[1:]
	idle := len(in.pending) == 0
	in.mu.Unlock()
	if idle {
		in.client.AllowRebalance()
	}
	return nil
}

func (in *Input) commit(ctx context.Context, offsets map[int32]kgo.EpochOffset) error {
	var commitErr error
	in.client.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{in.cfg.Topic: offsets},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				commitErr = err
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
						commitErr = fmt.Errorf("partition %d: %w", p.Partition, err)
						return
					}
				}
			}
		})
	if commitErr != nil {
		return fmt.Errorf("broker: input %s: committing offsets: %w", in.cfg.Topic, commitErr)
	}
	return nil
}

// commitMarkers commits a position that moved past transaction markers only (no data), when
// no batch is in flight: otherwise the group's committed offset would stay one short of the
// end of a transactional topic for as long as nothing new comes, and the embedded broker's
// compaction, which waits for every reader to reach the end, would wait too.
func (in *Input) commitMarkers(ctx context.Context, commit map[int32]kgo.EpochOffset) {
	in.mu.Lock()
	idle := len(in.pending) == 0
	in.mu.Unlock()
	if len(commit) == 0 || !idle {
		return
	}
	// Not the read's context: its deadline (the next tick) must not cut a commit in half.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*TransactionTimeout)
	defer cancel()
	var err error
	if in.session != nil {
		err = in.commitMarkersInTransaction(cctx, commit)
	} else {
		err = in.commit(cctx, commit)
	}
	if err != nil && ctx.Err() == nil {
		in.logger.Debug("committing the position past transaction markers failed; the next batch commits it", "err", err)
	}
}

// commitMarkersInTransaction commits a position past markers in a transaction of its own,
// unless one is open (a tick's writes, say), whose commit then covers it: a transaction
// commits every position read so far.
func (in *Input) commitMarkersInTransaction(ctx context.Context, commit map[int32]kgo.EpochOffset) error {
	in.txnMu.Lock()
	defer in.txnMu.Unlock()
	if in.txn != nil {
		return nil
	}
	in.mu.Lock()
	in.pending = append(in.pending, commit)
	in.mu.Unlock()
	if err := in.openTransaction(); err != nil {
		in.settlePending(1, false)
		return err
	}
	txn := in.txn
	in.txn = nil
	txn.batches, txn.offsets = 1, commit
	return in.commitTransaction(ctx, txn, in.cfg.Changelog, nil)
}

// allowRebalanceIfIdle lets a waiting rebalance proceed when no polled batch is in flight.
func (in *Input) allowRebalanceIfIdle() {
	in.mu.Lock()
	idle := len(in.pending) == 0
	in.mu.Unlock()
	if idle {
		in.client.AllowRebalance()
	}
}

// Close leaves the group without committing unacked batches (they are redelivered).
func (in *Input) Close() error {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return nil
	}
	in.closed = true
	in.pending = nil
	in.mu.Unlock()
	// An open transaction is given up (closing the client aborts it); its writes' context
	// ends now rather than at its timeout. Not when a commit holds it: that ends by itself.
	if in.txnMu.TryLock() {
		if in.txn != nil {
			in.txn.cancel()
			in.txn = nil
		}
		in.txnMu.Unlock()
	}
	if in.session != nil {
		in.session.CloseAllowingRebalance()
	} else {
		in.client.CloseAllowingRebalance()
	}
	in.leaveGroup()
	return nil
}

// abortOpen ends a transaction that End could not end (its flush or commit failed, e.g.
// while the broker was down): left open, every later Begin would fail and the stream would
// stall for good. It gets a context of its own: the caller's may be what ended.
func (in *Input) abortOpen() error {
	_, err := in.endWithin(context.Background(), kgo.TryAbort)
	if errors.Is(err, ErrInputBroken) {
		return err
	}
	if err != nil {
		in.logger.Warn("could not abort the open transaction; the broker aborts it after the transaction timeout", "err", err)
	}
	return nil
}

// ErrInputBroken says the input's client cannot go on: ending a transaction did not return
// within endTimeout (seen after a broker restart: the session waits for a heartbeat that
// never comes). The stream must open a new input; the broker aborts what this one left open.
var ErrInputBroken = errors.New("broker: the transactional consumer is stuck; it must be replaced")

// endTimeout bounds ending (committing or aborting) one transaction.
const endTimeout = 3 * TransactionTimeout

// endWithin ends the transaction, giving up after endTimeout with ErrInputBroken. kgo's End
// is not reliably bounded by its context, so it runs aside and is abandoned if it hangs.
func (in *Input) endWithin(ctx context.Context, how kgo.TransactionEndTry) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, endTimeout)
	defer cancel()
	type result struct {
		committed bool
		err       error
	}
	done := make(chan result, 1)
	go func() {
		committed, err := in.session.End(ctx, how)
		done <- result{committed, err}
	}()
	select {
	case r := <-done:
		return r.committed, r.err
	case <-time.After(endTimeout + 5*time.Second):
		in.logger.Error("ending a transaction did not return; the stream replaces its consumer", "waited", endTimeout+5*time.Second)
		return false, fmt.Errorf("%w: ending a transaction did not return within %s", ErrInputBroken, endTimeout+5*time.Second)
	}
}

// ResumeAt moves the read position of the given partitions to offsets (after an aborted
// transaction, to where the restored checkpoint was taken).
func (in *Input) ResumeAt(offsets map[int32]int64) {
	if len(offsets) == 0 {
		return
	}
	set := make(map[int32]kgo.EpochOffset, len(offsets))
	for p, o := range offsets {
		set[p] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	in.client.SetOffsets(map[string]map[int32]kgo.EpochOffset{in.cfg.Topic: set})
}

// Assigned lists the partitions this member owns now, in order.
func (in *Input) Assigned() []int32 {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]int32, 0, len(in.assigned))
	for p := range in.assigned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// AddToTransaction adds the oldest batch read and not yet in the open checkpoint transaction
// to it (beginning one if none is open), with what it produced: its output records out
// (already encoded, for a topic output) go to their topics, state to changelog (partition =
// the input partition each entry belongs to). The writes are asynchronous; CommitTransaction
// waits for them and commits them together with the offsets of every batch added, the group's
// commit and the changelog's offset entries alike. So the checkpoint on the changelog is
// always the state at the committed offsets, and consumers reading committed records see each
// output record once. batch may be empty: state changed by the clock alone.
//
// The transaction commits every offset read so far (franz-go's GroupTransactSession), so a
// stream commits only once every batch it has read is added. Batches are added in Read order.
func (in *Input) AddToTransaction(ctx context.Context, batch []*engine.Record, changelog string, state []StateRecord, out []*kgo.Record) error {
	if in.session == nil {
		return errors.New("broker: AddToTransaction on an input without a transactional id")
	}
	in.txnMu.Lock()
	defer in.txnMu.Unlock()
	if err := in.openTransaction(); err != nil {
		return err
	}
	if len(batch) > 0 {
		in.mu.Lock()
		if in.txn.batches >= len(in.pending) {
			in.mu.Unlock()
			return errors.New("broker: a batch added to the transaction that was not read")
		}
		for p, o := range in.pending[in.txn.batches] {
			in.txn.offsets[p] = o
		}
		in.txn.batches++
		in.mu.Unlock()
	}
	for _, r := range out {
		in.session.Produce(in.txn.ctx, r, in.txn.fail)
	}
	for _, st := range state {
		in.session.Produce(in.txn.ctx, &kgo.Record{Topic: changelog, Partition: st.Partition, Key: []byte(st.Key), Value: st.Value}, in.txn.fail)
	}
	return nil
}

// openTransaction begins a transaction unless one is open. One that an earlier failure left
// open in the producer is aborted first (what it held was already given up: the commit that
// failed rewound the input). A producer that cannot begin even then is in a state franz-go
// cannot leave (seen after a broker restart: INVALID_PRODUCER_EPOCH, "fatal,
// unrecoverable"): ErrInputBroken, so that the stream replaces its consumer instead of
// retrying for ever.
func (in *Input) openTransaction() error {
	if in.txn != nil {
		return nil
	}
	if err := in.session.Begin(); err != nil {
		if aerr := in.abortOpen(); aerr != nil {
			return aerr
		}
		if again := in.session.Begin(); again != nil {
			return fmt.Errorf("%w: beginning a transaction: %w", ErrInputBroken, again)
		}
	}
	tctx, cancel := context.WithTimeout(context.Background(), endTimeout)
	in.txn = &openTxn{offsets: map[int32]kgo.EpochOffset{}, ctx: tctx, cancel: cancel}
	return nil
}

// Buffered reports whether records have been fetched and wait to be read: a Read now would
// not wait for the broker.
func (in *Input) Buffered() bool { return in.client.BufferedFetchRecords() > 0 }

// CommitTransaction commits the open checkpoint transaction (nothing when none is open): it
// writes the changelog's offset entries of the batches added, waits for every write, calls
// written (if set) once they all succeeded and before the commit, so before any
// read_committed reader can see them, and ends the transaction. On ErrAborted nothing was
// committed and the input has rewound to its committed offsets: the caller restores the
// state those offsets were checkpointed with before it reads again.
func (in *Input) CommitTransaction(ctx context.Context, changelog string, written func()) error {
	in.txnMu.Lock()
	defer in.txnMu.Unlock()
	txn := in.txn
	if txn == nil {
		return nil
	}
	in.txn = nil
	return in.commitTransaction(ctx, txn, changelog, written)
}

// commitTransaction writes txn's offset entries to changelog, calls written once every write
// of txn succeeded, and ends txn. The caller holds txnMu and has taken txn out of in.txn.
func (in *Input) commitTransaction(ctx context.Context, txn *openTxn, changelog string, written func()) error {
	defer txn.cancel()
	for p, o := range txn.offsets {
		in.session.Produce(txn.ctx, &kgo.Record{Topic: changelog, Partition: p, Key: []byte(OffsetKey), Value: encodeOffset(o.Offset)}, txn.fail)
	}
	if written != nil && in.session.Client().Flush(txn.ctx) == nil && txn.err() == nil {
		written()
	}
	return in.endTransaction(ctx, txn)
}

// endTransaction commits txn (End flushes, so every record produced in it has been answered
// when it returns) and settles its batches.
func (in *Input) endTransaction(ctx context.Context, txn *openTxn) error {
	committed, err := in.endWithin(ctx, kgo.TryCommit)
	if errors.Is(err, ErrInputBroken) {
		return err
	}
	if err != nil {
		if aerr := in.abortOpen(); aerr != nil {
			return aerr
		}
	}
	if pe := txn.err(); pe != nil && committed {
		// Cannot happen (a failed record fails the flush), but a commit without the state
		// would be silent loss: say so loudly.
		in.logger.Error("transaction committed although a state record failed", "err", pe)
	}
	in.settlePending(txn.batches, committed && err == nil)
	switch {
	case err != nil:
		in.logger.Warn("transaction failed; rewinding to the committed offsets", "err", err, "state_err", txn.err())
		return fmt.Errorf("%w: %w", ErrAborted, err)
	case !committed:
		in.logger.Info("transaction aborted (the group rebalanced); rewinding to the committed offsets", "state_err", txn.err())
		return ErrAborted
	}
	return nil
}

// settlePending drops the n batches a transaction committed, or, when it did not commit,
// every batch read (the session rewound to the committed offsets); a rebalance may then
// proceed.
func (in *Input) settlePending(n int, committed bool) {
	in.mu.Lock()
	if committed {
		in.pending = in.pending[min(n, len(in.pending)):]
	} else {
		in.pending = nil
	}
	idle := len(in.pending) == 0
	in.mu.Unlock()
	if idle {
		in.session.AllowRebalance()
	}
}
