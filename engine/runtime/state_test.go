package runtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/runtime"
)

// counter is a minimal stateful processor: per input partition, it counts the records of each
// key and emits {key, n, event_id} for every record. If state were lost on a move, a key's n
// would restart at 1; if it were restored ahead of the committed offset, an n would be skipped;
// if restored behind it, an n would be counted twice with different records.
type counter struct {
	counts map[int32]map[string]int
	dirty  map[int32]map[string]bool
}

func newCounter() *counter {
	return &counter{counts: map[int32]map[string]int{}, dirty: map[int32]map[string]bool{}}
}

func (c *counter) Process(_ context.Context, batch []*engine.Record, _ *engine.Rejects) ([]*engine.Record, error) {
	out := make([]*engine.Record, 0, len(batch))
	for _, r := range batch {
		p, key := r.Source.Partition, fmt.Sprint(r.Value["key"])
		if c.counts[p] == nil {
			c.counts[p] = map[string]int{}
		}
		if c.dirty[p] == nil {
			c.dirty[p] = map[string]bool{}
		}
		c.counts[p][key]++
		c.dirty[p][key] = true
		n := c.counts[p][key]
		out = append(out, &engine.Record{
			Value:  map[string]any{"key": key, "n": n, "seq": r.Value["seq"], "event_id": key + "/" + strconv.Itoa(n)},
			Key:    []byte(key),
			Source: r.Source,
		})
	}
	return out, nil
}

func (c *counter) Changes(put func(int32, string, []byte)) {
	for p, keys := range c.dirty {
		for k := range keys {
			put(p, k, []byte(strconv.Itoa(c.counts[p][k])))
		}
		delete(c.dirty, p)
	}
}

func (c *counter) Restore(p int32, entries map[string][]byte) error {
	m := map[string]int{}
	for k, v := range entries {
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return err
		}
		m[k] = n
	}
	c.counts[p] = m
	c.dirty[p] = map[string]bool{}
	return nil
}

func (c *counter) Drop(p int32) {
	delete(c.counts, p)
	delete(c.dirty, p)
}

var counterFactory = engine.ProcessorFactory{
	Type:      "counter",
	NewConfig: func() any { return &struct{}{} },
	Build:     func(any, engine.BuildEnv) (engine.Processor, error) { return newCounter(), nil },
}

const counterPipeline = `
version: 1
broker: {brokers: ["${BROKER}"]}
topics:
  counts.in:  {partitions: 4, ingest: true}
  counts.out: {partitions: 4}
  counts.dlq: {partitions: 1}
dead_letter: counts.dlq
streams:
  - name: count
    input: {topic: counts.in, batch_size: 50}
    processors:
      - counter: {}
    output: {topic: counts.out, key: key}
`

// engineInstance runs counterPipeline as one member of the stream's consumer group.
func engineInstance(t *testing.T, broker, id string) (stop func()) {
	t.Helper()
	reg := config.Registry{Processors: map[string]config.ProcessorSpec{"counter": {NewConfig: counterFactory.NewConfig}}}
	cfg, err := config.LoadBytes("counter.yaml", []byte(counterPipeline), reg, func(k string) (string, bool) { return broker, k == "BROKER" })
	if err != nil {
		t.Fatal(err)
	}
	return runInstance(t, cfg, engine.Components{Processors: []engine.ProcessorFactory{counterFactory}}, id)
}

