package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/santhosh-tekuri/jsonschema/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/broker"
	"github.com/eventops/eventops-engine/engine/codec"
	"github.com/eventops/eventops-engine/engine/schema"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

// deadLetterSink writes rejected records durably to a dead-letter topic.
type deadLetterSink interface {
	Write(ctx context.Context, topic string, items []engine.Rejected) error
}

// stream is one running stream: the loop that carries the delivery guarantee.
//
// It runs as two stages so that CPU work and I/O waits overlap: the processing stage reads
// a batch, decodes, validates and runs the processors; the delivery stage writes the result,
// writes the dead letters and acks the batch. Batches pass between them in read order through
// a small channel, and the delivery stage stops at the first batch it cannot finish, so no
// batch is ever acked before one read earlier.
type stream struct {
	plan   *StreamPlan
	input  engine.Input
	output engine.Output
	// decoder reads the input's values when they are not JSON (input.format: confluent).
	decoder engine.ValueDecoder
	dlq     deadLetterSink
	metrics *telemetry.Metrics
	log     *slog.Logger
	// drain is how long in-flight batches may take to finish after shutdown begins.
	drain time.Duration
	// backoff bounds the wait between retries of a failed write.
	backoffMin, backoffMax time.Duration

	outRejects engine.Rejects // used by the delivery stage only

	// settleEvery bounds how long batches stay in flight without a pause. The input lets a
	// pending consumer-group rebalance proceed only when no batch is unacked, and with two
	// stages under steady load there may always be one; so at least this often the
	// processing stage waits for delivery to catch up before it reads again.
	settleEvery time.Duration
	inFlight    atomic.Int64  // batches handed to delivery and not yet acked
	acked       chan struct{} // signalled after each ack

	// state, when the stream has stateful processors or writes a topic, checkpoints their
	// state with its offsets (ckpt is then the input, committing offsets, outputs and state
	// in one transaction). The transaction commits every offset read so far, so such a
	// stream reads nothing between making sure every batch read is in it and its commit.
	state *stateKeeper
	ckpt  checkpointInput
	// Batches are added to the open checkpoint transaction by delivery (txnBatches, under
	// txnMu) and committed by the processing stage (commit) when commitDue says: txnSince is
	// when the first batch since the last commit was handed to delivery, lastCommitTook how
	// long the last commit took, commitEvery the stream's commit_interval (processing stage
	// only).
	txnMu          sync.Mutex
	txnBatches     []*processed
	txnSince       time.Time
	lastCommitTook time.Duration
	commitEvery    time.Duration
	// txnOut, for a stateful stream writing to a topic, encodes the output for the
	// checkpoint transaction: consumers reading committed records see each output once.
	txnOut transactionalOutput
	// tickEvery is how often processors that depend on the clock (engine.Ticker) are
	// ticked, with clock's time; 0 when none does.
	tickEvery time.Duration
	// tickInterval is the run's tick period, for a stream that gains a Ticker in a reload.
	tickInterval time.Duration
	clock        engine.Clock

	// swaps receives the stream's next version (a hot reload); the processing stage applies
	// it at the next commit boundary (swap.go). keeperRef is the state keeper the consumer
	// group's partition callbacks use: the current one, also across a swap. wake, while a
	// Read waits, cancels it, so that an idle stream takes a swap at once.
	swaps     chan *swapTo
	keeperRef atomic.Pointer[stateKeeper]
	// running is the version a swap last switched to (nil: the one it started with), for
	// readers outside the stream's goroutines.
	running atomic.Pointer[StreamPlan]
	wake    atomic.Pointer[context.CancelFunc]

	// onAlerts, if set, sees the alert records of rule processors as they are emitted (the
	// rule test runner's expectations are on them).
	onAlerts func(proc NamedProcessor, recs []*engine.Record)

	// ctr are the per-batch counters of the running version, looked up once rather than by
	// label values on every batch (which costs more than a small batch's processing).
	ctr atomic.Pointer[streamCounters]

	// health says what keeps the stream from being ready (failing writes, a restore).
	health *health
	// lastCommit is when the stream last committed a batch (Unix nanoseconds), and
	// stallAfter how long it may go without one while records wait before it is stalled.
	lastCommit atomic.Int64
	stallAfter time.Duration
	// maxRecordBytes is the cut-off size of dead letters written in the transaction.
	maxRecordBytes int
	// ended is set by the processing stage when a finite input (a file) has nothing more;
	// read, written and deadLettered count its records for the summary it then logs.
	ended                       bool
	read, written, deadLettered atomic.Int64
	// shared, when set, is where the process's streams hand each other the records they
	// write, decoded (decode once: shared.go).
	shared *sharedRecords
}

