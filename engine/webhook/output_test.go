package webhook

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/enginetest"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

// The webhook passes the conformance suite every output passes: a receiver that stores
// what it gets is the place it writes to.
func TestOutputConformance(t *testing.T) {
	enginetest.TestOutput(t, func(t *testing.T) (engine.Output, enginetest.ReadBack) {
		rc := newReceiver(t, nil)
		o, _ := newTestOutput(t, settingsFor(rc, "batch: {max_records: 7}"))
		read := func(context.Context) ([]map[string]any, error) {
			var rows []map[string]any
			for _, r := range rc.requests() {
				var batch []map[string]any
				if err := json.Unmarshal(r.body, &batch); err != nil {
					return nil, err
				}
				rows = append(rows, batch...)
			}
			return rows, nil
		}
		return o, read
	})
}

// A cancelled Write returns the context's error promptly, even while a request is waiting
// for a receiver that does not answer, so the stream can stop and write the batch again.
func TestCancelledWriteReturnsPromptly(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rc := newReceiver(t, func(n int, r *http.Request, w http.ResponseWriter) {
		select { // several requests may come at once (one per key); the first is enough
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	o, _ := newTestOutput(t, settingsFor(rc, "timeout: 1h"))
	var rejects engine.Rejects
	writeThenCancel(t, o, enginetest.Events(0, 3), &rejects, func() { <-arrived })
	if rejects.Len() != 0 {
		t.Errorf("a cancelled Write rejected %v; its records must be written again instead", rejects.Items)
	}
}

// A cancelled Write also stops a retry's backoff wait.
func TestCancelStopsTheBackoff(t *testing.T) {
	rc := newReceiver(t, func(n int, r *http.Request, w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) })
	o, err := New(loadConfig(t, settingsFor(rc, "backoff: {initial: 1h, max: 1h}, max_elapsed: 2h")), engine.OutputEnv{})
	if err != nil {
		t.Fatal(err)
	}
	writeThenCancel(t, o, enginetest.Events(0, 1), &engine.Rejects{}, func() {
		eventually(t, "the first attempt", func() bool { return len(rc.requests()) == 1 })
	})
}

// writeThenCancel starts writing batch, cancels the Write's context once until returns,
// and checks that the Write then returns context.Canceled promptly.
func writeThenCancel(t *testing.T, o *Output, batch []*engine.Record, rejects *engine.Rejects, until func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Write(ctx, batch, rejects) }()
	until()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Write returned %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Write did not return after its context was cancelled")
	}
}

