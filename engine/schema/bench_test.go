package schema

import (
	"testing"
	"time"
)

// BenchmarkValidate compares Validate with the jsonschema/v5 reference on valid records,
// the case the engine sees for nearly every event.
func BenchmarkValidate(b *testing.B) {
	ts := time.Date(2025, 10, 16, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		name, schema string
		doc          func() any
	}{
		{"raw-agent", "raw-agent", func() any {
			return decode(b, `{"tenant_id":"acme","host":"host-a","metric":"cpu_load","value":92,"ts_event":"2025-10-16T09:00:00Z","unit":"percent","tags":{"env":"prod"}}`)
		}},
		{"envelope", "envelope", func() any {
			return decode(b, `{"event_id":"e1","ts_event":"2025-10-16T09:00:00Z","ts_ingest":"2025-10-16T09:00:01Z","tenant_id":"acme","source":{"type":"host","source_id":"host-a"},"metric":"cpu_load","value":92,"unit":"percent","tags":{"env":"prod","dc":"eu-1"}}`)
		}},
		// An envelope as the map processor builds it: time.Time and map[string]string.
		{"envelope-go-types", "envelope", func() any {
			return map[string]any{"event_id": "e1", "ts_event": ts, "ts_ingest": ts, "tenant_id": "acme",
				"source": map[string]any{"type": "host", "source_id": "host-a"}, "metric": "cpu_load",
				"value": 92.0, "unit": "percent", "tags": map[string]string{"env": "prod", "dc": "eu-1"}}
		}},
	}
	for _, c := range cases {
		v, err := Compile("../../schemas/" + c.schema + ".v1.json")
		if err != nil {
			b.Fatal(err)
		}
		doc := c.doc()
		b.Run(c.name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := v.Validate(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/reference", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := v.Reference().Validate(toJSON(doc)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkValidateInvalid shows the cost of a rejected record: the fast tree's verdict
// plus the reference run that produces the error.
func BenchmarkValidateInvalid(b *testing.B) {
	v, err := Compile("../../schemas/raw-agent.v1.json")
	if err != nil {
		b.Fatal(err)
	}
	doc := decode(b, `{"host":"host-a","metric":"cpu load","value":"92"}`)
	b.ReportAllocs()
	for b.Loop() {
		if v.Validate(doc) == nil {
			b.Fatal("accepted an invalid record")
		}
	}
}
