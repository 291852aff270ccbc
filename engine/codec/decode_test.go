package codec

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
)

var rawEvent = []byte(`{"tenant_id":"acme","host":"host-a","metric":"cpu_load","value":92,"ts_event":"2025-10-16T09:00:00Z","unit":"percent","tags":{"env":"prod"}}`)

func TestDecodeObjectValues(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]any
	}{
		{"seed raw event", string(rawEvent), map[string]any{
			"tenant_id": "acme", "host": "host-a", "metric": "cpu_load", "value": 92.0,
			"ts_event": "2025-10-16T09:00:00Z", "unit": "percent", "tags": map[string]any{"env": "prod"},
		}},
		{"empty object", `{}`, map[string]any{}},
		{"whitespace everywhere", " \t\r\n{ \"a\" :\n[ 1 , true , false , null , { } , [ ] ] } \n", map[string]any{
			"a": []any{1.0, true, false, nil, map[string]any{}, []any{}},
		}},
		{"numbers", `{"z":0,"nz":-0,"i":-12,"f":1.5,"e":1e3,"E":2E-2,"p":1e+2,"big":12345678901234567890,"prec":0.1}`, map[string]any{
			"z": 0.0, "nz": math.Copysign(0, -1), "i": -12.0, "f": 1.5, "e": 1000.0, "E": 0.02, "p": 100.0,
			"big": 12345678901234567890.0, "prec": 0.1,
		}},
		// Zero is representable however small its exponent; a subnormal rounds like any number.
		{"zero with a tiny exponent", `{"a":0e-400,"b":-0.000e-999,"c":0.0}`, map[string]any{"a": 0.0, "b": math.Copysign(0, -1), "c": 0.0}},
		{"smallest subnormal", `{"a":5e-324,"b":3e-324,"c":-4.9e-324}`, map[string]any{"a": 5e-324, "b": 5e-324, "c": -5e-324}},
		{"largest float64", `{"a":1.7976931348623157e308}`, map[string]any{"a": math.MaxFloat64}},
		{"same key in different objects", `{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`, map[string]any{
			"a": 1.0, "b": map[string]any{"a": 2.0}, "c": []any{map[string]any{"a": 3.0}, map[string]any{"a": 4.0}},
		}},
		{"keys differing only in case", `{"a":1,"A":2}`, map[string]any{"a": 1.0, "A": 2.0}},
		{"U+FFFD sent as such", "{\"s\":\"\xef\xbf\xbd\\ufffd\"}", map[string]any{"s": "\uFFFD\uFFFD"}},
		{"16 digit integer rounds like ParseFloat", `{"n":9007199254740993}`, map[string]any{"n": 9007199254740992.0}},
		{"simple escapes", `{"s":"\"\\\/\b\f\n\r\t"}`, map[string]any{"s": "\"\\/\b\f\n\r\t"}},
		{"unicode escapes", `{"s":"\u00e9\u4E2D\u0000"}`, map[string]any{"s": "é中\x00"}},
		{"surrogate pair", `{"s":"\ud83d\ude00"}`, map[string]any{"s": "😀"}},
		{"escaped key", `{"k\u0065y":1}`, map[string]any{"key": 1.0}},
		{"raw UTF-8 kept", `{"s":"héllo €"}`, map[string]any{"s": "héllo €"}},
		{"long string not interned", `{"s":"` + strings.Repeat("x", 100) + `"}`, map[string]any{"s": strings.Repeat("x", 100)}},
		{"empty strings", `{"":""}`, map[string]any{"": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Twice: the second run reads from the warm key and value caches.
			for range 2 {
				got, err := DecodeObject([]byte(tt.in))
				if err != nil {
					t.Fatalf("DecodeObject(%q): %v", tt.in, err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("DecodeObject(%q) = %#v, want %#v", tt.in, got, tt.want)
				}
				assertSameAsEncodingJSON(t, []byte(tt.in), got)
			}
		})
	}
}

