package codec

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
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
	`{"a":1,"\u0061":2}`, `{"a":{"b":1,"b":2}}`, `{"a":[{"b":1},{"b":2}]}`, `{"n":0e-400}`, `{"n":-0.0e-999}`,
	`{"n":5e-324}`, `{"n":2e-324}`, `{"n":3e-324}`, `{"n":0.000000000000000000001e-310}`, `{"s":"\ud83d\ude00\ud83d"}`,
	`{"s":"\ud83d\n"}`, `{"s":"\udbff\udfff"}`,
	`{"k` + strings.Repeat("x", 40) + `":"` + strings.Repeat("y", 40) + `"}`,
	strings.Repeat(`{"a":`, 50) + "1" + strings.Repeat("}", 50),
	`{"a":` + strings.Repeat("[", 50) + strings.Repeat("]", 50) + `}`,
}

// FuzzMatchesEncodingJSON checks DecodeObject against encoding/json for arbitrary bytes:
// where encoding/json rejects, DecodeObject rejects; where encoding/json accepts only by
// changing the input (refusedByPolicy says so, independently of the decoder), DecodeObject
// rejects with a *SyntaxError; everywhere else both accept and decode to the same value.
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
		refused := ""
		if refOK {
			refused = refusedByPolicy(in)
		}
		var syn *SyntaxError

		switch {
		case err == nil && !refOK:
			t.Fatalf("DecodeObject(%q) = %#v, but encoding/json gives %#v, %v", in, got, ref, refErr)
		case err == nil && refused != "":
			t.Fatalf("DecodeObject(%q) = %#v, but the input has %s: it must be refused", in, got, refused)
		case err != nil && refOK && refused == "":
			t.Fatalf("DecodeObject(%q) fails with %v, but encoding/json gives %#v", in, err, ref)
		case err != nil && refused != "" && !errors.As(err, &syn):
			t.Fatalf("DecodeObject(%q) fails with %T %v; input with %s must give a *SyntaxError", in, err, err, refused)
		case err == nil && !reflect.DeepEqual(got, refObject):
			t.Fatalf("DecodeObject(%q)\n = %#v\nencoding/json gives\n   %#v", in, got, refObject)
		}
	})
}

// refusedByPolicy says what in in, a JSON text encoding/json accepts, the input policy
// refuses ("" when nothing): invalid UTF-8, a lone surrogate escape, a repeated key, or a
// non-zero number that float64 rounds to 0. It works on json.Decoder's tokens and the raw
// bytes, not on DecodeObject's code, so the two can disagree.
func refusedByPolicy(in []byte) string {
	switch {
	case !utf8.Valid(in):
		// Outside strings JSON allows only ASCII, so the invalid bytes are in a string.
		return "invalid UTF-8"
	case hasLoneSurrogateEscape(in):
		return "a lone surrogate escape"
	}
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	if what, err := refusedTokens(dec); err == nil {
		return what
	}
	return "" // not reached for text encoding/json accepts
}

// refusedTokens reads one JSON value from dec and reports a repeated key in any of its
// objects or a number that underflows.
func refusedTokens(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	switch tok := tok.(type) {
	case json.Number:
		if f, _ := strconv.ParseFloat(string(tok), 64); f == 0 && strings.ContainsAny(mantissa(string(tok)), "123456789") {
			return "a non-zero number that would become 0", nil
		}
	case json.Delim:
		keys := map[string]bool{}
		repeated := ""
		for dec.More() {
			if tok == '{' {
				k, err := dec.Token()
				if err != nil {
					return "", err
				}
				if keys[k.(string)] {
					repeated = "a repeated key"
				}
				keys[k.(string)] = true
			}
			what, err := refusedTokens(dec)
			if err != nil {
				return "", err
			}
			repeated = cmp.Or(repeated, what)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return "", err
		}
		return repeated, nil
	}
	return "", nil
}

// mantissa is the digits of a JSON number before its exponent.
func mantissa(num string) string {
	if i := strings.IndexAny(num, "eE"); i >= 0 {
		return num[:i]
	}
	return num
}

// hasLoneSurrogateEscape reports whether a string in the JSON text in holds a \u escape of
// a high surrogate not followed by one of a low surrogate, or of a low surrogate not
// preceded by one of a high surrogate.
func hasLoneSurrogateEscape(in []byte) bool {
	inString, wantLow := false, false
	for i := 0; i < len(in); i++ {
		c := in[i]
		switch {
		case !inString:
			inString = c == '"'
			continue
		case c == '"':
			inString = false
		case c == '\\' && i+5 < len(in) && in[i+1] == 'u':
			r, _ := strconv.ParseUint(string(in[i+2:i+6]), 16, 32)
			isHigh, isLow := 0xD800 <= r && r < 0xDC00, 0xDC00 <= r && r < 0xE000
			if wantLow != isLow || (wantLow && isHigh) {
				return true
			}
			wantLow = isHigh
			i += 5
			continue
		case c == '\\':
			i++ // the escaped character
		}
		if wantLow {
			return true
		}
	}
	return wantLow
}
