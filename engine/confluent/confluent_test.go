package confluent_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/confluent"
	"github.com/eventops/eventops-engine/engine/registry"
)

const envelope = `{"type": "record", "name": "Reading", "namespace": "ops", "fields": [
  {"name": "host", "type": "string"},
  {"name": "value", "type": "double"},
  {"name": "count", "type": "long"},
  {"name": "version", "type": "int"},
  {"name": "unit", "type": ["null", "string"], "default": null},
  {"name": "tags", "type": {"type": "map", "values": "string"}, "default": {}},
  {"name": "seen", "type": {"type": "array", "items": "string"}}
]}`

// registryClient serves an engine registry and returns franz-go's client of it.
func registryClient(t *testing.T) (*sr.Client, *httptest.Server) {
	t.Helper()
	store, err := registry.Open("")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.NewServer(store, slog.New(slog.DiscardHandler)).Handler())
	t.Cleanup(srv.Close)
	cl, err := sr.NewClient(sr.URLs(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	return cl, srv
}

// A value written with a subject's latest schema reads back as the value the engine had,
// in its data model (numbers float64, a time a string), for Avro and for JSON Schema.
func TestWhatTheEncoderWritesTheDecoderReads(t *testing.T) {
	cl, _ := registryClient(t)
	ctx := context.Background()
	if _, err := cl.CreateSchema(ctx, "readings-value", sr.Schema{Schema: envelope}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateSchema(ctx, "events-value", sr.Schema{Schema: `{"type": "object"}`, Type: sr.TypeJSON}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	in := map[string]any{"host": "web-1", "value": 0.87, "count": 42.0, "version": 1, "tags": map[string]any{"env": "prod"}, "seen": []any{"a"}, "extra": "dropped"}
	want := map[string]any{"host": "web-1", "value": 0.87, "count": 42.0, "version": 1.0, "unit": nil, "tags": map[string]any{"env": "prod"}, "seen": []any{"a"}}
	for subject, tc := range map[string]struct{ in, want map[string]any }{
		"readings-value": {in, want},
		"events-value":   {map[string]any{"ts": at, "n": 3.0}, map[string]any{"ts": "2026-12-07T09:00:00Z", "n": 3.0}},
	} {
		enc, err := confluent.NewEncoder(ctx, cl, subject)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := enc.Encode(nil, tc.in)
		if err != nil {
			t.Fatalf("%s: %v", subject, err)
		}
		if id, _ := confluent.SchemaID(raw); id != enc.SchemaID() {
			t.Fatalf("%s: header id %d, want %d", subject, id, enc.SchemaID())
		}
		dec := confluent.NewDecoder(cl)
		if err := dec.Prepare(ctx, []*engine.Record{{Raw: raw}}); err != nil {
			t.Fatal(err)
		}
		got, err := dec.Decode(raw)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: read back %#v, %v\nwant %#v", subject, got, err, tc.want)
		}
	}
}

// What cannot be written or read says why and where; a registry that cannot be reached is
// an error of Prepare (the stream retries), not of a record.
func TestFailuresSayWhy(t *testing.T) {
	cl, srv := registryClient(t)
	ctx := context.Background()
	if _, err := cl.CreateSchema(ctx, "readings-value", sr.Schema{Schema: envelope}); err != nil {
		t.Fatal(err)
	}
	enc, err := confluent.NewEncoder(ctx, cl, "readings-value")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Encode(nil, map[string]any{"host": "web-1", "value": "high", "count": 1.0, "version": 1.0, "seen": []any{}}); err == nil || !strings.Contains(err.Error(), "field value: want double") {
		t.Errorf("a string for a double: %v", err)
	}
	if _, err := enc.Encode(nil, map[string]any{"host": "web-1", "value": 1.0, "count": 1.5, "version": 1.0, "seen": []any{}}); err == nil || !strings.Contains(err.Error(), "field count: want a whole number") {
		t.Errorf("1.5 for a long: %v", err)
	}
	if _, err := confluent.NewEncoder(ctx, cl, "nope-value"); err == nil || !strings.Contains(err.Error(), `subject "nope-value"`) {
		t.Errorf("an unknown subject: %v", err)
	}
	dec := confluent.NewDecoder(cl)
	unknown := []byte{0, 0, 0, 0, 99, 1, 2}
	if err := dec.Prepare(ctx, []*engine.Record{{Raw: unknown}, {Raw: []byte(`{"json":1}`)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Decode(unknown); err == nil || !strings.Contains(err.Error(), "schema id 99 is not in the registry") {
		t.Errorf("an unknown id: %v", err)
	}
	if _, err := dec.Decode([]byte(`{"json":1}`)); err != confluent.ErrNotWireFormat {
		t.Errorf("plain JSON: %v", err)
	}
	srv.Close()
	other := []byte{0, 0, 0, 0, 1, 2}
	if err := confluent.NewDecoder(cl).Prepare(ctx, []*engine.Record{{Raw: other}}); err == nil {
		t.Error("with the registry gone, Prepare did not fail: its records would be refused instead of read later")
	}
}
