package codec

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// fuzzSeeds are inputs near the edges of the grammar and of the decoder's fast paths.
var fuzzSeeds = []string{
	string(rawEvent),
	`{}`, ` { } `, `{"a":{}}`, `{"a":[]}`, `{"a":[[[]]]}`, `[]`, `[1]`, `"s"`, `1`, `null`, `true`, `false`,
	`{"a":1,"a":2}`, `{"a":null,"b":true,"c":false}`, `{"a":"b","c":["d",{"e":"f"}]}`,
	`{"n":0}`, `{"n":-0}`, `{"n":-0.0}`, `{"n":01}`, `{"n":-01}`, `{"n":1.}`, `{"n":.1}`, `{"n":1e}`,
	`{"n":1e+}`, `{"n":1E-5}`, `{"n":+1}`, `{"n":1e400}`, `{"n":-1e400}`, `{"n":1e-400}`,
	`{"n":123456789012345}`, `{"n":1234567890123456}`, `{"n":9007199254740993}`, `{"n":18446744073709551616}`,
	`{"n":0.1}`, `{"n":2.2250738585072011e-308}`, `{"n":1.7976931348623157e308}`, `{"n":NaN}`, `{"n":Infinity}`,
	`{"n":-}`, `{"n":--1}`, `{"n":0x10}`, `{"n":1_000}`, `{"n":255}`, `{"n":256}`, `{"n":-255}`,
	`{"s":"\"\\\/\b\f\n\r\t"}`, `{"s":"\u0000"}`, `{"s":"\u00e9"}`, `{"s":"\uD83D\uDE00"}`, `{"s":"\ud83d"}`,
	`{"s":"\ude00"}`, `{"s":"\ud83d\u0041"}`, `{"s":"\ud83d\ud83d\ude00"}`, `{"s":"\ud83d\uZZZZ"}`, `{"s":"\u12"}`,
	`{"s":"\x"}`, `{"s":"\'"}`, "{\"s\":\"\t\"}", "{\"s\":\"\x7f\"}", "{\"s\":\"\xff\"}", "{\"s\":\"\xe2\x82\"}",
	"{\"s\":\"\xed\xa0\x80\"}", "{\"s\":\"\xf4\x90\x80\x80\"}", "{\"s\":\"\xef\xbf\xbd\"}", "{\"\xff\":1}",
	"{\"s\":\"\xc3\xa9\\n\xff\"}", `{"s":"é€😀"}`,
	`{"a":tru}`, `{"a":nul}`, `{"a":fals}`, `{"a":True}`, `{"a":1`, `{"a"`, `{"a":`, `{"a" 1}`, `{a:1}`,
	`{,}`, `{"a":1,}`, `{"a":[1,]}`, `{"a":[,1]}`, `{"a":[1 2]}`, `{} {}`, `{}x`, "{}\x00", "\ufeff{}",
	"\t\n\r {\"a\" \t:\n 1\r}", "{\"a\":1}\v", "{\"a\":1}\u00a0",
	`{"k` + strings.Repeat("x", 40) + `":"` + strings.Repeat("y", 40) + `"}`,
	strings.Repeat(`{"a":`, 50) + "1" + strings.Repeat("}", 50),
	`{"a":` + strings.Repeat("[", 50) + strings.Repeat("]", 50) + `}`,
}

// FuzzMatchesEncodingJSON checks DecodeObject against encoding/json for arbitrary bytes: both
// accept or both reject, and accepted objects decode to the same value.
func FuzzMatchesEncodingJSON(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := DecodeObject(in)

		var ref any
		refErr := json.Unmarshal(in, &ref)
		refObject, isObject := ref.(map[string]any)
		refOK := refErr == nil && isObject

		switch {
		case err == nil && !refOK:
			t.Fatalf("DecodeObject(%q) = %#v, but encoding/json gives %#v, %v", in, got, ref, refErr)
		case err != nil && refOK:
			t.Fatalf("DecodeObject(%q) fails with %v, but encoding/json gives %#v", in, err, ref)
		case err == nil && !reflect.DeepEqual(got, refObject):
			t.Fatalf("DecodeObject(%q)\n = %#v\nencoding/json gives\n   %#v", in, got, refObject)
		}
	})
}
