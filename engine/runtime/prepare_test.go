package runtime

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	goruntime "runtime"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

// tagger is record-wise: it rejects values divisible by 7 and tags the others.
type tagger struct {
	mu    sync.Mutex
	calls int
}

func (*tagger) RecordWise() {}

func (p *tagger) Process(_ context.Context, batch []*engine.Record, rejects *engine.Rejects) ([]*engine.Record, error) {
	p.mu.Lock()
	p.calls++
	p.mu.Unlock()
	out := make([]*engine.Record, 0, len(batch))
	for _, r := range batch {
		if int(r.Value["n"].(float64))%7 == 0 {
			rejects.Add(r, "tagger", fmt.Errorf("divisible by 7"))
			continue
		}
		r.Value = map[string]any{"n": r.Value["n"], "tagged": true}
		out = append(out, r)
	}
	return out, nil
}

// collector is not record-wise: it must see the whole batch at once, in order.
type collector struct{ batches [][]*engine.Record }

func (c *collector) Process(_ context.Context, batch []*engine.Record, _ *engine.Rejects) ([]*engine.Record, error) {
	c.batches = append(c.batches, slices.Clone(batch))
	return batch, nil
}

// A large batch's decode and its record-wise head processors run on parts of it at once;
// what follows sees every surviving record once, in the order read, and every malformed or
// rejected record is a reject with its reason.
func TestRecordWiseHeadRunsInPartsAndKeepsOrder(t *testing.T) {
	defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(4))
	head, tail := &tagger{}, &collector{}
	s := &stream{
		plan: &StreamPlan{Name: "s", Processors: []NamedProcessor{
			{Name: "processors[0].tagger", Processor: head},
			{Name: "processors[1].collector", Processor: tail},
		}},
		metrics: telemetry.New(),
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	const n = 4 * minParallelChunk
	batch := make([]*engine.Record, n)
	var want []float64
	malformed, divisible := 0, 0
	for i := range batch {
		raw := fmt.Sprintf(`{"n":%d}`, i)
		switch {
		case i%100 == 3:
			raw, malformed = `{"n":`, malformed+1
		case i%7 == 0:
			divisible++
		default:
			want = append(want, float64(i))
		}
		batch[i] = &engine.Record{Raw: []byte(raw), Source: engine.Source{Offset: int64(i)}}
	}
	p := s.handle(context.Background(), batch)

	if head.calls < 2 {
		t.Errorf("the record-wise processor ran on %d part(s) of a batch of %d, want several", head.calls, n)
	}
	if len(tail.batches) != 1 {
		t.Fatalf("the processor after it got %d batches, want the whole batch once", len(tail.batches))
	}
	var got []float64
	for _, r := range p.out {
		if r.Value["tagged"] != true {
			t.Fatalf("record %d reached the output without going through the tagger", r.Source.Offset)
		}
		got = append(got, r.Value["n"].(float64))
	}
	if !slices.Equal(got, want) {
		t.Errorf("output: %d records, want %d, in read order", len(got), len(want))
	}
	reasons := map[string]int{}
	for _, rj := range p.rejects.Items {
		reasons[rj.Stage]++
	}
	if reasons["decode"] != malformed || reasons["tagger"] != divisible || len(p.rejects.Items) != malformed+divisible {
		t.Errorf("rejects by stage %v, want %d decode and %d tagger", reasons, malformed, divisible)
	}
}

// numberEncoder is a transactional output that writes each record's n as its value and
// refuses those divisible by 5, recording how many parts of a batch it was given.
type numberEncoder struct {
	mu    sync.Mutex
	calls int
}

func (e *numberEncoder) Encode(batch []*engine.Record, rejects *engine.Rejects, share bool) (out []*kgo.Record, values []map[string]any) {
	e.mu.Lock()
	e.calls++
	e.mu.Unlock()
	for _, r := range batch {
		n := int(r.Value["n"].(float64))
		if n%5 == 0 {
			rejects.Add(r, "output", fmt.Errorf("divisible by 5"))
			continue
		}
		out = append(out, &kgo.Record{Value: []byte(strconv.Itoa(n))})
		if share {
			values = append(values, r.Value)
		}
	}
	return out, values
}

// A large batch's output is encoded in parts at once; the records come out in order, each
// with the value it was encoded from (for decode once), and the refused ones as rejects.
func TestOutputIsEncodedInPartsInOrder(t *testing.T) {
	defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(4))
	enc := &numberEncoder{}
	plan := &StreamPlan{Name: "s", Config: config.Stream{Output: config.Output{Topic: "out"}}}
	reader := &StreamPlan{Name: "r", Config: config.Stream{Input: config.Input{Topic: "out"}}}
	shared := newSharedRecords()
	shared.setReaders(&Plan{Streams: []*StreamPlan{plan, reader}})
	s := &stream{plan: plan, txnOut: enc, shared: shared}
	const n = 4 * minParallelChunk
	p := &processed{}
	var want []string
	for i := range n {
		p.out = append(p.out, &engine.Record{Value: map[string]any{"n": float64(i)}})
		if i%5 != 0 {
			want = append(want, strconv.Itoa(i))
		}
	}
	s.encodeOutput(p)

	if enc.calls < 2 {
		t.Errorf("a batch of %d was encoded in %d part(s), want several", n, enc.calls)
	}
	if len(p.records) != len(want) || len(p.values) != len(want) {
		t.Fatalf("%d records and %d values, want %d of each", len(p.records), len(p.values), len(want))
	}
	for i, r := range p.records {
		if string(r.Value) != want[i] || fmt.Sprint(p.values[i]["n"]) != want[i] {
			t.Fatalf("record %d is %s from value %v, want %s from the same", i, r.Value, p.values[i]["n"], want[i])
		}
	}
	if got := len(p.rejects.Items); got != n-len(want) {
		t.Errorf("%d rejects, want the %d refused records", got, n-len(want))
	}
}
