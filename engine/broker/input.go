package broker

import (
	"context"
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
	// together with the stream's state checkpoint (AckWithState). It must be unique among the
	// live members of the group; a member restarted with the same id fences its predecessor
	// and aborts the transaction it left open.
	TransactionalID string
	// Assigned, if set, is called when partitions are assigned to this member, before any of
	// their records is read (the stream restores their state there). Revoked is called when
	// partitions are taken away or lost. Both run in the group's goroutine, never while a
	// batch is unacked (see BlockRebalanceOnPoll).
	Assigned func(ctx context.Context, partitions []int32)
	Revoked  func(partitions []int32)
	// Changelog is the topic AckWithState writes state records to: they go to the partition
	// they name, while output records it is given are partitioned by key as usual.
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

	// topicID identifies the topic's incarnation (see engine.Source.TopicID).
	topicID [16]byte

	mu sync.Mutex
	// pending holds, in Read order, the offsets to commit for each batch not yet acked.
	pending []map[int32]kgo.EpochOffset
	closed  bool
	// assigned is the set of partitions this member owns now.
	assigned map[int32]bool
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
	in := &Input{cfg: cfg, logger: cfg.Logger.With("stream", cfg.Stream, "topic", cfg.Topic, "group", cfg.Group), assigned: map[int32]bool{}}
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
		kgo.OnPartitionsAssigned(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
			in.mu.Lock()
			for _, p := range m[cfg.Topic] {
				in.assigned[p] = true
			}
			in.mu.Unlock()
			if cfg.Assigned != nil && len(m[cfg.Topic]) > 0 {
				cfg.Assigned(ctx, m[cfg.Topic])
			}
		}),
	)
	revoked := func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
		in.mu.Lock()
		for _, p := range m[cfg.Topic] {
			delete(in.assigned, p)
		}
		in.mu.Unlock()
		if cfg.Revoked != nil && len(m[cfg.Topic]) > 0 {
			cfg.Revoked(m[cfg.Topic])
		}
	}
	opts = append(opts, kgo.OnPartitionsRevoked(revoked), kgo.OnPartitionsLost(revoked))
	var err error
	if cfg.TransactionalID != "" {
		opts = append(opts,
			kgo.TransactionalID(cfg.TransactionalID),
			kgo.RecordPartitioner(checkpointPartitioner{changelog: cfg.Changelog}),
			kgo.RequiredAcks(kgo.AllISRAcks()),
		)
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
	return in, nil
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

// Joined reports whether the consumer is a member of its group (has a generation), which is
// when it starts receiving records: the engine is not ready before every input has joined.
func (in *Input) Joined() bool {
	_, generation := in.client.GroupMetadata()
	return generation >= 0
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
		if err := ctx.Err(); err != nil {
			in.allowRebalanceIfIdle()
			return nil, err
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				in.logger.Warn("fetch error", "partition", p, "err", err)
			}
		})
		batch, commit := in.convert(fetches)
		if len(batch) == 0 {
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
			batch = append(batch, rec)
		}
		last := p.Records[len(p.Records)-1]
		commit[p.Partition] = kgo.EpochOffset{Epoch: last.LeaderEpoch, Offset: last.Offset + 1}
		if in.cfg.Metrics != nil && p.HighWatermark >= 0 {
			in.cfg.Metrics.ConsumerLag.WithLabelValues(in.cfg.Stream, p.Topic, strconv.Itoa(int(p.Partition))).
				Set(float64(max(p.HighWatermark-(last.Offset+1), 0)))
		}
	})
	return batch, commit
}

// Ack commits the position after the oldest unacked batch, synchronously. Acks must come in
// Read order; batch is the slice Read returned (processors may have changed its records, so
// the offsets come from what Read recorded, not from batch).
func (in *Input) Ack(ctx context.Context, batch []*engine.Record) error {
	in.mu.Lock()
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
	if in.session != nil {
		in.session.CloseAllowingRebalance()
		return nil
	}
	in.client.CloseAllowingRebalance()
	return nil
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

// AckWithState commits the oldest unacked batch together with state: the state records go
// to changelog (partition = the input partition they belong to), out (the batch's output
// records, already encoded, for a topic output) to their topics, and the batch's offsets are
// committed, all in one Kafka transaction. So the checkpoint on the changelog is always the
// state at the committed offsets, and consumers reading committed records see each output
// record once. batch may be empty (state changed by the clock alone).
//
// The input must be transactional, and its stream must read a batch only after the previous
// one is acked (the transaction commits every offset read so far). On ErrAborted nothing
// was committed and the input has rewound to its committed offsets.
func (in *Input) AckWithState(ctx context.Context, batch []*engine.Record, changelog string, state []StateRecord, out []*kgo.Record) error {
	if in.session == nil {
		return errors.New("broker: AckWithState on an input without a transactional id")
	}
	in.mu.Lock()
	if len(in.pending) == 0 && len(batch) > 0 {
		in.mu.Unlock()
		return errors.New("broker: ack without a batch read")
	}
	in.mu.Unlock()

	if err := in.session.Begin(); err != nil {
		return fmt.Errorf("broker: input %s: beginning transaction: %w", in.cfg.Topic, err)
	}
	var (
		mu       sync.Mutex
		firstErr error
	)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
	}
	for _, r := range out {
		in.session.Produce(ctx, r, promise)
	}
	for _, st := range state {
		in.session.Produce(ctx, &kgo.Record{Topic: changelog, Partition: st.Partition, Key: []byte(st.Key), Value: st.Value}, promise)
	}
	// End flushes, so every promise above has run when it returns.
	committed, err := in.session.End(ctx, kgo.TryCommit)
	mu.Lock()
	produceErr := firstErr
	mu.Unlock()
	if produceErr != nil && committed {
		// Cannot happen (a failed record fails the flush), but a commit without the state
		// would be silent loss: say so loudly.
		in.logger.Error("transaction committed although a state record failed", "err", produceErr)
	}
	in.mu.Lock()
	if committed && err == nil {
		if len(in.pending) > 0 {
			in.pending = in.pending[1:]
		}
	} else {
		in.pending = nil // rewound: everything read is read again
	}
	idle := len(in.pending) == 0
	in.mu.Unlock()
	if idle {
		in.session.AllowRebalance()
	}
	if err != nil {
		in.logger.Warn("transaction failed; rewinding to the committed offsets", "err", err, "state_err", produceErr)
		return fmt.Errorf("%w: %w", ErrAborted, err)
	}
	if !committed {
		in.logger.Info("transaction aborted (the group rebalanced); rewinding to the committed offsets", "state_err", produceErr)
		return ErrAborted
	}
	return nil
}
