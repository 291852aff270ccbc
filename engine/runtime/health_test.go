package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/broker"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

// failingOutput fails its writes while down is set, as a database that is down does.
type failingOutput struct {
	down    atomic.Bool
	mu      sync.Mutex
	written int
}

func (o *failingOutput) Write(context.Context, []*engine.Record, *engine.Rejects) error {
	if o.down.Load() {
		return errors.New("dial tcp 127.0.0.1:5433: connect: connection refused")
	}
	o.mu.Lock()
	o.written++
	o.mu.Unlock()
	return nil
}
func (o *failingOutput) Close() error { return nil }
func (o *failingOutput) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.written
}

func testStream(in engine.Input, out engine.Output, m *telemetry.Metrics) *stream {
	return &stream{
		plan: &StreamPlan{Name: "sink"}, input: in, output: out, metrics: m,
		log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		drain: time.Second, backoffMin: time.Millisecond, backoffMax: 5 * time.Millisecond,
		settleEvery: time.Second, acked: make(chan struct{}, 1),
		health: newHealth("sink", m.StreamCondition),
	}
}

func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 20s: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// While a sink cannot write, the stream is not ready and says why; the metric says the
// same; once the database is back, both clear and the batch is written.
func TestFailingOutputMakesTheStreamUnready(t *testing.T) {
	m := telemetry.New()
	out := &failingOutput{}
	out.down.Store(true)
	s := testStream(&endlessInput{ackedInOrder: true}, out, m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.run(ctx) }()

	waitCond(t, "the stream reports its failing output", func() bool { return s.health.problem() != nil })
	msg := s.health.problem().Error()
	if !strings.Contains(msg, "stream sink: output:") || !strings.Contains(msg, "connection refused") {
		t.Errorf("problem = %q: want the stream, the condition and the write's error", msg)
	}
	if v := testutil.ToFloat64(m.StreamCondition.WithLabelValues("sink", "output")); v != 1 {
		t.Errorf("eventops_stream_condition{condition=output} = %v while failing, want 1", v)
	}
	out.down.Store(false)
	waitCond(t, "the stream recovers", func() bool { return s.health.problem() == nil && out.count() > 0 })
	if v := testutil.ToFloat64(m.StreamCondition.WithLabelValues("sink", "output")); v != 0 {
		t.Errorf("eventops_stream_condition{condition=output} = %v after recovery, want 0", v)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// laggingInput has records waiting but never hands them out, as a stream stuck on one batch.
type laggingInput struct{ endlessInput }

func (*laggingInput) Lag() int64 { return 42 }

// A stream with records waiting that commits nothing for stall_after is stalled; a stream
// that is caught up is not, however long it has been idle.
func TestStalledOnlyWithRecordsWaiting(t *testing.T) {
	s := testStream(&laggingInput{}, &failingOutput{}, telemetry.New())
	s.plan.Config.Input.Topic = "signals.metric.v1"
	s.stallAfter = time.Minute
	s.lastCommit.Store(time.Now().Add(-2 * time.Minute).UnixNano())
	err := s.stalled()
	if err == nil || !strings.Contains(err.Error(), "42 records wait on signals.metric.v1") {
		t.Errorf("stalled() = %v: want the waiting records and the topic", err)
	}
	s.lastCommit.Store(time.Now().UnixNano())
	if err := s.stalled(); err != nil {
		t.Errorf("stalled() right after a commit = %v, want nil", err)
	}
	idle := testStream(&endlessInput{}, &failingOutput{}, telemetry.New())
	idle.stallAfter = time.Minute
	if err := idle.stalled(); err != nil {
		t.Errorf("an input that reports no lag is never stalled, got %v", err)
	}
}

// While the broker does not answer, the probe says so (and /-/ready with it); once it
// answers again, the probe clears.
func TestBrokerProbeSaysWhenTheBrokerIsUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	b, err := broker.Start(context.Background(), config.Broker{Brokers: []string{addr}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m := telemetry.New()
	probe := newBrokerProbe(b, m.BrokerUp, slog.New(slog.DiscardHandler))
	probe.check(context.Background())
	if err := probe.err(); err == nil || !strings.Contains(err.Error(), "broker unreachable") {
		t.Fatalf("probe of a broker that does not listen: %v, want broker unreachable", err)
	}
	if v := testutil.ToFloat64(m.BrokerUp); v != 0 {
		t.Errorf("eventops_broker_up = %v while unreachable, want 0", v)
	}
	embedded, err := broker.Start(context.Background(), config.Broker{Embedded: &config.Embedded{Listen: "127.0.0.1:0", DataDir: t.TempDir()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer embedded.Close()
	probe = newBrokerProbe(embedded, m.BrokerUp, slog.New(slog.DiscardHandler))
	probe.check(context.Background())
	if err := probe.err(); err != nil {
		t.Errorf("probe of a running broker: %v", err)
	}
	if v := testutil.ToFloat64(m.BrokerUp); v != 1 {
		t.Errorf("eventops_broker_up = %v while reachable, want 1", v)
	}
}

// brokenInput is an input whose client cannot go on: every ack fails with ErrInputBroken, as
// a transactional consumer whose producer was fenced after a broker restart does.
type brokenInput struct{ endlessInput }

func (*brokenInput) Ack(context.Context, []*engine.Record) error {
	return fmt.Errorf("%w: beginning a transaction: PRODUCER_FENCED", broker.ErrInputBroken)
}

// When delivery cannot go on, the stream ends with its error, so that its consumer is
// replaced, whatever the reading stage was doing: waiting for an ack before the next read
// (every stateful stream) or for room to hand over the next batch. Before, the reading stage
// waited for an ack that would never come: the stream stalled without a word.
func TestStreamEndsWhenDeliveryCannotGoOn(t *testing.T) {
	for _, tc := range []struct {
		name        string
		settleEvery time.Duration
	}{
		{"reading stage settling before each read", 0},
		{"reading stage handing over batches", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testStream(&brokenInput{}, &failingOutput{}, telemetry.New())
			s.settleEvery = tc.settleEvery
			done := make(chan error, 1)
			go func() { done <- s.run(context.Background()) }()
			select {
			case err := <-done:
				if !errors.Is(err, broker.ErrInputBroken) {
					t.Errorf("run = %v, want ErrInputBroken (the stream's consumer is then replaced)", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the stream did not end within 20s of a delivery that cannot go on: it stalls")
			}
		})
	}
}

// While a reload holds the streams, readiness looks at them as last seen rather than at none
// (before, /-/ready could say 200 for a reload's duration without checking a stream).
func TestReadinessStillSeesTheStreamsDuringAReload(t *testing.T) {
	l := &live{streams: map[string]*liveStream{"rules": {s: &stream{plan: &StreamPlan{Name: "rules"}}}}}
	if got := l.running(); len(got) != 1 {
		t.Fatalf("running() = %d streams, want 1", len(got))
	}
	l.mu.Lock() // a reload under way
	defer l.mu.Unlock()
	if got := l.running(); len(got) != 1 || got[0].plan.Name != "rules" {
		t.Errorf("running() during a reload = %v, want the rules stream as last seen", got)
	}
}