func assertSameAsEncodingJSON(t *testing.T, in []byte, got map[string]any) {
	t.Helper()
	var ref any
	if err := json.Unmarshal(in, &ref); err != nil {
		t.Fatalf("encoding/json rejects %q: %v", in, err)
	}
	if !reflect.DeepEqual(any(got), ref) {
		t.Fatalf("DecodeObject(%q) = %#v, encoding/json gives %#v", in, got, ref)
	}
}

func TestDecodeObjectNegativeZero(t *testing.T) {
	got, err := DecodeObject([]byte(`{"a":-0,"b":-0.0,"c":0}`))
	if err != nil {
		t.Fatal(err)
	}
	for k, wantNeg := range map[string]bool{"a": true, "b": true, "c": false} {
		if neg := math.Signbit(got[k].(float64)); neg != wantNeg {
			t.Errorf("%s: signbit = %v, want %v", k, neg, wantNeg)
		}
	}
}

func TestDecodeObjectErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
		// refused: JSON that encoding/json accepts, but only by changing it (input policy).
		refused bool
	}{
		{"empty input", ``, "unexpected end of JSON input at offset 0", false},
		{"only whitespace", "  \n", "unexpected end of JSON input at offset 3", false},
		{"garbage", `garbage`, "invalid character 'g' looking for beginning of value at offset 0", false},
		{"byte order mark", "\xef\xbb\xbf{}", `invalid character 'ï' looking for beginning of value at offset 0`, false},
		{"truncated object", `{"a":1`, "unexpected end of JSON input at offset 6", false},
		{"truncated string", `{"a":"b`, "unexpected end of JSON input at offset 7", false},
		{"trailing comma", `{"a":1,}`, "invalid character '}' looking for beginning of object key string at offset 7", false},
		{"leading comma", `{,"a":1}`, "invalid character ',' looking for beginning of object key string at offset 1", false},
		{"unquoted key", `{a:1}`, "invalid character 'a' looking for beginning of object key string at offset 1", false},
		{"single-quoted string", `{"a":'b'}`, `invalid character '\'' looking for beginning of value at offset 5`, false},
		{"missing colon", `{"a" 1}`, "invalid character '1' after object key at offset 5", false},
		{"missing comma", `{"a":1 "b":2}`, `invalid character '"' after object key:value pair at offset 7`, false},
		{"array trailing comma", `{"a":[1,]}`, "invalid character ']' looking for beginning of value at offset 8", false},
		{"array missing comma", `{"a":[1 2]}`, "invalid character '2' after array element at offset 8", false},
		{"second top-level value", `{} {}`, "invalid character '{' after top-level value at offset 3", false},
		{"leading zero", `{"a":01}`, "invalid character '1' after object key:value pair at offset 6", false},
		{"plus sign", `{"a":+1}`, "invalid character '+' looking for beginning of value at offset 5", false},
		{"bare minus", `{"a":-}`, "invalid character '}' in numeric literal at offset 6", false},
		{"dot without digits", `{"a":1.}`, "invalid character '}' after decimal point in numeric literal at offset 7", false},
		{"leading dot", `{"a":.5}`, "invalid character '.' looking for beginning of value at offset 5", false},
		{"empty exponent", `{"a":1e}`, "invalid character '}' in exponent of numeric literal at offset 7", false},
		{"NaN", `{"a":NaN}`, "invalid character 'N' looking for beginning of value at offset 5", false},
		{"Infinity", `{"a":-Infinity}`, "invalid character 'I' in numeric literal at offset 6", false},
		{"out of float64 range", `{"a":1e400}`, "number 1e400 is out of the float64 range (magnitude above 1.8e308) at offset 5", false},
		{"negative out of float64 range", `{"a":[1,-1.5e309]}`, "number -1.5e309 is out of the float64 range (magnitude above 1.8e308) at offset 8", false},
		{"bad literal", `{"a":tru}`, "invalid character '}' in literal true (expecting 'e') at offset 8", false},
		{"capitalised literal", `{"a":True}`, "invalid character 'T' looking for beginning of value at offset 5", false},
		{"truncated literal", `{"a":nul`, "unexpected end of JSON input at offset 8", false},
		{"control character in string", "{\"a\":\"x\ty\"}", `invalid character '\t' in string literal at offset 7`, false},
		{"unknown escape", `{"a":"\x"}`, "invalid character 'x' in string escape code at offset 7", false},
		{"single-quote escape", `{"a":"\'"}`, `invalid character '\'' in string escape code at offset 7`, false},
		{"short unicode escape", `{"a":"\u12"}`, `invalid character '"' in \u hexadecimal character escape at offset 10`, false},
		{"bad second half of pair", `{"a":"\ud83d\uZZZZ"}`, `invalid character 'Z' in \u hexadecimal character escape at offset 14`, false},
		{"duplicate key", `{"a":1,"a":2}`, `duplicate key "a" in object at offset 7`, true},
		{"duplicate key in a nested object", `{"a":{"b":1,"c":2,"b":3}}`, `duplicate key "b" in object at offset 18`, true},
		{"duplicate key written with an escape", `{"key":1,"k\u0065y":2}`, `duplicate key "key" in object at offset 9`, true},
		{"duplicate key, long, clipped", `{"` + strings.Repeat("k", 100) + `":1,"` + strings.Repeat("k", 100) + `":2}`, `duplicate key "` + strings.Repeat("k", 63) + `... in object at offset 106`, true},
		{"invalid UTF-8 in a value", "{\"s\":\"a\xffb\"}", "invalid UTF-8 in string (byte 0xff) at offset 7", true},
		{"truncated UTF-8 sequence", "{\"s\":\"\xe2\x82\"}", "invalid UTF-8 in string (byte 0xe2) at offset 6", true},
		{"UTF-8 encoded surrogate", "{\"s\":\"\xed\xa0\x80\"}", "invalid UTF-8 in string (byte 0xed) at offset 6", true},
		{"invalid UTF-8 after an escape", "{\"s\":\"\\n\xc3\"}", "invalid UTF-8 in string (byte 0xc3) at offset 8", true},
		{"invalid UTF-8 in a key", "{\"\xff\":1}", "invalid UTF-8 in string (byte 0xff) at offset 2", true},
		{"lone high surrogate escape", `{"s":"\ud83dx"}`, `invalid \u escape: \ud83d is half of a UTF-16 surrogate pair without its other half at offset 6`, true},
		{"lone low surrogate escape", `{"s":"\uDE00"}`, `invalid \u escape: \uDE00 is half of a UTF-16 surrogate pair without its other half at offset 6`, true},
		{"high surrogate then a non-surrogate escape", `{"s":"\ud83d\u0041"}`, `invalid \u escape: \ud83d is half of a UTF-16 surrogate pair without its other half at offset 6`, true},
		{"two high surrogates", `{"s":"\ud83d\ud83d\ude00"}`, `invalid \u escape: \ud83d is half of a UTF-16 surrogate pair without its other half at offset 6`, true},
		{"below the smallest float64", `{"a":1e-400}`, "number 1e-400 is out of the float64 range (non-zero, but below 4.9e-324: it would become 0) at offset 5", true},
		{"negative below the smallest float64", `{"a":-2e-324}`, "number -2e-324 is out of the float64 range (non-zero, but below 4.9e-324: it would become 0) at offset 5", true},
		{"long tiny number, clipped", `{"a":0.` + strings.Repeat("0", 400) + `1}`, "number 0." + strings.Repeat("0", 62) + "... is out of the float64 range (non-zero, but below 4.9e-324: it would become 0) at offset 5", true},
		{"array", `[1,2]`, "want a JSON object, got an array at offset 0", false},
		{"string", ` "x"`, "want a JSON object, got a string at offset 1", false},
		{"number", `1`, "want a JSON object, got a number at offset 0", false},
		{"boolean", `false`, "want a JSON object, got a boolean at offset 0", false},
		{"null", `null`, "want a JSON object, got null at offset 0", false},
		{"too deep", strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1), "exceeded max depth at offset 50000", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeObject([]byte(tt.in))
			if err == nil {
				t.Fatalf("DecodeObject(%q) = %v, want error %q", tt.in, got, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("DecodeObject(%q) error\n got %q\nwant %q", tt.in, err, tt.want)
			}
			var syn *SyntaxError
			var typ *TypeError
			if !errors.As(err, &syn) && !errors.As(err, &typ) {
				t.Errorf("error %T is neither *SyntaxError nor *TypeError", err)
			}
			var ref any
			refErr := json.Unmarshal([]byte(tt.in), &ref)
			_, refObject := ref.(map[string]any)
			if refused := refErr == nil && refObject; refused != tt.refused {
				t.Errorf("encoding/json decodes %q to an object: %v; the case says %v", tt.in, refused, tt.refused)
			}
		})
	}
}

