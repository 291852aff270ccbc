package confluent_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/confluent"
)

const readingProto = `syntax = "proto3";
package agent;
import "google/protobuf/timestamp.proto";

message Reading {
  string host = 1;
  double value = 2;
  int64 count = 3;
  Level level = 4;
  google.protobuf.Timestamp ts = 5;
  map<string, string> tags = 6;
  repeated string seen = 7;
  Origin origin = 8;
  message Origin { string site = 1; }
}

enum Level { LEVEL_UNSPECIFIED = 0; WARN = 1; CRIT = 2; }
`

// Protobuf in the wire format: a value written with the subject's schema (message index [0],
// the first message) reads back as the engine's values, the well-known Timestamp as RFC 3339
// and the enum by name; a value that does not fit says which field.
func TestProtobufRoundTrip(t *testing.T) {
	cl, _ := registryClient(t)
	ctx := context.Background()
	if _, err := cl.CreateSchema(ctx, "readings-value", sr.Schema{Schema: readingProto, Type: sr.TypeProtobuf}); err != nil {
		t.Fatal(err)
	}
	enc, err := confluent.NewEncoder(ctx, cl, "readings-value")
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]any{"host": "web-1", "value": 0.87, "count": 42.0, "level": "CRIT", "ts": "2026-12-07T09:00:00.5Z",
		"tags": map[string]any{"env": "prod"}, "seen": []any{"a", "b"}, "origin": map[string]any{"site": "fra1"}, "extra": 1.0}
	raw, err := enc.Encode(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	dec := confluent.NewDecoder(cl)
	if err := dec.Prepare(ctx, []*engine.Record{{Raw: raw}}); err != nil {
		t.Fatal(err)
	}
	got, err := dec.Decode(raw)
	want := map[string]any{"host": "web-1", "value": 0.87, "count": 42.0, "level": "CRIT", "ts": "2026-12-07T09:00:00.5Z",
		"tags": map[string]any{"env": "prod"}, "seen": []any{"a", "b"}, "origin": map[string]any{"site": "fra1"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("read back %#v, %v\nwant %#v", got, err, want)
	}
	if _, err := enc.Encode(nil, map[string]any{"count": 1.5}); err == nil || !strings.Contains(err.Error(), "field count: want a whole number") {
		t.Errorf("1.5 for an int64: %v", err)
	}
	if _, err := cl.CreateSchema(ctx, "broken-value", sr.Schema{Schema: "message {", Type: sr.TypeProtobuf}); err == nil {
		t.Error("a .proto that does not compile was registered")
	}
}
