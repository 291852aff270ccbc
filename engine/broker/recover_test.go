package broker

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

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