// streamCounters are a stream version's counters.
type streamCounters struct {
	plan            *StreamPlan
	in, out, shared prometheus.Counter
	procIn, procOut []prometheus.Counter // by processor index
}

// counters returns the counters of the running version.
func (s *stream) counters() *streamCounters {
	plan := s.plan
	if c := s.ctr.Load(); c != nil && c.plan == plan {
		return c
	}
	c := &streamCounters{plan: plan, in: s.metrics.RecordsIn.WithLabelValues(plan.Name), out: s.metrics.RecordsOut.WithLabelValues(plan.Name),
		shared: s.metrics.RecordsShared.WithLabelValues(plan.Name)}
	for _, p := range plan.Processors {
		c.procIn = append(c.procIn, s.metrics.ProcessorIn.WithLabelValues(plan.Name, p.Name))
		c.procOut = append(c.procOut, s.metrics.ProcessorOut.WithLabelValues(plan.Name, p.Name))
	}
	s.ctr.Store(c)
	return c
}

// processed is a batch that went through the processors, on its way to delivery.
type processed struct {
	batch   []*engine.Record // as read: what Ack needs
	out     []*engine.Record // what the output writes
	rejects engine.Rejects   // what the dead-letter topic gets
	state   []broker.StateRecord
	records []*kgo.Record // the output, encoded for the checkpoint transaction (txnOut)
	// values are what records were encoded from, for the streams that read them back in
	// this process (nil where not shareable; nil slice when decode once is off).
	values []map[string]any
	// deadLetters are the rejects, encoded for the checkpoint transaction, and
	// deadLetterTopics how many go to each topic (counted once committed).
	deadLetters      []*kgo.Record
	deadLetterTopics map[string]int
}

// inFlight is how many processed batches may wait for delivery while the next one is
// processed. One is enough to keep both stages busy; more would only hold memory.
const inFlight = 1

// run processes and delivers batches until ctx ends. It returns nil on a clean shutdown:
// batches already processed are delivered (bounded by the drain time) and anything not
// acked is read again on the next start.
func (s *stream) run(ctx context.Context) error {
	work, cancelWork := drainContext(ctx, s.drain)
	defer cancelWork()
	queue := make(chan *processed, inFlight)
	delivered := make(chan error, 1)
	go func() {
		err := s.deliver(work, queue)
		if err != nil {
			// The reading stage may be waiting for an ack or for room in the queue that
			// will never come: end its work too, so that run returns the error (and the
			// stream is replaced or the pipeline stops) instead of stalling without a word.
			cancelWork()
		}
		delivered <- err
	}()

	err := s.process(ctx, work, queue)
	close(queue)
	derr := <-delivered
	if s.state != nil && err == nil && derr == nil {
		// What was delivered and not yet committed: commit it, bounded by the drain time
		// (otherwise it is read again on the next start).
		_, err = s.commit(work, false)
	}
	if ctx.Err() != nil {
		return nil // shutting down: unacked batches are redelivered on restart
	}
	if err != nil {
		return err
	}
	if derr == nil && s.ended {
		return engine.ErrEndOfInput
	}
	return derr
}

