package httpinput

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/eventops/eventops-engine/engine/codec"
)

// RemoteWrite is Prometheus remote_write 1.0: a snappy-compressed protobuf WriteRequest,
// answered 204 once stored. Each sample becomes one record:
//
//	{"metric": "up", "labels": {"instance": "…", "job": "…"}, "value": 1, "ts": "2026-12-07T16:40:00.123Z"}
//
// A value JSON cannot hold is a string as Prometheus's own API writes it ("NaN", "+Inf",
// "-Inf"), and the staleness marker Prometheus sends when a series ends is "stale": true
// with "value": "NaN". A series' exemplars go with its first sample of the request, as
// "exemplars": [{"labels": {…}, "value": …, "ts": …}]. Metadata is skipped. A native
// histogram sample is one record of "type": "native_histogram" with its count, sum, schema,
// zero bucket, reset hint and "buckets": [{"lower", "upper", "count"}] in ascending order,
// counts absolute (docs/ingest.md).
var RemoteWrite = Format{
	Decode: func(req Request, lim Limits) (Decoded, error) {
		records, err := decodeRemoteWrite(req.Body, lim)
		return Decoded{Records: records}, err
	},
	Stored: func(Request, Decoded) Answer { return Answer{Code: http.StatusNoContent} },
	// Prometheus sends Content-Encoding: snappy.
	Encodings: []string{"snappy"},
}

// staleNaN is the bit pattern of Prometheus's staleness marker.
const staleNaN = 0x7ff0000000000002

func decodeRemoteWrite(body []byte, lim Limits) ([][]byte, error) {
	n, err := snappy.DecodedLen(body)
	if err != nil {
		return nil, fmt.Errorf("the body is not snappy-compressed (remote_write 1.0 sends a snappy block): %w", err)
	}
	// Checked before decoding: a few KB of snappy can claim (and take) gigabytes.
	if lim.MaxBodyBytes > 0 && int64(n) > lim.MaxBodyBytes {
		return nil, fmt.Errorf("the write request is %d bytes once uncompressed, over max_body_bytes (%d): send fewer samples per request (queue_config.max_samples_per_send): %w", n, lim.MaxBodyBytes, ErrTooLarge)
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, fmt.Errorf("the body is not snappy-compressed (remote_write 1.0 sends a snappy block): %w", err)
	}
	maxRecordBytes := lim.MaxRecordBytes
	var records [][]byte
	err = eachField(raw, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != 1 || typ != protowire.BytesType { // 3: metadata, skipped
			return nil
		}
		var err error
		records, err = appendSeries(records, v, maxRecordBytes)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("write request: %w", err)
	}
	if len(records) == 0 {
		return nil, errors.New("the write request holds no samples")
	}
	return records, nil
}

// series is one TimeSeries of a write request, decoded.
type series struct {
	name       string
	labels     map[string]any
	samples    []sample
	exemplars  []any
	histograms []nativeHistogram
}

type sample struct {
	value float64
	ts    int64
}

func appendSeries(records [][]byte, b []byte, maxRecordBytes int) ([][]byte, error) {
	s := series{labels: map[string]any{}}
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			name, value, err := decodeLabel(v)
			if name == "__name__" {
				s.name = value
			} else {
				s.labels[name] = value
			}
			return err
		case num == 2 && typ == protowire.BytesType:
			smp, err := decodeSample(v)
			s.samples = append(s.samples, smp)
			return err
		case num == 3 && typ == protowire.BytesType:
			ex, err := decodeExemplar(v)
			s.exemplars = append(s.exemplars, ex)
			return err
		case num == 4 && typ == protowire.BytesType:
			h, err := decodeNativeHistogram(v)
			s.histograms = append(s.histograms, h)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("series %d: %w", len(records)+1, err)
	}
	for i, smp := range s.samples {
		rec := map[string]any{"metric": s.name, "labels": s.labels, "ts": msTime(smp.ts)}
		setValue(rec, smp.value)
		if i == 0 && len(s.exemplars) > 0 {
			rec["exemplars"] = s.exemplars
		}
		if records, err = appendRecord(records, rec, s.name, maxRecordBytes); err != nil {
			return nil, err
		}
	}
	for _, h := range s.histograms {
		rec, err := h.record(&s)
		if err != nil {
			return nil, fmt.Errorf("series %s: %w", s.name, err)
		}
		if records, err = appendRecord(records, rec, s.name, maxRecordBytes); err != nil {
			return nil, err
		}
	}
	return records, nil
}

// appendRecord encodes rec, a sample of series name, and appends it within maxRecordBytes.
func appendRecord(records [][]byte, rec map[string]any, name string, maxRecordBytes int) ([][]byte, error) {
	out, err := codec.AppendObject(nil, rec)
	if err != nil {
		return nil, fmt.Errorf("series %s: %w", name, err)
	}
	if maxRecordBytes > 0 && len(out) > maxRecordBytes {
		return nil, fmt.Errorf("a sample of series %s: %d bytes, over the broker's max_record_bytes %d: %w", name, len(out), maxRecordBytes, ErrTooLarge)
	}
	return append(records, out), nil
}

// setValue sets rec's value, writing what JSON cannot hold as Prometheus's API does.
func setValue(rec map[string]any, v float64) {
	rec["value"] = JSONFloat(v)
	if math.Float64bits(v) == staleNaN {
		rec["stale"] = true
	}
}

func msTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func decodeLabel(b []byte) (name, value string, err error) {
	err = eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			name = string(v)
		case num == 2 && typ == protowire.BytesType:
			value = string(v)
		}
		return nil
	})
	return name, value, err
}

func decodeSample(b []byte) (sample, error) {
	var s sample
	err := eachField(b, func(num protowire.Number, typ protowire.Type, _ []byte, n uint64) error {
		switch {
		case num == 1 && typ == protowire.Fixed64Type:
			s.value = math.Float64frombits(n)
		case num == 2 && typ == protowire.VarintType:
			s.ts = int64(n)
		}
		return nil
	})
	return s, err
}

func decodeExemplar(b []byte) (any, error) {
	labels := map[string]any{}
	var s sample
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			name, value, err := decodeLabel(v)
			labels[name] = value
			return err
		case num == 2 && typ == protowire.Fixed64Type:
			s.value = math.Float64frombits(n)
		case num == 3 && typ == protowire.VarintType:
			s.ts = int64(n)
		}
		return nil
	})
	ex := map[string]any{"labels": labels, "ts": msTime(s.ts)}
	setValue(ex, s.value)
	return ex, err
}

// eachField calls fn for each field of the protobuf message b: its number, wire type, and
// its bytes (length-delimited) or its number (varint, fixed32, fixed64).
func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error) error {
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return fmt.Errorf("malformed protobuf: %w", protowire.ParseError(l))
		}
		b = b[l:]
		var v []byte
		var n uint64
		switch typ {
		case protowire.BytesType:
			v, l = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			n, l = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			n, l = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var n32 uint32
			n32, l = protowire.ConsumeFixed32(b)
			n = uint64(n32)
		default:
			l = protowire.ConsumeFieldValue(num, typ, b)
		}
		if l < 0 {
			return fmt.Errorf("malformed protobuf: %w", protowire.ParseError(l))
		}
		b = b[l:]
		if err := fn(num, typ, v, n); err != nil {
			return err
		}
	}
	return nil
}
