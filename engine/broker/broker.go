// Package broker is the engine's Kafka-protocol layer: it starts the embedded broker (an
// in-process kfake cluster persisted to a data directory) or points at external Redpanda/Kafka
// brokers, creates and reconciles the declared topics, and provides the Kafka Input, Output
// and dead-letter writer that streams are built from.
//
// The embedded broker has gaps that a production broker does not (see EnsureTopics and
// StartCleaner); this package hides them so the rest of the engine can treat both kinds of
// broker alike.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/netguard"
)

// Broker is a connection point to a Kafka-protocol cluster, and owns the embedded cluster
// when there is one.
type Broker struct {
	cfg    config.Broker
	logger *slog.Logger
	// security are the client options of broker.tls and broker.sasl.
	security []kgo.Opt
	addrs    []string
	cluster  *kfake.Cluster // nil for external brokers
	dataDir  string         // the embedded broker's
	txnLog   *txnOffsetLog  // the embedded broker's

	// shared is a producer used by dead-letter writers, which have no lifecycle of their own.
	sharedOnce sync.Once
	shared     *kgo.Client
	sharedErr  error

	// pinger asks for metadata (Ping), for health.
	pingOnce sync.Once
	pinger   *kgo.Client
	pingErr  error

	// CompactionsDeferred, if set, is called each time the cleaner skips compaction
	// because a reader of a compacted topic is behind.
	CompactionsDeferred func()
	// Compacting, if set, is called just before each compaction, with the compacted
	// partitions' files kept (a test kills the broker inside compactions with it).
	Compacting func()

	closeOnce sync.Once
	cleanerWG sync.WaitGroup
	stop      chan struct{}
}

// Start connects to the brokers in cfg. With cfg.Embedded set it first starts a one-node
// in-process broker listening on cfg.Embedded.Listen, persisting to cfg.Embedded.DataDir.
// With cfg.Brokers set nothing is started and no connection is made yet: clients connect
// (and retry) when they are used.
func Start(ctx context.Context, cfg config.Broker, logger *slog.Logger) (*Broker, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "eventops-engine"
	}
	b := &Broker{cfg: cfg, logger: logger, stop: make(chan struct{})}
	var err error
	if b.security, err = securityOpts(cfg); err != nil {
		return nil, err
	}
	switch {
	case cfg.Embedded != nil && len(cfg.Brokers) > 0:
		return nil, errors.New("broker: set either brokers or embedded, not both")
	case cfg.Embedded != nil:
		if err := b.startEmbedded(*cfg.Embedded); err != nil {
			return nil, err
		}
	case len(cfg.Brokers) > 0:
		b.addrs = append([]string(nil), cfg.Brokers...)
	default:
		return nil, errors.New("broker: no brokers and no embedded broker configured")
	}
	if err := ctx.Err(); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func (b *Broker) startEmbedded(e config.Embedded) error {
	listen := e.Listen
	if listen == "" {
		listen = "127.0.0.1:9092"
	}
	if err := checkLoopback(listen); err != nil {
		return err
	}
	if e.DataDir == "" {
		return errors.New("broker: embedded: data_dir is required")
	}
	if err := os.MkdirAll(e.DataDir, 0o755); err != nil {
		return fmt.Errorf("broker: embedded: creating data dir: %w", err)
	}
	// kfake always asks its listen function for 127.0.0.1:<port>; we listen on the configured
	// address instead, and kfake advertises whatever the listener reports, so metadata points
	// real clients (kcat, librdkafka) back at the address they dialled.
	listenFn := func(network, _ string) (net.Listener, error) {
		return netguard.Listen(network, listen, netguard.Options{Name: "broker", Logger: b.logger.With("component", "embedded-broker")})
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("eventops-embedded"),
		kfake.DataDir(e.DataDir),
		kfake.DefaultNumPartitions(1),
		// The broker must accept every record the engine lets through (MaxRecordBytes) in
		// a batch of its own.
		kfake.BrokerConfigs(map[string]string{
			"message.max.bytes": strconv.Itoa(b.MaxRecordBytes() + recordOverheadBytes),
			// kfake would also compact on a timer of its own (hourly by default), without
			// the cleaner's safeguards (Clean); this puts that timer a century away.
			"log.cleaner.backoff.ms": strconv.FormatInt(int64(100*365*24*time.Hour/time.Millisecond), 10),
		}),
		kfake.WithLogger(kfakeLogger{b.logger.With("component", "embedded-broker")}),
	}
	saslOpts, err := embeddedSASL(b.cfg.SASL)
	if err != nil {
		return err
	}
	opts = append(opts, saslOpts...)
	if err := b.recoverDataDir(e.DataDir, opts); err != nil {
		return err
	}
	cluster, err := kfake.NewCluster(append(opts, kfake.ListenFn(listenFn))...)
	if err != nil {
		b.txnLog.Close()
		return fmt.Errorf("broker: starting embedded broker on %s (data dir %s): %w", listen, e.DataDir, err)
	}
	b.cluster = cluster
	b.addrs = cluster.ListenAddrs()
	b.dataDir = e.DataDir
	b.observeTxnOffsets(cluster)
	b.logger.Info("embedded broker started", "listen", b.addrs, "data_dir", e.DataDir)
	b.endOrphans(context.Background())
	return nil
}

