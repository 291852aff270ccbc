package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// webhookCrashPipeline is crashPipeline with its sink sending each reading to a webhook (%s:
// the broker data directory, the receiver's URL, the delivery log's directory).
var webhookCrashPipeline = strings.Replace(crashPipeline,
	`  - {from: signals.metric.v1, batch_size: 2000, postgres: {dsn: "%s", table: metrics}}`,
	`  - from: signals.metric.v1
    batch_size: 2000
    webhook: {url: "%s", concurrency: 4, delivery_log: {dir: "%s"}}`, 1)

// A kill -9 of the engine while a webhook sink is halfway through a batch: the restarted
// engine reads the batch again (its offsets were not committed) and sends only what the
// receiver had not acknowledged. What may come twice is the requests whose 2xx was on its
// way at the kill: at most the sink's concurrency (4). Without the delivery log, every
// reading the killed run had delivered of the batch (hundreds) came again.
func TestSIGKILLOfAWebhookSinkSendsNothingAcknowledgedAgain(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs the engine binary; skipped with -short")
	}
	const n, concurrency = 5_000, 4
	var mu sync.Mutex
	accepted := map[string]int{} // idempotency key → 2xx answers
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Millisecond) // a receiver with some work to do: the kill lands mid-batch
		mu.Lock()
		accepted[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
	}))
	defer rc.Close()
	counts := func() (distinct, repeats int) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range accepted {
			repeats += c - 1
		}
		return len(accepted), repeats
	}

	bin := buildBinary(t)
	dir := t.TempDir()
	pipeline := filepath.Join(dir, "pipeline.yaml")
	yaml := fmt.Sprintf(webhookCrashPipeline, filepath.Join(dir, "broker"), rc.URL, filepath.Join(dir, "webhook"))
	if err := os.WriteFile(pipeline, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	eng := startEngine(t, bin, pipeline)
	produceEvents(t, eng.brokers, n, false)
	waitFor(t, 120*time.Second, "1,000 readings delivered before the kill", func() bool { d, _ := counts(); return d >= 1_000 })
	eng.kill(t)
	before, _ := counts()

	restarted := startEngine(t, bin, pipeline)
	for deadline := time.Now().Add(120 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if d, _ := counts(); d >= n {
			break
		}
	}
	distinct, repeats := counts()
	t.Logf("killed at %d readings delivered; after the restart %d distinct readings acknowledged, %d acknowledged twice", before, distinct, repeats)
	if distinct != n {
		t.Fatalf("%d distinct readings acknowledged, want %d\nthe restarted engine's log:\n%s", distinct, n, restarted.logTail(40))
	}
	if repeats > concurrency {
		t.Errorf("%d readings acknowledged twice after a kill -9; want at most the %d whose answer was on its way", repeats, concurrency)
	}
}
