package enginetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine"
)

// InputHarness is one isolated source (topic, queue) and consumer group for TestInput.
type InputHarness struct {
	// Produce appends records with these values to the source.
	Produce func(ctx context.Context, values [][]byte) error
	// Open returns a new input on the harness's source, always in the same group, so a new
	// input resumes where acked inputs before it left off. The suite closes what it opens.
	Open func(t *testing.T) engine.Input
}

// InputSetup returns a fresh harness (its own source and group) each call.
type InputSetup func(t *testing.T) InputHarness

// TestInput runs the input conformance checks as subtests.
func TestInput(t *testing.T, setup InputSetup) {
	t.Run("reads every produced record", func(t *testing.T) {
		ctx := ctxFor(t)
		h := setup(t)
		want := values("all", 0, 200)
		mustProduce(ctx, t, h, want)
		in := h.Open(t)
		defer in.Close()
		got := readN(ctx, t, in, len(want), true)
		seen := map[string]engine.Source{}
		for _, r := range got {
			if prev, dup := seen[string(r.Raw)]; dup {
				t.Errorf("record %s delivered twice (at %v and %v) in one session", r.Raw, prev, r.Source)
			}
			seen[string(r.Raw)] = r.Source
			if r.Source.Topic == "" {
				t.Errorf("record %s has no source topic", r.Raw)
			}
		}
		for _, v := range want {
			if _, ok := seen[string(v)]; !ok {
				t.Errorf("record %s was not read", v)
			}
		}
	})

	t.Run("a new input resumes after the acked position", func(t *testing.T) {
		ctx := ctxFor(t)
		h := setup(t)
		first := values("first", 0, 30)
		mustProduce(ctx, t, h, first)
		in := h.Open(t)
		readN(ctx, t, in, len(first), true)
		if err := in.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}

		second := values("second", 0, 10)
		mustProduce(ctx, t, h, second)
		in2 := h.Open(t)
		defer in2.Close()
		got := readN(ctx, t, in2, len(second), true)
		for _, r := range got {
			if string(r.Raw[:5]) == "first" {
				t.Errorf("acked record %s was delivered again", r.Raw)
			}
		}
	})

	t.Run("unacked records are delivered again", func(t *testing.T) {
		ctx := ctxFor(t)
		h := setup(t)
		want := values("redo", 0, 15)
		mustProduce(ctx, t, h, want)
		in := h.Open(t)
		readN(ctx, t, in, len(want), false)
		if err := in.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		in2 := h.Open(t)
		defer in2.Close()
		got := readN(ctx, t, in2, len(want), true)
		have := map[string]bool{}
		for _, r := range got {
			have[string(r.Raw)] = true
		}
		for _, v := range want {
			if !have[string(v)] {
				t.Errorf("unacked record %s was not delivered again", v)
			}
		}
	})

	t.Run("Read returns the context error when cancelled", func(t *testing.T) {
		h := setup(t)
		in := h.Open(t)
		defer in.Close()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := in.Read(ctx)
			done <- err
		}()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Read after cancel = %v, want context.Canceled", err)
			}
		case <-time.After(Timeout):
			t.Fatal("Read did not return after its context was cancelled")
		}
	})
}

func values(prefix string, from, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "%s-%04d", prefix, from+i)
	}
	return out
}

func mustProduce(ctx context.Context, t *testing.T, h InputHarness, vs [][]byte) {
	t.Helper()
	if err := h.Produce(ctx, vs); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// readN reads batches until n records arrived, acking each batch if ack is set.
func readN(ctx context.Context, t *testing.T, in engine.Input, n int, ack bool) []*engine.Record {
	t.Helper()
	var got []*engine.Record
	for len(got) < n {
		batch, err := in.Read(ctx)
		if err != nil {
			t.Fatalf("Read after %d of %d records: %v", len(got), n, err)
		}
		got = append(got, batch...)
		if ack {
			if err := in.Ack(ctx, batch); err != nil {
				t.Fatalf("Ack: %v", err)
			}
		}
	}
	return got
}
