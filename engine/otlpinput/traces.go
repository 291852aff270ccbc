package otlpinput

import (
	"encoding/hex"
	"fmt"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/eventops/eventops-engine/engine/httpinput"
)

// SpanRecords maps td to one record per span (docs/ingest.md):
//
//	{"signal": "span", "service": "checkout", "name": "GET /cart", "kind": "server",
//	 "trace_id": "…", "span_id": "…", "parent_span_id": "…", "ts": "…", "end_ts": "…",
//	 "duration_ms": 12.5, "status": "error", "status_message": "…", "attributes": {…}, "tags": {…}}
//
// A record over maxRecordBytes (0: no limit) is left out and counted in Rejected.
func SpanRecords(td ptrace.Traces, maxRecordBytes int) httpinput.Decoded {
	b := &batch{maxRecordBytes: maxRecordBytes}
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			o := newOrigin(rs.Resource(), ss.Scope())
			for _, span := range ss.Spans().All() {
				b.add(spanRecord(o, span), func() string { return fmt.Sprintf("span %q (%s)", span.Name(), span.SpanID()) })
			}
		}
	}
	return b.decoded("spans")
}

func spanRecord(o origin, span ptrace.Span) map[string]any {
	rec := o.record("span")
	rec["name"], rec["kind"], rec["attributes"] = span.Name(), kind(span.Kind()), attributes(span.Attributes())
	setTraceContext(rec, span.TraceID(), span.SpanID())
	if parent := span.ParentSpanID(); !parent.IsEmpty() {
		rec["parent_span_id"] = hex.EncodeToString(parent[:])
	}
	setTime(rec, "ts", span.StartTimestamp())
	setTime(rec, "end_ts", span.EndTimestamp())
	if span.EndTimestamp() >= span.StartTimestamp() {
		rec["duration_ms"] = float64(span.EndTimestamp()-span.StartTimestamp()) / 1e6
	}
	rec["status"] = statusName(span.Status().Code())
	if msg := span.Status().Message(); msg != "" {
		rec["status_message"] = msg
	}
	if p := peer(span); p != "" {
		rec["peer"] = p
	}
	setEvents(rec, span.Events())
	setLinks(rec, span.Links())
	return rec
}

// peerAttributes name what a client or producer span calls, best first (OpenTelemetry's
// semantic conventions): the service as its owner names it, else the database, the messaging
// system's destination, the server's address.
var peerAttributes = []string{"peer.service", "db.namespace", "db.name", "db.system", "messaging.destination.name", "server.address", "net.peer.name"}

// peer is the callee of a client or producer span ("" for other kinds, or when no attribute
// says): with the span's own service, an edge of the dependency graph (issue 21).
func peer(span ptrace.Span) string {
	if k := span.Kind(); k != ptrace.SpanKindClient && k != ptrace.SpanKindProducer {
		return ""
	}
	for _, name := range peerAttributes {
		if v, ok := span.Attributes().Get(name); ok && v.AsString() != "" {
			return v.AsString()
		}
	}
	return ""
}

// setEvents sets the span's events (an exception is one), if it has any.
func setEvents(rec map[string]any, events ptrace.SpanEventSlice) {
	if events.Len() == 0 {
		return
	}
	out := make([]any, 0, events.Len())
	for _, e := range events.All() {
		ev := map[string]any{"name": e.Name(), "attributes": attributes(e.Attributes())}
		setTime(ev, "ts", e.Timestamp())
		out = append(out, ev)
	}
	rec["events"] = out
}

// setLinks sets the spans the span links to, if any.
func setLinks(rec map[string]any, links ptrace.SpanLinkSlice) {
	if links.Len() == 0 {
		return
	}
	out := make([]any, 0, links.Len())
	for _, l := range links.All() {
		link := map[string]any{"attributes": attributes(l.Attributes())}
		setTraceContext(link, l.TraceID(), l.SpanID())
		out = append(out, link)
	}
	rec["links"] = out
}

func kind(k ptrace.SpanKind) string {
	switch k {
	case ptrace.SpanKindInternal:
		return "internal"
	case ptrace.SpanKindServer:
		return "server"
	case ptrace.SpanKindClient:
		return "client"
	case ptrace.SpanKindProducer:
		return "producer"
	case ptrace.SpanKindConsumer:
		return "consumer"
	}
	return "unspecified"
}

func statusName(c ptrace.StatusCode) string {
	switch c {
	case ptrace.StatusCodeOk:
		return "ok"
	case ptrace.StatusCodeError:
		return "error"
	}
	return "unset"
}
