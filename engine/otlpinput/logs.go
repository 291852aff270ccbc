package otlpinput

import (
	"fmt"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/eventops/eventops-engine/engine/httpinput"
)

// LogRecords maps ld to one record per log record (docs/ingest.md):
//
//	{"signal": "log", "ts": "…", "severity": "ERROR", "severity_number": 17,
//	 "body": "disk full", "attributes": {…}, "tags": {…}, "service": "…",
//	 "trace_id": "…", "span_id": "…"}
//
// A record over maxRecordBytes (0: no limit) is left out and counted in Rejected.
func LogRecords(ld plog.Logs, maxRecordBytes int) httpinput.Decoded {
	b := &batch{maxRecordBytes: maxRecordBytes}
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			o := newOrigin(rl.Resource(), sl.Scope())
			for i, lr := range sl.LogRecords().All() {
				b.add(logRecord(o, lr), func() string { return fmt.Sprintf("log record %d of scope %q", i+1, sl.Scope().Name()) })
			}
		}
	}
	return b.decoded("log records")
}

func logRecord(o origin, lr plog.LogRecord) map[string]any {
	rec := o.record("log")
	rec["body"], rec["attributes"] = value(lr.Body()), attributes(lr.Attributes())
	// ts is when it happened; a log without that time (many collected ones) has when it was seen.
	ts := lr.Timestamp()
	if ts == 0 {
		ts = lr.ObservedTimestamp()
	}
	setTime(rec, "ts", ts)
	setTime(rec, "observed_ts", lr.ObservedTimestamp())
	if s := severity(lr); s != "" {
		rec["severity"] = s
	}
	if lr.SeverityNumber() != plog.SeverityNumberUnspecified {
		rec["severity_number"] = int64(lr.SeverityNumber())
	}
	if lr.EventName() != "" {
		rec["event_name"] = lr.EventName()
	}
	setTraceContext(rec, lr.TraceID(), lr.SpanID())
	return rec
}

// severity is the record's severity text, or else the short name of its number's range
// (TRACE, DEBUG, INFO, WARN, ERROR, FATAL), as the OTLP data model names them.
func severity(lr plog.LogRecord) string {
	if lr.SeverityText() != "" {
		return lr.SeverityText()
	}
	n := int(lr.SeverityNumber())
	if n < 1 || n > 24 {
		return ""
	}
	return [...]string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}[(n-1)/4]
}
