package postgres_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/eventops/eventops-engine/engine/postgres"
)

// The jsonb encoder must round-trip every value a decoded JSON record can hold exactly as
// encoding/json would.
func TestJSONEncodingRoundTrips(t *testing.T) {
	values := []any{
		nil, true, 1.5, -0.0, 1e21, 123456789.0, "plain", "quote \" backslash \\ newline \n tab \t bell \a",
		"unicode ✓ and emoji 😀", "<html> & stuff", "\u2028 line sep", "bad utf8 \xff end",
		map[string]any{"a": 1.0, "nested": map[string]any{"b": []any{"x", 2.0, nil, false}}, "k\"ey": "v"},
		[]any{}, map[string]any{},
	}
	for _, v := range values {
		got, err := postgres.AppendJSON(v)
		if err != nil {
			t.Errorf("%#v: %v", v, err)
			continue
		}
		var back, want any
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("%#v encodes to invalid JSON %s: %v", v, got, err)
			continue
		}
		ref, _ := json.Marshal(v)
		_ = json.Unmarshal(ref, &want)
		if !reflect.DeepEqual(back, want) {
			t.Errorf("%#v round-trips to %#v, encoding/json gives %#v", v, back, want)
		}
	}
	for _, bad := range []any{"nul \x00", map[string]any{"k\x00": 1.0}, []any{"a", "\x00"}} {
		if _, err := postgres.AppendJSON(bad); err == nil || !strings.Contains(err.Error(), "NUL") {
			t.Errorf("%#v: err = %v, want a NUL refusal", bad, err)
		}
	}
}
