package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/api"
	"github.com/eventops/eventops-engine/engine/broker"
	"github.com/eventops/eventops-engine/engine/fileinput"
	"github.com/eventops/eventops-engine/engine/postgres"
	"github.com/eventops/eventops-engine/engine/store"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

// RunOptions tune a running pipeline; the zero value is right for production.
type RunOptions struct {
	Metrics *telemetry.Metrics
	// Drain is how long an in-flight batch may take to finish at shutdown (default 10s).
	Drain time.Duration
	// Started, if set, is called once every stream and the API are up.
	Started func(*Running)
	// InstanceID names this engine among the members of its consumer groups; stateful
	// streams derive their Kafka transactional ids from it, so it must be unique among the
	// instances running at once and should stay the same across restarts of one instance
	// (a restart then fences its predecessor at once). Default: $EVENTOPS_INSTANCE_ID, else
	// the host name.
	InstanceID string
	// TickEvery is how often processors that depend on the clock are ticked (default 1s).
	TickEvery time.Duration
	// Load, if set, loads the pipeline from its files again; it makes the pipeline
	// reloadable (POST /-/reload, Running.ReloadFiles, and Watch).
	Load func() (*config.Pipeline, error)
	// Watch reloads the pipeline when its file or a file it references changes (needs Load).
	Watch bool
	// WatchDebounce is how long the files must be quiet before a reload (default 300ms).
	WatchDebounce time.Duration
	// DecodeEveryRecord turns decode once off: every stream decodes the JSON of every
	// record it reads, even one a stream of this process wrote (for measuring what decode
	// once saves).
	DecodeEveryRecord bool

	shared *sharedRecords // what the streams hand each other (nil: decode once is off)
	// registry is the pipeline's schema registry (nil without schema_registry).
	registry *schemaRegistry
}

// Running describes a started pipeline, for tests and the CLI; Reload (reload.go) changes
// it.
type Running struct {
	Broker *broker.Broker
	API    *api.Server
	live   *live
}