// observeTxnOffsets logs every TxnOffsetCommit request in the txnOffsetLog before kfake
// handles it. It is a fault that never fires, kfake's way to observe requests on its own
// goroutine (a control function would run on another goroutine, which the broker waits for
// while it goes on with its own work). kfake checks faults per partition of a request, so the
// same request may come several times in a row: it is logged once.
func (b *Broker) observeTxnOffsets(cluster *kfake.Cluster) {
	var last kmsg.Request
	cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.TxnOffsetCommit}, Count: -1, When: func(req kmsg.Request) bool {
		if req == last {
			return false
		}
		last = req
		if err := b.txnLog.observe(req); err != nil {
			b.logger.Warn("could not log a transaction's offsets; a kill of the broker while it commits them would lose them", "err", err)
		}
		return false
	}})
}

// endOrphans aborts the transactions the previous run left open (abortOrphanTransactions).
// A failure is not fatal: the streams' restores then wait, and say so in /-/ready.
func (b *Broker) endOrphans(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, orphanTimeout)
	defer cancel()
	if err := b.abortOrphanTransactions(ctx); err != nil {
		b.logger.Error("could not end the transactions the previous run left open; readers of their partitions wait", "err", err)
	}
}

// checkLoopback refuses addresses other machines could reach: the embedded broker has no
// authentication, so it must never listen beyond the host.
func checkLoopback(hostport string) error {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("broker: embedded: listen %q: %w", hostport, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("broker: embedded: listen %q: bad port", hostport)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("broker: embedded: listen %q: host must be a loopback address (127.0.0.1, ::1 or localhost)", hostport)
	}
	return nil
}

// DefaultMaxRecordBytes is broker.max_record_bytes when the file does not set it.
const DefaultMaxRecordBytes = 1_000_000

// recordOverheadBytes is what a record batch adds around one record's key, value and
// headers (the batch header is 61 bytes, a record's own framing a few varints).
const recordOverheadBytes = 1 << 10

// MaxRecordBytes is the largest record (key + value + headers) a stream writes to a topic.
func (b *Broker) MaxRecordBytes() int {
	if b.cfg.MaxRecordBytes > 0 {
		return int(b.cfg.MaxRecordBytes)
	}
	return DefaultMaxRecordBytes
}

// Embedded reports whether the broker runs in this process.
func (b *Broker) Embedded() bool { return b.cluster != nil }

// Addrs returns the seed broker addresses (for the embedded broker: where it listens).
func (b *Broker) Addrs() []string { return append([]string(nil), b.addrs...) }

// ClientOpts returns the options every client of this broker needs: seed brokers, client id
// and logging. Callers append their own producer or consumer options.
func (b *Broker) ClientOpts() []kgo.Opt {
	return append([]kgo.Opt{
		kgo.SeedBrokers(b.addrs...),
		kgo.ClientID(b.cfg.ClientID),
		kgo.WithLogger(kgoLogger{b.logger.With("component", "kafka-client")}),
	}, b.security...)
}

// sharedProducer returns the producer shared by dead-letter writers, creating it on first use.
func (b *Broker) sharedProducer() (*kgo.Client, error) {
	b.sharedOnce.Do(func() {
		b.shared, b.sharedErr = kgo.NewClient(append(b.ClientOpts(),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerBatchMaxBytes(int32(b.MaxRecordBytes()+recordOverheadBytes)),
			kgo.ProducerLinger(0), // dead letters are few; do not make their batch wait
			b.compression(),
		)...)
		if b.sharedErr != nil {
			b.sharedErr = fmt.Errorf("broker: creating dead-letter producer: %w", b.sharedErr)
		}
	})
	return b.shared, b.sharedErr
}

// StartCleaner applies retention and compaction to the embedded broker's topics every
// interval until ctx is done or the broker is closed. kfake would otherwise do this only
// hourly, and only for topics with their own retention setting. It does nothing for external
// brokers, which clean their own logs.
func (b *Broker) StartCleaner(ctx context.Context, every time.Duration) {
	if b.cluster == nil || every <= 0 {
		return
	}
	b.cleanerWG.Add(1)
	go func() {
		defer b.cleanerWG.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-b.stop:
				return
			case <-t.C:
				b.Clean(ctx)
			}
		}
	}()
}

