package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// notifyCrashPipeline: threshold → notify (grouped by alertname, short timings) → a webhook
// receiver. %s: the broker's data directory, the receiver's URL, the delivery log's directory.
const notifyCrashPipeline = `
version: 1
broker:
  embedded: {listen: "127.0.0.1:0", data_dir: "%s"}
topics:
  signals.metric.v1:   {partitions: 3, ingest: true}
  ops.alert.v1:        {partitions: 1, cleanup: compact+delete}
  ops.notification.v1: {partitions: 1}
  ops.deadletter.v1:   {partitions: 1}
dead_letter: ops.deadletter.v1
streams:
  - name: rules
    input: {topic: signals.metric.v1}
    processors:
      - threshold:
          rules:
            - {name: cpu_high, when: 'metric == "cpu_load" && value >= 90', severity: critical}
            - {name: mem_high, when: 'metric == "mem_used_pct" && value >= 90', severity: warning}
            - {name: disk_full, when: 'metric == "disk_used_pct" && value >= 90', severity: warning}
    output: {topic: ops.alert.v1}
  - name: notify
    input: {topic: ops.alert.v1}
    processors:
      - notify:
          route: {receiver: ops, group_by: [alertname], group_wait: 2s, group_interval: 3s, repeat_interval: 1h}
          receivers: [{name: ops}]
          inhibit_rules:
            - {source_matchers: ['severity="critical"'], target_matchers: ['severity="warning"'], equal: [source_id]}
          silences:
            - {matchers: ['alertname="disk_full"'], ends_at: "2099-01-01T00:00:00Z", comment: maintenance}
    output: {topic: ops.notification.v1}
  - name: to-ops
    input: {topic: ops.notification.v1}
    processors: [{filter: {when: 'receiver == "ops"'}}]
    output:
      webhook: {url: "%s", backoff: {initial: 50ms, max: 200ms}, max_attempts: 100000, max_elapsed: 1h, delivery_log: {dir: "%s"}}
`

// notificationReceiver is a webhook receiver that can be taken down (it answers 503) and
// keeps the notifications it acknowledged.
type notificationReceiver struct {
	down     atomic.Bool
	refused  atomic.Int64
	mu       sync.Mutex
	accepted []notificationSeen
}

// notificationSeen is what a test checks of a notification: its id, and its alerts' hosts
// by status.
type notificationSeen struct {
	eventID  string
	firing   []string
	resolved []string
}

func (rc *notificationReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if rc.down.Load() {
		rc.refused.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var msg struct {
		EventID string `json:"event_id"`
		Alerts  []struct {
			Status string            `json:"status"`
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	if json.Unmarshal(body, &msg) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	n := notificationSeen{eventID: msg.EventID}
	for _, a := range msg.Alerts {
		if a.Status == "firing" {
			n.firing = append(n.firing, a.Labels["source_id"])
		} else {
			n.resolved = append(n.resolved, a.Labels["source_id"])
		}
	}
	slices.Sort(n.firing)
	slices.Sort(n.resolved)
	rc.mu.Lock()
	rc.accepted = append(rc.accepted, n)
	rc.mu.Unlock()
}

func (rc *notificationReceiver) seen() []notificationSeen {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.accepted)
}

// Fifty hosts crossing the threshold together, then ten of them recovering while the receiver
// is down, with a kill -9 of the engine before the first notification and another during the
// outage: the receiver gets exactly the two notifications grouping implies, once each — one
// with the fifty firing, then one with forty firing and ten resolved. Meanwhile a memory
// warning on a host whose CPU alert is critical is muted by inhibition, a full disk by a
// silence: neither is ever notified.
func TestNotificationsThroughKillsAndAReceiverOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs the engine binary; skipped with -short")
	}
	rc := &notificationReceiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	bin := buildBinary(t)
	dir := t.TempDir()
	pipeline := filepath.Join(dir, "pipeline.yaml")
	yaml := fmt.Sprintf(notifyCrashPipeline, filepath.Join(dir, "broker"), srv.URL, filepath.Join(dir, "delivered"))
	if err := os.WriteFile(pipeline, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	hosts := make([]string, 50)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("host-%02d", i)
	}
	slices.Sort(hosts)

	eng := startEngine(t, bin, pipeline)
	produceReadings(t, eng.brokers, hosts, 95)
	produceMetric(t, eng.brokers, "mem_used_pct", hosts[20:21], 95)         // inhibited by host-20's critical CPU alert
	produceMetric(t, eng.brokers, "disk_used_pct", []string{"host-99"}, 95) // silenced (no CPU alert there)
	eng.kill(t)                                                             // before group_wait has passed: nothing notified yet
	eng = startEngine(t, bin, pipeline)
	waitFor(t, 60*time.Second, "the first notification", func() bool { return len(rc.seen()) >= 1 })

	rc.down.Store(true)
	produceReadings(t, eng.brokers, hosts[:10], 50)
	waitFor(t, 60*time.Second, "the second notification refused by the receiver", func() bool { return rc.refused.Load() >= 3 })
	eng.kill(t)
	eng = startEngine(t, bin, pipeline)
	waitFor(t, 60*time.Second, "the restarted engine retrying the second notification", func() bool { return rc.refused.Load() >= 6 })
	rc.down.Store(false)
	waitFor(t, 60*time.Second, "the second notification", func() bool { return len(rc.seen()) >= 2 })

	// Nothing more is due (repeat_interval is 1h): what came is all that comes.
	got := rc.seen()
	if len(got) != 2 {
		t.Fatalf("%d notifications acknowledged, want 2: %+v", len(got), got)
	}
	if !slices.Equal(got[0].firing, hosts) || len(got[0].resolved) != 0 {
		t.Errorf("first notification: firing %v, resolved %v; want the 50 hosts firing", got[0].firing, got[0].resolved)
	}
	if !slices.Equal(got[1].firing, hosts[10:]) || !slices.Equal(got[1].resolved, hosts[:10]) {
		t.Errorf("second notification: firing %v, resolved %v; want 40 firing and 10 resolved", got[1].firing, got[1].resolved)
	}
	if got[0].eventID == got[1].eventID {
		t.Errorf("the two notifications share an event_id")
	}
}

// produceReadings sends one cpu_load reading of value for each host, stamped now.
func produceReadings(t *testing.T, brokers string, hosts []string, value float64) {
	t.Helper()
	produceMetric(t, brokers, "cpu_load", hosts, value)
}

// produceMetric sends one reading of metric with value for each host, stamped now.
func produceMetric(t *testing.T, brokers, metric string, hosts []string, value float64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.DefaultProduceTopic("signals.metric.v1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	for _, h := range hosts {
		v := fmt.Sprintf(`{"metric":%q,"value":%g,"tenant_id":"acme","source":{"source_id":%q},"ts_event":%q}`, metric, value, h, ts)
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Key: []byte(h), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}
