package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
)

// A lookup's topic held back by a transaction nobody will end (a producer killed
// mid-transaction, which the broker does not abort) does not keep the follower from catching
// up, and so the streams from starting: it aborts one older than any live producer's, as a
// changelog restore does; the committed rows are there, the uncommitted one is not.
func TestFollowAbortsATransactionNobodyWillEnd(t *testing.T) {
	was := staleTransactionAge
	staleTransactionAge = 500 * time.Millisecond
	t.Cleanup(func() { staleTransactionAge = was })
	b := startEmbedded(t, t.TempDir())
	ensure(t, b, map[string]config.Topic{"edges": {Partitions: 1, Cleanup: "compact"}})
	ctx := testCtx(t)
	produceSync(t, b, &kgo.Record{Topic: "edges", Key: []byte("a->b"), Value: []byte("committed")})
	gone := newClient(t, b, kgo.TransactionalID("gone"), kgo.TransactionTimeout(time.Minute))
	if err := gone.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := gone.ProduceSync(ctx, &kgo.Record{Topic: "edges", Key: []byte("b->c"), Value: []byte("uncommitted")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	applied := make(chan []KeyValue, 16)
	f, err := Follow(ctx, b, "edges", func(kvs []KeyValue) { applied <- kvs })
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	select {
	case <-f.CaughtUp():
	case <-ctx.Done():
		t.Fatal("the follower never caught up: the open transaction holds it back")
	}
	for len(applied) > 0 {
		for _, kv := range <-applied {
			rows[string(kv.Key)] = string(kv.Value)
		}
	}
	if rows["a->b"] != "committed" || rows["b->c"] != "" {
		t.Errorf("rows %v, want the committed one only", rows)
	}
}