// The idempotency key is the same each time the same records are sent: a second Write of
// the same batch (a redelivery after a restart) repeats every key; other records, or the
// same alert in another state, get other keys.
func TestIdempotencyKeyIsStableAcrossWrites(t *testing.T) {
	alerts := thresholdAlerts(t) // a fires, b fires, c fires, a resolves
	keysOf := func(settings string, batches ...[]*engine.Record) []string {
		rc := newReceiver(t, nil)
		o, _ := newTestOutput(t, settingsFor(rc, settings))
		for _, b := range batches {
			var rejects engine.Rejects
			if err := o.Write(context.Background(), b, &rejects); err != nil || rejects.Len() > 0 {
				t.Fatalf("Write: %v %v", err, rejects.Items)
			}
		}
		var keys []string
		for _, r := range rc.requests() {
			keys = append(keys, r.header.Get("Idempotency-Key"))
		}
		return keys
	}
	// Alerts of different fingerprints go out in parallel, in any order.
	one := keysOf("format: alertmanager", alerts, alerts)
	if len(one) != 8 || !slices.Equal(slices.Sorted(slices.Values(one[:4])), slices.Sorted(slices.Values(one[4:]))) {
		t.Errorf("keys of two Writes of the same alerts differ: %v", one)
	}
	if distinct := uniq(one[:4]); len(distinct) != 4 {
		t.Errorf("keys %v: want one per alert transition (a's firing and resolved differ)", one[:4])
	}
	// Batched, the two Writes send the same notifications (a's resolve in a second one: a
	// notification holds an alert once) under the same keys.
	batched := keysOf("format: alertmanager, batch: {max_records: 4}", alerts, alerts)
	if len(batched) != 4 || !slices.Equal(batched[:2], batched[2:]) || batched[0] == batched[1] || uniq(one)[batched[0]] {
		t.Errorf("batch keys %v: want two keys per Write, the same for both Writes, the batch's unlike a single record's", batched)
	}
	plain := keysOf("", []*engine.Record{metricEvent("a", 0, 1)}, []*engine.Record{metricEvent("a", 0, 1)}, []*engine.Record{metricEvent("a", 1, 1)})
	if len(plain) != 3 || plain[0] != plain[1] || plain[0] == plain[2] {
		t.Errorf("keys by event_id %v: want the same for the same event_id, another for another", plain)
	}
	noID := func(offset int64) []*engine.Record {
		return []*engine.Record{{Value: map[string]any{"x": 1}, Source: engine.Source{Topic: "t", Offset: offset}}}
	}
	bySource := keysOf("", noID(5), noID(5), noID(6))
	if len(bySource) != 3 || bySource[0] != bySource[1] || bySource[0] == bySource[2] || bySource[0] == "" {
		t.Errorf("keys by source position %v: want the same for one position, another for another", bySource)
	}
	if off := keysOf(`idempotency_header: ""`, alerts[:1]); len(off) != 1 || off[0] != "" {
		t.Errorf("idempotency_header \"\" still sends the header: %v", off)
	}
}

func uniq(s []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range s {
		m[x] = true
	}
	return m
}

// No secret of the configuration appears in a dead letter's reason or in a log line, even
// when the receiver echoes the request back or cannot be reached.
func TestSecretsNeverAppearInErrorsOrLogs(t *testing.T) {
	secrets := []string{"s3cret-pass", base64.StdEncoding.EncodeToString([]byte("ops:s3cret-pass")), "bearer-tok-123", "header-key-456", "query-tok-789"}
	echo := func(n int, r *http.Request, w http.ResponseWriter) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, "denied: %s %s %s", r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"), r.URL.RawQuery)
	}
	rc := newReceiver(t, echo)
	gone := newReceiver(t, nil)
	gone.Close() // connection refused
	for _, tt := range []struct {
		name, url, auth string
	}{
		{"basic auth, echoed", rc.URL, `basic_auth: {username: ops, password: s3cret-pass}`},
		{"bearer token, echoed", rc.URL, `bearer_token: bearer-tok-123`},
		{"URL password, refused connection", strings.Replace(gone.URL, "http://", "http://ops:s3cret-pass@", 1), `max_attempts: 2`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			settings := fmt.Sprintf(`{url: "%s/hook?token=query-tok-789", headers: {X-Api-Key: header-key-456}, %s}`, tt.url, tt.auth)
			var logs bytes.Buffer
			o, err := New(loadConfig(t, settings), engine.OutputEnv{BuildEnv: engine.BuildEnv{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}})
			if err != nil {
				t.Fatal(err)
			}
			o.clock = newFakeClock()
			var rejects engine.Rejects
			if err := o.Write(context.Background(), enginetest.Events(0, 1), &rejects); err != nil || rejects.Len() != 1 {
				t.Fatalf("Write: %v, rejects %v", err, rejects.Items)
			}
			msg := rejects.Items[0].Err.Error()
			for _, s := range secrets {
				if strings.Contains(msg, s) || strings.Contains(logs.String(), s) {
					t.Errorf("secret %q leaked:\nreason: %s\nlogs: %s", s, msg, logs.String())
				}
			}
			mustContain(t, "reason", msg, "/hook?token=xxxxx")
		})
	}
}

