package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/codec"
	"github.com/eventops/eventops-engine/processors/threshold"
)

// testComponents are the components the unit tests' pipelines need.
var testComponents = engine.Components{
	Processors: []engine.ProcessorFactory{threshold.Factory},
	Outputs:    []engine.OutputFactory{Factory, AlertmanagerFactory},
}

// testPipeline is a rules stream (the quickstart's CPU ladder, with labels and an
// annotation) and a sink of its alerts into a webhook whose settings the test gives.
const testPipeline = `version: 1
broker: {embedded: {}}
topics: {signals.metric.v1: {ingest: true}, ops.alert.v1: {}, ops.deadletter.v1: {}}
dead_letter: ops.deadletter.v1
streams:
  - name: rules
    input: {topic: signals.metric.v1}
    processors:
      - threshold:
          rules:
            - name: cpu_load
              when: 'metric == "cpu_load"'
              severities:
                - {severity: critical, when: 'value >= 90'}
                - {severity: warning, when: 'value >= 80'}
              clear_when: 'value < 75'
              message: 'CPU load {{value}}% on {{source.source_id}}'
              labels: {env: 'tags?.env ?? "unknown"'}
              annotations: {runbook: 'https://runbooks.example.com/cpu?host={{source.source_id}}'}
    output: {topic: ops.alert.v1}
sinks:
  - from: ops.alert.v1
    webhook: SETTINGS
`

// loadPipeline loads testPipeline with the webhook settings given (YAML flow style).
func loadPipeline(t *testing.T, settings string) *config.Pipeline {
	t.Helper()
	p, err := config.LoadBytes("test.yaml", []byte(replaceSettings(settings)), testComponents.Registry(), nil)
	if err != nil {
		t.Fatalf("loading the webhook settings %s: %v", settings, err)
	}
	return p
}

// replaceSettings is testPipeline with the webhook's settings.
func replaceSettings(settings string) string {
	return strings.Replace(testPipeline, "SETTINGS", settings, 1)
}

// loadConfig is the webhook config the loader makes of settings: defaults applied and
// validated, as a pipeline file gets it.
func loadConfig(t *testing.T, settings string) *Config {
	t.Helper()
	return loadPipeline(t, settings).Sinks[0].Plugin.Config.(*Config)
}

// fakeClock records the waits asked of it and passes them at once.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 10, 16, 9, 30, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	return nil
}

func (c *fakeClock) waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}

// newTestOutput opens an output for settings on a fake clock whose backoff waits are the
// largest the jitter allows, so that waits are known.
func newTestOutput(t *testing.T, settings string) (*Output, *fakeClock) {
	t.Helper()
	o, err := New(loadConfig(t, settings), engine.OutputEnv{BuildEnv: engine.BuildEnv{Stream: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	clock := newFakeClock()
	o.clock = clock
	o.jitter = func(bound time.Duration) time.Duration { return bound }
	return o, clock
}

// received is one request a receiver got.
type received struct {
	header http.Header
	body   []byte
}

// receiver is an HTTP server on 127.0.0.1 that answers with respond (200 when nil) and
// keeps what it received.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []received
	respond func(n int, r *http.Request, w http.ResponseWriter) // n counts requests from 1
}

func newReceiver(t *testing.T, respond func(n int, r *http.Request, w http.ResponseWriter)) *receiver {
	t.Helper()
	rc := &receiver{respond: respond}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{header: r.Header.Clone(), body: body})
		n := len(rc.got)
		rc.mu.Unlock()
		if rc.respond != nil {
			rc.respond(n, r, w)
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// settingsFor is webhook settings (YAML flow style) sending to rc, with extra settings.
func settingsFor(rc *receiver, extra string) string {
	if extra == "" {
		return fmt.Sprintf("{url: %q}", rc.URL)
	}
	return fmt.Sprintf("{url: %q, %s}", rc.URL, extra)
}

// metricEvent is a normalized metric record of host at minute after 09:00.
func metricEvent(host string, minute int, value float64) *engine.Record {
	at := time.Date(2025, 10, 16, 9, minute, 0, 0, time.UTC)
	return &engine.Record{
		Value: map[string]any{
			"event_id":  fmt.Sprintf("ev-%s-%02d", host, minute),
			"tenant_id": "acme",
			"source":    map[string]any{"type": "host", "source_id": host},
			"metric":    "cpu_load",
			"value":     value,
			"ts_event":  at.Format(time.RFC3339),
			"tags":      map[string]any{"env": "prod"},
		},
		Source: engine.Source{Topic: "signals.metric.v1", Offset: int64(minute)},
	}
}

// thresholdAlerts runs testPipeline's threshold processor on host a at 95 (fires
// critical), b at 85 (fires warning), c at 92 (fires critical), a at 50 (resolves), and
// returns its alert records as a sink reads them back from ops.alert.v1 (decoded JSON).
func thresholdAlerts(t *testing.T) []*engine.Record {
	t.Helper()
	p := loadPipeline(t, `{url: "http://127.0.0.1:1/"}`)
	pe := p.Streams[0].Processors[0]
	proc, err := threshold.Factory.Build(pe.Config, engine.BuildEnv{Path: pe.Path, Clock: engine.WallClock{}})
	if err != nil {
		t.Fatal(err)
	}
	in := []*engine.Record{metricEvent("a", 0, 95), metricEvent("b", 1, 85), metricEvent("c", 2, 92), metricEvent("a", 5, 50)}
	var rejects engine.Rejects
	out, err := proc.Process(context.Background(), in, &rejects)
	if err != nil || rejects.Len() > 0 {
		t.Fatalf("threshold: %v %v", err, rejects.Items)
	}
	if len(out) != 4 {
		t.Fatalf("threshold emitted %d alerts, want 4", len(out))
	}
	for i, rec := range out {
		raw, err := json.Marshal(rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		v, err := codec.DecodeObject(raw)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = &engine.Record{Value: v, Raw: raw, Key: rec.Key, Source: engine.Source{Topic: "ops.alert.v1", Offset: int64(i)}}
	}
	return out
}

// eventually polls cond until it holds, failing the test after a deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 20s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func mustContain(t *testing.T, what, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("%s %q does not contain %q", what, s, p)
		}
	}
}
