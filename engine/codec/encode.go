package codec

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// AppendObject appends the JSON encoding of v to dst without reflection. The bytes are
// exactly what a json.Encoder with SetEscapeHTML(false) writes (without its newline): keys
// sorted, so equal events encode to equal bytes; numbers formatted like encoding/json;
// invalid UTF-8 replaced by U+FFFD. Values may be anything DecodeObject returns plus the
// int, int64 and time.Time values processors add; other types go through encoding/json.
// NaN and infinities are an error, as they have no JSON form.
func AppendObject(dst []byte, v map[string]any) ([]byte, error) {
	dst, _, err := appendValue(dst, v, 0)
	return dst, err
}

// AppendValue is AppendObject for any value of the same data model (a jsonb column may
// hold an array or a string as well as an object).
func AppendValue(dst []byte, v any) ([]byte, error) {
	dst, _, err := appendValue(dst, v, 0)
	return dst, err
}

// AppendShareable is AppendObject followed by Shareable, in one walk of v: the members
// already in decoded form (strings, floats, objects of them: most of an event) are known to
// be so from encoding them, a time becomes the very string written for it, and only other
// members (integers, say) go through Shareable's conversion. shared is Shareable's answer;
// v's top level is changed as Shareable changes it, and may be partly changed when the
// encoding fails.
func AppendShareable(dst []byte, v map[string]any) (out []byte, shared bool, err error) {
	return appendObject(dst, v, 1, true)
}

// appendValue appends v's encoding and reports whether v is settled: what DecodeObject gives
// for the bytes written (not so for times, integers, strings with invalid UTF-8, nil maps and
// slices, other types, and anything nested deeper than MaxDepth). depth counts the objects
// and arrays around v.
func appendValue(dst []byte, v any, depth int) ([]byte, bool, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), true, nil
	case string:
		dst, valid := appendString(dst, x)
		return dst, valid, nil
	case float64:
		dst, err := appendFloat(dst, x)
		return dst, true, err
	case bool:
		return strconv.AppendBool(dst, x), true, nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), false, nil
	case int64:
		return strconv.AppendInt(dst, x, 10), false, nil
	case map[string]any:
		if x == nil {
			return append(dst, "null"...), false, nil
		}
		return appendObject(dst, x, depth+1, false)
	case []any:
		if x == nil {
			return append(dst, "null"...), false, nil
		}
		return appendArray(dst, x, depth+1)
	case time.Time:
		return appendTime(dst, x)
	default:
		b, err := json.Marshal(x)
		return append(dst, b...), false, err
	}
}

// appendTime writes t as time.Time.MarshalJSON does (RFC 3339 with nanoseconds), without its
// allocation where the format is certain; MarshalJSON says what is wrong with the others.
func appendTime(dst []byte, t time.Time) ([]byte, bool, error) {
	if !plainRFC3339(t) {
		b, err := t.MarshalJSON()
		return append(dst, b...), false, err
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), false, nil
}

// keyed is one member of an object, as its encoding sorts them.
type keyed struct {
	key   string
	value any
}

// sortByKey sorts an object's members by key: by insertion for the few members of most
// objects (without the comparison function slices.SortFunc calls for each step).
func sortByKey(members []keyed) {
	if len(members) > 16 {
		slices.SortFunc(members, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
		return
	}
	for i := 1; i < len(members); i++ {
		for j := i; j > 0 && members[j].key < members[j-1].key; j-- {
			members[j], members[j-1] = members[j-1], members[j]
		}
	}
}

// appendObject encodes m with its keys sorted; depth counts m and the objects and arrays
// around it. With fix set, a member that is not settled is replaced by its decoded form
// (m is a record's top level, which its stream is done with: Shareable), and the answer is
// whether m is settled after that.
func appendObject(dst []byte, m map[string]any, depth int, fix bool) ([]byte, bool, error) {
	var small [16]keyed // most events' objects fit: no allocation for their members
	members := small[:0]
	if len(m) > len(small) {
		members = make([]keyed, 0, len(m))
	}
	for k, v := range m {
		members = append(members, keyed{k, v})
	}
	sortByKey(members)
	settled := depth <= MaxDepth
	dst = append(dst, '{')
	for i, e := range members {
		if i > 0 {
			dst = append(dst, ',')
		}
		var validKey, ok bool
		var err error
		dst, validKey = appendString(dst, e.key)
		dst = append(dst, ':')
		start := len(dst)
		if dst, ok, err = appendValue(dst, e.value, depth); err != nil {
			return nil, false, fmt.Errorf("%s: %w", e.key, err)
		}
		if !ok && fix && validKey {
			ok = settle(m, e, dst[start:])
		}
		settled = settled && validKey && ok
	}
	return append(dst, '}'), settled, nil
}

// settle replaces member e of m, written as encoded, by its decoded form, and reports whether
// it could.
func settle(m map[string]any, e keyed, encoded []byte) bool {
	if t, ok := e.value.(time.Time); ok && plainRFC3339(t) {
		m[e.key] = string(encoded[1 : len(encoded)-1]) // RFC 3339 needs no escapes
		return true
	}
	y, changed, ok := shareable(e.value, 1)
	if ok && changed {
		m[e.key] = y
	}
	return ok
}

func appendArray(dst []byte, a []any, depth int) ([]byte, bool, error) {
	settled := depth <= MaxDepth
	dst = append(dst, '[')
	for i, e := range a {
		if i > 0 {
			dst = append(dst, ',')
		}
		var ok bool
		var err error
		if dst, ok, err = appendValue(dst, e, depth); err != nil {
			return nil, false, fmt.Errorf("[%d]: %w", i, err)
		}
		settled = settled && ok
	}
	return append(dst, ']'), settled, nil
}

// appendFloat formats f as encoding/json does: the shortest representation that reads
// back as f, in exponent form only for magnitudes below 1e-6 or from 1e21.
func appendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("unsupported value: %v", f)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// A two-digit negative exponent loses its leading zero: 1e-07 becomes 1e-7.
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

const hexDigits = "0123456789abcdef"

// appendString quotes s with encoding/json's escapes, minus its HTML escaping, and reports
// whether s was valid UTF-8 (the invalid bytes are written as U+FFFD).
func appendString(dst []byte, s string) ([]byte, bool) {
	valid := true
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			valid = false
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but line terminators in JavaScript; encoding/json escapes them.
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"'), valid
}