// Run connects everything the plan needs and runs it until ctx ends, then shuts down:
// streams finish their in-flight batch, the API closes, the embedded broker stops last.
func (p *Plan) Run(ctx context.Context, ro RunOptions) (err error) {
	log := p.opts.Logger
	if ro.Metrics == nil {
		ro.Metrics = telemetry.New()
	}
	if ro.Drain == 0 {
		ro.Drain = 10 * time.Second
	}
	if ro.TickEvery == 0 {
		ro.TickEvery = time.Second
	}
	if ro.InstanceID == "" {
		ro.InstanceID = os.Getenv("EVENTOPS_INSTANCE_ID")
	}
	if ro.InstanceID == "" {
		ro.InstanceID, _ = os.Hostname()
	}
	if !ro.DecodeEveryRecord {
		ro.shared = newSharedRecords()
		ro.shared.setReaders(p)
	}
	cfg := p.Pipeline

	b, err := broker.Start(ctx, cfg.Broker, log)
	if err != nil {
		return fmt.Errorf("starting broker: %w", err)
	}
	defer b.Close()
	if cfg.Broker.Embedded != nil {
		log.Info("embedded broker listening", "addr", strings.Join(b.Addrs(), ","), "data_dir", cfg.Broker.Embedded.DataDir)
	}
	if err := b.EnsureTopics(ctx, cfg.Topics); err != nil {
		return fmt.Errorf("creating topics: %w", err)
	}
	if err := b.EnsureTopics(ctx, p.changelogTopics()); err != nil {
		return fmt.Errorf("creating state changelog topics: %w", err)
	}
	if cfg.Broker.Embedded != nil {
		b.CompactionsDeferred = ro.Metrics.CompactionsDeferred.Inc
		b.StartCleaner(ctx, cfg.Broker.Embedded.CleanerInterval.D())
	}
	if ro.registry, err = startRegistry(ctx, cfg, log); err != nil {
		return err
	}
	defer ro.registry.stop(ctx)
	probe := newBrokerProbe(b, ro.Metrics.BrokerUp, log)
	probeCtx, stopProbe := context.WithCancel(ctx)
	probeDone := make(chan struct{})
	go func() { defer close(probeDone); probe.run(probeCtx) }()
	defer func() { stopProbe(); <-probeDone }() // before the broker closes (deferred earlier)
	postgres.Retain()
	defer postgres.Release()

	stopFollowing, err := followLookups(ctx, b, p.Lookups, log)
	if err != nil {
		return err
	}
	defer stopFollowing()

	var ready atomic.Bool
	var streams []*stream
	lv := &live{plan: p, b: b, ro: ro, streams: map[string]*liveStream{}, errc: make(chan error, 64), probe: probe}
	lv.lookups.Store(&p.Lookups)
	defer func() {
		for _, c := range lv.closers {
			c()
		}
	}()
	// Until the streams run, a failure must close what was opened: a consumer left in its
	// group would hold its partitions until the session times out on the next start.
	started := false
	defer func() {
		if !started {
			for _, s := range streams {
				s.close()
			}
		}
	}()
	for _, sp := range p.Streams {
		s, err := p.openStream(ctx, b, sp, ro, nil)
		if err != nil {
			return fmt.Errorf("stream %s: %w", sp.Name, err)
		}
		streams = append(streams, s)
	}

	var server *api.Server
	if cfg.API != nil {
		stores, closeStores, err := p.stores(ctx, streams)
		if err != nil {
			return err
		}
		defer closeStores()
		lv.stores = stores
		server, err = api.New(cfg.API, api.Deps{
			Stores:       stores,
			KafkaOpts:    b.ClientOpts(),
			Pos:          cfg.Pos,
			Metrics:      ro.Metrics,
			Logger:       log.With("component", "api"),
			Clock:        p.opts.Clock,
			ReloadStatus: func() any { return lv.tracker.Status() },
			Dispatchers:  lv.dispatchers,
			Lookups:      func() engine.LookupSource { return *lv.lookups.Load() },
			Reload: func(ctx context.Context, trigger string) any {
				if ro.Load == nil {
					return lv.tracker.Status()
				}
				return (&Running{live: lv}).ReloadFiles(ctx, trigger, nil)
			},
			Ready: func() error {
				if !ready.Load() {
					return errors.New("streams are starting")
				}
				return lv.ready()
			},
		})
		if err != nil {
			return err
		}
		lv.server = server
		if err := server.Start(ctx); err != nil {
			return fmt.Errorf("starting API on %s: %w", cfg.API.Listen, err)
		}
		log.Info("API listening", "addr", server.Addr())
	}
	rcv, err := p.startReceivers(b, ro.Metrics, log)
	if err != nil {
		return err
	}
	lv.receivers = rcv
	defer rcv.stop(ctx) // on every return; after a clean shutdown it has nothing left to stop
	started = true

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	lv.runCtx, lv.cancel = runCtx, cancel
	lv.mu.Lock() // the API may read lv.streams (dispatchers) as soon as it listens
	for _, s := range streams {
		lv.start(s)
	}
	lv.mu.Unlock()
	ready.Store(true)
	ro.Metrics.ConfigReloadSuccess.Set(1)
	ro.Metrics.ConfigReloadTime.Set(float64(time.Now().Unix()))
	log.Info("pipeline running", "file", cfg.File, "streams", len(streams))
	running := &Running{Broker: b, API: server, live: lv}
	if ro.Watch && ro.Load != nil {
		stopWatch, err := running.watch(runCtx)
		if err != nil {
			log.Warn("not watching the pipeline's files; reload with SIGHUP or POST /-/reload", "err", err)
		} else {
			defer stopWatch()
		}
	}
	if ro.Started != nil {
		ro.Started(running)
	}

	<-runCtx.Done()
	log.Info("shutting down")
	ready.Store(false)
	rcv.stop(ctx) // first: what is still POSTed is refused, and its clients send it again
	lv.mu.Lock()  // waits for a reload under way; none starts after
	lv.closed = true
	lv.mu.Unlock()
	lv.wg.Wait()
	for _, ls := range lv.streams {
		ls.s.close()
	}
	if server != nil {
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = server.Shutdown(sctx)
		scancel()
	}
	close(lv.errc)
	var errs []error
	for e := range lv.errc {
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// openStream opens the stream of sp: its input, and its output unless out is one already
// opened for it (which the caller closes if this fails).
func (p *Plan) openStream(ctx context.Context, b *broker.Broker, sp *StreamPlan, ro RunOptions, out engine.Output) (*stream, error) {
	log := p.opts.Logger.With("stream", sp.Name)
	sc := sp.Config
	group := sp.Group()
	batchSize := sc.Input.BatchSize
	if batchSize <= 0 {
		batchSize = 10000
	}
	inCfg := broker.InputConfig{
		Stream: sp.Name, Topic: sc.Input.Topic, Group: group, Start: sc.Input.Start,
		BatchSize: batchSize, Metrics: ro.Metrics, Logger: log,
		InstanceID: ro.InstanceID,
	}
	s := &stream{
		plan:           sp,
		metrics:        ro.Metrics,
		log:            log,
		drain:          ro.Drain,
		backoffMin:     100 * time.Millisecond,
		backoffMax:     5 * time.Second,
		settleEvery:    time.Second,
		acked:          make(chan struct{}, 1),
		clock:          p.opts.Clock,
		swaps:          make(chan *swapTo, 1),
		tickInterval:   ro.TickEvery,
		health:         newHealth(sp.Name, ro.Metrics.StreamCondition),
		stallAfter:     sc.Input.StallAfter.D(),
		commitEvery:    sc.Input.CommitInterval.D(),
		maxRecordBytes: b.MaxRecordBytes(),
		shared:         ro.shared,
	}
	if sc.Input.Format == "confluent" && ro.registry != nil {
		s.decoder = ro.registry.decoder
	}
	s.lastCommit.Store(time.Now().UnixNano())
	if !sp.ReadsTopic() {
		return p.openFileStream(ctx, b, s, ro, out)
	}
	keeper := newStateKeeper(sp, ChangelogTopic(group), func(ctx context.Context, topic string, partitions []int32) (map[int32]map[string][]byte, error) {
		return broker.ReadChangelog(ctx, b, topic, partitions)
	}, log)
	if keeper != nil {
		s.keeperRef.Store(keeper)
		inCfg.TransactionalID = group + "." + ro.InstanceID
		inCfg.Changelog = keeper.changelog
		// The callbacks go through the stream, whose keeper a hot reload may replace.
		inCfg.Restore = func(ctx context.Context, partitions []int32) (map[int32]int64, error) {
			offsets, err := s.restoreState(ctx, partitions)
			if err != nil {
				log.Error("state restore abandoned", "partitions", partitions, "err", err)
				return nil, err
			}
			ro.Metrics.StateRestores.WithLabelValues(sp.Name).Add(float64(len(partitions)))
			return offsets, nil
		}
		inCfg.Revoked = s.dropState
	}
	in, err := broker.NewInput(b, inCfg)
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", sc.Input.Topic, err)
	}
	if out == nil {
		if out, err = p.openOutput(ctx, b, sp, ro, log); err != nil {
			in.Close()
			return nil, fmt.Errorf("output: %w", err)
		}
	}
	s.input, s.output, s.dlq = in, out, broker.NewDeadLetterWriter(b, sp.Name)
	if keeper != nil {
		s.state, s.ckpt = keeper, in
		if to, ok := out.(transactionalOutput); ok {
			s.txnOut = to
		}
	}
	s.setTicking()
	return s, nil
}

// openFileStream opens the input and output of a stream that reads a file or standard
// input. Such a stream keeps no position, so it has no checkpoint transaction: its state
// lives in memory, rebuilt from the start of the input on every start, and its topic output
// is written as a sink's would be.
func (p *Plan) openFileStream(ctx context.Context, b *broker.Broker, s *stream, ro RunOptions, out engine.Output) (*stream, error) {
	sp := s.plan
	in, err := openFileInput(sp.Config.Input, p.opts.Clock)
	if err != nil {
		return nil, err
	}
	if out == nil {
		if out, err = p.openOutput(ctx, b, sp, ro, s.log); err != nil {
			in.Close()
			return nil, fmt.Errorf("output: %w", err)
		}
	}
	s.input, s.output, s.dlq = in, out, broker.NewDeadLetterWriter(b, sp.Name)
	s.setTicking()
	return s, nil
}

// openFileInput opens a file or standard input as a stream's input.
func openFileInput(ic config.Input, clock engine.Clock) (engine.Input, error) {
	batch := ic.BatchSize
	if ic.Stdin != nil {
		cfg := fileinput.Config{Source: "stdin", BatchSize: batch, MaxLineBytes: int(ic.Stdin.MaxLineBytes), Clock: clock}
		return fileinput.New(io.NopCloser(os.Stdin), cfg), nil
	}
	cfg := fileinput.Config{Source: "file:" + ic.File.Path, BatchSize: batch, MaxLineBytes: int(ic.File.MaxLineBytes), Clock: clock}
	in, err := fileinput.Open(ic.File.Path, cfg)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	return in, nil
}

// openOutput opens the stream's output: its registered output type's, or the topic output,
// which is the runtime's own (it joins the stream's Kafka transaction).
func (p *Plan) openOutput(ctx context.Context, b *broker.Broker, sp *StreamPlan, ro RunOptions, log *slog.Logger) (engine.Output, error) {
	out := sp.Config.Output.Plugin
	if out == nil {
		oc := broker.OutputConfig{Stream: sp.Name, Topic: sp.Config.Output.Topic, Key: sp.OutputKey, Headers: sp.OutputHeader, Clock: p.opts.Clock}
		if sp.Config.Output.Format == "confluent" {
			enc, err := ro.registry.encoder(ctx, sp)
			if err != nil {
				return nil, err
			}
			oc.Encoder = enc
		}
		return broker.NewOutput(b, oc)
	}
	f, ok := p.opts.Components.Output(out.Type)
	if !ok {
		return nil, fmt.Errorf("%s: unknown output type %q", out.Path, out.Type)
	}
	return f.Build(ctx, out.Config, engine.OutputEnv{
		BuildEnv: engine.BuildEnv{Stream: sp.Name, Path: out.Path, Clock: p.opts.Clock, Logger: log, Input: sp.OutputType},
		Metrics:  ro.Metrics,
	})
}

// Group is the stream's consumer group.
func (sp *StreamPlan) Group() string {
	if sp.Config.Input.Group != "" {
		return sp.Config.Input.Group
	}
	return "eventops." + sp.Name
}

// changelogTopics declares the compacted topic of every transactional stream: one partition
// per partition of its input topic, since a partition's state and offset are checkpointed
// to its twin.
func (p *Plan) changelogTopics() map[string]config.Topic {
	out := map[string]config.Topic{}
	for _, sp := range p.Streams {
		if !sp.Transactional() {
			continue
		}
		parts := p.Pipeline.Topics[sp.Config.Input.Topic].Partitions
		out[ChangelogTopic(sp.Group())] = config.Topic{Partitions: max(parts, 1), Replication: p.Pipeline.Topics[sp.Config.Input.Topic].Replication, Cleanup: "compact"}
	}
	return out
}

func (s *stream) close() {
	if err := s.input.Close(); err != nil {
		s.log.Warn("closing input", "err", err)
	}
	if err := s.output.Close(); err != nil {
		s.log.Warn("closing output", "err", err)
	}
}

// stores opens, for every table an output of streams writes (engine.TableOutput), the store
// that answers queries on it: the first writer's. Lint makes sure a route's table has one
// kind of writer. release frees them all.
func (p *Plan) stores(ctx context.Context, streams []*stream) (map[string]store.Store, func(), error) {
	outputs := make([]engine.Output, len(streams))
	for i, s := range streams {
		outputs[i] = s.output
	}
	out := map[string]store.Store{}
	release, err := openStores(ctx, out, outputs)
	if err != nil {
		return nil, nil, err
	}
	return out, release, nil
}

// openStores adds to stores a store for the table of each of outputs that writes one the
// map does not hold yet. release frees what it opened; on an error it has already run.
func openStores(ctx context.Context, stores map[string]store.Store, outputs []engine.Output) (release func(), err error) {
	var releases []func()
	release = func() {
		for _, r := range releases {
			r()
		}
	}
	for _, o := range outputs {
		to, ok := o.(engine.TableOutput)
		if !ok {
			continue
		}
		if _, held := stores[to.Table()]; held {
			continue
		}
		st, rel, err := to.OpenStore(ctx)
		if err != nil {
			release()
			return nil, err
		}
		stores[to.Table()], releases = st, append(releases, rel)
	}
	return release, nil
}
