package broker

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		v    any
	}{
		{"envelope", map[string]any{"event_id": "e1", "value": 92.5, "source": map[string]any{"type": "host", "source_id": "h"}, "tags": map[string]any{}, "ok": true, "none": nil}},
		{"numbers", []any{0.0, -1.0, 1e21, 1e20, 1e-7, 123456789.125, 3.0, -0.000001, 5e-324, math.MaxFloat64, 42, int64(-7)}},
		{"escapes", []any{"quote\" back\\ nl\n tab\t cr\r bell\x07 nul\x00", "héllo ✓ 😀", "<html>&"}},
		{"nested arrays", map[string]any{"a": []any{[]any{}, map[string]any{"z": 1.0, "a": 2.0}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := appendJSON(nil, tt.v)
			if err != nil {
				t.Fatal(err)
			}
			var a, b any
			if err := json.Unmarshal(got, &a); err != nil {
				t.Fatalf("output is not JSON: %s: %v", got, err)
			}
			want, _ := json.Marshal(tt.v)
			_ = json.Unmarshal(want, &b)
			ga, _ := json.Marshal(a)
			gb, _ := json.Marshal(b)
			if string(ga) != string(gb) {
				t.Errorf("decodes differently from encoding/json:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestAppendJSONSpecialCases(t *testing.T) {
	got, _ := appendJSON(nil, map[string]any{"t": time.Date(2025, 10, 16, 9, 0, 0, 0, time.UTC), "bad": "\xff"})
	if want := `{"bad":"\ufffd","t":"2025-10-16T09:00:00Z"}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
	for _, v := range []any{math.NaN(), math.Inf(1), map[string]any{"c": make(chan int)}} {
		if _, err := appendJSON(nil, v); err == nil {
			t.Errorf("appendJSON(%v) succeeded; it has no JSON form", v)
		}
	}
}
