package runtime

import (
	"testing"
)

var rawSeed = []byte(`{"tenant_id":"acme","host":"host-a","metric":"cpu_load","value":92,"ts_event":"2025-10-16T09:00:00Z","unit":"percent","tags":{"env":"prod"}}`)

func BenchmarkDecodeRawEvent(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := decodeJSONObject(rawSeed); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateRawEvent(b *testing.B) {
	s, err := compileSchema("../../schemas/raw-agent.v1.json")
	if err != nil {
		b.Fatal(err)
	}
	v, _ := decodeJSONObject(rawSeed)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Validate(v); err != nil {
			b.Fatal(err)
		}
	}
}