// runInstance builds cfg and runs it as engine instance id until the returned stop is called
// (or the test ends); stop waits for a clean shutdown.
func runInstance(t *testing.T, cfg *config.Pipeline, components engine.Components, id string) (stop func()) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("instance", id)
	}
	plan, err := runtime.Build(cfg, runtime.Options{Logger: logger, Components: components})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- plan.Run(ctx, runtime.RunOptions{InstanceID: id}) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("instance %s stopped with error: %v", id, err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("instance %s did not stop within 30s", id)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestStateMovesWithPartitions runs two instances in one consumer group; one is stopped
// mid-stream and the other takes over its partitions with their state. Every key's counts
// must come out exactly 1..N, each once, as from one uninterrupted instance.
func TestStateMovesWithPartitions(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	broker := cluster.ListenAddrs()[0]
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic("counts.in"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	const keys, perKey = 40, 60
	produce := func(from, to int) {
		t.Helper()
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			for k := 0; k < keys; k++ {
				key := fmt.Sprintf("k%02d", k)
				recs = append(recs, &kgo.Record{Key: []byte(key), Value: fmt.Appendf(nil, `{"key":%q,"seq":%d}`, key, i)})
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	stopA := engineInstance(t, broker, "a")
	produce(0, 20)
	out := &outputs{t: t, broker: broker}
	out.waitFor(func(seen map[string]map[int]int) bool { return total(seen) >= keys*10 }, "instance a counts")

	engineInstance(t, broker, "b") // joins: some partitions move to b
	produce(20, 40)
	out.waitFor(func(seen map[string]map[int]int) bool { return total(seen) >= keys*30 }, "both instances count")

	stopA() // b takes over a's partitions
	produce(40, perKey)
	out.waitFor(func(seen map[string]map[int]int) bool {
		for k := 0; k < keys; k++ {
			if len(seen[fmt.Sprintf("k%02d", k)]) < perKey {
				return false
			}
		}
		return true
	}, "every key counted to the end")

	for k := 0; k < keys; k++ {
		key := fmt.Sprintf("k%02d", k)
		for n := 1; n <= perKey; n++ {
			if _, ok := out.seen[key][n]; !ok {
				t.Errorf("%s: count %d never emitted (state lost or skipped)", key, n)
			}
		}
		for n, seq := range out.seen[key] {
			if n < 1 || n > perKey {
				t.Errorf("%s: count %d emitted, want 1..%d (a record counted twice)", key, n, perKey)
			}
			if seq != n-1 {
				t.Errorf("%s: count %d belongs to record %d, want %d", key, n, seq, n-1)
			}
		}
	}
}

// outputs consumes counts.out and records, per key, the record (seq) behind each count n.
type outputs struct {
	t      *testing.T
	broker string
	cl     *kgo.Client
	seen   map[string]map[int]int
}

func total(seen map[string]map[int]int) int {
	n := 0
	for _, m := range seen {
		n += len(m)
	}
	return n
}

func (o *outputs) waitFor(cond func(map[string]map[int]int) bool, what string) {
	o.t.Helper()
	if o.cl == nil {
		cl, err := kgo.NewClient(kgo.SeedBrokers(o.broker), kgo.ConsumeTopics("counts.out"), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		if err != nil {
			o.t.Fatal(err)
		}
		o.t.Cleanup(cl.Close)
		o.cl, o.seen = cl, map[string]map[int]int{}
	}
	deadline := time.Now().Add(60 * time.Second)
	for !cond(o.seen) {
		if time.Now().After(deadline) {
			o.t.Fatalf("waiting for %s: gave up after 60s with %d counts", what, total(o.seen))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fetches := o.cl.PollFetches(ctx)
		cancel()
		fetches.EachRecord(func(r *kgo.Record) {
			var v struct {
				Key string `json:"key"`
				N   int    `json:"n"`
				Seq int    `json:"seq"`
			}
			if err := json.Unmarshal(r.Value, &v); err != nil {
				o.t.Fatalf("bad output %s: %v", r.Value, err)
			}
			if o.seen[v.Key] == nil {
				o.seen[v.Key] = map[int]int{}
			}
			// The output is written in the checkpoint transaction: a committed reader sees
			// each count once, even across the aborted transactions of a rebalance.
			if prev, dup := o.seen[v.Key][v.N]; dup {
				o.t.Errorf("%s: count %d emitted twice (for records %d and %d)", v.Key, v.N, prev, v.Seq)
			}
			o.seen[v.Key][v.N] = v.Seq
		})
	}
}