// process is the first stage: read and process batches, hand them to delivery.
func (s *stream) process(ctx, work context.Context, queue chan<- *processed) error {
	lastSettle, lastTick := time.Now(), time.Now()
	for {
		select {
		case sw := <-s.swaps:
			// A commit boundary: every batch read so far is delivered and acked by the
			// current version, every later one is processed by the next.
			t0 := time.Now()
			if ok, err := s.boundary(work); !ok || err != nil {
				sw.done <- SwapResult{Err: errors.New("the stream stopped before the swap")}
				return err
			}
			res := s.apply(sw)
			res.Pause = time.Since(t0)
			sw.done <- res
			lastSettle = time.Now()
			continue
		default:
		}
		if s.state != nil && s.commitDue() {
			if ok, err := s.commit(work, true); !ok || err != nil {
				return err
			}
		}
		if s.state == nil && time.Since(lastSettle) >= s.settleEvery {
			if !s.settle(work) {
				return nil
			}
			lastSettle = time.Now()
		}
		if s.tickEvery > 0 && time.Since(lastTick) >= s.tickEvery {
			lastTick = time.Now()
			if p := s.tick(work); p != nil {
				s.encodeOutput(p)
				s.handOff()
				select {
				case queue <- p:
				case <-work.Done():
					return nil
				}
				continue
			}
		}
		readCtx, cancelRead := s.readContext(ctx, work, lastTick)
		s.wake.Store(&cancelRead)
		if len(s.swaps) > 0 {
			cancelRead() // a swap came in since the top of the loop
		}
		t0 := time.Now()
		batch, err := s.input.Read(readCtx)
		s.wake.Store(nil)
		cancelRead()
		s.observe("read", t0)
		if ctx.Err() != nil || work.Err() != nil {
			return nil
		}
		if errors.Is(err, engine.ErrEndOfInput) {
			s.ended = true
			return nil
		}
		if err != nil && readCtx.Err() != nil {
			continue // time to tick
		}
		if err != nil {
			s.log.Warn("input read failed; retrying", "err", err)
			if !sleepCtx(ctx, s.backoffMin) {
				return nil
			}
			continue
		}
		if len(batch) == 0 {
			continue
		}
		t1 := time.Now()
		if !s.prepareDecoder(work, batch) {
			return nil // stopping while the registry is out of reach: the batch is read again
		}
		p := s.handle(work, batch)
		s.encodeOutput(p)
		s.observe("process", t1)
		s.handOff()
		select {
		case queue <- p:
		case <-work.Done():
			return nil
		}
	}
}

// handOff counts a processed batch handed to delivery; for a stateful stream, the first one
// since the last commit starts the clock of the open transaction.
func (s *stream) handOff() {
	s.inFlight.Add(1)
	if s.state != nil && s.txnSince.IsZero() {
		s.txnSince = time.Now()
	}
}

// boundary waits until every batch read is delivered and, for a stateful stream, committed:
// a swap applies there. False when the stream stops first.
func (s *stream) boundary(work context.Context) (bool, error) {
	if s.state != nil {
		return s.commit(work, true)
	}
	return s.settle(work), nil
}

// readContext is the context of one read: it ends with ctx (shutdown: no new batch), when
// delivery has ended (work: nothing read could be delivered), and at the next tick.
func (s *stream) readContext(ctx, work context.Context, lastTick time.Time) (context.Context, context.CancelFunc) {
	var (
		readCtx context.Context
		cancel  context.CancelFunc
	)
	if s.tickEvery > 0 {
		// Wake up for the next tick even when no record comes.
		readCtx, cancel = context.WithTimeout(ctx, s.tickEvery-time.Since(lastTick))
	} else {
		readCtx, cancel = context.WithCancel(ctx)
	}
	stop := context.AfterFunc(work, cancel)
	return readCtx, func() { stop(); cancel() }
}

// settle waits until every batch handed to delivery is acked; false if work ended first.
func (s *stream) settle(work context.Context) bool {
	for s.inFlight.Load() > 0 {
		select {
		case <-s.acked:
		case <-work.Done():
			return false
		}
	}
	return true
}

// deliver is the second stage: write, dead-letter and ack each batch in read order.
func (s *stream) deliver(ctx context.Context, queue <-chan *processed) error {
	for p := range queue {
		t0 := time.Now()
		if err := s.write(ctx, p); err != nil {
			return err
		}
		t1 := s.observe("write", t0)
		if len(p.rejects.Items) > 0 {
			if err := s.deadLetters(ctx, p); err != nil {
				return err
			}
			t1 = s.observe("dead_letter", t1)
		}
		if err := s.ack(ctx, p); err != nil {
			return err
		}
		if s.state == nil {
			s.lastCommit.Store(time.Now().UnixNano())
		}
		s.observe("ack", t1)
		s.inFlight.Add(-1)
		select {
		case s.acked <- struct{}{}:
		default:
		}
	}
	return nil
}

// ack commits a delivered batch: its offsets, and for a stateful stream its state.
func (s *stream) ack(ctx context.Context, p *processed) error {
	if s.state == nil {
		return retry(ctx, s, "ack", func(ctx context.Context) error {
			err := s.input.Ack(ctx, p.batch)
			if errors.Is(err, broker.ErrRebalanced) {
				// Written, not committed: read again (outputs of such streams are
				// idempotent by event id).
				s.log.Info("batch not committed: the consumer group moved on; it is read again", "err", err)
				return nil
			}
			return err
		})
	}
	if len(p.batch) == 0 && len(p.state) == 0 && len(p.records) == 0 && len(p.deadLetters) == 0 {
		return nil
	}
	// Into the open checkpoint transaction; the processing stage commits it (commit).
	if err := s.ckpt.AddToTransaction(ctx, p.batch, s.state.changelog, p.state, append(p.records, p.deadLetters...)); err != nil {
		return err
	}
	s.txnMu.Lock()
	s.txnBatches = append(s.txnBatches, p)
	s.txnMu.Unlock()
	return nil
}