// Clean runs one retention pass on the embedded broker now, and a compaction pass when it is
// safe (StartCleaner calls it on its timer). The embedded broker can only compact all topics
// at once, and compaction replaces a record by a later one of its key. Two things make that
// unsafe:
//   - a group that had not read the first record (a sink whose database is down) would never
//     see it, so compaction waits until every group that has committed a position on a
//     compacted topic has committed it to the end, whichever process or pipeline it belongs to;
//   - kfake compacts records of open transactions as if they were committed: a checkpoint
//     still open would replace the committed state, and if it then aborted the key would have
//     no committed value left (seen: a stream restored after an abort without part of its
//     state). So compaction runs only while no transaction is open on a compacted topic
//     (compactWhenQuiet).
//
// Retention still runs when compaction waits, since a record older than its topic's
// retention is meant to go.
func (b *Broker) Clean(ctx context.Context) {
	if b.cluster == nil {
		return
	}
	compacted, behind, err := b.compactedReaderBehind(ctx)
	switch {
	case err != nil:
		b.logger.Warn("compaction deferred: cannot tell whether the compacted topics have been read", "err", err)
	case behind != "":
		b.logger.Debug("compaction deferred until every reader is caught up", "behind", behind)
	default:
		open := b.compactWhenQuiet(ctx, compacted)
		if open == "" {
			return
		}
		b.logger.Debug("compaction deferred: a transaction stayed open", "where", open)
	}
	if b.CompactionsDeferred != nil {
		b.CompactionsDeferred()
	}
	b.cluster.ApplyRetention()
}

// quietWait bounds how long the cleaner holds back transactional writes to compacted topics
// while it waits for the open transactions on them to end.
const quietWait = time.Second

