package codec

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// randomValue builds a value of the kinds processors put in records: JSON's own, ints, times,
// nested objects and arrays; and, with odd set, now and then one Shareable must refuse.
func randomValue(rng *rand.Rand, depth int, odd bool) any {
	n := 9
	if depth > 3 {
		n = 6 // no more nesting
	}
	switch rng.IntN(n) {
	case 0:
		return nil
	case 1:
		return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20))
	case 2:
		return rng.IntN(2) == 0
	case 3:
		return []string{"a", "cpu_load", "tab\there", "quote\"", "ünï", "<&>", ""}[rng.IntN(7)]
	case 4:
		if rng.IntN(2) == 0 {
			return rng.IntN(1 << 20)
		}
		return int64(rng.Uint64() >> rng.IntN(64))
	case 5:
		return time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).In(time.FixedZone("", (rng.IntN(48)-24)*1800))
	case 6, 7:
		m := map[string]any{}
		for i := range rng.IntN(5) {
			m[string(rune('a'+i))] = randomValue(rng, depth+1, odd)
		}
		if odd && rng.IntN(20) == 0 {
			m["odd"] = []string{"\xff"}[0]
		}
		return m
	default:
		s := []any{}
		for range rng.IntN(4) {
			s = append(s, randomValue(rng, depth+1, odd))
		}
		if odd && rng.IntN(20) == 0 {
			s = append(s, struct{ A int }{1})
		}
		return s
	}
}

// deepCopy copies maps and slices, so that a test can tell whether they were written to.
func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		if t == nil {
			return t
		}
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = deepCopy(x)
		}
		return m
	case []any:
		if t == nil {
			return t
		}
		s := make([]any, len(t))
		for i, x := range t {
			s[i] = deepCopy(x)
		}
		return s
	}
	return v
}

// What Shareable gives is exactly what a reader decoding the encoded bytes gets, and nested
// objects and arrays (which other records may share) are left as they were.
func TestShareableIsWhatDecodingTheEncodedBytesGives(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 19))
	refused := 0
	for i := range 20000 {
		v := map[string]any{}
		for j := range rng.IntN(8) {
			v[string(rune('k'+j))] = randomValue(rng, 1, true)
		}
		encoded, err := AppendObject(nil, v)
		if err != nil {
			t.Fatalf("case %d: encoding: %v", i, err)
		}
		want, decodeErr := DecodeObject(encoded)
		nested := map[string]any{}
		for k, x := range v {
			nested[k] = x
		}
		before := deepCopy(nested)
		if !Shareable(v) {
			refused++
			continue
		}
		if decodeErr != nil {
			t.Fatalf("case %d: shareable, but decoding its bytes fails: %v\n%s", i, decodeErr, encoded)
		}
		if !reflect.DeepEqual(v, want) {
			t.Fatalf("case %d:\nshared  %#v\ndecoded %#v\nfrom %s", i, v, want, encoded)
		}
		if !reflect.DeepEqual(nested, before) {
			t.Fatalf("case %d: a nested object or array was written to", i)
		}
	}
	if refused == 0 || refused > 10000 {
		t.Fatalf("%d of 20000 refused: the test does not exercise both outcomes", refused)
	}
}

func TestShareableRefusesWhatItCannotTellWithoutEncoding(t *testing.T) {
	deep := map[string]any{}
	for range MaxDepth {
		deep = map[string]any{"a": deep}
	}
	for name, v := range map[string]map[string]any{
		"invalid UTF-8 in a value": {"s": "\xff"},
		"invalid UTF-8 in a key":   {"\xff": 1.0},
		"a struct":                 {"s": struct{}{}},
		"a typed slice":            {"s": []string{"a"}},
		"NaN":                      {"f": math.NaN()},
		"too deep":                 deep,
	} {
		if Shareable(v) {
			t.Errorf("%s: shareable", name)
		}
	}
	if !Shareable(map[string]any{"s": strings.Repeat("ok", 3)}) {
		t.Error("a plain object is refused")
	}
}

// AppendShareable, which skips what encoding shows to be settled, writes what AppendObject
// writes and leaves the value and answer Shareable would: on random events (some of them
// refused) and on each case Shareable refuses.
func TestAppendShareableIsAppendObjectThenShareable(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 23))
	var cases []map[string]any
	for range 20000 {
		v := map[string]any{}
		for j := range rng.IntN(8) {
			v[string(rune('k'+j))] = randomValue(rng, 1, true)
		}
		cases = append(cases, v)
	}
	deep := map[string]any{}
	for range MaxDepth {
		deep = map[string]any{"a": deep}
	}
	cases = append(cases, map[string]any{"s": "\xff"}, map[string]any{"\xff": 1.0}, map[string]any{"\xff": time.Unix(0, 0)},
		map[string]any{"s": struct{}{}}, map[string]any{"n": map[string]any{"s": []string{"a"}}}, deep,
		map[string]any{"nil map": map[string]any(nil), "nil slice": []any(nil), "i": 1})
	for i, v := range cases {
		want := deepCopy(v).(map[string]any)
		wantBytes, wantErr := AppendObject(nil, want)
		wantShared := wantErr == nil && Shareable(want)
		got, shared, err := AppendShareable(nil, v)
		if (err != nil) != (wantErr != nil) || string(got) != string(wantBytes) {
			t.Fatalf("case %d: wrote %s (%v), want %s (%v)", i, got, err, wantBytes, wantErr)
		}
		if err != nil {
			continue
		}
		if shared != wantShared {
			t.Fatalf("case %d: shareable %v, want %v for %s", i, shared, wantShared, wantBytes)
		}
		if shared && !reflect.DeepEqual(v, want) {
			t.Fatalf("case %d:\ngot  %#v\nwant %#v", i, v, want)
		}
	}
}