// commitCostFactor bounds what checkpoint commits cost a busy stateful stream: it works on
// for at least this many times as long as its last commit took before it commits again, so
// commits take at most about half its time. (4 was tried: on the embedded broker, where the
// cores are the limit, its larger transactions held records back longer for no throughput.)
const commitCostFactor = 1

// commitDue says whether the processing stage commits the open checkpoint transaction
// before it reads again: at once when nothing waits to be read (for the latency of what it
// holds), else once it has worked on for commit_interval, or for commitCostFactor times
// what the last commit took, whichever comes first.
func (s *stream) commitDue() bool {
	if s.txnSince.IsZero() {
		return false // nothing handed to delivery since the last commit
	}
	age := time.Since(s.txnSince)
	return age >= s.commitEvery || age >= commitCostFactor*s.lastCommitTook || !s.ckpt.Buffered()
}

// commit waits for delivery to add every batch handed to it to the checkpoint transaction,
// then commits the transaction: the processed batches' outputs, dead letters and state
// changes, and the offsets of every batch read. Since the transaction commits every offset
// read so far, nothing is read between the settle and the commit. After an abort it puts the
// state back to the last committed checkpoint (restore false: the stream is stopping, and
// what it read is read again on the next start). It returns false when the stream stops.
func (s *stream) commit(work context.Context, restore bool) (bool, error) {
	if !s.settle(work) {
		return false, nil
	}
	t0 := time.Now()
	s.txnMu.Lock()
	batches := s.txnBatches
	s.txnBatches = nil
	s.txnMu.Unlock()
	var written func()
	if s.shared != nil {
		// Before the commit: a reader in this process may fetch the records as soon as it
		// is made. Records of a transaction that then aborts are never read.
		written = func() {
			for _, p := range batches {
				if p.values != nil {
					s.shared.offer(p.records, p.values, s.plan.OutputSchema)
				}
			}
		}
	}
	err := s.ckpt.CommitTransaction(work, s.state.changelog, written)
	s.txnSince = time.Time{}
	s.lastCommitTook = time.Since(t0)
	s.observe("commit", t0)
	switch {
	case errors.Is(err, broker.ErrAborted):
		// Nothing was committed and the input rewound to its committed offsets: the state
		// must go back to what was committed with them before anything is read.
		s.log.Info("checkpoint aborted; restoring the committed state", "err", err)
		s.metrics.CheckpointAborts.WithLabelValues(s.plan.Name).Inc()
		if !restore {
			return false, nil
		}
		if err := s.restoreAfterAbort(work); err != nil {
			return work.Err() == nil, err
		}
		return true, nil
	case err != nil:
		return work.Err() == nil, err
	}
	s.lastCommit.Store(time.Now().UnixNano())
	for _, p := range batches {
		s.committed(p)
	}
	return true, nil
}

// committed counts what a checkpoint transaction wrote.
func (s *stream) committed(p *processed) {
	s.metrics.Checkpoints.WithLabelValues(s.plan.Name).Inc()
	s.metrics.CheckpointEntries.WithLabelValues(s.plan.Name).Add(float64(len(p.state)))
	if s.txnOut != nil {
		s.counters().out.Add(float64(len(p.records)))
	}
	for to, n := range p.deadLetterTopics {
		s.metrics.DeadLetters.WithLabelValues(s.plan.Name, to).Add(float64(n))
	}
}

// restoreAfterAbort puts the state back to the last committed checkpoint and the input at
// the offsets that checkpoint was taken at.
func (s *stream) restoreAfterAbort(ctx context.Context) error {
	offsets, err := s.state.restoreRetrying(ctx, s.ckpt.Assigned(), s.health)
	if err != nil {
		return err
	}
	s.ckpt.ResumeAt(offsets)
	return nil
}

