package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/runtime"
	"github.com/eventops/eventops-engine/engine/runtime/runtimetest"
	"github.com/eventops/eventops-engine/engine/webhook"
)

// e2ePipeline runs the threshold rule on metric readings and sinks its alerts into a
// webhook receiver in Alertmanager's format, retrying quickly and for a long time (so that
// an outage of the test's receiver is waited out, not dead-lettered).
const e2ePipeline = `version: 1
broker:
  embedded: {listen: "127.0.0.1:0", data_dir: "${DATA_DIR}", cleaner_interval: 1h}
topics:
  signals.metric.v1: {partitions: 1, ingest: true}
  ops.alert.v1:      {partitions: 1}
  ops.deadletter.v1: {partitions: 1}
dead_letter: ops.deadletter.v1
streams:
  - name: rules
    input: {topic: signals.metric.v1}
    processors:
      - threshold:
          rules:
            - {name: cpu_high, when: 'metric == "cpu_load" && value >= 90', clear_when: 'value < 75', severity: critical}
    output: {topic: ops.alert.v1}
sinks:
  - from: ops.alert.v1
    webhook:
      url: ${HOOK_URL}
      format: alertmanager
      concurrency: 3
      backoff: {initial: 5ms, max: 20ms}
      max_attempts: 1000000
      max_elapsed: 1h
      delivery_log: {dir: "${DATA_DIR}/webhook"}
`

// sinkGroup is the consumer group of the pipeline's sink (eventops.<its stream name>).
const sinkGroup = "eventops.sink.ops.alert.v1.webhook"

// alertReceiver is an Alertmanager webhook receiver that can be taken down (it then
// answers 503) and keeps every notification it accepted.
type alertReceiver struct {
	srv      *httptest.Server
	down     atomic.Bool
	refused  atomic.Int64
	mu       sync.Mutex
	accepted []delivered
}

// delivered is one alert of an accepted notification.
type delivered struct {
	idempotencyKey string
	fingerprint    string
	host           string
	status         string
}

