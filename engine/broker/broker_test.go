package broker

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
)

func TestEmbeddedListenMustBeLoopback(t *testing.T) {
	tests := []struct {
		listen string
		ok     bool
	}{
		{"127.0.0.1:0", true},
		{"localhost:0", true},
		{"0.0.0.0:0", false},
		{":0", false},
		{"10.1.2.3:0", false},
		{"example.com:0", false},
		{"127.0.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.listen, func(t *testing.T) {
			b, err := Start(context.Background(), config.Broker{Embedded: &config.Embedded{Listen: tt.listen, DataDir: t.TempDir()}}, nil)
			if b != nil {
				b.Close()
			}
			if (err == nil) != tt.ok {
				t.Fatalf("Start(listen %q) error = %v, want ok=%v", tt.listen, err, tt.ok)
			}
		})
	}
}

func TestExternalBrokersStartNothing(t *testing.T) {
	b, err := Start(context.Background(), config.Broker{Brokers: []string{"kafka-1:9092", "kafka-2:9092"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Embedded() {
		t.Fatal("an embedded broker was started although brokers were given")
	}
	if got := b.Addrs(); len(got) != 2 || got[0] != "kafka-1:9092" {
		t.Fatalf("Addrs() = %v", got)
	}
	if _, err := Start(context.Background(), config.Broker{}, nil); err == nil {
		t.Fatal("Start without brokers or embedded succeeded")
	}
}

// Real clients bootstrap from the listen address and then dial whatever metadata
// advertises, so the two must be the same address.
func TestEmbeddedAdvertisesItsListenAddress(t *testing.T) {
	b := startEmbedded(t, t.TempDir())
	md, err := kadm.NewClient(newClient(t, b)).BrokerMetadata(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 1 {
		t.Fatalf("metadata lists %d brokers, want 1", len(md.Brokers))
	}
	got := net.JoinHostPort(md.Brokers[0].Host, strconv.Itoa(int(md.Brokers[0].Port)))
	if got != b.Addrs()[0] {
		t.Fatalf("metadata advertises %s, broker listens on %s", got, b.Addrs()[0])
	}
}

func TestEmbeddedKeepsRecordsAndOffsetsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := testCtx(t)
	const topic = "ingest.raw.agent"

	b := startEmbedded(t, dir)
	ensure(t, b, map[string]config.Topic{topic: {Partitions: 2, Retention: config.Duration(72 * 3600e9)}})
	out, err := NewOutput(b, OutputConfig{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	var batch []*engine.Record
	for i := range 10 {
		batch = append(batch, &engine.Record{Raw: []byte("event-" + strconv.Itoa(i)), Key: []byte(strconv.Itoa(i % 4))})
	}
	if err := out.Write(ctx, batch, &engine.Rejects{}); err != nil {
		t.Fatal(err)
	}
	out.Close()
	in, err := NewInput(b, InputConfig{Stream: "s", Topic: topic, Group: "eventops.s"})
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	for read < 10 {
		recs, err := in.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := in.Ack(ctx, recs); err != nil {
			t.Fatal(err)
		}
		read += len(recs)
	}
	in.Close()
	b.Close()

	b2 := startEmbedded(t, dir)
	got := consumeAll(t, b2, topic)
	if len(got) != 10 {
		t.Fatalf("after restart the topic holds %d records, want 10", len(got))
	}
	offsets, err := kadm.NewClient(newClient(t, b2)).FetchOffsets(ctx, "eventops.s")
	if err != nil {
		t.Fatal(err)
	}
	committed := int64(0)
	offsets.Each(func(o kadm.OffsetResponse) { committed += o.At })
	if committed != 10 {
		t.Fatalf("after restart the group's committed offsets sum to %d, want 10 (every record acked)", committed)
	}
	if err := b2.EnsureTopics(ctx, map[string]config.Topic{topic: {Partitions: 2, Retention: config.Duration(72 * 3600e9)}}); err != nil {
		t.Fatalf("EnsureTopics on a restarted broker: %v", err)
	}
}

func TestRecordsFromOtherClientsAreRead(t *testing.T) {
	// A record produced by any client (kcat, the seed's agents) reaches a stream's input with
	// its key, headers, timestamp and position.
	b := startEmbedded(t, t.TempDir())
	ensure(t, b, map[string]config.Topic{"in": {}})
	produceSync(t, b, &kgo.Record{Topic: "in", Key: []byte("host-a"), Value: []byte(`{"v":1}`),
		Headers: []kgo.RecordHeader{{Key: "agent", Value: []byte("v2")}}})
	in, err := NewInput(b, InputConfig{Topic: "in", Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	recs, err := in.Read(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	r := recs[0]
	if string(r.Raw) != `{"v":1}` || string(r.Key) != "host-a" || r.Value != nil {
		t.Errorf("record = raw %q key %q value %v", r.Raw, r.Key, r.Value)
	}
	if len(r.Headers) != 1 || r.Headers[0].Key != "agent" || string(r.Headers[0].Value) != "v2" {
		t.Errorf("headers = %v", r.Headers)
	}
	if r.Source.Topic != "in" || r.Source.Partition != 0 || r.Source.Offset != 0 || r.Timestamp.IsZero() {
		t.Errorf("source %v timestamp %v", r.Source, r.Timestamp)
	}
	// The topic's id marks its incarnation, so record_id() differs for a re-created topic.
	if r.Source.TopicID == ([16]byte{}) {
		t.Errorf("source carries no topic id: %v", r.Source)
	}
}

// A transaction open when the engine (and its embedded broker) was killed can never end: its
// producer died too. Restarted on the same data directory, the broker aborts it, so that
// read_committed readers are not held at its first offset for good.
func TestEmbeddedRestartAbortsTransactionsLeftOpen(t *testing.T) {
	dir := t.TempDir()
	b := startEmbedded(t, dir)
	ensure(t, b, map[string]config.Topic{"out": {}})
	produceSync(t, b, &kgo.Record{Topic: "out", Value: []byte("committed")})
	txn := newClient(t, b, kgo.TransactionalID("killed"), kgo.DefaultProduceTopic("out"))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("never committed")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	b.Close() // the transaction stays open, as after a kill -9

	b = startEmbedded(t, dir)
	adm := kadm.NewClient(newClient(t, b))
	ctx := testCtx(t)
	for {
		stable, err := adm.ListCommittedOffsets(ctx, "out")
		if err != nil {
			t.Fatal(err)
		}
		ends, err := adm.ListEndOffsets(ctx, "out")
		if err != nil {
			t.Fatal(err)
		}
		s, _ := stable.Lookup("out", 0)
		e, _ := ends.Lookup("out", 0)
		if s.Offset == e.Offset {
			break // nothing left open: readers can read to the end
		}
		select {
		case <-ctx.Done():
			t.Fatalf("after the restart the last stable offset stays at %d of %d: the open transaction was never ended", s.Offset, e.Offset)
		case <-time.After(50 * time.Millisecond):
		}
	}
	var got []string
	for _, r := range consumeAll(t, b, "out") {
		got = append(got, string(r.Value))
	}
	if len(got) != 1 || got[0] != "committed" {
		t.Errorf("read_committed after the restart: %q, want only the committed record", got)
	}
}
