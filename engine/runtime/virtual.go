package runtime

import (
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/broker"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

// VirtualClock is an engine.Clock that only moves when told: the time of a Virtual run.
type VirtualClock struct {
	mu sync.Mutex
	t  time.Time
}

// NewVirtualClock returns a clock standing at t.
func NewVirtualClock(t time.Time) *VirtualClock { return &VirtualClock{t: t} }

// Now is the clock's time.
func (c *VirtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *VirtualClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Message is a record in a Virtual run's topics.
type Message struct {
	Topic     string
	TopicID   [16]byte
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []engine.Header
	Time      time.Time
}

// Header returns the value of the message's header key, and whether it has one.
func (m Message) Header(key string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// Rejection is a record a stream of a Virtual run could not process, or a late one.
type Rejection struct {
	Stream string
	engine.Rejected
	// To is the topic it was written to: the stream's dead-letter topic or a side output.
	To string
}

// Virtual runs a plan's streams on in-memory topics, one step at a time, on the plan's
// virtual clock: the engine behind `eventops-engine test`. Records go through the same
// stream code as a run (decoding, schemas, processors, output encoding, dead letters);
// only the broker and the stores are replaced. Topics are in-memory logs whose partitions
// are chosen by key as Kafka's default partitioner does (murmur2; records without a key go
// to partition 0); registered outputs (PostgreSQL, Parquet, ...) discard their records; nothing is
// committed or checkpointed. Not safe for concurrent use.
type Virtual struct {
	plan     *Plan
	clock    *VirtualClock
	streams  []*virtualStream
	topics   map[string]*memTopic
	rejected []Rejection
	alerts   []AlertEvent
}

// AlertEvent is an alert record a rule processor emitted.
type AlertEvent struct {
	Stream, Processor string
	Record            *engine.Record
}

type virtualStream struct {
	s    *stream
	read int // messages of the input topic already read
	in   int // records read so far
}

type memTopic struct {
	name       string
	id         [16]byte // a stand-in for the broker's topic ID, from the name
	partitions int32
	messages   []Message
	next       []int64 // next offset per partition
}

// Virtual prepares a run of the streams named in only (all streams and sinks when empty)
// on in-memory topics. The plan must have been built with clock as its Options.Clock.
func (p *Plan) Virtual(clock *VirtualClock, only []string) *Virtual {
	v := &Virtual{plan: p, clock: clock, topics: map[string]*memTopic{}}
	for _, lk := range p.Lookups {
		if lk.Topic() != "" {
			lk.Replace(nil) // a run starts with empty topics: a table kept in one starts empty
		}
	}
	metrics := telemetry.New()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, sp := range p.Streams {
		if len(only) > 0 && !slices.Contains(only, sp.Name) {
			continue
		}
		// tickInterval only says "tick it": a Virtual run ticks at every step of the clock.
		s := &stream{plan: sp, metrics: metrics, log: log, clock: clock, backoffMin: time.Millisecond, backoffMax: time.Millisecond, tickInterval: time.Second}
		s.output = v.outputFor(sp)
		s.dlq = virtualDeadLetters{v: v, stream: sp.Name}
		name := sp.Name
		s.onAlerts = func(proc NamedProcessor, recs []*engine.Record) {
			for _, r := range recs {
				v.alerts = append(v.alerts, AlertEvent{Stream: name, Processor: proc.Path, Record: r})
			}
		}
		s.setTicking()
		v.streams = append(v.streams, &virtualStream{s: s})
	}
	return v
}

// topic returns the in-memory topic, made with its declared partitions (1 if undeclared).
func (v *Virtual) topic(name string) *memTopic {
	t := v.topics[name]
	if t == nil {
		n := int32(1)
		if decl, ok := v.plan.Pipeline.Topics[name]; ok && decl.Partitions > 0 {
			n = int32(decl.Partitions)
		}
		t = &memTopic{name: name, partitions: n, next: make([]int64, n)}
		sum := sha256.Sum256([]byte(name))
		copy(t.id[:], sum[:])
		v.topics[name] = t
	}
	return t
}

// Produce appends a record to topic at the clock's time (from outside the pipeline, or
// written by a stream).
func (v *Virtual) Produce(topic string, key, value []byte, headers []engine.Header) Message {
	t := v.topic(topic)
	p := int32(0)
	if key != nil {
		p = int32(murmur2(key)&0x7fffffff) % t.partitions
	}
	m := Message{Topic: topic, TopicID: t.id, Partition: p, Offset: t.next[p], Key: key, Value: value, Headers: headers, Time: v.clock.Now()}
	t.next[p]++
	t.messages = append(t.messages, m)
	for _, lk := range v.plan.Lookups {
		if lk.Topic() == topic {
			lk.Apply([]broker.KeyValue{{Key: key, Value: value}}, func([]byte, error) {})
		}
	}
	return m
}

// Messages lists the records of topic, in the order they were written.
func (v *Virtual) Messages(topic string) []Message {
	if t := v.topics[topic]; t != nil {
		return t.messages
	}
	return nil
}

// Topics lists the topics written so far.
func (v *Virtual) Topics() []string {
	out := make([]string, 0, len(v.topics))
	for name := range v.topics {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Rejected lists the records the streams rejected (and late ones), in order.
func (v *Virtual) Rejected() []Rejection { return v.rejected }

// Alerts lists the alert records rule processors emitted, in order.
func (v *Virtual) Alerts() []AlertEvent { return v.alerts }

// RecordsIn is how many records stream has read.
func (v *Virtual) RecordsIn(stream string) int {
	for _, vs := range v.streams {
		if vs.s.plan.Name == stream {
			return vs.in
		}
	}
	return 0
}

// Advance moves the clock to t (never back), lets every stream read what is waiting for it,
// then ticks the streams whose processors depend on the clock, until nothing moves.
func (v *Virtual) Advance(ctx context.Context, t time.Time) {
	if t.After(v.clock.Now()) {
		v.clock.Set(t)
	}
	v.drain(ctx)
	for _, vs := range v.streams {
		if vs.s.tickEvery == 0 {
			continue
		}
		if p := vs.s.tick(ctx); p != nil {
			v.deliver(ctx, vs.s, p)
			v.drain(ctx)
		}
	}
}

// drain runs the streams until none has anything left to read: a record a stream writes is
// read by the streams downstream at the same instant.
func (v *Virtual) drain(ctx context.Context) {
	for moved := true; moved; {
		moved = false
		for _, vs := range v.streams {
			t := v.topics[vs.s.plan.Config.Input.Topic]
			if t == nil || vs.read == len(t.messages) {
				continue
			}
			msgs := t.messages[vs.read:]
			vs.read = len(t.messages)
			batch := make([]*engine.Record, len(msgs))
			for i, m := range msgs {
				batch[i] = &engine.Record{Raw: m.Value, Key: m.Key, Headers: slices.Clone(m.Headers), Timestamp: m.Time,
					Source: engine.Source{Topic: m.Topic, TopicID: m.TopicID, Partition: m.Partition, Offset: m.Offset}}
			}
			vs.in += len(batch)
			v.deliver(ctx, vs.s, vs.s.handle(ctx, batch))
			moved = true
		}
	}
}

// deliver writes a processed batch as the delivery stage does: the output, then the
// rejected records.
func (v *Virtual) deliver(ctx context.Context, s *stream, p *processed) {
	if err := s.write(ctx, p); err != nil {
		for _, r := range p.out {
			p.rejects.Add(r, "output", err)
		}
	}
	if len(p.rejects.Items) > 0 {
		_ = s.dlq.Write(ctx, s.plan.DeadLetter, p.rejects.Items)
	}
}

// outputFor is the in-memory stand-in for a stream's output: topics get records encoded as
// the broker output encodes them; tables discard them (tests expect on topics).
func (v *Virtual) outputFor(sp *StreamPlan) engine.Output {
	out := sp.Config.Output
	if out.Plugin != nil {
		return discardTable{}
	}
	return virtualTopic{v: v, enc: broker.NewEncoder(broker.OutputConfig{Stream: sp.Name, Topic: out.Topic, Key: sp.OutputKey, Headers: sp.OutputHeader, Clock: v.clock})}
}

type virtualTopic struct {
	v   *Virtual
	enc *broker.Output
}

func (o virtualTopic) Write(_ context.Context, batch []*engine.Record, rejects *engine.Rejects) error {
	records, _ := o.enc.Encode(batch, rejects, false)
	for _, kr := range records {
		var headers []engine.Header
		for _, h := range kr.Headers {
			headers = append(headers, engine.Header{Key: h.Key, Value: h.Value})
		}
		o.v.Produce(kr.Topic, kr.Key, kr.Value, headers)
	}
	return nil
}

func (o virtualTopic) Close() error { return nil }

type discardTable struct{}

func (discardTable) Write(context.Context, []*engine.Record, *engine.Rejects) error { return nil }
func (discardTable) Close() error                                                   { return nil }

// virtualDeadLetters writes rejected records to their topics as the dead-letter writer does
// (the original bytes, the reason in headers) and keeps them for the test's expectations.
type virtualDeadLetters struct {
	v      *Virtual
	stream string
}

func (d virtualDeadLetters) Write(_ context.Context, topic string, items []engine.Rejected) error {
	now := d.v.clock.Now()
	for _, it := range items {
		to := topic
		if it.Topic != "" {
			to = it.Topic
		}
		d.v.rejected = append(d.v.rejected, Rejection{Stream: d.stream, Rejected: it, To: to})
		if to == "" {
			continue
		}
		kr := broker.DeadLetterRecord(d.stream, to, it, now.UTC().Format(time.RFC3339Nano), broker.DefaultMaxRecordBytes)
		var headers []engine.Header
		for _, h := range kr.Headers {
			headers = append(headers, engine.Header{Key: h.Key, Value: h.Value})
		}
		d.v.Produce(to, kr.Key, kr.Value, headers)
	}
	return nil
}

// murmur2 is Kafka's key hash (the Java client's Utils.murmur2), which its default
// partitioner and franz-go's use for keyed records: partition = (hash & 0x7fffffff) % n.
func murmur2(data []byte) uint32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	n := len(data)
	h := uint32(seed) ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
