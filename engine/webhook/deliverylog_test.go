package webhook

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/eventops/eventops-engine/engine"
)

// A kill halfway through a batch makes the next run write the batch again (its offsets
// were not committed). With the delivery log, what the receiver acknowledged before is not
// sent again: each record reaches the receiver with a 2xx exactly once.
func TestABatchWrittenAgainAfterAKillSendsNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	accepted := map[string]int{} // idempotency key → 2xx answers
	rc := newReceiver(t, func(n int, r *http.Request, w http.ResponseWriter) {
		if n == 9 {
			<-r.Context().Done() // the kill: this one is never answered
			return
		}
		mu.Lock()
		accepted[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
	})
	var batch []*engine.Record
	for i := range 20 {
		batch = append(batch, metricEvent(fmt.Sprintf("host-%d", i), 0, 1))
	}
	settings := settingsFor(rc, fmt.Sprintf("concurrency: 1, delivery_log: {dir: %q}", dir))
	build := func() engine.Output {
		o, err := Factory.Build(context.Background(), loadConfig(t, settings), engine.OutputEnv{BuildEnv: engine.BuildEnv{Stream: "sink.ops.alert.v1.webhook"}})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}

	first := build()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Write(ctx, batch, &engine.Rejects{}) }()
	eventually(t, "the ninth request to arrive", func() bool { return len(rc.requests()) >= 9 })
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a Write cut short returned no error: the stream would commit the batch")
	}
	first.Close()

	again := build()
	defer again.Close()
	var rejects engine.Rejects
	if err := again.Write(context.Background(), batch, &rejects); err != nil || rejects.Len() > 0 {
		t.Fatalf("Write again: %v %v", err, rejects.Items)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(accepted) != len(batch) {
		t.Errorf("%d records acknowledged, want all %d", len(accepted), len(batch))
	}
	for key, n := range accepted {
		if n != 1 {
			t.Errorf("record %s acknowledged %d times, want once", key, n)
		}
	}
	if got := len(rc.requests()); got != len(batch)+1 {
		t.Errorf("%d requests in all, want %d (each record once, and the one cut short again)", got, len(batch)+1)
	}
	if _, err := os.Stat(filepath.Join(dir, "sink.ops.alert.v1.webhook.log")); err != nil {
		t.Errorf("the delivery log is not where the docs say: %v", err)
	}
}

// The log keeps the newest keep keys across a restart, and a line a kill cut short is not
// taken for a key.
func TestDeliveryLogKeepsTheNewestKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.log")
	l, err := openDeliveryLog(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{digest("a"), digest("b"), digest("c"), digest("d"), digest("e")}
	for _, k := range keys {
		if err := l.add([]string{k}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(digest("f")[:10]) // a kill mid-line
	f.Close()

	l, err = openDeliveryLog(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i, k := range keys {
		if want := i >= 2; l.delivered(k) != want {
			t.Errorf("key %d delivered = %v after a restart, want %v (the newest 3 kept)", i, !want, want)
		}
	}
	if l.delivered(digest("f")[:10]) {
		t.Error("a line cut short was taken for a key")
	}
}
