package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/postgres"
	"github.com/eventops/eventops-engine/engine/telemetry"
	mapproc "github.com/eventops/eventops-engine/processors/map"
)

const swapPipeline = `version: 1
broker: {embedded: {}}
topics:
  in:  {ingest: true}
  dlq: {}
dead_letter: dlq
streams:
  - name: s
    input: {topic: in}
    processors:
      - map: {v: v, version: 'VERSION'}
    # Not a topic: the stream is not transactional, and delivery overlaps processing.
    output: {postgres: {dsn: "postgres://127.0.0.1:1/none", table: events, columns: {v: v, version: version}, dedupe_key: v}}
`

// swapPlan builds the stream of swapPipeline with the map writing version.
func swapPlan(t testing.TB, version string) *StreamPlan {
	t.Helper()
	text := strings.Replace(swapPipeline, "VERSION", version, 1)
	components := engine.Components{Processors: []engine.ProcessorFactory{mapproc.Factory}, Outputs: []engine.OutputFactory{postgres.Factory}}
	cfg, err := config.LoadBytes("swap.yaml", []byte(text), components.Registry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Build(cfg, Options{Components: components, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return plan.Streams[0]
}

// collectOutput keeps what was written, in order.
type collectOutput struct {
	mu   sync.Mutex
	recs []*engine.Record
}

func (o *collectOutput) Write(_ context.Context, batch []*engine.Record, _ *engine.Rejects) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.recs = append(o.recs, batch...)
	return nil
}
func (o *collectOutput) Close() error { return nil }
func (o *collectOutput) len() int     { o.mu.Lock(); defer o.mu.Unlock(); return len(o.recs) }

// A swap in the middle of a steady stream of records happens at a commit boundary: every
// record is written once, the ones before the swap by the first version and all the ones
// after by the second, and the stream pauses only to settle what was in flight.
func TestSwapAtACommitBoundary(t *testing.T) {
	in := &endlessInput{ackedInOrder: true}
	out := &collectOutput{}
	s := &stream{
		plan: swapPlan(t, "1"), input: in, output: out,
		metrics: telemetry.New(), log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		drain: time.Second, backoffMin: time.Millisecond, backoffMax: time.Millisecond,
		settleEvery: time.Second, acked: make(chan struct{}, 1), swaps: make(chan *swapTo, 1),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.run(ctx) }()
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("not within 20s: %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitUntil("200 records through the first version", func() bool { return out.len() >= 200 })
	res, err := s.Swap(ctx, swapPlan(t, "2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	at := out.len()
	waitUntil("200 more records", func() bool { return out.len() >= at+200 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if res.Pause <= 0 || len(res.Kept) != 0 {
		t.Errorf("swap result %+v: want a pause and no kept processor (the map changed)", res)
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	switched := -1
	for i, r := range out.recs {
		if want := int64(i + 1); r.Source.Offset != want {
			t.Fatalf("record %d has offset %d, want %d: a record was lost or written twice", i, r.Source.Offset, want)
		}
		v := fmt.Sprint(r.Value["version"])
		if switched < 0 && v == "2" {
			switched = i
		}
		if (switched < 0 && v != "1") || (switched >= 0 && v != "2") {
			t.Fatalf("record %d (offset %d) has version %v after the switch at %d: the versions interleave", i, r.Source.Offset, v, switched)
		}
	}
	if switched < 200 || switched > at {
		t.Errorf("the second version took over at record %d, want it between the 200 records seen before Swap and the %d seen when it returned", switched, at)
	}
}

// BenchmarkSwapPause swaps a running stream between two versions of its map over and over
// while records flow, and reports how long the stream read nothing per swap (settling the
// batch in flight, then switching) and the records/s it kept up meanwhile.
//
//	go test ./engine/runtime -run '^$' -bench SwapPause -benchtime 200x
func BenchmarkSwapPause(b *testing.B) {
	plans := []*StreamPlan{swapPlan(b, "1"), swapPlan(b, "2")}
	in := &endlessInput{ackedInOrder: true}
	out := &collectOutput{}
	s := &stream{
		plan: plans[0], input: in, output: out,
		metrics: telemetry.New(), log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		drain: time.Second, backoffMin: time.Millisecond, backoffMax: time.Millisecond,
		settleEvery: time.Second, acked: make(chan struct{}, 1), swaps: make(chan *swapTo, 1),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.run(ctx) }()
	var pauses []time.Duration
	start, before := time.Now(), out.len()
	for i := 0; b.Loop(); i++ {
		time.Sleep(time.Millisecond) // records flow between swaps
		next := *plans[(i+1)%2]      // a fresh copy: a swap takes over its plan
		next.Processors = append([]NamedProcessor(nil), next.Processors...)
		res, err := s.Swap(ctx, &next, nil)
		if err != nil {
			b.Fatal(err)
		}
		pauses = append(pauses, res.Pause)
	}
	rate := float64(out.len()-before) / time.Since(start).Seconds()
	cancel()
	<-done
	slices.Sort(pauses)
	b.ReportMetric(float64(pauses[len(pauses)/2].Microseconds())/1000, "p50-pause-ms")
	b.ReportMetric(float64(pauses[len(pauses)*99/100].Microseconds())/1000, "p99-pause-ms")
	b.ReportMetric(rate, "records/s")
}

// blockedOutput never finishes a write until released: an output that is down.
type blockedOutput struct {
	writing chan struct{} // closed at the first write
	once    *sync.Once
	release chan struct{}
}

func (o blockedOutput) Write(ctx context.Context, _ []*engine.Record, _ *engine.Rejects) error {
	o.once.Do(func() { close(o.writing) })
	select {
	case <-o.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (o blockedOutput) Close() error { return nil }

// A stream that cannot reach a commit boundary (its output is down) holds a reload up only
// for the reload's time limit. If the stream never took the swap up, the request is
// withdrawn and the stream runs on unchanged once its output is back; if it had taken it up
// (and was settling), it switches as soon as its batch in flight is committed. Either way
// the stream ends up running the version the error says.
func TestSwapGivesUpOnAStuckStream(t *testing.T) {
	out := blockedOutput{writing: make(chan struct{}), once: &sync.Once{}, release: make(chan struct{})}
	first, second := swapPlan(t, "1"), swapPlan(t, "2")
	s := &stream{
		plan: first, input: &endlessInput{ackedInOrder: true}, output: out,
		metrics: telemetry.New(), log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		drain: time.Second, backoffMin: time.Millisecond, backoffMax: time.Millisecond,
		settleEvery: time.Second, acked: make(chan struct{}, 1), swaps: make(chan *swapTo, 1),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.run(ctx) }()
	<-out.writing // the output is stuck on a batch
	swapCtx, cancelSwap := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err := s.Swap(swapCtx, second, nil)
	cancelSwap()
	if err == nil {
		t.Fatal("Swap on a stuck stream succeeded")
	}
	withdrawn := errors.Is(err, errSwapWithdrawn)
	close(out.release)
	want := first
	if !withdrawn {
		want = second
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := s.running.Load()
		if got == want || (got == nil && want == first) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the stream runs version %p, want %p", err, got, want)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
}
