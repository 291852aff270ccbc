package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

// Dead-letter header names. The original record's headers come first, unchanged.
const (
	HeaderStream          = "eventops.stream"
	HeaderStage           = "eventops.stage"
	HeaderReason          = "eventops.reason"
	HeaderSourceTopic     = "eventops.source.topic"
	HeaderSourcePartition = "eventops.source.partition"
	HeaderSourceOffset    = "eventops.source.offset"
	HeaderTime            = "eventops.time"
	// HeaderOriginalBytes is set on a dead letter whose payload was cut to fit the topic:
	// the size of the original value (and key, if that was cut too).
	HeaderOriginalBytes = "eventops.original_bytes"
	HeaderOriginalKey   = "eventops.original_key_bytes"
)

// DeadLetterWriter writes rejected records of one stream to a dead-letter topic: the original
// bytes and key, so the record can be replayed as it was, plus headers saying where it came
// from and why it failed.
type DeadLetterWriter struct {
	broker *Broker
	stream string
	// Clock stamps eventops.time (default: wall clock). Set it before the first Write.
	Clock engine.Clock
	// Metrics, if set, counts the dead letters written (eventops_dead_letters_total).
	Metrics *telemetry.Metrics
}

// NewDeadLetterWriter returns a writer for stream's rejects. It shares one producer per
// Broker, which Broker.Close closes.
func NewDeadLetterWriter(b *Broker, stream string) *DeadLetterWriter {
	return &DeadLetterWriter{broker: b, stream: stream, Clock: engine.WallClock{}}
}

// Write produces every item to topic (or to the item's own Topic, for side outputs) and returns once all are acknowledged (acks=all), or
// with the first error, in which case the caller retries the whole slice.
func (w *DeadLetterWriter) Write(ctx context.Context, topic string, items []engine.Rejected) error {
	if len(items) == 0 {
		return nil
	}
	if topic == "" {
		return errors.New("broker: dead letters: no topic")
	}
	client, err := w.broker.sharedProducer()
	if err != nil {
		return err
	}
	now := w.Clock.Now().UTC().Format(time.RFC3339Nano)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	counts := map[string]int{}
	for _, it := range items {
		to := topic
		if it.Topic != "" {
			to = it.Topic // a side output such as a window's late: topic
		}
		counts[to]++
		kr := DeadLetterRecord(w.stream, to, it, now, w.broker.MaxRecordBytes())
		wg.Add(1)
		client.Produce(ctx, kr, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("broker: writing %d dead letters to %s: %w", len(items), topic, firstErr)
	}
	if w.Metrics != nil {
		for to, n := range counts {
			w.Metrics.DeadLetters.WithLabelValues(w.stream, to).Add(float64(n))
		}
	}
	return nil
}

// DeadLetterRecord is the record a dead letter of stream becomes on topic: the original
// bytes, key and headers, then headers saying where it came from, why it failed (now is
// the eventops.time header, RFC 3339). A record larger than maxBytes (key, value and
// headers) is cut to fit, key first kept whole where it can be, and says its original sizes:
// a dead letter the broker refused would stop the stream it was meant to unblock.
func DeadLetterRecord(stream, topic string, it engine.Rejected, now string, maxBytes int) *kgo.Record {
	kr := &kgo.Record{Topic: topic}
	reason := "unknown error"
	if it.Err != nil {
		reason = it.Err.Error()
	}
	var src engine.Source
	if r := it.Record; r != nil {
		kr.Value, kr.Key, src = r.Raw, r.Key, r.Source
		kr.Headers = make([]kgo.RecordHeader, 0, len(r.Headers)+9)
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
	}
	add := func(k, v string) { kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)}) }
	own := len(kr.Headers) // the headers below are the engine's; those before, the record's
	add(HeaderStream, stream)
	add(HeaderStage, it.Stage)
	add(HeaderReason, truncate(reason, 4096))
	add(HeaderSourceTopic, src.Topic)
	add(HeaderSourcePartition, strconv.FormatInt(int64(src.Partition), 10))
	add(HeaderSourceOffset, strconv.FormatInt(src.Offset, 10))
	add(HeaderTime, now)
	if maxBytes > 0 && RecordBytes(kr) > maxBytes {
		fitDeadLetter(kr, maxBytes, own)
	}
	return kr
}

// fitDeadLetter cuts a dead letter to maxBytes: the original headers (those before index
// own) go first, as they are the least needed to find the record again; then the key and
// value are shortened.
func fitDeadLetter(kr *kgo.Record, maxBytes, own int) {
	valueBytes, keyBytes := len(kr.Value), len(kr.Key)
	kr.Headers = append([]kgo.RecordHeader(nil), kr.Headers[own:]...)
	kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: HeaderOriginalBytes, Value: strconv.AppendInt(nil, int64(valueBytes), 10)})
	if keyBytes > maxBytes/4 {
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: HeaderOriginalKey, Value: strconv.AppendInt(nil, int64(keyBytes), 10)})
		kr.Key = kr.Key[:maxBytes/4]
	}
	room := max(maxBytes-RecordBytes(&kgo.Record{Key: kr.Key, Headers: kr.Headers}), 0)
	kr.Value = kr.Value[:min(len(kr.Value), room)]
}

// RecordBytes is what a record counts against broker.max_record_bytes: its key, value and
// headers.
func RecordBytes(kr *kgo.Record) int {
	n := len(kr.Key) + len(kr.Value)
	for _, h := range kr.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
