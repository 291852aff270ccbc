package api

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// A table route's rows are written with the bytes encoding/json writes, whatever they hold.
func TestRowsEncodeAsEncodingJSONDoes(t *testing.T) {
	rows := []map[string]any{
		{"ts": "2026-12-08T00:00:00Z", "source_id": "host-a", "value": 92.5},
		{"ts": "2026-12-08T00:01:00Z", "source_id": "host-b", "value": 1e21},
		{"value": 1e-7, "n": int64(-3), "i": 7, "ok": true, "none": nil, "html": "<b>&</b>", "ctl": "a\nb\t\"q\"\\", "utf": "héllo \u2028 ☃", "bad": "\xff"},
		{"tags": map[string]any{"z": 1.0, "a": []any{"x", 2.0, nil, map[string]any{}}}, "at": time.Date(2026, 12, 8, 1, 2, 3, 4, time.UTC)},
		{},
		{"neg": -0.0, "small": 5e-324, "big": math.MaxFloat64, "third": 1.0 / 3, "e": 123456789e-15},
	}
	checkEncoding(t, rows)
}

func checkEncoding(t *testing.T, rows []map[string]any) {
	t.Helper()
	want, werr := json.Marshal(rows)
	got, gerr := appendRows(nil, rows)
	if (werr != nil) != (gerr != nil) || !bytes.Equal(got, want) {
		t.Fatalf("rows %v:\n got %s (%v)\nwant %s (%v)", rows, got, gerr, want, werr)
	}
}

// FuzzRowsEncoding: rows of any strings and numbers encode as encoding/json encodes them.
func FuzzRowsEncoding(f *testing.F) {
	f.Add("host-a", "<tag>", 92.5, int64(3), uint64(1))
	f.Add("\x00\xff", "é", 1e-9, int64(-1), uint64(7))
	f.Fuzz(func(t *testing.T, s1, s2 string, x float64, n int64, seed uint64) {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return
		}
		rng := rand.New(rand.NewPCG(seed, 1))
		rows := []map[string]any{{s1: s2, "x": x, "n": n, "y": rng.NormFloat64() * math.Pow(10, float64(rng.IntN(60)-30))}}
		for i := range rng.IntN(4) {
			rows = append(rows, map[string]any{s2: x * float64(i), "k" + strconv.Itoa(i): []any{s1, n}})
		}
		checkEncoding(t, rows)
	})
}

func BenchmarkRowsEncoding(b *testing.B) {
	rows := make([]map[string]any, 72000)
	for i := range rows {
		rows[i] = map[string]any{"ts": time.Unix(int64(i*60), 0).UTC().Format(time.RFC3339), "source_id": "host-" + strconv.Itoa(i%50), "value": float64(i%1000) / 7}
	}
	b.Run("appendRows", func(b *testing.B) {
		for b.Loop() {
			if _, err := appendRows(nil, rows); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(rows); err != nil {
				b.Fatal(err)
			}
		}
	})
}