func newAlertReceiver(t *testing.T) *alertReceiver {
	t.Helper()
	rc := &alertReceiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rc.down.Load() {
			rc.refused.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var msg struct {
			Alerts []struct {
				Status      string            `json:"status"`
				Labels      map[string]string `json:"labels"`
				Fingerprint string            `json:"fingerprint"`
			} `json:"alerts"`
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &msg); err != nil {
			t.Errorf("receiver: %v: %s", err, body)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		for _, a := range msg.Alerts {
			rc.accepted = append(rc.accepted, delivered{r.Header.Get("Idempotency-Key"), a.Fingerprint, a.Labels["source_id"], a.Status})
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *alertReceiver) alerts() []delivered {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.accepted)
}

// engineRun is the pipeline running in this process.
type engineRun struct {
	brokers []string
	stop    func()
}

// startEngine runs e2ePipeline on dataDir, sending to hookURL, until stop.
func startEngine(t *testing.T, dataDir, hookURL string) *engineRun {
	t.Helper()
	env := map[string]string{"DATA_DIR": dataDir, "HOOK_URL": hookURL}
	cfg, err := config.LoadBytes("e2e.yaml", []byte(e2ePipeline), components.Registry(), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	// A short drain: stopping during an outage cancels the Write that is retrying.
	running, stop := runtimetest.Start(t, cfg, components, runtime.RunOptions{Drain: 100 * time.Millisecond})
	return &engineRun{brokers: running.Broker.Addrs(), stop: func() {
		if err := stop(); err != nil {
			t.Errorf("pipeline stopped with: %v", err)
		}
	}}
}

// produceReadings writes cpu_load readings (host, value) at consecutive minutes from minute.
func (e *engineRun) produceReadings(t *testing.T, minute int, readings ...any) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := 0; i < len(readings); i += 2 {
		host, value := readings[i].(string), readings[i+1].(int)
		ts := time.Date(2025, 10, 16, 9, minute+i/2, 0, 0, time.UTC).Format(time.RFC3339)
		v := fmt.Sprintf(`{"event_id":"ev-%s-%d","tenant_id":"acme","source":{"type":"host","source_id":%q},"metric":"cpu_load","value":%d,"ts_event":%q}`, host, minute+i/2, host, value, ts)
		recs = append(recs, &kgo.Record{Topic: "signals.metric.v1", Value: []byte(v)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// committed is the sink's committed offset on ops.alert.v1 (-1: none).
func (e *engineRun) committed(t *testing.T) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	offsets, err := kadm.NewClient(cl).FetchOffsets(ctx, sinkGroup)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offsets.Lookup("ops.alert.v1", 0); ok {
		return o.At
	}
	return -1
}

// afterAlert is the offset just after the n-th alert record of ops.alert.v1: where a sink
// that has delivered the first n alerts commits. (Offsets also count the rules stream's
// transaction markers, so it is more than n.)
func (e *engineRun) afterAlert(t *testing.T, n int) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.ConsumeTopics("ops.alert.v1"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var offsets []int64
	for len(offsets) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d alerts from ops.alert.v1", len(offsets), n)
		}
		fs.EachRecord(func(r *kgo.Record) { offsets = append(offsets, r.Offset) })
	}
	return offsets[n-1] + 1
}

// Alerts flow from the threshold rule through ops.alert.v1 into a webhook receiver: each
// once, each alert's transitions in order. Then the receiver goes down while alerts keep
// coming: the sink commits nothing it has not delivered, a restart of the engine during the
// outage skips nothing, and once the receiver is back every alert arrives, once, in order.
func TestAlertsReachTheReceiverThroughAnOutageAndARestart(t *testing.T) {
	dir := t.TempDir()
	rc := newAlertReceiver(t)
	run := startEngine(t, dir, rc.srv.URL)

	// Each host fires, resolves and fires again: 3 alerts per host.
	for i, host := range []string{"h0", "h1", "h2", "h3"} {
		run.produceReadings(t, 10*i, host, 95, host, 50, host, 96)
	}
	webhook.Eventually(t, "12 alerts delivered", func() bool { return len(rc.alerts()) >= 12 })
	delivered := run.afterAlert(t, 12)
	webhook.Eventually(t, "the sink commits the delivered alerts", func() bool { return run.committed(t) >= delivered })

	rc.down.Store(true)
	for i, host := range []string{"h4", "h5", "h6"} {
		run.produceReadings(t, 100+10*i, host, 95, host, 50)
	}
	webhook.Eventually(t, "the sink retrying against the receiver that is down", func() bool { return rc.refused.Load() >= 10 })
	if got := run.committed(t); got >= run.afterAlert(t, 13) {
		t.Fatalf("during the outage the sink committed offset %d, past alert 13 at %d, which it never delivered", got, run.afterAlert(t, 13)-1)
	}

	run.stop() // restart during the outage
	refusedBefore := rc.refused.Load()
	run = startEngine(t, dir, rc.srv.URL)
	webhook.Eventually(t, "the restarted sink retrying the undelivered alerts", func() bool { return rc.refused.Load() >= refusedBefore+5 })
	if got := run.committed(t); got >= run.afterAlert(t, 13) {
		t.Fatalf("after the restart the sink's committed offset %d is past alert 13, never delivered", got)
	}
	rc.down.Store(false)
	webhook.Eventually(t, "18 alerts delivered", func() bool { return len(rc.alerts()) >= 18 })
	all := run.afterAlert(t, 18)
	webhook.Eventually(t, "the sink commits them all", func() bool { return run.committed(t) >= all })

	checkDelivered(t, rc.alerts(), map[string][]string{
		"h0": {"firing", "resolved", "firing"}, "h1": {"firing", "resolved", "firing"},
		"h2": {"firing", "resolved", "firing"}, "h3": {"firing", "resolved", "firing"},
		"h4": {"firing", "resolved"}, "h5": {"firing", "resolved"}, "h6": {"firing", "resolved"},
	})
}

// checkDelivered checks that each host's alert transitions arrived as want says, in order,
// and that no notification was accepted twice.
func checkDelivered(t *testing.T, got []delivered, want map[string][]string) {
	t.Helper()
	byHost := map[string][]string{}
	keys := map[string]int{}
	for _, d := range got {
		byHost[d.host] = append(byHost[d.host], d.status)
		keys[d.idempotencyKey]++
	}
	for host, w := range want {
		if !slices.Equal(byHost[host], w) {
			t.Errorf("host %s: received %v, want %v", host, byHost[host], w)
		}
	}
	if len(byHost) != len(want) {
		t.Errorf("alerts for hosts %v, want %d hosts", slices.Sorted(maps.Keys(byHost)), len(want))
	}
	for k, n := range keys {
		if n > 1 {
			t.Errorf("idempotency key %s accepted %d times", k, n)
		}
	}
}
