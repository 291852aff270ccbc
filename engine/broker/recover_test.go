package broker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
)

// killedCopy copies a running broker's data directory: what a kill -9 of the broker would
// leave (kfake writes each batch to its segment file as the batch arrives, and writes nothing
// on a kill).
func killedCopy(t *testing.T, dir string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "killed")
	if err := os.CopyFS(dst, os.DirFS(dir)); err != nil {
		t.Fatalf("copying the data dir: %v", err)
	}
	return dst
}

func beginWith(t *testing.T, ctx context.Context, txn *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := txn.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func commit(t *testing.T, ctx context.Context, txn *kgo.Client) {
	t.Helper()
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
}

func keyValues(recs []*kgo.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Key)+"="+string(r.Value))
	}
	return out
}

// A broker killed while a producer has a transaction open leaves that transaction's records
// with no marker. kfake reloads them as aborted without writing a marker, and a read_committed
// reader told of an aborted transaction drops the producer's later batches until it sees an
// abort marker: what the same producer commits after the restart would be lost to every
// reader still behind it. The restarted broker writes the missing marker before it takes
// clients.
func TestCommitsAfterABrokerKillAreNotLost(t *testing.T) {
	dir := t.TempDir()
	b := startEmbedded(t, dir)
	ensure(t, b, map[string]config.Topic{"data": {Partitions: 2}})
	ctx := testCtx(t)
	txn := newClient(t, b, kgo.TransactionalID("normalize-0"))
	rec := func(p int32, k, v string) *kgo.Record {
		return &kgo.Record{Topic: "data", Partition: p, Key: []byte(k), Value: []byte(v)}
	}
	beginWith(t, ctx, txn, rec(0, "a", "1"), rec(1, "b", "1"))
	commit(t, ctx, txn)
	beginWith(t, ctx, txn, rec(0, "a", "open"), rec(1, "b", "open"))
	killed := killedCopy(t, dir)
	txn.Close()
	b.Close()

	b2 := startEmbedded(t, killed)
	again := newClient(t, b2, kgo.TransactionalID("normalize-0"))
	beginWith(t, ctx, again, rec(0, "a", "2"), rec(1, "b", "2"))
	commit(t, ctx, again)
	got := keyValues(consumeAll(t, b2, "data"))
	slices.Sort(got)
	if want := []string{"a=1", "a=2", "b=1", "b=2"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed after a broker kill mid-transaction and a commit by the same producer: %v, want %v", got, want)
	}
}

// A state restore reads its changelog until it has seen the last offset. A transaction the
// broker was killed in would hide that offset from a read_committed reader for good; with its
// marker written at start, the restore ends at once with the last committed state.
func TestRestoreEndsAfterABrokerKillMidCheckpoint(t *testing.T) {
	old := staleTransactionAge
	staleTransactionAge = time.Hour // the reader's own remedy must not be what ends the read
	t.Cleanup(func() { staleTransactionAge = old })
	dir := t.TempDir()
	b := startEmbedded(t, dir)
	ensure(t, b, map[string]config.Topic{"state": {Partitions: 1, Cleanup: "compact"}})
	ctx := testCtx(t)
	txn := newClient(t, b, kgo.TransactionalID("rollup-0"), kgo.DefaultProduceTopic("state"))
	beginWith(t, ctx, txn, &kgo.Record{Key: []byte("w1"), Value: []byte("n=6")})
	commit(t, ctx, txn)
	beginWith(t, ctx, txn, &kgo.Record{Key: []byte("w1"), Value: []byte("n=7")}, &kgo.Record{Key: []byte("w2"), Value: []byte("n=1")})
	killed := killedCopy(t, dir)
	txn.Close()
	b.Close()

	b2 := startEmbedded(t, killed)
	state, err := ReadChangelog(ctx, b2, "state", []int32{0})
	if err != nil {
		t.Fatalf("restore after a broker kill mid-checkpoint: %v", err)
	}
	if got := state[0]; len(got) != 1 || string(got["w1"]) != "n=6" {
		t.Fatalf("restored %v, want only the committed w1=n=6", got)
	}
}