// tick advances the processors that depend on the clock; nil when that changed nothing.
func (s *stream) tick(ctx context.Context) *processed {
	p := &processed{}
	if s.state != nil {
		s.state.mu.Lock()
		defer s.state.mu.Unlock()
	}
	now := s.clock.Now()
	for i, proc := range s.plan.Processors {
		t, ok := proc.Processor.(engine.Ticker)
		if !ok {
			continue
		}
		recs, err := t.Tick(ctx, now, &p.rejects)
		if err != nil {
			// Nothing was read, so nothing goes to the dead-letter topic: what the tick
			// could not advance is tried again at the next one.
			s.log.Warn("processor tick failed", "processor", proc.Name, "err", err)
			continue
		}
		s.counters().procOut[i].Add(float64(len(recs)))
		s.countAlerts(proc, recs)
		p.out = append(p.out, s.runFrom(ctx, i+1, recs, &p.rejects)...)
	}
	if s.state != nil {
		p.state = s.state.changes()
	}

	if len(p.out) == 0 && len(p.rejects.Items) == 0 && len(p.state) == 0 {
		return nil
	}
	return p
}

// countAlerts counts the alert transitions an alerting processor emitted, by rule and state.
func (s *stream) countAlerts(proc NamedProcessor, out []*engine.Record) {
	if !proc.Alerts {
		return
	}
	if s.onAlerts != nil && len(out) > 0 {
		s.onAlerts(proc, out)
	}
	for _, r := range out {
		rule, _ := r.Value["rule"].(string)
		state, _ := r.Value["state"].(string)
		s.metrics.AlertsEmitted.WithLabelValues(s.plan.Name, rule, state).Inc()
	}
}

// observe records the time since start in the stage histogram and returns now.
func (s *stream) observe(stage string, start time.Time) time.Time {
	now := time.Now()
	s.metrics.StageSeconds.WithLabelValues(s.plan.Name, stage).Observe(now.Sub(start).Seconds())
	return now
}

// handle runs one batch through decoding, validation and the processors.
func (s *stream) handle(ctx context.Context, batch []*engine.Record) *processed {
	s.counters().in.Add(float64(len(batch)))
	s.read.Add(int64(len(batch)))
	p := &processed{batch: batch}

	recs, ran := s.prepare(ctx, batch, &p.rejects)
	if ran == len(s.plan.Processors) {
		p.out = recs // the output schema is checked too
		return p
	}
	if s.state != nil {
		s.state.mu.Lock()
		defer func() {
			p.state = s.state.changes()
			s.state.mu.Unlock()
		}()
	}
	p.out = s.runFrom(ctx, ran, recs, &p.rejects)
	return p
}

// encodeOutput encodes the output of a stream whose topic output is written in its
// checkpoint transaction, here in the processing stage (after the state lock of handle and
// tick is released), so that the encoding of one batch overlaps the delivery of the one
// before; and, with decode once on, makes the values ready to be handed to the streams that
// read the topic (shared.go).
// A large batch is encoded in parts on the cores at once, in order.
func (s *stream) encodeOutput(p *processed) {
	if s.txnOut == nil || len(p.out) == 0 {
		return
	}
	share := s.shared != nil && s.shared.readersOf(s.plan.Config.Output.Topic) > 0
	parts := inParts(len(p.out), &p.rejects, func(lo, hi int, rejects *engine.Rejects) (e encoded) {
		e.records, e.values = s.txnOut.Encode(p.out[lo:hi], rejects, share)
		return e
	})
	for _, e := range parts {
		p.records = append(p.records, e.records...)
		if share {
			p.values = append(p.values, e.values...)
		}
	}
}

// encoded is a part of a batch encoded for the checkpoint transaction, and with decode once
// on the values its records were encoded from (values[i] goes with records[i]).
type encoded struct {
	records []*kgo.Record
	values  []map[string]any
}

// runFrom runs recs through the stream's processors from index first on, then checks the
// output schema. Read batches start at 0; what a ticker emits starts after the ticker.
func (s *stream) runFrom(ctx context.Context, first int, recs []*engine.Record, rejects *engine.Rejects) []*engine.Record {
	for i := first; i < len(s.plan.Processors) && len(recs) > 0; i++ {
		recs = s.runProcessor(ctx, i, recs, rejects)
	}
	return s.checkOutput(recs, rejects)
}

// runProcessor runs recs through the stream's processor i.
func (s *stream) runProcessor(ctx context.Context, i int, recs []*engine.Record, rejects *engine.Rejects) []*engine.Record {
	ctr := s.counters()
	proc := s.plan.Processors[i]
	ctr.procIn[i].Add(float64(len(recs)))
	out, err := proc.Process(ctx, recs, rejects)
	if err != nil {
		// The processor could not handle the batch at all: nothing may be lost, so every
		// record of it goes to the dead-letter topic with the reason.
		s.log.Error("processor failed on a whole batch; sending it to the dead-letter topic", "processor", proc.Name, "err", err)
		for _, r := range recs {
			rejects.Add(r, proc.Name, err)
		}
		out = nil
	}
	ctr.procOut[i].Add(float64(len(out)))
	s.countAlerts(proc, out)
	return out
}