// compactWhenQuiet compacts once no transaction is open on any partition of the compacted
// topics, and returns "" then; otherwise, after quietWait, it names an open one and leaves
// the topics as they are. Meanwhile writes to those topics are refused with a retriable
// error (NOT_ENOUGH_REPLICAS, which producers retry), so that no transaction can open
// between the check and the compaction (both run on the broker's single loop, and a refused
// write never reaches the log), and so that no record lands between the moment the cleaner
// keeps the partitions' files and the end of the compaction (see compactionBackupDir).
// Transactions that have written all they will write can still commit or abort while the
// cleaner waits.
func (b *Broker) compactWhenQuiet(ctx context.Context, topics []string) string {
	hold := make([]kfake.Fault, 0, len(topics))
	for _, t := range topics {
		hold = append(hold, kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: t, Err: kerr.NotEnoughReplicas, Count: -1})
	}
	h := b.cluster.Fault(hold...)
	defer h.Remove()
	deadline := time.Now().Add(quietWait)
	for {
		open := b.openTransaction(topics)
		if open == "" {
			b.compact(ctx, topics)
			return ""
		}
		if time.Now().After(deadline) {
			return open
		}
		select {
		case <-ctx.Done():
			return open
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// compact runs kfake's compaction with the compacted partitions' files kept until it is over
// (see compactionBackupDir). It does not compact when they cannot be kept, or when a
// compacted topic appeared since topics were listed (its files would not be kept).
func (b *Broker) compact(ctx context.Context, topics []string) {
	if now, err := b.compactedTopicsNow(ctx); err != nil || !slices.Equal(now, topics) {
		b.logger.Debug("compaction deferred: the compacted topics changed while the cleaner waited", "err", err)
		return
	}
	if err := keepForCompaction(b.dataDir, topics); err != nil {
		b.logger.Warn("compaction skipped: could not keep the compacted partitions' files until it is over", "err", err)
		if err := compactionDone(b.dataDir); err != nil {
			b.logger.Error("could not remove the files kept for a compaction that did not run; the next start after a kill puts them back, losing what the partitions received since", "err", err)
		}
		return
	}
	if b.Compacting != nil {
		b.Compacting()
	}
	b.cluster.Compact()
	if err := compactionDone(b.dataDir); err != nil {
		b.logger.Error("could not remove the files kept for a compaction that is over; the next start after a kill puts them back, losing what the partitions received since", "err", err)
	}
}

// compactedTopicsNow lists the compacted topics.
func (b *Broker) compactedTopicsNow(ctx context.Context) ([]string, error) {
	cl, err := kgo.NewClient(b.ClientOpts()...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	return compactedTopics(ctx, kadm.NewClient(cl))
}

// openTransaction names a partition of topics with records of an open transaction (its last
// stable offset short of its end), or "".
func (b *Broker) openTransaction(topics []string) string {
	for _, t := range topics {
		for _, p := range b.cluster.PartitionInfos(t) {
			if p.LastStableOffset < p.HighWatermark {
				return fmt.Sprintf("%s partition %d (stable up to %d of %d)", t, p.Partition, p.LastStableOffset, p.HighWatermark)
			}
		}
	}
	return ""
}

// compactedReaderBehind lists the compacted topics and names a consumer group whose committed
// offset on one of them is short of the topic's end ("" when there is none).
func (b *Broker) compactedReaderBehind(ctx context.Context) (compacted []string, behind string, err error) {
	cl, err := kgo.NewClient(b.ClientOpts()...)
	if err != nil {
		return nil, "", err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if compacted, err = compactedTopics(ctx, adm); err != nil || len(compacted) == 0 {
		return compacted, "", err
	}
	ends, err := adm.ListEndOffsets(ctx, compacted...)
	if err != nil {
		return nil, "", fmt.Errorf("end offsets: %w", err)
	}
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("listing groups: %w", err)
	}
	fetched := adm.FetchManyOffsets(ctx, groups.Groups()...)
	for _, group := range slices.Sorted(maps.Keys(fetched)) {
		resp := fetched[group]
		if resp.Err != nil {
			return nil, "", fmt.Errorf("offsets of group %s: %w", group, resp.Err)
		}
		if where, ok := firstBehind(ends, resp.Fetched); ok {
			return compacted, "group " + group + " on " + where, nil
		}
	}
	return compacted, "", nil
}

// compactedTopics lists the topics whose cleanup policy compacts.
func compactedTopics(ctx context.Context, adm *kadm.Client) ([]string, error) {
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	configs, err := adm.DescribeTopicConfigs(ctx, topics.Names()...)
	if err != nil {
		return nil, fmt.Errorf("describing topics: %w", err)
	}
	var out []string
	for _, rc := range configs {
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" && c.Value != nil && strings.Contains(*c.Value, "compact") {
				out = append(out, rc.Name)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// firstBehind finds a partition of a compacted topic whose committed offset in the group is
// short of its end; a group that never committed a topic does not read it.
func firstBehind(ends kadm.ListedOffsets, committed kadm.OffsetResponses) (string, bool) {
	where := ""
	committed.Each(func(c kadm.OffsetResponse) {
		if where != "" || c.Err != nil {
			return
		}
		end, ok := ends.Lookup(c.Topic, c.Partition)
		if ok && end.Err == nil && c.At < end.Offset {
			where = fmt.Sprintf("%s partition %d (committed %d of %d)", c.Topic, c.Partition, c.At, end.Offset)
		}
	})
	return where, where != ""
}

// Close stops the cleaner, the shared producer and the embedded broker (which flushes its
// state to the data directory). Clients created from ClientOpts should be closed first.
func (b *Broker) Close() {
	b.closeOnce.Do(func() {
		close(b.stop)
		b.cleanerWG.Wait()
		if b.shared != nil {
			b.shared.Close()
		}
		if b.pinger != nil {
			b.pinger.Close()
		}
		if b.cluster != nil {
			b.cluster.Close()
			b.txnLog.Close()
			b.markCleanStop()
			b.logger.Info("embedded broker stopped")
		}
	})
}

// kfakeLogger forwards the embedded broker's warnings and errors to slog; its info and debug
// output is per request and too chatty for an engine log.
type kfakeLogger struct{ l *slog.Logger }

func (k kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		k.l.Error(fmt.Sprintf(format, args...))
	case kfake.LogLevelWarn:
		k.l.Warn(fmt.Sprintf(format, args...))
	}
}

// kgoLogger forwards franz-go client logs at warn and above to slog.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	switch level {
	case kgo.LogLevelError:
		k.l.Error(msg, keyvals...)
	case kgo.LogLevelWarn:
		k.l.Warn(msg, keyvals...)
	case kgo.LogLevelInfo:
		k.l.Info(msg, keyvals...)
	default:
		k.l.Debug(msg, keyvals...)
	}
}

// Ping asks the broker for the cluster's metadata: an error says it cannot be reached.
func (b *Broker) Ping(ctx context.Context) error {
	b.pingOnce.Do(func() {
		b.pinger, b.pingErr = kgo.NewClient(append(b.ClientOpts(), kgo.RequestRetries(0))...)
	})
	if b.pingErr != nil {
		return b.pingErr
	}
	req := kmsg.NewPtrMetadataRequest()
	_, err := req.RequestWith(ctx, b.pinger)
	return err
}