func TestDecodeObjectDepthLimit(t *testing.T) {
	nest := func(n int) []byte {
		return []byte(strings.Repeat(`{"a":`, n) + "null" + strings.Repeat("}", n))
	}
	if _, err := DecodeObject(nest(MaxDepth)); err != nil {
		t.Errorf("depth %d (the limit) rejected: %v", MaxDepth, err)
	}
	arrays := []byte("{\"a\":" + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + "}")
	if _, err := DecodeObject(arrays); err != nil {
		t.Errorf("arrays to depth %d rejected: %v", MaxDepth, err)
	}
	if _, err := DecodeObject(nest(MaxDepth + 1)); err == nil {
		t.Errorf("depth %d accepted, want exceeded max depth", MaxDepth+1)
	}
}

// The result must not share memory with the input: inputs are broker fetch buffers that
// get reused.
func TestDecodeObjectDoesNotAliasInput(t *testing.T) {
	in := []byte(`{"k":"a fairly long string value that is not interned at all","s":"short","e":"x\ny"}`)
	got, err := DecodeObject(in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"k": "a fairly long string value that is not interned at all", "s": "short", "e": "x\ny"}
	for i := range in {
		in[i] = 'X'
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after overwriting the input, result = %#v, want %#v", got, want)
	}
}

