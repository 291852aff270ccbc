package codec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"
)

// encodingJSON is the reference AppendObject must equal byte for byte.
func encodingJSON(t testing.TB, v any) ([]byte, error) {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func TestAppendObject(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		want string
	}{
		{"empty", map[string]any{}, `{}`},
		{"keys sorted", map[string]any{"b": 1.0, "a": 2.0, "c": map[string]any{"z": nil, "y": true}}, `{"a":2,"b":1,"c":{"y":true,"z":null}}`},
		{"floats like encoding/json", map[string]any{"a": 1e21, "b": 1e20, "c": 1e-7, "d": 1e-6, "e": -0.5, "f": 123456789.125, "g": 5e-324},
			`{"a":1e+21,"b":100000000000000000000,"c":1e-7,"d":0.000001,"e":-0.5,"f":123456789.125,"g":5e-324}`},
		{"escapes", map[string]any{"s": "\"\\\b\f\n\r\t\x01<>&\u2028\u2029é\xff"}, `{"s":"\"\\\b\f\n\r\t\u0001<>&\u2028\u2029é\ufffd"}`},
		{"processor types", map[string]any{"i": 42, "i64": int64(-7), "t": time.Date(2025, 10, 16, 9, 0, 0, 5, time.UTC)}, `{"i":42,"i64":-7,"t":"2025-10-16T09:00:00.000000005Z"}`},
		{"nil containers", map[string]any{"m": map[string]any(nil), "a": []any(nil), "e": []any{}}, `{"a":null,"e":[],"m":null}`},
		{"fallback type", map[string]any{"u": uint8(3), "s": []string{"x"}}, `{"s":["x"],"u":3}`},
		{"zones and a year before 1000", map[string]any{"t": time.Date(999, 1, 2, 3, 4, 5, 600, time.FixedZone("", -(9*3600+30*60)))}, `{"t":"0999-01-02T03:04:05.0000006-09:30"}`},
		{"more keys than the insertion sort takes", manyKeys(40), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == "" {
				ref, err := encodingJSON(t, tt.in)
				if err != nil {
					t.Fatal(err)
				}
				tt.want = string(ref)
			}
			got, err := AppendObject([]byte("prefix:"), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "prefix:"+tt.want {
				t.Errorf("AppendObject = %s, want prefix:%s", got, tt.want)
			}
			ref, err := encodingJSON(t, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(ref) != tt.want {
				t.Errorf("encoding/json writes %s, the test expects %s", ref, tt.want)
			}
		})
	}
}

// manyKeys is an object of n members whose keys come in no particular order.
func manyKeys(n int) map[string]any {
	m := map[string]any{}
	for i := range n {
		m[fmt.Sprintf("k%03d", (i*37)%n)] = float64(i)
	}
	return m
}

func TestAppendObjectRejectsNonFinite(t *testing.T) {
	for _, v := range []any{math.NaN(), math.Inf(1), []any{math.Inf(-1)}, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if got, err := AppendObject(nil, map[string]any{"v": v}); err == nil {
			t.Errorf("AppendObject(%v) = %s, want an error: it has no JSON form", v, got)
		}
	}
}

// FuzzAppendObjectMatchesEncodingJSON decodes arbitrary objects with DecodeObject and checks
// AppendObject writes the same bytes as encoding/json.
func FuzzAppendObjectMatchesEncodingJSON(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := DecodeObject(in)
		if err != nil {
			return
		}
		got, err := AppendObject(nil, v)
		if err != nil {
			t.Fatalf("AppendObject(%#v): %v", v, err)
		}
		want, err := encodingJSON(t, v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("AppendObject(%#v)\n = %s\nencoding/json writes\n   %s", v, got, want)
		}
	})
}
