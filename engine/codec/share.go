package codec

import (
	"math"
	"time"
	"unicode/utf8"
)

// Shareable turns v, a record about to be encoded, into the value DecodeObject gives for
// the bytes AppendObject writes for it, so that a reader of those bytes in the same process
// can take the value instead of decoding them again. It reports false when it cannot tell
// that result without encoding (a type AppendObject hands to encoding/json, a string that
// is not valid UTF-8, nesting deeper than MaxDepth): the reader then decodes.
//
// The top-level map is changed in place (the record is done with); nested maps and slices are
// never written to, since they may be shared with other records: one that needs a change is
// copied, with the change.
func Shareable(v map[string]any) bool {
	for k, x := range v {
		if !utf8.ValidString(k) {
			return false
		}
		y, changed, ok := shareable(x, 1)
		if !ok {
			return false
		}
		if changed {
			v[k] = y
		}
	}
	return true
}

// shareable returns x in decoded form, whether that differs from x, and false when x has
// no decoded form that can be told without encoding. depth counts the objects and arrays
// around x.
func shareable(x any, depth int) (any, bool, bool) {
	switch t := x.(type) {
	case nil, bool:
		return x, false, true
	case float64:
		return x, false, !math.IsNaN(t) && !math.IsInf(t, 0)
	case string:
		return x, false, utf8.ValidString(t)
	case int:
		return float64(t), true, true
	case int64:
		return float64(t), true, true
	case time.Time:
		return shareableTime(t)
	case map[string]any:
		if t == nil {
			return nil, true, true
		}
		return shareableMap(t, depth+1)
	case []any:
		if t == nil {
			return nil, true, true
		}
		return shareableSlice(t, depth+1)
	}
	return nil, false, false
}

func shareableMap(m map[string]any, depth int) (any, bool, bool) {
	if depth > MaxDepth {
		return nil, false, false
	}
	var fresh map[string]any // a copy, once a member changes
	for k, x := range m {
		if !utf8.ValidString(k) {
			return nil, false, false
		}
		y, changed, ok := shareable(x, depth)
		if !ok {
			return nil, false, false
		}
		if changed && fresh == nil {
			fresh = make(map[string]any, len(m))
			for k2, x2 := range m {
				fresh[k2] = x2
			}
		}
		if changed {
			fresh[k] = y
		}
	}
	if fresh == nil {
		return m, false, true
	}
	return fresh, true, true
}

func shareableSlice(s []any, depth int) (any, bool, bool) {
	if depth > MaxDepth {
		return nil, false, false
	}
	var fresh []any
	for i, x := range s {
		y, changed, ok := shareable(x, depth)
		if !ok {
			return nil, false, false
		}
		if changed && fresh == nil {
			fresh = append([]any(nil), s...)
		}
		if changed {
			fresh[i] = y
		}
	}
	if fresh == nil {
		return s, false, true
	}
	return fresh, true, true
}

// shareableTime is the string AppendObject writes for t (RFC 3339 with nanoseconds, which
// needs no escapes), formatted without MarshalJSON's two allocations; a time plainRFC3339
// refuses is not shared.
func shareableTime(t time.Time) (any, bool, bool) {
	if !plainRFC3339(t) {
		return nil, false, false
	}
	var buf [40]byte
	return string(t.AppendFormat(buf[:0], time.RFC3339Nano)), true, true
}

// plainRFC3339 reports whether t's RFC 3339 form is certain: MarshalJSON refuses years
// outside 0..9999 and zone offsets of 24 hours or more, and silently drops the seconds of an
// offset (which this refuses too, to be safe).
func plainRFC3339(t time.Time) bool {
	_, offset := t.Zone()
	y := t.Year()
	return y >= 0 && y <= 9999 && offset%60 == 0 && offset > -24*3600 && offset < 24*3600
}