// stagePartialCommit leaves, in dir's broker, a transaction of producer "rollup-0" that
// wrote x to out/0 and y to out/1 and commits group g's offset 1 on in/0, with a commit
// marker written on the partitions of commitOn only: what a kill of the broker while it
// writes the transaction's markers leaves.
func stagePartialCommit(t *testing.T, b *Broker, commitOn ...int32) {
	t.Helper()
	ctx := testCtx(t)
	ensure(t, b, map[string]config.Topic{"out": {Partitions: 2}, "in": {Partitions: 1}})
	produceSync(t, b, &kgo.Record{Topic: "in", Value: []byte("reading")})
	txn := newClient(t, b, kgo.TransactionalID("rollup-0"), kgo.RecordPartitioner(kgo.ManualPartitioner()), offsetsByName())
	beginWith(t, ctx, txn, &kgo.Record{Topic: "out", Partition: 0, Value: []byte("x")}, &kgo.Record{Topic: "out", Partition: 1, Value: []byte("y")})
	offsets := groupOffsets{"g": {"in": {0: {Offset: 1, LeaderEpoch: -1}}}}
	if err := commitOffsetsInTransaction(ctx, txn, "rollup-0", offsets); err != nil {
		t.Fatal(err)
	}
	id, epoch, err := txn.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	marker := kadm.TxnMarkers{ProducerID: id, ProducerEpoch: epoch, Commit: true, Topics: kadm.TopicsSet{}}
	for _, p := range commitOn {
		marker.Topics.Add("out", p)
	}
	if _, err := kadm.NewClient(newClient(t, b)).WriteTxnMarkers(ctx, marker); err != nil {
		t.Fatal(err)
	}
}

// groupOffset is group's committed offset on topic/partition, -1 if none.
func groupOffset(t *testing.T, b *Broker, group, topic string, partition int32) int64 {
	t.Helper()
	offs, err := kadm.NewClient(newClient(t, b)).FetchOffsets(testCtx(t), group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup(topic, partition); ok && o.Err == nil {
		return o.At
	}
	return -1
}

// A broker killed while it writes a transaction's commit markers leaves the transaction
// committed on some partitions, unmarked on the others, and the group offsets it carried not
// applied. Readers may have read the committed part, so the restarted broker finishes the
// commit: every output once, and the offsets committed, so the stream does not read its
// batch again on top of outputs already there.
func TestABrokerKilledMidCommitFinishesTheCommit(t *testing.T) {
	dir := t.TempDir()
	b := startEmbedded(t, dir)
	stagePartialCommit(t, b, 0)
	killed := killedCopy(t, dir)
	b.Close()

	b2 := startEmbedded(t, killed)
	got := keyValues(consumeAll(t, b2, "out"))
	slices.Sort(got)
	if want := []string{"=x", "=y"}; !slices.Equal(got, want) {
		t.Errorf("read_committed after a kill mid-markers: %v, want %v", got, want)
	}
	if o := groupOffset(t, b2, "g", "in", 0); o != 1 {
		t.Errorf("group g's offset after a kill mid-markers: %d, want the transaction's 1", o)
	}

	// Killed again before anything else happened: nothing is written twice.
	again := killedCopy(t, killed)
	b2.Close()
	b3 := startEmbedded(t, again)
	if got := keyValues(consumeAll(t, b3, "out")); len(got) != 2 {
		t.Errorf("after a second kill: %v, want x and y once", got)
	}
}

// A kill after the last marker but before kfake applied the transaction's group offsets
// leaves the outputs committed and the input to be read again; the restarted broker commits
// the offsets.
func TestABrokerKilledAfterTheMarkersCommitsTheOffsets(t *testing.T) {
	dir := t.TempDir()
	b := startEmbedded(t, dir)
	stagePartialCommit(t, b, 0, 1)
	killed := killedCopy(t, dir)
	b.Close()

	b2 := startEmbedded(t, killed)
	if o := groupOffset(t, b2, "g", "in", 0); o != 1 {
		t.Errorf("group g's offset after a kill between the markers and the offsets: %d, want 1", o)
	}
	if got := keyValues(consumeAll(t, b2, "out")); len(got) != 2 {
		t.Errorf("outputs: %v, want x and y once", got)
	}
}
