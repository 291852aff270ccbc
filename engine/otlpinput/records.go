// Package otlpinput receives OpenTelemetry (OTLP) metrics, logs and traces, over HTTP
// (protobuf or JSON, on /v1/metrics, /v1/logs and /v1/traces) and over gRPC, into a
// stream's input topic: one JSON record per metric data point, per log record and per span
// (the mapping is in docs/ingest.md). Receiving, admission and storing are engine/httpinput's:
// a request is answered OK only once its records are stored, and 429 / RESOURCE_EXHAUSTED
// with a retry delay when the topic cannot take them in time, so an exporter retries.
//
// A record over the broker's max_record_bytes cannot be stored at all: it is left out, the
// rest of the request is stored, and the answer says how many were left out and why (OTLP's
// partial success, which exporters log and do not retry).
package otlpinput

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/eventops/eventops-engine/engine/codec"
	"github.com/eventops/eventops-engine/engine/httpinput"
)

// batch collects the records of one request, leaving out those that cannot be stored.
type batch struct {
	maxRecordBytes int
	records        [][]byte
	rejected       int64
	reason         string
	slab           []byte // where records written directly go (metrics.go)
}

// add encodes rec and keeps it, or counts it rejected; what names it in the reason, and is
// called only then (a description made for every record would cost more than the record).
func (b *batch) add(rec map[string]any, what func() string) {
	out, err := codec.AppendObject(nil, rec)
	b.keep(out, err, what)
}

// keep keeps an encoded record, or counts it rejected: err is why it could not be encoded.
func (b *batch) keep(out []byte, err error, what func() string) {
	switch {
	case err != nil:
		b.reject(fmt.Sprintf("%s could not be written as JSON: %v", what(), err))
	case b.maxRecordBytes > 0 && len(out) > b.maxRecordBytes:
		b.reject(fmt.Sprintf("%s is %d bytes as a record, over the broker's max_record_bytes (%d)", what(), len(out), b.maxRecordBytes))
	default:
		b.records = append(b.records, out)
	}
}

// reject counts one item left out; the answer gives the first reason.
func (b *batch) reject(reason string) {
	if b.rejected == 0 {
		b.reason = reason
	}
	b.rejected++
}

func (b *batch) decoded(unit string) httpinput.Decoded {
	d := httpinput.Decoded{Records: b.records, Rejected: b.rejected}
	if b.rejected > 0 {
		d.Reason = fmt.Sprintf("%d %s not stored: %s", b.rejected, unit, b.reason)
	}
	return d
}

// origin is what every record of one resource and scope carries: the resource's and the
// scope's attributes as tags (strings, as the envelope's tags are), the service's name, and
// the scope.
type origin struct {
	tags    map[string]any
	service string
	scope   map[string]any
}

func newOrigin(resource pcommon.Resource, scope pcommon.InstrumentationScope) origin {
	tags := map[string]any{}
	for k, v := range resource.Attributes().All() {
		tags[k] = v.AsString()
	}
	for k, v := range scope.Attributes().All() {
		tags[k] = v.AsString()
	}
	o := origin{tags: tags}
	if v, ok := resource.Attributes().Get("service.name"); ok {
		o.service = v.AsString()
	}
	if scope.Name() != "" || scope.Version() != "" {
		o.scope = map[string]any{"name": scope.Name(), "version": scope.Version()}
	}
	return o
}

// record starts a record of signal from o.
func (o origin) record(signal string) map[string]any {
	rec := map[string]any{"signal": signal, "tags": o.tags}
	if o.service != "" {
		rec["service"] = o.service
	}
	if o.scope != nil {
		rec["scope"] = o.scope
	}
	return rec
}

// attributes are m's attributes with their types (an int stays a number, a list a list).
func attributes(m pcommon.Map) map[string]any {
	out := make(map[string]any, m.Len())
	for k, v := range m.All() {
		out[k] = value(v)
	}
	return out
}

// value is v as JSON holds it: bytes as base64, a number JSON cannot hold as the string
// Prometheus's API writes ("NaN", "+Inf", "-Inf").
func value(v pcommon.Value) any {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str()
	case pcommon.ValueTypeInt:
		return v.Int()
	case pcommon.ValueTypeDouble:
		return httpinput.JSONFloat(v.Double())
	case pcommon.ValueTypeBool:
		return v.Bool()
	case pcommon.ValueTypeBytes:
		return base64.StdEncoding.EncodeToString(v.Bytes().AsRaw())
	case pcommon.ValueTypeMap:
		return attributes(v.Map())
	case pcommon.ValueTypeSlice:
		out := make([]any, v.Slice().Len())
		for i, item := range v.Slice().All() {
			out[i] = value(item)
		}
		return out
	}
	return nil
}

// setTime sets rec[key] to t in RFC 3339 with nanoseconds, unless t is unset (0).
func setTime(rec map[string]any, key string, t pcommon.Timestamp) {
	if t != 0 {
		rec[key] = time.Unix(0, int64(t)).UTC().Format(time.RFC3339Nano)
	}
}

// setTraceContext sets trace_id and span_id (hex, as OTLP/JSON and W3C write them) when set.
func setTraceContext(rec map[string]any, trace pcommon.TraceID, span pcommon.SpanID) {
	if !trace.IsEmpty() {
		rec["trace_id"] = hex.EncodeToString(trace[:])
	}
	if !span.IsEmpty() {
		rec["span_id"] = hex.EncodeToString(span[:])
	}
}
