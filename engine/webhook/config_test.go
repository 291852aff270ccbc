package webhook

import (
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
)

// A webhook with only a url gets the documented defaults: one record per POST as JSON,
// 10s per request, 10 attempts within 5m, backoff from 500ms to 30s, 4 in flight, the
// Idempotency-Key header and a 1MiB body limit.
func TestDefaults(t *testing.T) {
	c := loadConfig(t, `{url: "http://127.0.0.1:9000/hook"}`)
	want := Config{
		URL: "http://127.0.0.1:9000/hook", Method: "POST", Format: FormatJSON, Receiver: "eventops-engine",
		Batch: Batch{MaxRecords: 1},
		Delivery: Delivery{
			Timeout: config.Duration(10 * time.Second), MaxAttempts: 10, MaxElapsed: config.Duration(5 * time.Minute),
			Backoff:      Backoff{Initial: config.Duration(500 * time.Millisecond), Max: config.Duration(30 * time.Second)},
			Concurrency:  4,
			MaxBodyBytes: 1 << 20,
		},
		IdempotencyHeader: "Idempotency-Key",
	}
	if c.URL != want.URL || c.Method != want.Method || c.Format != want.Format || c.Receiver != want.Receiver ||
		c.Batch != want.Batch || c.Timeout != want.Timeout || c.MaxAttempts != want.MaxAttempts || c.MaxElapsed != want.MaxElapsed ||
		c.Backoff != want.Backoff || c.Concurrency != want.Concurrency || c.IdempotencyHeader != want.IdempotencyHeader ||
		c.MaxBodyBytes != want.MaxBodyBytes {
		t.Errorf("defaults:\ngot  %+v\nwant %+v", *c, want)
	}
}

// Validate refuses what would fail at run time, naming the setting.
func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name, settings, wantField string
	}{
		{"no host", `{url: "http:///hook"}`, "url"},
		{"not http", `{url: "file:///etc/passwd"}`, "url"},
		{"template format without a template", `{url: "http://h/", format: template}`, "template"},
		{"template format in batches", `{url: "http://h/", format: template, template: "x", batch: {max_records: 2}}`, "batch.max_records"},
		{"bad group_by label", `{url: "http://h/", format: alertmanager, group_by: [host-name]}`, "group_by[0]"},
		{"bad external_url", `{url: "http://h/", format: alertmanager, external_url: "engine:8088"}`, "external_url"},
		{"zero timeout", `{url: "http://h/", timeout: 0s}`, "timeout"},
		{"no attempt", `{url: "http://h/", max_attempts: 0}`, "max_attempts"},
		{"backoff max below initial", `{url: "http://h/", backoff: {initial: 2s, max: 1s}}`, "backoff.max"},
		{"too much concurrency", `{url: "http://h/", concurrency: 1000}`, "concurrency"},
		{"tiny body limit", `{url: "http://h/", max_body_bytes: 100}`, "max_body_bytes"},
		{"Host header", `{url: "http://h/", headers: {Host: other}}`, "headers.Host"},
		{"header with a line break", `{url: "http://h/", headers: {X-A: "a\nb"}}`, "headers.X-A"},
		{"header that is the idempotency header", `{url: "http://h/", headers: {idempotency-key: x}}`, "headers.idempotency-key"},
		{"bad idempotency header", `{url: "http://h/", idempotency_header: "a b"}`, "idempotency_header"},
		{"cert without key", `{url: "https://h/", tls: {cert_file: c.pem}}`, "tls"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.LoadBytes("test.yaml", []byte(replaceSettings(tt.settings)), testComponents.Registry(), nil)
			if err == nil {
				t.Fatal("accepted")
			}
			mustContain(t, "error", err.Error(), "sinks[0].webhook."+tt.wantField+":")
		})
	}
}
