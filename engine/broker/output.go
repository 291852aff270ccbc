package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/codec"
	"github.com/eventops/eventops-engine/engine/eval"
)

// OutputConfig configures a Kafka output.
type OutputConfig struct {
	// Stream names the stream in logs.
	Stream string
	Topic  string
	// Key computes each record's key; nil keeps the record's Key.
	Key *eval.Program
	// Headers computes extra headers per record, added after the record's own.
	Headers map[string]*eval.Program
	// Clock is what now() sees in Key and Headers (default: wall clock).
	Clock engine.Clock
	// MaxRecordBytes rejects (to the dead-letter topic) a record whose key, value and
	// headers take more; 0: DefaultMaxRecordBytes.
	MaxRecordBytes int
	// DeliveryTimeout, when set, fails a record the broker has not acknowledged this long
	// after it was handed over (kgo.RecordDeliveryTimeout: franz-go checks it when it sends
	// or retries a batch, so a broker that cannot be reached at all may hold a record
	// longer: a caller that must answer in time waits on its own deadline too); 0 waits for
	// as long as it takes.
	DeliveryTimeout time.Duration
	// Encoder writes values (nil: JSON). Values it writes are not shared with the
	// process's readers of the topic: what they decode from the bytes is theirs to say.
	Encoder engine.ValueEncoder
}

// Output produces records to a topic with an idempotent producer and acks=all. Write returns
// once the broker acknowledged every record of the batch.
type Output struct {
	cfg    OutputConfig
	client *kgo.Client
}

var _ engine.Output = (*Output)(nil)

// NewOutput creates the producer.
func NewOutput(b *Broker, cfg OutputConfig) (*Output, error) {
	if cfg.Topic == "" {
		return nil, errors.New("broker: output needs a topic")
	}
	if cfg.Clock == nil {
		cfg.Clock = engine.WallClock{}
	}
	if cfg.MaxRecordBytes <= 0 {
		cfg.MaxRecordBytes = b.MaxRecordBytes()
	}
	opts := b.ClientOpts()
	if cfg.DeliveryTimeout > 0 {
		opts = append(opts, kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout))
	}
	client, err := kgo.NewClient(append(opts,
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// Write hands over a whole batch and then flushes, so lingering only matters for a
		// batch larger than the buffer; a short linger fills produce requests in that case.
		kgo.ProducerLinger(5*time.Millisecond),
		// No more than the broker takes in one message (the embedded broker is set to
		// max_record_bytes plus this overhead): a larger batch is refused as a whole
		// (MESSAGE_TOO_LARGE) however often it is sent.
		kgo.ProducerBatchMaxBytes(int32(b.MaxRecordBytes()+recordOverheadBytes)),
		kgo.MaxBufferedRecords(100_000),
		b.compression(),
	)...)
	if err != nil {
		return nil, fmt.Errorf("broker: output %s: creating producer: %w", cfg.Topic, err)
	}
	return &Output{cfg: cfg, client: client}, nil
}

// NewEncoder returns an Output that only encodes (Encode), for runs without a broker (the
// rule test runner): its records are those Write would produce.
func NewEncoder(cfg OutputConfig) *Output {
	if cfg.Clock == nil {
		cfg.Clock = engine.WallClock{}
	}
	if cfg.MaxRecordBytes <= 0 {
		cfg.MaxRecordBytes = DefaultMaxRecordBytes
	}
	return &Output{cfg: cfg}
}

// Write encodes and produces every record of batch and waits for all acknowledgements. A
// record whose key or headers cannot be evaluated, or whose value cannot be encoded, goes to
// rejects with stage "output". If any produce fails the error is returned and the caller
// retries the batch; records already acknowledged are then written again (at-least-once).
func (o *Output) Write(ctx context.Context, batch []*engine.Record, rejects *engine.Rejects) error {
	if len(batch) == 0 {
		return nil
	}
	now := o.cfg.Clock.Now()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		failed   int
	)
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			failed++
			mu.Unlock()
		}
		wg.Done()
	}
	var slab []byte
	for i, rec := range batch {
		kr, _, err := o.encode(rec, now, &slab, len(batch)-i, false)
		if err != nil {
			if rejects == nil {
				return fmt.Errorf("broker: output %s: record %s/%d@%d: %w", o.cfg.Topic, rec.Source.Topic, rec.Source.Partition, rec.Source.Offset, err)
			}
			rejects.Add(rec, "output", err)
			continue
		}
		wg.Add(1)
		o.client.Produce(ctx, kr, done)
	}
	// Flush sends what is lingering at once instead of waiting out the linger.
	flushErr := o.client.Flush(ctx)
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("broker: output %s: %d of %d records not acknowledged: %w", o.cfg.Topic, failed, len(batch), firstErr)
	}
	if flushErr != nil {
		return fmt.Errorf("broker: output %s: %w", o.cfg.Topic, flushErr)
	}
	return nil
}

// Encode turns batch into the Kafka records Write would produce, without producing them, for
// a stream that writes its output inside a transaction (Input.AddToTransaction). A record that
// cannot be encoded goes to rejects. With share set, values[i] is the value out[i] was
// encoded from, turned into what decoding its bytes gives (codec.AppendShareable) for the
// streams of the process that read the topic, or nil where it cannot be; without, values is
// nil.
func (o *Output) Encode(batch []*engine.Record, rejects *engine.Rejects, share bool) (out []*kgo.Record, values []map[string]any) {
	now := o.cfg.Clock.Now()
	out = make([]*kgo.Record, 0, len(batch))
	if share {
		values = make([]map[string]any, 0, len(batch))
	}
	var slab []byte
	for i, rec := range batch {
		kr, shared, err := o.encode(rec, now, &slab, len(batch)-i, share)
		if err != nil {
			rejects.Add(rec, "output", err)
			continue
		}
		out = append(out, kr)
		if !share {
			continue
		}
		if shared {
			values = append(values, rec.Value)
		} else {
			values = append(values, nil)
		}
	}
	return out, values
}

