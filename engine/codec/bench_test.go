package codec

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

var benchInputs = []struct {
	name string
	data []byte
}{
	{"raw_event", rawEvent},
	{"envelope", []byte(`{"event_id":"3f9c2a1e8b7d4c60","tenant_id":"acme","host":"host-a","metric":"cpu_load","value":92.5,"unit":"percent","ts_event":"2025-10-16T09:00:00Z","ts_ingest":"2025-10-16T09:00:00.123456Z","tags":{"env":"prod","region":"eu-west-1"},"cmdb":{"owner":"team-ops","tier":1,"service":"checkout"},"source":{"topic":"ingest.raw.agent","partition":2,"offset":123456}}`)},
	{"escaped_message", []byte(`{"host":"host-a","message":"disk \"/var\" at 97%\nretrying in 5s \u2014 see runbook","level":"warn"}`)},
	{"array_of_numbers", []byte(`{"samples":[` + strings.TrimSuffix(strings.Repeat("12.5,1001,0.001,", 32), ",") + `]}`)},
}

// BenchmarkDecode compares DecodeObject with encoding/json on the same inputs in one run.
func BenchmarkDecode(b *testing.B) {
	for _, in := range benchInputs {
		b.Run(in.name+"/codec", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in.data)))
			for b.Loop() {
				if _, err := DecodeObject(in.data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(in.name+"/encoding_json", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in.data)))
			for b.Loop() {
				var v any
				if err := json.Unmarshal(in.data, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeParallel(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := DecodeObject(rawEvent); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkAppendObject(b *testing.B) {
	for _, in := range benchInputs {
		v, err := DecodeObject(in.data)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(in.name+"/codec", func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				if buf, err = AppendObject(buf[:0], v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(in.name+"/encoding_json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeVaryingEvents decodes events whose timestamp and value change, as in a real
// stream, so the value cache misses on them instead of flattering the figures.
func BenchmarkDecodeVaryingEvents(b *testing.B) {
	events := make([][]byte, 1024)
	for i := range events {
		events[i] = fmt.Appendf(nil, `{"tenant_id":"acme","host":"host-%c","metric":"cpu_load","value":%d.%d,"ts_event":"2025-10-16T09:%02d:%02dZ","unit":"percent","tags":{"env":"prod"}}`,
			'a'+i%5, i%100, i%10, i/60%60, i%60)
	}
	b.Run("codec", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := DecodeObject(events[i%len(events)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			var v any
			if err := json.Unmarshal(events[i%len(events)], &v); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkShareable measures making an envelope as normalize builds it (times, an integer,
// nested objects) shareable, next to decoding its bytes, which it saves each reader.
func BenchmarkShareable(b *testing.B) {
	build := func() map[string]any {
		now := time.Date(2026, 12, 7, 10, 0, 0, 123456789, time.UTC)
		return map[string]any{
			"event_id": "3f9c2a1e-8b7d-4c60-8000-000000000001", "ts_event": now, "ts_ingest": now, "tenant_id": "acme",
			"source": map[string]any{"type": "host", "source_id": "host-a"}, "schema_name": "monitoring.envelope.v1",
			"schema_version": 1, "metric": "cpu_load", "value": 92.5, "unit": "percent",
			"tags": map[string]any{"env": "prod", "owner": "team-platform", "site": "fra1", "service": "checkout", "criticality": "high"},
		}
	}
	encoded, err := AppendObject(nil, build())
	if err != nil {
		b.Fatal(err)
	}
	// fresh hands out envelopes newly built, outside the timed part.
	fresh := func(b *testing.B) func() map[string]any {
		vs := make([]map[string]any, 0, 1024)
		return func() map[string]any {
			if len(vs) == 0 {
				b.StopTimer()
				for range cap(vs) {
					vs = append(vs, build())
				}
				b.StartTimer()
			}
			v := vs[len(vs)-1]
			vs = vs[:len(vs)-1]
			return v
		}
	}
	b.Run("shareable", func(b *testing.B) {
		b.ReportAllocs()
		next := fresh(b)
		for b.Loop() {
			if !Shareable(next()) {
				b.Fatal("not shareable")
			}
		}
	})
	var buf []byte
	b.Run("encode_then_shareable", func(b *testing.B) {
		b.ReportAllocs()
		next := fresh(b)
		for b.Loop() {
			v := next()
			buf, err = AppendObject(buf[:0], v)
			if err != nil || !Shareable(v) {
				b.Fatal("not shareable", err)
			}
		}
	})
	b.Run("encode_shareable", func(b *testing.B) {
		b.ReportAllocs()
		next := fresh(b)
		for b.Loop() {
			var shared bool
			if buf, shared, err = AppendShareable(buf[:0], next()); err != nil || !shared {
				b.Fatal("not shareable", err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeObject(encoded); err != nil {
				b.Fatal(err)
			}
		}
	})
}