// A record whose body is over max_body_bytes is a dead letter with its size, not sent; a
// batch over it is split into requests that fit.
func TestBodiesOverTheLimit(t *testing.T) {
	rc := newReceiver(t, nil)
	o, _ := newTestOutput(t, settingsFor(rc, "max_body_bytes: 1KiB, batch: {max_records: 10}"))
	big := metricEvent("big", 0, 1)
	big.Value["blob"] = strings.Repeat("x", 2000)
	batch := []*engine.Record{big}
	for i := range 6 {
		rec := metricEvent(fmt.Sprint("h", i), i, 1)
		rec.Value["blob"] = strings.Repeat("y", 300)
		batch = append(batch, rec)
	}
	var rejects engine.Rejects
	if err := o.Write(context.Background(), batch, &rejects); err != nil {
		t.Fatal(err)
	}
	if rejects.Len() != 1 || rejects.Items[0].Record != big {
		t.Fatalf("rejects %v, want the big record", rejects.Items)
	}
	mustContain(t, "reason", rejects.Items[0].Err.Error(), "webhook POST "+rc.URL+": the request body would be ", "over max_body_bytes (1KiB)", "not sent")
	sent := 0
	for _, r := range rc.requests() {
		if len(r.body) > 1024 {
			t.Errorf("a request of %d bytes was sent", len(r.body))
		}
		var recs []map[string]any
		if err := json.Unmarshal(r.body, &recs); err != nil {
			t.Fatal(err)
		}
		sent += len(recs)
	}
	if sent != 6 {
		t.Errorf("%d records sent, want the 6 that fit", sent)
	}
}

// The output counts requests by status class, retries, dead letters by reason and request
// durations.
func TestMetrics(t *testing.T) {
	rc := newReceiver(t, answers(answer{status: 503}, answer{status: 200}, answer{status: 400}))
	m := telemetry.New()
	o, err := New(loadConfig(t, settingsFor(rc, "concurrency: 1")), engine.OutputEnv{BuildEnv: engine.BuildEnv{Stream: "s"}, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	o.clock = newFakeClock()
	var rejects engine.Rejects
	if err := o.Write(context.Background(), enginetest.Events(0, 2), &rejects); err != nil || rejects.Len() != 1 {
		t.Fatalf("Write: %v, rejects %v", err, rejects.Items)
	}
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"2xx", testutil.ToFloat64(m.WebhookRequests.WithLabelValues("s", "2xx")), 1},
		{"4xx", testutil.ToFloat64(m.WebhookRequests.WithLabelValues("s", "4xx")), 1},
		{"5xx", testutil.ToFloat64(m.WebhookRequests.WithLabelValues("s", "5xx")), 1},
		{"retries", testutil.ToFloat64(m.WebhookRetries.WithLabelValues("s")), 1},
		{"dead lettered, rejected", testutil.ToFloat64(m.WebhookDeadLettered.WithLabelValues("s", "rejected")), 1},
		{"request durations observed", float64(testutil.CollectAndCount(m.WebhookRequestSeconds)), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// https receivers: a private CA is trusted through tls.ca_file, an unknown one is not (the
// record is retried, then given up with the certificate error), and insecure_skip_verify
// accepts any certificate.
func TestTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, tls string
		rejected  bool
	}{
		{"trusted through ca_file", fmt.Sprintf("tls: {ca_file: %q}", ca), false},
		{"unknown authority", "max_attempts: 2", true},
		{"insecure_skip_verify", "tls: {insecure_skip_verify: true}", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o, _ := newTestOutput(t, fmt.Sprintf("{url: %q, %s}", srv.URL, tt.tls))
			var rejects engine.Rejects
			if err := o.Write(context.Background(), enginetest.Events(0, 1), &rejects); err != nil {
				t.Fatal(err)
			}
			if rejected := rejects.Len() == 1; rejected != tt.rejected {
				t.Fatalf("rejected = %v, want %v: %v", rejected, tt.rejected, rejects.Items)
			}
			if tt.rejected {
				mustContain(t, "reason", rejects.Items[0].Err.Error(), "gave up after 2 attempts", "certificate")
			}
		})
	}
}