// checkOutput applies the output schema, if any.
func (s *stream) checkOutput(recs []*engine.Record, rejects *engine.Rejects) []*engine.Record {
	if s.plan.OutputSchema == nil {
		return recs
	}
	return s.validate(recs, s.plan.OutputSchema, "output.schema", rejects)
}

// recordWiseHead counts the record-wise processors (engine.RecordWise) at the head of the
// stream: prepare runs them with the decode.
func (s *stream) recordWiseHead() int {
	n := 0
	for _, p := range s.plan.Processors {
		if _, ok := p.Processor.(engine.RecordWise); !ok {
			break
		}
		n++
	}
	return n
}

// prepare turns raw bytes into values, applies the input schema, and runs the record-wise
// processors at the head of the stream (and the output schema check, when they are all of
// them); it returns the records and how many processors ran. This is pure per-record work
// and the costliest part of a head stream (normalize: decode, schema, map, enrich), so large
// batches are split across the cores; the order of records is kept, and rejects come in the
// order of the parts.
func (s *stream) prepare(ctx context.Context, batch []*engine.Record, rejects *engine.Rejects) ([]*engine.Record, int) {
	ran := s.recordWiseHead()
	whole := ran == len(s.plan.Processors)
	parts := inParts(len(batch), rejects, func(lo, hi int, rejects *engine.Rejects) []*engine.Record {
		recs := s.decodeChunk(batch[lo:hi], rejects)
		for i := 0; i < ran && len(recs) > 0; i++ {
			recs = s.runProcessor(ctx, i, recs, rejects)
		}
		if whole {
			recs = s.checkOutput(recs, rejects)
		}
		return recs
	})
	if len(parts) == 1 {
		return parts[0], ran
	}
	return slices.Concat(parts...), ran
}

// inParts runs part on n records split across the cores when they are enough to be worth
// it (one part otherwise), and returns the parts' results in order, with their rejects
// added to rejects in the same order.
func inParts[T any](n int, rejects *engine.Rejects, part func(lo, hi int, rejects *engine.Rejects) T) []T {
	workers, chunk := split(n)
	if workers < 2 {
		return []T{part(0, n, rejects)}
	}
	outs := make([]T, workers)
	rejs := make([]engine.Rejects, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*chunk, min((w+1)*chunk, n)
		wg.Go(func() { outs[w] = part(lo, hi, &rejs[w]) })
	}
	wg.Wait()
	for w := range rejs {
		rejects.Items = append(rejects.Items, rejs[w].Items...)
	}
	return outs
}

// decodeError says in words which kind of bad input a record was.
func decodeError(err error) error {
	var te *codec.TypeError
	if errors.As(err, &te) {
		return fmt.Errorf("malformed event: %w", err)
	}
	return fmt.Errorf("malformed JSON: %w", err)
}

// split says in how many parts of how many records to work on n records at once: one part
// (workers < 2) when n is too small to be worth handing to other goroutines.
func split(n int) (workers, chunk int) {
	workers = min(goruntime.GOMAXPROCS(0), n/minParallelChunk)
	if workers < 2 {
		return workers, n
	}
	return workers, (n + workers - 1) / workers
}

// minParallelChunk is the smallest number of records worth handing to another goroutine.
const minParallelChunk = 512

// decode turns a record's bytes into its value: JSON, or what the input's decoder reads.
func (s *stream) decode(raw []byte) (map[string]any, error) {
	if s.decoder == nil {
		v, err := codec.DecodeObject(raw)
		if err != nil {
			return nil, decodeError(err)
		}
		return v, nil
	}
	v, err := s.decoder.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("confluent wire format: %w", err)
	}
	return v, nil
}

// prepareDecoder lets a decoder that must fetch something for batch (a schema) fetch it,
// trying again while it cannot: its records are to be read, not refused, once the registry
// answers. False when ctx ended first.
func (s *stream) prepareDecoder(ctx context.Context, batch []*engine.Record) bool {
	p, ok := s.decoder.(engine.BatchPreparer)
	if !ok {
		return true
	}
	return retry(ctx, s, "schema registry", func(ctx context.Context) error { return p.Prepare(ctx, batch) }) == nil
}

