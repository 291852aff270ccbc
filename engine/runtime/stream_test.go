package runtime

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

// endlessInput hands out one-record batches forever and records, at each Read, how many
// batches were read and not yet acked.
type endlessInput struct {
	mu           sync.Mutex
	offset       int64
	unacked      int
	readsIdle    int // Reads with nothing unacked: when a rebalance can proceed
	readsBusy    int // Reads with a batch still unacked: the stages overlap
	ackedInOrder bool
	lastAcked    int64
}

func (in *endlessInput) Read(ctx context.Context) ([]*engine.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.unacked == 0 {
		in.readsIdle++
	} else {
		in.readsBusy++
	}
	in.unacked++
	in.offset++
	return []*engine.Record{{Raw: []byte(`{"v":1}`), Source: engine.Source{Topic: "t", Offset: in.offset}}}, nil
}

func (in *endlessInput) Ack(_ context.Context, batch []*engine.Record) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.unacked--
	if off := batch[0].Source.Offset; off != in.lastAcked+1 {
		in.ackedInOrder = false
	} else {
		in.lastAcked = off
	}
	return nil
}

func (in *endlessInput) Close() error { return nil }

func (in *endlessInput) counts() (idle, busy int, inOrder bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.readsIdle, in.readsBusy, in.ackedInOrder
}

// slowOutput takes a fixed time per write, like a broker or database round trip, so that
// delivery is always behind processing and the stages overlap.
type slowOutput struct{}

func (slowOutput) Write(context.Context, []*engine.Record, *engine.Rejects) error {
	time.Sleep(300 * time.Microsecond) // simulated write latency, not a wait for a condition
	return nil
}
func (slowOutput) Close() error { return nil }

// Under steady load the two stages overlap, yet reads with nothing in flight keep coming
// (at least every settle interval), so a waiting consumer-group rebalance is never starved;
// acks stay in read order.
func TestStreamOverlapsStagesButSettlesForRebalances(t *testing.T) {
	in := &endlessInput{ackedInOrder: true}
	s := &stream{
		plan:        &StreamPlan{Name: "s"},
		input:       in,
		output:      slowOutput{},
		metrics:     telemetry.New(),
		log:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		drain:       time.Second,
		backoffMin:  time.Millisecond,
		backoffMax:  time.Millisecond,
		settleEvery: 5 * time.Millisecond,
		acked:       make(chan struct{}, 1),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		idle, busy, _ := in.counts()
		if idle >= 20 && busy >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: %d reads with nothing in flight, %d overlapping; want both ≥ 20", idle, busy)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, _, inOrder := in.counts(); !inOrder {
		t.Fatal("batches were acked out of read order")
	}
}
