package otlpinput

import (
	"math"
	"slices"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/eventops/eventops-engine/engine/codec"
	"github.com/eventops/eventops-engine/engine/httpinput"
)

// originJSON is an origin's members as encoded once for all its records: `"scope":{…}`,
// `"service":"…"` and `"tags":{…}` (nil when the origin has none).
type originJSON struct {
	scope, service, tags []byte
}

func (o origin) json() (originJSON, error) {
	var oj originJSON
	var err error
	if o.scope != nil {
		if oj.scope, err = codec.AppendObject([]byte(`"scope":`), o.scope); err != nil {
			return oj, err
		}
	}
	if o.service != "" {
		if oj.service, err = codec.AppendValue([]byte(`"service":`), o.service); err != nil {
			return oj, err
		}
	}
	oj.tags, err = codec.AppendObject([]byte(`"tags":`), o.tags)
	return oj, err
}

// sumOf is a sum's temporality and monotonicity, for its points' records.
type sumOf struct {
	temporality string
	monotonic   bool
}

// appendNumberPoint writes the record of a gauge or sum point (sum nil for a gauge) without
// building it as a map first: the bytes are exactly those codec.AppendObject writes for
// numberPoint's map (keys in sorted order; the goldens hold the two equal). Points with
// exemplars are not written here.
func appendNumberPoint(dst []byte, oj originJSON, m pmetric.Metric, p pmetric.NumberDataPoint, sum *sumOf) ([]byte, error) {
	dst, err := appendAttributes(append(dst, `{"attributes":`...), p.Attributes())
	if err != nil {
		return nil, err
	}
	dst, _ = codec.AppendValue(append(dst, `,"metric":`...), m.Name())
	if sum != nil {
		dst = append(dst, `,"metric_type":"sum","monotonic":`...)
		dst = strconv.AppendBool(dst, sum.monotonic)
	} else {
		dst = append(dst, `,"metric_type":"gauge"`...)
	}
	noValue := p.Flags().NoRecordedValue() || p.ValueType() == pmetric.NumberDataPointValueTypeEmpty
	if p.Flags().NoRecordedValue() {
		dst = append(dst, `,"no_value":true`...)
	}
	dst = appendMember(dst, oj.scope)
	dst = appendMember(dst, oj.service)
	dst = append(dst, `,"signal":"metric"`...)
	dst = appendTime(dst, `,"start_ts":`, p.StartTimestamp())
	dst = appendMember(dst, oj.tags)
	if sum != nil {
		dst = append(append(append(dst, `,"temporality":"`...), sum.temporality...), '"')
	}
	dst = appendTime(dst, `,"ts":`, p.Timestamp())
	if m.Unit() != "" {
		dst, _ = codec.AppendValue(append(dst, `,"unit":`...), m.Unit())
	}
	if !noValue {
		if dst, err = appendNumber(append(dst, `,"value":`...), p); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

func appendMember(dst, member []byte) []byte {
	if member == nil {
		return dst
	}
	return append(append(dst, ','), member...)
}

// appendTime writes key and t as setTime does, unless t is unset.
func appendTime(dst []byte, key string, t pcommon.Timestamp) []byte {
	if t == 0 {
		return dst
	}
	dst = append(append(dst, key...), '"')
	dst = time.Unix(0, int64(t)).UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

func appendNumber(dst []byte, p pmetric.NumberDataPoint) ([]byte, error) {
	if p.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return strconv.AppendInt(dst, p.IntValue(), 10), nil
	}
	f := p.DoubleValue()
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return codec.AppendValue(dst, httpinput.JSONFloat(f))
	}
	return codec.AppendValue(dst, f)
}

// appendAttributes writes m as codec.AppendObject writes attributes(m): keys sorted.
func appendAttributes(dst []byte, m pcommon.Map) ([]byte, error) {
	keys := make([]string, 0, m.Len())
	for k := range m.All() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys) // a key sent twice is written once, as a map keeps it
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst, _ = codec.AppendValue(dst, k)
		v, _ := m.Get(k)
		var err error
		if dst, err = codec.AppendValue(append(dst, ':'), value(v)); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}
