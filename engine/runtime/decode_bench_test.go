package runtime

import (
	"github.com/eventops/eventops-engine/engine/codec"
	"testing"
)

var rawSeed = []byte(`{"tenant_id":"acme","host":"host-a","metric":"cpu_load","value":92,"ts_event":"2025-10-16T09:00:00Z","unit":"percent","tags":{"env":"prod"}}`)

func BenchmarkDecodeRawEvent(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := codec.DecodeObject(rawSeed); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateRawEvent(b *testing.B) {
	s, err := compileSchema("../../schemas/raw-agent.v1.json")
	if err != nil {
		b.Fatal(err)
	}
	v, _ := codec.DecodeObject(rawSeed)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Validate(v); err != nil {
			b.Fatal(err)
		}
	}
}