// Errors part-way through a nested document must not leave state behind in the pooled
// decoder that leaks into the next document.
func TestDecodeObjectAfterError(t *testing.T) {
	bad := []byte(`{"a":[1,{"b":[2,3`)
	good := []byte(`{"x":[true],"y":{"z":null}}`)
	want := map[string]any{"x": []any{true}, "y": map[string]any{"z": nil}}
	for range 3 {
		if _, err := DecodeObject(bad); err == nil {
			t.Fatal("truncated document accepted")
		}
		got, err := DecodeObject(good)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("after an error, DecodeObject = %#v, want %#v", got, want)
		}
	}
}

// Processors modify decoded events in place, so no two results may share a container.
func TestDecodeObjectResultsAreIndependent(t *testing.T) {
	a, _ := DecodeObject(rawEvent)
	b, _ := DecodeObject(rawEvent)
	a["host"] = "changed"
	a["tags"].(map[string]any)["env"] = "changed"
	if b["host"] != "host-a" || b["tags"].(map[string]any)["env"] != "prod" {
		t.Errorf("changing one result changed another: %v", b)
	}
}

// Pooled decoders keep key and value caches; decoding from many goroutines with more
// distinct strings than cache slots must still give each caller its own exact result.
func TestDecodeObjectConcurrentCacheChurn(t *testing.T) {
	docs := make([][]byte, 3000)
	for i := range docs {
		docs[i] = []byte(fmt.Sprintf(`{"key%d":"value%d","shared":"v%d","n":%d}`, i, i, i%7, i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range docs {
				doc := docs[(i+g*750)%len(docs)]
				got, err := DecodeObject(doc)
				if err != nil {
					errs <- err
					return
				}
				var want any
				_ = json.Unmarshal(doc, &want)
				if !reflect.DeepEqual(any(got), want) {
					errs <- fmt.Errorf("DecodeObject(%s) = %v, want %v", doc, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
