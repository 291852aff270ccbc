package mapproc

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/eval"
)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

var testNow = time.Date(2025, 10, 16, 9, 0, 5, 0, time.UTC)

func expr(src string) *config.Expr { return &config.Expr{Src: src} }

// envelope is the seed's normalizer mapping, as a pipeline file writes it.
func envelope() *config.Fields {
	return &config.Fields{
		{Name: "event_id", Expr: expr("record_id()")},
		{Name: "tenant_id", Expr: expr(`tenant_id ?? "default"`)},
		{Name: "source", Expr: expr(`{type: "host", source_id: host ?? "unknown"}`)},
		{Name: "metric", Expr: expr("metric")},
		{Name: "value", Expr: expr("float(value)")},
		{Name: "unit", Expr: expr("unit")},
		{Name: "ts_event", Expr: expr("ts_event ?? now()")},
		{Name: "tags", Expr: expr("tags")},
	}
}

func newProc(t *testing.T, f *config.Fields) engine.Processor {
	t.Helper()
	p, err := Factory.Build(f, engine.BuildEnv{Path: "streams[0].processors[0].map", Clock: fixedClock(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMapBuildsTheEnvelopeFromTheSeedEvent(t *testing.T) {
	src := engine.Source{Topic: "ingest.raw.agent", Partition: 1, Offset: 7}
	tests := []struct {
		name string
		raw  string
		want map[string]any
	}{
		{
			name: "seed quickstart event",
			raw:  `{"tenant_id":"acme","host":"host-a","metric":"cpu_load","value":92,"ts_event":"2025-10-16T09:00:00Z","unit":"percent","tags":{"env":"prod"}}`,
			want: map[string]any{
				"event_id": eval.RecordID(src), "tenant_id": "acme",
				"source": map[string]any{"type": "host", "source_id": "host-a"},
				"metric": "cpu_load", "value": 92.0, "unit": "percent",
				"ts_event": "2025-10-16T09:00:00Z", "tags": map[string]any{"env": "prod"},
			},
		},
		{
			name: "defaults fill missing tenant, host and time; absent unit is left out",
			raw:  `{"metric":"mem_used","value":"41.5"}`,
			want: map[string]any{
				"event_id": eval.RecordID(src), "tenant_id": "default",
				"source": map[string]any{"type": "host", "source_id": "unknown"},
				"metric": "mem_used", "value": 41.5, "ts_event": "2025-10-16T09:00:05Z",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &engine.Record{Value: decode(t, tt.raw), Key: []byte("k"), Source: src}
			var rejects engine.Rejects
			out, err := newProc(t, envelope()).Process(context.Background(), []*engine.Record{rec}, &rejects)
			if err != nil || rejects.Len() != 0 || len(out) != 1 {
				t.Fatalf("out %d records, %d rejects (%v), err %v", len(out), rejects.Len(), rejects.Items, err)
			}
			got, _ := json.Marshal(out[0].Value)
			want, _ := json.Marshal(tt.want)
			if string(got) != string(want) {
				t.Errorf("envelope\n got %s\nwant %s", got, want)
			}
			if string(out[0].Key) != "k" || out[0].Source != src {
				t.Errorf("key/source not kept: %q %v", out[0].Key, out[0].Source)
			}
		})
	}
}

func TestMapNestedMappingBuildsObjects(t *testing.T) {
	f := &config.Fields{
		{Name: "source", Nested: config.Fields{
			{Name: "type", Expr: expr(`"host"`)},
			{Name: "source_id", Expr: expr("host")},
		}},
	}
	rec := &engine.Record{Value: map[string]any{"host": "host-a"}}
	out, _ := newProc(t, f).Process(context.Background(), []*engine.Record{rec}, &engine.Rejects{})
	src, _ := out[0].Value["source"].(map[string]any)
	if src["type"] != "host" || src["source_id"] != "host-a" {
		t.Fatalf("got %v", out[0].Value)
	}
}

func TestMapRejectsOnlyTheBadRecord(t *testing.T) {
	batch := []*engine.Record{
		{Value: map[string]any{"metric": "cpu", "value": 1.0}},
		{Value: map[string]any{"metric": "cpu", "value": "not a number"}},
		{Value: map[string]any{"metric": "cpu", "value": 3.0}},
	}
	var rejects engine.Rejects
	out, err := newProc(t, envelope()).Process(context.Background(), batch, &rejects)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].Value["value"] != 1.0 || out[1].Value["value"] != 3.0 {
		t.Fatalf("kept %d records: %v", len(out), out)
	}
	if rejects.Len() != 1 || rejects.Items[0].Record != batch[1] {
		t.Fatalf("rejects = %v", rejects.Items)
	}
	r := rejects.Items[0]
	if r.Stage != "streams[0].processors[0].map" || !strings.Contains(r.Err.Error(), "field value") {
		t.Errorf("reject stage %q reason %q: want the processor path and the failing field", r.Stage, r.Err)
	}
	if batch[0] == nil || batch[2] == nil || len(batch) != 3 {
		t.Error("Process changed the caller's batch slice")
	}
}

func TestMapBuildErrorsPointAtTheExpression(t *testing.T) {
	tests := []struct {
		name string
		cfg  *config.Fields
		want string
	}{
		{"syntax error", &config.Fields{{Name: "v", Pos: config.Pos{File: "p.yaml", Line: 9, Col: 7},
			Expr: &config.Expr{Src: "float(value", Pos: config.Pos{File: "p.yaml", Line: 9, Col: 10}, Path: "streams[0].processors[0].map.v"}}},
			"p.yaml:9:"},
		{"empty mapping", &config.Fields{}, "at least one field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Factory.Build(tt.cfg, engine.BuildEnv{Path: "streams[0].processors[0].map"})
			// Expression errors carry their own position; the empty mapping's error is placed
			// at the processor by the runtime (see FuzzCheck in processors/all).
			if _, ok := err.(config.Errors); !ok && tt.name != "empty mapping" {
				t.Fatalf("error %T %v is not config.Errors", err, err)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q lacks %q", err, tt.want)
			}
		})
	}
}

func BenchmarkMapSixFields(b *testing.B) {
	p, err := Factory.Build(&config.Fields{
		{Name: "event_id", Expr: expr("record_id()")},
		{Name: "tenant_id", Expr: expr(`tenant_id ?? "default"`)},
		{Name: "source", Expr: expr(`{type: "host", source_id: host ?? "unknown"}`)},
		{Name: "metric", Expr: expr("metric")},
		{Name: "value", Expr: expr("float(value)")},
		{Name: "ts_event", Expr: expr("ts_event ?? now()")},
	}, engine.BuildEnv{Path: "bench", Clock: fixedClock(testNow)})
	if err != nil {
		b.Fatal(err)
	}
	raw := map[string]any{"tenant_id": "acme", "host": "host-a", "metric": "cpu_load", "value": 92.0,
		"ts_event": "2025-10-16T09:00:00Z", "unit": "percent", "tags": map[string]any{"env": "prod"}}
	rec := &engine.Record{}
	batch := []*engine.Record{rec}
	var rejects engine.Rejects
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		rec.Value, rec.Source.Offset = raw, int64(i)
		if _, err := p.Process(context.Background(), batch, &rejects); err != nil || rejects.Len() != 0 {
			b.Fatal(err, rejects.Items)
		}
	}
}
