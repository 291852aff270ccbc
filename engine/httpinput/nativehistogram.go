package httpinput

import (
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// nativeHistogram is one native histogram sample of a remote_write series, decoded: its
// buckets with absolute counts (a histogram of integer counts sends deltas).
type nativeHistogram struct {
	count, sum, zeroThreshold, zeroCount float64
	schema                               int32
	resetHint                            string
	ts                                   int64
	positive, negative                   bucketSide
}

// bucketSide is one side (positive or negative) of a native histogram as sent: spans of
// consecutive bucket indexes, and a count per bucket (deltas for integer histograms).
type bucketSide struct {
	spans  []span
	deltas []int64
	counts []float64
}

type span struct {
	offset int32
	length uint32
}

var resetHints = map[uint64]string{0: "unknown", 1: "yes", 2: "no", 3: "gauge"}

// decodeNativeHistogram decodes a prometheus.Histogram message.
func decodeNativeHistogram(b []byte) (nativeHistogram, error) {
	h := nativeHistogram{resetHint: "unknown"}
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			h.count = float64(n)
		case num == 2 && typ == protowire.Fixed64Type:
			h.count = math.Float64frombits(n)
		case num == 3 && typ == protowire.Fixed64Type:
			h.sum = math.Float64frombits(n)
		case num == 4 && typ == protowire.VarintType:
			h.schema = int32(protowire.DecodeZigZag(n))
		case num == 5 && typ == protowire.Fixed64Type:
			h.zeroThreshold = math.Float64frombits(n)
		case num == 6 && typ == protowire.VarintType:
			h.zeroCount = float64(n)
		case num == 7 && typ == protowire.Fixed64Type:
			h.zeroCount = math.Float64frombits(n)
		case num == 14 && typ == protowire.VarintType:
			h.resetHint = resetHints[n]
		case num == 15 && typ == protowire.VarintType:
			h.ts = int64(n)
		default:
			return h.bucketField(num, typ, v, n)
		}
		return nil
	})
	return h, err
}

// bucketField decodes fields 8–13: the spans, deltas and counts of either side.
func (h *nativeHistogram) bucketField(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
	side := &h.positive
	if num >= 8 && num <= 10 {
		side = &h.negative
	}
	switch num {
	case 8, 11:
		if typ != protowire.BytesType {
			return nil
		}
		sp, err := decodeSpan(v)
		side.spans = append(side.spans, sp)
		return err
	case 9, 12:
		return eachPacked(typ, v, n, protowire.VarintType, func(x uint64) { side.deltas = append(side.deltas, protowire.DecodeZigZag(x)) })
	case 10, 13:
		return eachPacked(typ, v, n, protowire.Fixed64Type, func(x uint64) { side.counts = append(side.counts, math.Float64frombits(x)) })
	}
	return nil
}

func decodeSpan(b []byte) (span, error) {
	var sp span
	err := eachField(b, func(num protowire.Number, typ protowire.Type, _ []byte, n uint64) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			sp.offset = int32(protowire.DecodeZigZag(n))
		case num == 2 && typ == protowire.VarintType:
			sp.length = uint32(n)
		}
		return nil
	})
	return sp, err
}

// eachPacked calls fn with each value of a repeated scalar field, packed (one bytes field)
// or not (one value).
func eachPacked(typ protowire.Type, v []byte, n uint64, want protowire.Type, fn func(uint64)) error {
	if typ == want {
		fn(n)
		return nil
	}
	if typ != protowire.BytesType {
		return nil
	}
	for len(v) > 0 {
		var x uint64
		var l int
		if want == protowire.VarintType {
			x, l = protowire.ConsumeVarint(v)
		} else {
			x, l = protowire.ConsumeFixed64(v)
		}
		if l < 0 {
			return fmt.Errorf("malformed protobuf: %w", protowire.ParseError(l))
		}
		fn(x)
		v = v[l:]
	}
	return nil
}

// buckets are the side's buckets, each {lower, upper, count}, in the order of their indexes:
// bucket i of schema s spans (base^(i-1), base^i] with base 2^(2^-s), negated on the
// negative side.
func (side bucketSide) buckets(schema int32, negative bool) ([]any, error) {
	base := math.Pow(2, math.Pow(2, -float64(schema)))
	var out []any
	index, k := int32(0), 0
	running := int64(0)
	for j, sp := range side.spans {
		if j == 0 {
			index = sp.offset
		} else {
			index += sp.offset
		}
		for range sp.length {
			count, err := side.count(k, &running)
			if err != nil {
				return nil, err
			}
			lo, hi := math.Pow(base, float64(index-1)), math.Pow(base, float64(index))
			if negative {
				lo, hi = -hi, -lo
			}
			out = append(out, map[string]any{"lower": JSONFloat(lo), "upper": JSONFloat(hi), "count": count})
			index++
			k++
		}
	}
	return out, nil
}

// count is the k-th bucket's absolute count: counts as sent, or deltas summed.
func (side bucketSide) count(k int, running *int64) (float64, error) {
	switch {
	case k < len(side.counts):
		return side.counts[k], nil
	case k < len(side.deltas):
		*running += side.deltas[k]
		return float64(*running), nil
	}
	return 0, errors.New("a native histogram has fewer bucket counts than its spans say")
}

// record is the histogram as a record of series s.
func (h nativeHistogram) record(s *series) (map[string]any, error) {
	neg, err := h.negative.buckets(h.schema, true)
	if err != nil {
		return nil, err
	}
	pos, err := h.positive.buckets(h.schema, false)
	if err != nil {
		return nil, err
	}
	rec := map[string]any{
		"metric": s.name, "labels": s.labels, "ts": msTime(h.ts), "metric_type": "native_histogram",
		"count": JSONFloat(h.count), "schema": int64(h.schema), "zero_threshold": JSONFloat(h.zeroThreshold),
		"zero_count": JSONFloat(h.zeroCount), "reset_hint": h.resetHint,
	}
	// Buckets in ascending order of their bounds: the negative side's indexes go down.
	for i, j := 0, len(neg)-1; i < j; i, j = i+1, j-1 {
		neg[i], neg[j] = neg[j], neg[i]
	}
	rec["buckets"] = append(neg, pos...)
	setValue(rec, h.sum) // sum, with the staleness marker as for samples
	rec["sum"] = rec["value"]
	delete(rec, "value")
	return rec, nil
}

// JSONFloat is f, or the string Prometheus's HTTP API writes for a value JSON cannot hold
// ("NaN", "+Inf", "-Inf"): how the receivers write every float they map.
func JSONFloat(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return f
}