// slabBytes is the largest block record values are encoded into: one allocation for many
// records instead of several (growing) per record. Values are never rewritten once encoded,
// so each record's value stays valid until the producer is done with it.
const (
	slabBytes     = 64 << 10
	slabPerRecord = 1 << 10 // a first guess at a value's size, for small batches
)

// encode encodes one record, and with share set reports whether its value is now what
// decoding the bytes gives (codec.AppendShareable, which changes the value's top level: the
// key and headers are evaluated before).
func (o *Output) encode(rec *engine.Record, now time.Time, slab *[]byte, left int, share bool) (*kgo.Record, bool, error) {
	kr := &kgo.Record{Topic: o.cfg.Topic, Key: rec.Key}
	if err := o.keyAndHeaders(kr, rec, now); err != nil {
		return nil, false, err
	}
	shared, err := o.encodeValue(kr, rec, slab, left, share)
	if err != nil {
		return nil, false, err
	}
	return kr, shared, o.checkSize(kr)
}

// encodeValue encodes rec's value into slab, a buffer shared by the batch's values (left is
// how many records of the batch are still to encode, this one included), so that a batch
// costs a few allocations rather than one per value. A small batch gets a small slab: a
// trickle of one-record batches must not allocate 64 KiB each.
func (o *Output) encodeValue(kr *kgo.Record, rec *engine.Record, slab *[]byte, left int, share bool) (shared bool, err error) {
	if rec.Value == nil {
		kr.Value = rec.Raw
		return false, nil
	}
	if cap(*slab)-len(*slab) < slabPerRecord {
		*slab = make([]byte, 0, min(slabBytes, max(left, 1)*slabPerRecord))
	}
	start := len(*slab)
	var buf []byte
	switch {
	case o.cfg.Encoder != nil:
		buf, err = o.cfg.Encoder.Encode(*slab, rec.Value)
	case share:
		buf, shared, err = codec.AppendShareable(*slab, rec.Value)
	default:
		buf, err = codec.AppendObject(*slab, rec.Value)
	}
	if err != nil {
		return false, fmt.Errorf("encoding value: %w", err)
	}
	*slab = buf
	kr.Value = buf[start:len(buf):len(buf)]
	return shared, nil
}

// keyAndHeaders sets kr's key (from the output's key expression) and headers (rec's, then
// the output's expressions).
func (o *Output) keyAndHeaders(kr *kgo.Record, rec *engine.Record, now time.Time) error {
	if len(rec.Headers) > 0 || len(o.cfg.Headers) > 0 {
		kr.Headers = make([]kgo.RecordHeader, 0, len(rec.Headers)+len(o.cfg.Headers))
		for _, h := range rec.Headers {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
	}
	if o.cfg.Key == nil && len(o.cfg.Headers) == 0 {
		return nil
	}
	env := eval.Env{Vars: rec.Value, Source: rec.Source, Now: now}
	if o.cfg.Key != nil {
		v, err := o.cfg.Key.Eval(env)
		if err != nil {
			return fmt.Errorf("key: %w", err)
		}
		if kr.Key, err = toBytes(v); err != nil {
			return fmt.Errorf("key: %w", err)
		}
	}
	for name, p := range o.cfg.Headers {
		v, err := p.Eval(env)
		if err != nil {
			return fmt.Errorf("header %s: %w", name, err)
		}
		if v == nil {
			continue // a missing field leaves the header out rather than writing "null"
		}
		b, err := toBytes(v)
		if err != nil {
			return fmt.Errorf("header %s: %w", name, err)
		}
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: name, Value: b})
	}
	return nil
}

// ErrRecordTooLarge says a record is over broker.max_record_bytes.
var ErrRecordTooLarge = errors.New("record too large")

// checkSize refuses a record the broker would refuse: retrying it could never succeed.
func (o *Output) checkSize(kr *kgo.Record) error {
	if n := RecordBytes(kr); n > o.cfg.MaxRecordBytes {
		return fmt.Errorf("%w for topic %s: %d bytes (key %d, value %d), over max_record_bytes %d", ErrRecordTooLarge, o.cfg.Topic, n, len(kr.Key), len(kr.Value), o.cfg.MaxRecordBytes)
	}
	return nil
}

// toBytes renders a key or header value: strings and bytes as they are, numbers and booleans
// in their usual text form, anything else as JSON; nil is a null key.
func toBytes(v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []byte(x), nil
	case []byte:
		return x, nil
	case bool:
		return strconv.AppendBool(nil, x), nil
	case int:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(nil, x, 10), nil
	case float64:
		return strconv.AppendFloat(nil, x, 'f', -1, 64), nil
	case time.Time:
		return []byte(x.UTC().Format(time.RFC3339Nano)), nil
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return nil, fmt.Errorf("cannot encode %T: %w", v, err)
		}
		return b, nil
	}
}

// Close flushes nothing (Write already waited) and closes the producer.
func (o *Output) Close() error {
	o.client.Close()
	return nil
}

// compression is how the engine's producers compress batches. Compression saves network,
// which the in-process broker does not use: on loopback it is CPU spent twice (compress
// here, decompress in every consumer) for nothing, and plain batches are what every client
// reads without a codec plugin (kafkajs reads only gzip on its own). External brokers get
// lz4.
func (b *Broker) compression() kgo.Opt {
	if b.Embedded() {
		return kgo.ProducerBatchCompression(kgo.NoCompression())
	}
	return kgo.ProducerBatchCompression(kgo.Lz4Compression(), kgo.NoCompression())
}