func (s *stream) decodeChunk(batch []*engine.Record, rejects *engine.Rejects) []*engine.Record {
	out := make([]*engine.Record, 0, len(batch))
	taken := 0
	for _, r := range batch {
		valid := false // known to satisfy the input schema
		if r.Value == nil && s.shared != nil {
			var ok bool
			if ok, valid = s.shared.take(r, s.plan.InputSchema); ok {
				taken++
			}
		}
		if r.Value == nil {
			v, err := s.decode(r.Raw)
			if err != nil {
				rejects.Add(r, "decode", err)
				continue
			}
			r.Value = v
		}
		if s.plan.InputSchema != nil && !valid {
			if err := s.plan.InputSchema.Validate(r.Value); err != nil {
				rejects.Add(r, "input.schema", schemaError(err))
				continue
			}
		}
		out = append(out, r)
	}
	if taken > 0 {
		s.counters().shared.Add(float64(taken))
	}
	return out
}

func (s *stream) validate(recs []*engine.Record, sch *schema.Validator, stage string, rejects *engine.Rejects) []*engine.Record {
	kept := recs[:0]
	for _, r := range recs {
		if err := sch.Validate(r.Value); err != nil {
			rejects.Add(r, stage, schemaError(err))
			continue
		}
		kept = append(kept, r)
	}
	return kept
}

// write writes a batch's output durably, retrying transient failures until it succeeds or
// ctx ends. Records the output can never write join the batch's dead letters.
func (s *stream) write(ctx context.Context, p *processed) error {
	if len(p.out) == 0 {
		return nil
	}
	if s.txnOut != nil {
		return nil // encoded by the processing stage (encodeOutput), written by ack
	}
	err := retry(ctx, s, "output", func(ctx context.Context) error {
		s.outRejects.Reset()
		return s.output.Write(ctx, p.out, &s.outRejects)
	})
	if err != nil {
		return err
	}
	s.counters().out.Add(float64(len(p.out) - len(s.outRejects.Items)))
	s.written.Add(int64(len(p.out) - len(s.outRejects.Items)))
	p.rejects.Items = append(p.rejects.Items, s.outRejects.Items...)
	return nil
}

// deadLetters writes a batch's rejects: for a transactional stream they are encoded into
// its checkpoint transaction (so a crash neither loses nor repeats one), otherwise written
// durably before the ack.
func (s *stream) deadLetters(ctx context.Context, p *processed) error {
	perTopic := s.countRejects(&p.rejects)
	if s.state == nil {
		return s.writeDeadLetters(ctx, &p.rejects, perTopic)
	}
	now := s.clock.Now().UTC().Format(time.RFC3339Nano)
	for _, it := range p.rejects.Items {
		p.deadLetters = append(p.deadLetters, broker.DeadLetterRecord(s.plan.Name, s.deadLetterTopic(it), it, now, s.maxRecordBytes))
	}
	p.deadLetterTopics = perTopic
	return nil
}

// deadLetterTopic is where a reject goes: its own topic (a side output such as a window's
// late: topic), else the stream's dead-letter topic.
func (s *stream) deadLetterTopic(it engine.Rejected) string {
	if it.Topic != "" {
		return it.Topic
	}
	return s.plan.DeadLetter
}

// countRejects counts rejects by stage (errors and late records) and returns how many go
// to each topic.
func (s *stream) countRejects(rejects *engine.Rejects) map[string]int {
	perTopic := map[string]int{}
	for _, it := range rejects.Items {
		if it.Late {
			s.metrics.LateRecords.WithLabelValues(s.plan.Name, it.Stage).Inc()
		} else {
			s.metrics.Errors.WithLabelValues(s.plan.Name, it.Stage).Inc()
		}
		to := s.deadLetterTopic(it)
		perTopic[to]++
		s.log.Debug("record rejected", "stage", it.Stage, "reason", it.Err, "to", to,
			"topic", it.Record.Source.Topic, "partition", it.Record.Source.Partition, "offset", it.Record.Source.Offset)
	}
	return perTopic
}

func (s *stream) writeDeadLetters(ctx context.Context, rejects *engine.Rejects, perTopic map[string]int) error {
	err := retry(ctx, s, "dead-letter", func(ctx context.Context) error {
		return s.dlq.Write(ctx, s.plan.DeadLetter, rejects.Items)
	})
	if err == nil {
		for to, n := range perTopic {
			s.metrics.DeadLetters.WithLabelValues(s.plan.Name, to).Add(float64(n))
			s.deadLettered.Add(int64(n))
		}
	}
	return err
}

