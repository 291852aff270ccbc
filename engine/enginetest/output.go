package enginetest

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine"
)

// ReadBack returns every row or record the output under test has written so far, as maps
// with at least the fields "event_id" (string) and "value" (a number) of the written events.
type ReadBack func(ctx context.Context) ([]map[string]any, error)

// OutputSetup returns a fresh output (writing to a place no other call writes to) and a way
// to read back what it wrote. It registers its own cleanup with t.
type OutputSetup func(t *testing.T) (engine.Output, ReadBack)

// OutputOption adjusts TestOutput to what an output promises.
type OutputOption func(*outputOpts)

type outputOpts struct {
	exactlyOnce bool
	bad         func(i int) *engine.Record
}

// ExactlyOnce makes TestOutput require that a retried batch leaves no duplicates (outputs
// that deduplicate, such as PostgreSQL on its dedupe key).
func ExactlyOnce() OutputOption { return func(o *outputOpts) { o.exactlyOnce = true } }

// BadRecord replaces the record TestOutput expects the output to reject. The default is
// Event(i) with a "value" that is a Go channel, which neither JSON nor SQL can encode.
func BadRecord(fn func(i int) *engine.Record) OutputOption {
	return func(o *outputOpts) { o.bad = fn }
}

func defaultBad(i int) *engine.Record {
	r := Event(i)
	r.Value["value"] = make(chan int)
	return r
}

// TestOutput runs the output conformance checks as subtests.
func TestOutput(t *testing.T, setup OutputSetup, opts ...OutputOption) {
	o := outputOpts{bad: defaultBad}
	for _, opt := range opts {
		opt(&o)
	}

	t.Run("batch is readable once Write returns", func(t *testing.T) {
		ctx := ctxFor(t)
		out, read := setup(t)
		var rejects engine.Rejects
		if err := out.Write(ctx, Events(0, 50), &rejects); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if rejects.Len() != 0 {
			t.Fatalf("valid records rejected: %v", rejects.Items)
		}
		// Durable means readable now: read once, without waiting.
		rows, err := read(ctx)
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		assertIDs(t, rows, idRange(0, 50), false)
		assertValues(t, rows)
	})

	t.Run("a retried batch is accepted", func(t *testing.T) {
		ctx := ctxFor(t)
		out, read := setup(t)
		batch := Events(100, 20)
		for attempt := range 2 {
			var rejects engine.Rejects
			if err := out.Write(ctx, batch, &rejects); err != nil {
				t.Fatalf("attempt %d: Write: %v", attempt+1, err)
			}
		}
		rows, err := read(ctx)
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		assertIDs(t, rows, idRange(100, 20), !o.exactlyOnce)
	})

	t.Run("an empty batch writes nothing", func(t *testing.T) {
		ctx := ctxFor(t)
		out, read := setup(t)
		var rejects engine.Rejects
		for _, b := range [][]*engine.Record{nil, {}} {
			if err := out.Write(ctx, b, &rejects); err != nil {
				t.Fatalf("Write(%v): %v", b, err)
			}
		}
		rows, err := read(ctx)
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		if len(rows) != 0 {
			t.Fatalf("empty batches wrote %d rows", len(rows))
		}
	})

	t.Run("unwritable records are rejected and the rest written", func(t *testing.T) {
		ctx := ctxFor(t)
		out, read := setup(t)
		batch := Events(200, 10)
		batch[3], batch[7] = o.bad(203), o.bad(207)
		var rejects engine.Rejects
		if err := out.Write(ctx, batch, &rejects); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if rejects.Len() != 2 {
			t.Fatalf("rejects = %d records, want the 2 bad ones: %v", rejects.Len(), rejects.Items)
		}
		for i, want := range []*engine.Record{batch[3], batch[7]} {
			got := rejects.Items[i]
			if got.Record != want {
				t.Errorf("reject %d is not the bad record it should be", i)
			}
			if got.Stage != "output" || got.Err == nil {
				t.Errorf("reject %d: stage %q err %v, want stage output with a reason", i, got.Stage, got.Err)
			}
		}
		rows, err := read(ctx)
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		want := idRange(200, 10)
		want = append(want[:7], want[8:]...)
		want = append(want[:3], want[4:]...)
		assertIDs(t, rows, want, false)
	})

	t.Run("Close after writing", func(t *testing.T) {
		ctx := ctxFor(t)
		out, read := setup(t)
		var rejects engine.Rejects
		if err := out.Write(ctx, Events(300, 5), &rejects); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if err := out.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		rows, err := read(ctx)
		if err != nil {
			t.Fatalf("read back after Close: %v", err)
		}
		assertIDs(t, rows, idRange(300, 5), false)
	})

	t.Run("Write fails or returns when its context is done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		out, _ := setup(t)
		var rejects engine.Rejects
		done := make(chan error, 1)
		go func() { done <- out.Write(ctx, Events(400, 5), &rejects) }()
		select {
		case <-done:
			// Either outcome keeps the contract: an error makes the caller retry; nil means
			// the batch was durable before the cancellation was seen.
		case <-time.After(Timeout):
			t.Fatal("Write with a cancelled context did not return")
		}
	})
}

func idRange(from, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("evt-%d", from+i)
	}
	return ids
}

// assertIDs checks that rows hold exactly the events want (each once, unless dupsOK).
func assertIDs(t *testing.T, rows []map[string]any, want []string, dupsOK bool) {
	t.Helper()
	count := map[string]int{}
	for _, r := range rows {
		id, _ := r["event_id"].(string)
		count[id]++
	}
	wantSet := map[string]bool{}
	for _, id := range want {
		wantSet[id] = true
		switch n := count[id]; {
		case n == 0:
			t.Errorf("event %s was not written", id)
		case n > 1 && !dupsOK:
			t.Errorf("event %s was written %d times", id, n)
		}
	}
	var extra []string
	for id := range count {
		if !wantSet[id] {
			extra = append(extra, id)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("unexpected rows written: %v", extra)
	}
}

// assertValues checks that each row carries its event's value (Event(i) has value i).
func assertValues(t *testing.T, rows []map[string]any) {
	t.Helper()
	for _, r := range rows {
		id, _ := r["event_id"].(string)
		var i int
		if _, err := fmt.Sscanf(id, "evt-%d", &i); err != nil {
			continue
		}
		if got, ok := number(r["value"]); !ok || got != float64(i) {
			t.Errorf("event %s: value = %v, want %d", id, r["value"], i)
		}
	}
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	}
	return 0, false
}
