package eval

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr"

	"github.com/eventops/eventops-engine/engine"
)

// contextFunctions are the functions that receive the hidden evaluation context as their
// last argument (see ctxPatcher).
var contextFunctions = map[string]bool{
	"record_id": true,
	"now":       true,
}

var functions = []expr.Option{
	expr.Function("record_id", func(params ...any) (any, error) {
		ctx := params[len(params)-1].(*evalCtx)
		return RecordID(ctx.source), nil
	}),
	expr.Function("now", func(params ...any) (any, error) {
		ctx := params[len(params)-1].(*evalCtx)
		return formatNow(ctx.now), nil
	}),
	expr.Function("parse_time", func(params ...any) (any, error) {
		if len(params) < 1 || len(params) > 2 {
			return nil, fmt.Errorf("parse_time(value[, layout]) takes 1 or 2 arguments")
		}
		layout := ""
		if len(params) == 2 {
			l, ok := params[1].(string)
			if !ok {
				return nil, fmt.Errorf("parse_time: layout must be a string")
			}
			layout = l
		}
		return parseTimeText(params[0], layout)
	}),
	expr.Function("unix_ms", func(params ...any) (any, error) {
		if len(params) != 1 {
			return nil, fmt.Errorf("unix_ms(time) takes 1 argument")
		}
		t, err := ParseTime(params[0], "")
		if err != nil {
			return nil, err
		}
		return float64(t.UnixMilli()), nil
	}),
	expr.Function("hash_id", func(params ...any) (any, error) {
		h := sha256.New()
		for _, p := range params {
			fmt.Fprintf(h, "%v\x00", p)
		}
		sum := h.Sum(nil)
		return hex.EncodeToString(sum[:16]), nil
	}),
}

// RecordID returns the deterministic id of a source record, as a UUID (version 8, RFC 9562):
//
//	bytes 0-5   48 bits of a hash of the topic name, the topic's id and the partition's high bits
//	bytes 6-7   version 8, then the partition's low 12 bits
//	bytes 8-15  variant, then the offset (62 bits)
//
// The same record read twice gets the same id, so sinks can recognise a redelivery. A new
// incarnation of the topic (deleted and re-created, or a fresh embedded-broker data
// directory), whose offsets start again at 0, has a new topic id and so new record ids: rows
// already stored are never mistaken for the new records. Ids of one partition share their
// first 8 bytes and sort by offset, which keeps a unique index on them append-mostly.
func RecordID(src engine.Source) string {
	h := fnv.New64a()
	h.Write([]byte(src.Topic))
	h.Write([]byte{0})
	h.Write(src.TopicID[:])
	var hi [4]byte
	binary.BigEndian.PutUint32(hi[:], uint32(src.Partition)>>12)
	h.Write(hi[:])
	var b [16]byte
	binary.BigEndian.PutUint64(b[0:8], h.Sum64())
	binary.BigEndian.PutUint16(b[6:8], 0x8000|uint16(src.Partition)&0x0fff) // version 8
	binary.BigEndian.PutUint64(b[8:16], uint64(src.Offset)&(1<<62-1)|1<<63) // RFC 9562 variant
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}

// ParseTime reads a time from an RFC 3339 string, a string in layout, or a number of
// seconds (or milliseconds, when it is too large to be seconds) since the Unix epoch.
func ParseTime(v any, layout string) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case string:
		if layout != "" {
			return time.Parse(layout, x)
		}
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
			return t, nil
		}
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return fromEpoch(f), nil
		}
		return time.Time{}, fmt.Errorf("cannot parse %q as a time (want RFC 3339, e.g. 2025-10-16T09:00:00Z)", x)
	case float64:
		return fromEpoch(x), nil
	case int:
		return fromEpoch(float64(x)), nil
	case int64:
		return fromEpoch(float64(x)), nil
	case nil:
		return time.Time{}, fmt.Errorf("cannot parse a missing value as a time")
	default:
		return time.Time{}, fmt.Errorf("cannot parse %T as a time", v)
	}
}

// parseTimeText is parse_time(v[, layout]): the time v names, as RFC 3339 text in UTC with
// the fraction of a second it has.
func parseTimeText(v any, layout string) (any, error) {
	t, err := ParseTime(v, layout)
	if err != nil {
		return nil, err
	}
	if s, ok := v.(string); ok && layout == "" && isCanonicalUTC(s, t) {
		return s, nil // what Format would write, without writing it
	}
	return t.UTC().Format(time.RFC3339Nano), nil
}

// isCanonicalUTC reports whether s, which parsed as t, is already t as parse_time writes
// it: in UTC ("Z"), with a fraction of a second only when there is one and without trailing
// zeros, "2006-01-02T15:04:05.123Z", as agents mostly send times.
func isCanonicalUTC(s string, t time.Time) bool {
	const whole = len("2006-01-02T15:04:05Z")
	if len(s) < whole || s[10] != 'T' || s[len(s)-1] != 'Z' || t.Location() != time.UTC {
		return false
	}
	if len(s) == whole {
		return t.Nanosecond() == 0
	}
	fraction := s[whole-1 : len(s)-1] // ".123"
	return len(fraction) >= 2 && len(fraction) <= 10 && fraction[0] == '.' && fraction[len(fraction)-1] != '0'
}

func fromEpoch(f float64) time.Time {
	if f > 1e11 { // milliseconds: 1e11 seconds is the year 5138
		return time.UnixMilli(int64(f)).UTC()
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC()
}

// lastNow remembers the last time now() formatted: a processor evaluates a whole batch at
// one clock reading, so formatting it once per batch instead of once per record is enough.
var lastNow atomic.Pointer[formattedTime]

type formattedTime struct {
	t time.Time
	s string
}

func formatNow(t time.Time) string {
	if last := lastNow.Load(); last != nil && last.t.Equal(t) {
		return last.s
	}
	s := t.UTC().Format(time.RFC3339Nano)
	lastNow.Store(&formattedTime{t: t, s: s})
	return s
}