// endSummary logs that a finite input was read to its end, with what became of its records:
// as a warning when some went to the dead-letter topic, so that a replay run with
// --log-level warn still says so.
func (s *stream) endSummary() {
	level, dead := slog.LevelInfo, s.deadLettered.Load()
	if dead > 0 {
		level = slog.LevelWarn
	}
	s.log.Log(context.Background(), level, "the stream read its input to the end and delivered everything",
		"read", s.read.Load(), "written", s.written.Load(), "dead_lettered", dead, "dead_letter_topic", s.plan.DeadLetter)
}

// retry runs fn until it succeeds, with capped exponential backoff, or until ctx ends.
// While it fails, the stream's health says so (and /-/ready answers 503 with the reason).
// An output or dead-letter write that hangs (a receiver that accepts and never answers) is
// given up after attemptTimeout and tried again, so that the failure is seen (unless the
// output bounds its own waits, engine.SelfTimedOutput); a checkpoint
// attempt is not cut short, since abandoning a Kafka transaction halfway leaves its producer
// unusable (the broker aborts a transaction that outlives broker.TransactionTimeout itself).
func retry(ctx context.Context, s *stream, what string, fn func(ctx context.Context) error) error {
	cond := retryCondition(what)
	wait := s.backoffMin
	for attempt := 1; ; attempt++ {
		err := s.attemptOnce(ctx, cond, fn)
		if errors.Is(err, broker.ErrInputBroken) {
			return err // no retry can help: the stream replaces its input (live.restart)
		}
		if err == nil {
			if attempt > 1 {
				s.health.clear(cond)
				s.log.Info("succeeded after retries", "what", what, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			s.health.clear(cond)
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		if what == "output" {
			s.metrics.OutputRetries.WithLabelValues(s.plan.Name).Inc()
		}
		s.health.set(cond, fmt.Sprintf("%s failing, retrying (attempt %d): %v", what, attempt, err))
		s.log.Warn("failed; retrying", "what", what, "attempt", attempt, "err", err, "wait", wait)
		if !sleepCtx(ctx, wait) {
			s.health.clear(cond)
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		wait = min(wait*2, s.backoffMax)
	}
}

// attemptTimeout bounds one output or dead-letter write.
const attemptTimeout = 2 * time.Minute

func (s *stream) attemptOnce(ctx context.Context, cond condition, fn func(ctx context.Context) error) error {
	if cond != condOutput && cond != condDeadLetter {
		return fn(ctx)
	}
	if _, selfTimed := s.output.(engine.SelfTimedOutput); selfTimed && cond == condOutput {
		return fn(ctx)
	}
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	err := fn(actx)
	if err != nil && actx.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("no answer within %s: %w", attemptTimeout, err)
	}
	return err
}

// retryCondition is the health condition a retry loop reports.
func retryCondition(what string) condition {
	switch what {
	case "output":
		return condOutput
	case "dead-letter":
		return condDeadLetter
	case "checkpoint":
		return condCheckpoint
	case "schema registry":
		return condRegistry
	default:
		return condAck
	}
}

// stalled says whether records wait on the input while nothing was committed for
// stallAfter.
func (s *stream) stalled() error {
	if s.stallAfter <= 0 {
		return nil
	}
	lagger, ok := s.input.(interface{ Lag() int64 })
	if !ok {
		return nil
	}
	lag := lagger.Lag()
	idle := time.Since(time.Unix(0, s.lastCommit.Load()))
	if lag == 0 || idle < s.stallAfter {
		return nil
	}
	return fmt.Errorf("stream %s: stalled: %d records wait on %s and no batch was committed for %s", s.plan.Name, lag, s.plan.Config.Input.Topic, idle.Round(time.Second))
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// drainContext returns a context that ends drain after parent does.
func drainContext(parent context.Context, drain time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() {
		t := time.AfterFunc(drain, cancel)
		context.AfterFunc(ctx, func() { t.Stop() })
	})
	return ctx, func() { stop(); cancel() }
}

// schemaError flattens a validation error into one line naming each failing location.
func schemaError(err error) error {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("schema violation: %w", err)
	}
	var parts []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			loc := e.InstanceLocation
			if loc == "" {
				loc = "/"
			}
			parts = append(parts, fmt.Sprintf("%s: %s", loc, e.Message))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return fmt.Errorf("schema violation: %s", strings.Join(parts, "; "))
}
