package postgres

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eventops/eventops-engine/engine/codec"
	"github.com/eventops/eventops-engine/engine/eval"
)

// kind is how a record value is turned into a column value.
type kind int

const (
	kindUnsupported kind = iota
	kindText
	kindFloat
	kindInt2
	kindInt4
	kindInt8
	kindBool
	kindTimestamptz
	kindTimestamp
	kindDate
	kindJSON
	kindUUID
)

func kindOf(udt string) kind {
	switch udt {
	case "text", "varchar", "bpchar", "name", "citext":
		return kindText
	case "float8", "float4", "numeric":
		return kindFloat
	case "int2":
		return kindInt2
	case "int4":
		return kindInt4
	case "int8":
		return kindInt8
	case "bool":
		return kindBool
	case "timestamptz":
		return kindTimestamptz
	case "timestamp":
		return kindTimestamp
	case "date":
		return kindDate
	case "json", "jsonb":
		return kindJSON
	case "uuid":
		return kindUUID
	}
	return kindUnsupported
}

// PostgreSQL's timestamp range, narrowed to whole years; outside it the server refuses the
// value, and one such row would otherwise fail the whole batch.
const (
	minYear = -4712
	maxYear = 294275
)

// convert turns a record value into a value pgx encodes for a column of kind k without
// further checks, so that every value a batch sends is one the server accepts. nil stays nil
// (SQL NULL). The error says why the value does not fit, for the dead-letter reason.
func convert(k kind, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch k {
	case kindText:
		return toText(v)
	case kindFloat:
		return toFloat(v)
	case kindInt2:
		return toInt(v, math.MinInt16, math.MaxInt16)
	case kindInt4:
		return toInt(v, math.MinInt32, math.MaxInt32)
	case kindInt8:
		return toInt(v, math.MinInt64, math.MaxInt64)
	case kindBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			if b, err := strconv.ParseBool(x); err == nil {
				return b, nil
			}
		}
		return nil, fmt.Errorf("%s is not a boolean", describeValue(v))
	case kindTimestamptz, kindTimestamp, kindDate:
		t, err := eval.ParseTime(v, "")
		if err != nil {
			return nil, err
		}
		if y := t.Year(); y < minYear || y > maxYear {
			return nil, fmt.Errorf("time %s is outside PostgreSQL's range", t.Format(time.RFC3339))
		}
		return t.UTC(), nil
	case kindJSON:
		return appendJSON(v)
	case kindUUID:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%s is not a UUID string", describeValue(v))
		}
		return parseUUID(s)
	}
	return nil, fmt.Errorf("unsupported column type")
}

func toText(v any) (any, error) {
	var s string
	switch x := v.(type) {
	case string:
		if err := checkText(x); err != nil {
			return nil, err
		}
		return v, nil // already boxed: returning v saves an allocation per value
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		s = strconv.FormatFloat(float64(x), 'f', -1, 32)
	case int:
		s = strconv.Itoa(x)
	case int64:
		s = strconv.FormatInt(x, 10)
	case int32:
		s = strconv.FormatInt(int64(x), 10)
	case bool:
		s = strconv.FormatBool(x)
	case time.Time:
		s = x.UTC().Format(time.RFC3339Nano)
	default:
		return nil, fmt.Errorf("%s is not text (write the column's expression to build a string, or use a jsonb column)", describeValue(v))
	}
	if err := checkText(s); err != nil {
		return nil, err
	}
	return s, nil
}

// checkText rejects what PostgreSQL text cannot hold in a UTF-8 database.
func checkText(s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("text contains a NUL byte, which PostgreSQL cannot store")
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("text is not valid UTF-8")
	}
	return nil
}

// appendJSON encodes a value for a json/jsonb column: the engine's JSON encoder, after
// refusing strings jsonb cannot store.
func appendJSON(v any) ([]byte, error) {
	if err := checkJSONStrings(v); err != nil {
		return nil, err
	}
	return codec.AppendValue(nil, v)
}

// checkJSONStrings rejects strings jsonb cannot hold: encoding/json writes NUL as \u0000,
// which jsonb refuses (invalid UTF-8 would be silently replaced, which is acceptable).
func checkJSONStrings(v any) error {
	switch x := v.(type) {
	case string:
		if strings.IndexByte(x, 0) >= 0 {
			return fmt.Errorf("JSON string contains a NUL byte, which jsonb cannot store")
		}
	case map[string]any:
		for k, e := range x {
			if err := checkJSONStrings(k); err != nil {
				return err
			}
			if err := checkJSONStrings(e); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := checkJSONStrings(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func toFloat(v any) (any, error) {
	switch x := v.(type) {
	case float64:
		return v, nil
	case float32:
		return float64(x), nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case int32:
		return float64(x), nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return nil, fmt.Errorf("%s is not a number", describeValue(v))
		}
		return f, nil
	}
	return nil, fmt.Errorf("%s is not a number", describeValue(v))
}

func toInt(v any, lo, hi int64) (any, error) {
	var n int64
	switch x := v.(type) {
	case int:
		n = int64(x)
	case int64:
		n = x
	case int32:
		n = int64(x)
	case float64:
		if x != math.Trunc(x) || x < -9.2e18 || x > 9.2e18 {
			return nil, fmt.Errorf("%v is not an integer", x)
		}
		n = int64(x)
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s is not an integer", describeValue(v))
		}
		n = i
	default:
		return nil, fmt.Errorf("%s is not an integer", describeValue(v))
	}
	if n < lo || n > hi {
		return nil, fmt.Errorf("%d is out of range for the column (%d..%d)", n, lo, hi)
	}
	return n, nil
}

func parseUUID(s string) (any, error) {
	h := strings.ReplaceAll(s, "-", "")
	var b [16]byte
	if len(h) != 32 {
		return nil, fmt.Errorf("%q is not a UUID", s)
	}
	if _, err := hex.Decode(b[:], []byte(h)); err != nil {
		return nil, fmt.Errorf("%q is not a UUID", s)
	}
	return b, nil
}

// describeValue names a value for an error message without dumping a large object.
func describeValue(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return strconv.Quote(x)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case bool, float64, float32, int, int64, int32:
		return fmt.Sprintf("%v (%T)", x, x)
	}
	return fmt.Sprintf("a %T", v)
}
