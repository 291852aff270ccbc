package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/enginetest"
	"github.com/eventops/eventops-engine/engine/eval"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func TestOutputKeysHeadersAndValues(t *testing.T) {
	b := startEmbedded(t, t.TempDir())
	ensure(t, b, map[string]config.Topic{"out": {}})
	out, err := NewOutput(b, OutputConfig{
		Topic: "out",
		Key:   eval.MustCompile(`tenant_id + "/" + host`, eval.Any),
		Headers: map[string]*eval.Program{
			"severity": eval.MustCompile(`value > 90 ? "critical" : "ok"`, eval.Any),
			"value":    eval.MustCompile(`int(value)`, eval.Any),
			"missing":  eval.MustCompile(`nope`, eval.Any),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	batch := []*engine.Record{
		{Value: map[string]any{"tenant_id": "acme", "host": "h1", "value": 95.0}, Headers: []engine.Header{{Key: "trace", Value: []byte("t1")}}},
		{Value: map[string]any{"tenant_id": "acme", "host": "h2", "value": "not a number"}}, // int() fails: rejected
		{Raw: []byte("raw bytes"), Key: []byte("k")},                                        // no fields: the key expression fails
	}
	var rejects engine.Rejects
	if err := out.Write(testCtx(t), batch, &rejects); err != nil {
		t.Fatal(err)
	}
	rejected := map[*engine.Record]bool{}
	for _, r := range rejects.Items {
		rejected[r.Record] = true
		if r.Stage != "output" || r.Err == nil {
			t.Errorf("reject stage %q err %v", r.Stage, r.Err)
		}
	}
	if !rejected[batch[1]] || !rejected[batch[2]] || rejected[batch[0]] {
		t.Errorf("rejected = %v, want the records whose header or key cannot be evaluated", rejects.Items)
	}
	recs := consumeAll(t, b, "out")
	if len(recs) != len(batch)-rejects.Len() {
		t.Fatalf("topic holds %d records, want %d", len(recs), len(batch)-rejects.Len())
	}
	r := recs[0]
	var v map[string]any
	if err := json.Unmarshal(r.Value, &v); err != nil || v["host"] != "h1" || v["value"] != 95.0 {
		t.Errorf("value = %s (%v)", r.Value, err)
	}
	if string(r.Key) != "acme/h1" {
		t.Errorf("key = %q, want acme/h1", r.Key)
	}
	h := map[string]string{}
	for _, hd := range r.Headers {
		h[hd.Key] = string(hd.Value)
	}
	if h["trace"] != "t1" || h["severity"] != "critical" || h["value"] != "95" {
		t.Errorf("headers = %v", h)
	}
	if _, ok := h["missing"]; ok {
		t.Errorf("a header whose expression is nil was written: %v", h)
	}
}

func TestOutputWritesRawWhenThereIsNoValue(t *testing.T) {
	b := startEmbedded(t, t.TempDir())
	ensure(t, b, map[string]config.Topic{"out": {}})
	out, err := NewOutput(b, OutputConfig{Topic: "out"})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := out.Write(testCtx(t), []*engine.Record{{Raw: []byte("not json"), Key: []byte("k")}}, &engine.Rejects{}); err != nil {
		t.Fatal(err)
	}
	recs := consumeAll(t, b, "out")
	if len(recs) != 1 || string(recs[0].Value) != "not json" || string(recs[0].Key) != "k" {
		t.Fatalf("records = %v", recs)
	}
}

func TestDeadLetterCarriesOriginalAndReason(t *testing.T) {
	b := startEmbedded(t, t.TempDir())
	ensure(t, b, map[string]config.Topic{"ops.deadletter.v1": {}})
	w := NewDeadLetterWriter(b, "normalize")
	w.Clock = fixedClock{time.Date(2025, 10, 16, 9, 0, 0, 0, time.UTC)}
	rec := &engine.Record{
		Raw: []byte(`{"host":`), Key: []byte("host-a"),
		Headers: []engine.Header{{Key: "agent", Value: []byte("v2")}},
		Source:  engine.Source{Topic: "ingest.raw.agent", Partition: 2, Offset: 41},
		Value:   map[string]any{"changed": true},
	}
	err := w.Write(testCtx(t), "ops.deadletter.v1", []engine.Rejected{{Record: rec, Stage: "decode", Err: fmt.Errorf("unexpected end of JSON input")}})
	if err != nil {
		t.Fatal(err)
	}
	recs := consumeAll(t, b, "ops.deadletter.v1")
	if len(recs) != 1 {
		t.Fatalf("%d dead letters, want 1", len(recs))
	}
	dl := recs[0]
	if string(dl.Value) != `{"host":` || string(dl.Key) != "host-a" {
		t.Errorf("dead letter value %q key %q, want the original bytes", dl.Value, dl.Key)
	}
	want := []kgo.RecordHeader{
		{Key: "agent", Value: []byte("v2")},
		{Key: "eventops.stream", Value: []byte("normalize")},
		{Key: "eventops.stage", Value: []byte("decode")},
		{Key: "eventops.reason", Value: []byte("unexpected end of JSON input")},
		{Key: "eventops.source.topic", Value: []byte("ingest.raw.agent")},
		{Key: "eventops.source.partition", Value: []byte("2")},
		{Key: "eventops.source.offset", Value: []byte("41")},
		{Key: "eventops.time", Value: []byte("2025-10-16T09:00:00Z")},
	}
	if len(dl.Headers) != len(want) {
		t.Fatalf("headers = %v", dl.Headers)
	}
	for i, h := range want {
		if dl.Headers[i].Key != h.Key || string(dl.Headers[i].Value) != string(h.Value) {
			t.Errorf("header %d = %s=%q, want %s=%q", i, dl.Headers[i].Key, dl.Headers[i].Value, h.Key, h.Value)
		}
	}
}

var topicSeq int

// TestOutputConformance runs the shared output suite on the Kafka output, each case on its
// own topic of one embedded broker.
func TestOutputConformance(t *testing.T) {
	b := startEmbedded(t, t.TempDir())
	enginetest.TestOutput(t, func(t *testing.T) (engine.Output, enginetest.ReadBack) {
		topicSeq++
		topic := "conformance.out." + strconv.Itoa(topicSeq)
		ensure(t, b, map[string]config.Topic{topic: {Partitions: 3}})
		out, err := NewOutput(b, OutputConfig{Topic: topic})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { out.Close() })
		return out, func(ctx context.Context) ([]map[string]any, error) {
			var rows []map[string]any
			for _, r := range consumeAll(t, b, topic) {
				var m map[string]any
				if err := json.Unmarshal(r.Value, &m); err != nil {
					return nil, fmt.Errorf("offset %d: %w", r.Offset, err)
				}
				rows = append(rows, m)
			}
			return rows, nil
		}
	})
}

func TestInputConformance(t *testing.T) {
	b := startEmbedded(t, t.TempDir())
	enginetest.TestInput(t, func(t *testing.T) enginetest.InputHarness {
		topicSeq++
		topic := "conformance.in." + strconv.Itoa(topicSeq)
		ensure(t, b, map[string]config.Topic{topic: {Partitions: 3}})
		producer := newClient(t, b, kgo.DefaultProduceTopic(topic))
		return enginetest.InputHarness{
			Produce: func(ctx context.Context, values [][]byte) error {
				recs := make([]*kgo.Record, len(values))
				for i, v := range values {
					recs[i] = &kgo.Record{Value: v, Key: []byte(strconv.Itoa(i))}
				}
				return producer.ProduceSync(ctx, recs...).FirstErr()
			},
			Open: func(t *testing.T) engine.Input {
				in, err := NewInput(b, InputConfig{Stream: "conformance", Topic: topic, Group: "group." + topic, BatchSize: 7})
				if err != nil {
					t.Fatal(err)
				}
				return in
			},
		}
	})
}

// A record over max_record_bytes is the stream's to dead-letter, not the broker's to
// refuse forever: Write rejects it with its size and writes the rest; its dead letter is
// cut to fit the broker's limit and keeps where it came from, why, and its original size.
func TestOversizedRecordIsRejectedAndItsDeadLetterFits(t *testing.T) {
	b := startEmbedded(t, t.TempDir())
	ensure(t, b, map[string]config.Topic{"out": {}, "dlq": {}})
	out, err := NewOutput(b, OutputConfig{Topic: "out", Key: eval.MustCompile(`host`, eval.Any)})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	huge := strings.Repeat("h", 1<<20) // a 1 MiB host name: key and value both carry it
	batch := []*engine.Record{
		{Value: map[string]any{"host": "h1", "value": 1.0}},
		{Value: map[string]any{"host": huge, "value": 2.0}, Raw: []byte(`{"host":"` + huge + `"}`), Source: engine.Source{Topic: "in", Offset: 7}},
		{Value: map[string]any{"host": "h3", "value": 3.0}},
	}
	var rejects engine.Rejects
	if err := out.Write(testCtx(t), batch, &rejects); err != nil {
		t.Fatalf("a batch with an oversized record: %v (the stream would retry it forever)", err)
	}
	if rejects.Len() != 1 || rejects.Items[0].Record != batch[1] || !errors.Is(rejects.Items[0].Err, ErrRecordTooLarge) {
		t.Fatalf("rejects = %v, want the oversized record alone, as too large", rejects.Items)
	}
	if got := len(consumeAll(t, b, "out")); got != 2 {
		t.Errorf("topic holds %d records, want the 2 that fit", got)
	}
	if msg := rejects.Items[0].Err.Error(); !strings.Contains(msg, "2097") || !strings.Contains(msg, "max_record_bytes 1000000") {
		t.Errorf("reason %q: want the record's size and the limit", msg)
	}

	w := NewDeadLetterWriter(b, "normalize")
	if err := w.Write(testCtx(t), "dlq", rejects.Items); err != nil {
		t.Fatalf("writing the oversized record's dead letter: %v", err)
	}
	dl := consumeAll(t, b, "dlq")
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	if n := RecordBytes(dl[0]); n > b.MaxRecordBytes() {
		t.Errorf("dead letter of %d bytes, over the %d limit", n, b.MaxRecordBytes())
	}
	headers := map[string]string{}
	for _, h := range dl[0].Headers {
		headers[h.Key] = string(h.Value)
	}
	if headers[HeaderOriginalBytes] != strconv.Itoa(len(batch[1].Raw)) || headers[HeaderSourceOffset] != "7" || !strings.Contains(headers[HeaderReason], "too large") {
		t.Errorf("dead letter headers %v: want the original size, the source offset and the reason", headers)
	}
	if !strings.HasPrefix(string(batch[1].Raw), string(dl[0].Value)) || len(dl[0].Value) < 900_000 {
		t.Errorf("dead letter value is %d bytes, want the start of the original, as much as fits", len(dl[0].Value))
	}
}

// Encoding for a transaction with the values shared writes the very records it writes
// without: the key and headers see the value as the stream built it (a time, an integer),
// not as the readers will get it; and each shared value is what decoding its bytes gives.
func TestEncodeSharingValuesWritesTheSameRecords(t *testing.T) {
	at := time.Date(2026, 12, 7, 15, 4, 5, 123456789, time.FixedZone("", 3600))
	cfg := OutputConfig{
		Topic:   "out",
		Key:     eval.MustCompile(`type(at) + "/" + type(n)`, eval.Any),
		Headers: map[string]*eval.Program{"at": eval.MustCompile(`at`, eval.Any)},
	}
	batch := func() []*engine.Record {
		return []*engine.Record{
			{Value: map[string]any{"at": at, "n": 7, "host": "h1", "tags": map[string]any{"env": "prod"}}},
			{Value: map[string]any{"at": at, "bad": "\xff"}}, // invalid UTF-8: written, not shared
		}
	}
	var rejects engine.Rejects
	plain, none := NewEncoder(cfg).Encode(batch(), &rejects, false)
	shared, values := NewEncoder(cfg).Encode(batch(), &rejects, true)
	if rejects.Len() != 0 || none != nil || len(plain) != 2 || len(shared) != 2 || len(values) != 2 {
		t.Fatalf("rejects %v, %d and %d records, values %v and %v", rejects.Items, len(plain), len(shared), none, values)
	}
	for i := range plain {
		if string(plain[i].Key) != string(shared[i].Key) || string(plain[i].Value) != string(shared[i].Value) ||
			fmt.Sprint(plain[i].Headers) != fmt.Sprint(shared[i].Headers) {
			t.Errorf("record %d: %q %s %v, shared %q %s %v", i, plain[i].Key, plain[i].Value, plain[i].Headers, shared[i].Key, shared[i].Value, shared[i].Headers)
		}
	}
	if string(shared[0].Key) != "time.Time/int" {
		t.Errorf("the key saw the value as shared, not as built: %q", shared[0].Key)
	}
	var decoded map[string]any
	if err := json.Unmarshal(shared[0].Value, &decoded); err != nil || fmt.Sprint(decoded) != fmt.Sprint(values[0]) {
		t.Errorf("shared value %v, decoding its bytes gives %v (%v)", values[0], decoded, err)
	}
	if values[1] != nil {
		t.Errorf("a value with invalid UTF-8 was shared: %v", values[1])
	}
}
