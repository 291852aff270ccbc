package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
)

// kfake compacts the records of an open transaction as if committed. A checkpoint left open
// while the cleaner ran would replace the committed state, and if the checkpoint then
// aborted, the key would have no committed value left: the stream would restore without it.
// The cleaner therefore compacts only when no transaction is open on a compacted topic.
func TestCleanerNeverCompactsOverAnOpenTransaction(t *testing.T) {
	b := startEmbedded(t, t.TempDir())
	ensure(t, b, map[string]config.Topic{"state": {Partitions: 1, Cleanup: "compact"}})
	deferred := 0
	b.CompactionsDeferred = func() { deferred++ }
	ctx := testCtx(t)
	txn := newClient(t, b, kgo.TransactionalID("t1"), kgo.DefaultProduceTopic("state"))
	write := func(v string) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"a", "b"} {
			if err := txn.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	end := func(how kgo.TransactionEndTry) {
		t.Helper()
		if err := txn.EndTransaction(ctx, how); err != nil {
			t.Fatal(err)
		}
	}
	latest := func() map[string]string {
		got := map[string]string{}
		for _, r := range consumeAll(t, b, "state") {
			got[string(r.Key)] = string(r.Value)
		}
		return got
	}

	write("v1")
	end(kgo.TryCommit)
	write("v2") // left open while the cleaner runs
	produceSync(t, b, &kgo.Record{Topic: "state", Key: []byte("z"), Value: []byte("tail")})
	b.Clean(ctx)
	if deferred != 1 {
		t.Errorf("a cleaner pass with a transaction open on a compacted topic: %d passes deferred, want 1", deferred)
	}
	end(kgo.TryAbort)
	if got := latest(); got["a"] != "v1" || got["b"] != "v1" {
		t.Fatalf("after a cleaner pass over an open transaction that then aborted: %v, want a and b = v1", got)
	}

	// Nothing open: the pass compacts, and only the newest committed value of each key is left.
	write("v3")
	end(kgo.TryCommit)
	// The last batch of a partition is never compacted (kfake's active segment).
	produceSync(t, b, &kgo.Record{Topic: "state", Key: []byte("z"), Value: []byte("tail2")},
		&kgo.Record{Topic: "state", Key: []byte("y"), Value: []byte("last")})
	b.Clean(ctx)
	if deferred != 1 {
		t.Errorf("a cleaner pass with no transaction open was deferred")
	}
	var values []string
	for _, r := range consumeAll(t, b, "state") {
		values = append(values, string(r.Key)+"="+string(r.Value))
	}
	if want := []string{"a=v3", "b=v3", "z=tail2", "y=last"}; !equal(values, want) {
		t.Errorf("compacted topic holds %v, want %v", values, want)
	}
}

// While the cleaner waits for open transactions to end, transactional writes to compacted
// topics are held back with a retriable error; a writer only waits, and what it wrote lands.
func TestCleanerHoldsTransactionalWritesOnlyBriefly(t *testing.T) {
	b := startEmbedded(t, t.TempDir())
	ensure(t, b, map[string]config.Topic{"state": {Partitions: 1, Cleanup: "compact"}, "out": {Partitions: 1}})
	ctx := testCtx(t)
	txn := newClient(t, b, kgo.TransactionalID("t2"))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Topic: "state", Key: []byte("a"), Value: []byte("1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cleaned := make(chan struct{})
	go func() { b.Clean(context.Background()); close(cleaned) }()
	// Produced while the cleaner may hold writes back: retried until it lets them through.
	if err := txn.ProduceSync(ctx, &kgo.Record{Topic: "state", Key: []byte("a"), Value: []byte("2")},
		&kgo.Record{Topic: "out", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("a transactional write during a cleaner pass failed: %v", err)
	}
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	<-cleaned
	got := map[string]string{}
	for _, r := range consumeAll(t, b, "state") {
		got[string(r.Key)] = string(r.Value)
	}
	if got["a"] != "2" || len(consumeAll(t, b, "out")) != 1 {
		t.Errorf("after a transaction that wrote during a cleaner pass: state %v (want a=2), out %d records (want 1)", got, len(consumeAll(t, b, "out")))
	}
}

// A transaction left open on a changelog by a producer that is gone, which the broker does
// not abort (kfake restores open transactions from disk without their timers), would hold a
// state restore back for good. The reader aborts one older than any live producer's.
func TestChangelogReadAbortsATransactionNobodyWillEnd(t *testing.T) {
	was := staleTransactionAge
	staleTransactionAge = 500 * time.Millisecond
	t.Cleanup(func() { staleTransactionAge = was })
	b := startEmbedded(t, t.TempDir())
	ensure(t, b, map[string]config.Topic{"rules.changelog": {Partitions: 1, Cleanup: "compact"}})
	ctx := testCtx(t)
	produceSync(t, b, &kgo.Record{Topic: "rules.changelog", Key: []byte("a"), Value: []byte("committed")})
	// A producer whose transaction would stay open for a minute: gone, as far as the
	// reader can tell.
	gone := newClient(t, b, kgo.TransactionalID("gone"), kgo.TransactionTimeout(time.Minute))
	if err := gone.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := gone.ProduceSync(ctx, &kgo.Record{Topic: "rules.changelog", Key: []byte("a"), Value: []byte("uncommitted")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	state, err := ReadChangelog(ctx, b, "rules.changelog", []int32{0})
	if err != nil {
		t.Fatalf("reading a changelog held back by a transaction nobody ends: %v", err)
	}
	if got := string(state[0]["a"]); got != "committed" {
		t.Errorf("state a = %q, want the committed value", got)
	}
}
