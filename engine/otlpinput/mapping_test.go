package otlpinput

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/eventops/eventops-engine/engine/httpinput"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var (
	t0      = pcommon.NewTimestampFromTime(time.Date(2026, 12, 7, 10, 0, 0, 123456789, time.UTC))
	t1      = pcommon.NewTimestampFromTime(time.Date(2026, 12, 7, 10, 0, 10, 0, time.UTC))
	traceID = pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	spanID  = pcommon.SpanID{0xa, 0xb, 0xc, 0xd, 1, 2, 3, 4}
	parent  = pcommon.SpanID{9, 9, 9, 9, 9, 9, 9, 9}
)

// newResource is a resource of service "checkout" on host web-1, with a scope.
func newResource(rs pcommon.Resource, scope pcommon.InstrumentationScope) {
	rs.Attributes().PutStr("service.name", "checkout")
	rs.Attributes().PutStr("host.name", "web-1")
	rs.Attributes().PutInt("process.pid", 4242)
	scope.SetName("otel.checkout")
	scope.SetVersion("1.2.0")
}

// everyMetricType is one data point of each OTLP metric type, with the cases JSON must take
// care with: an int value, NaN, no recorded value, exemplars, a delta sum.
func everyMetricType() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	sm := rm.ScopeMetrics().AppendEmpty()
	newResource(rm.Resource(), sm.Scope())

	g := sm.Metrics().AppendEmpty()
	g.SetName("system.cpu.utilization")
	g.SetUnit("1")
	p := g.SetEmptyGauge().DataPoints().AppendEmpty()
	p.SetTimestamp(t1)
	p.SetDoubleValue(0.87)
	p.Attributes().PutStr("cpu", "0")
	nan := g.Gauge().DataPoints().AppendEmpty()
	nan.SetTimestamp(t1)
	nan.SetDoubleValue(math.NaN())
	gone := g.Gauge().DataPoints().AppendEmpty()
	gone.SetTimestamp(t1)
	gone.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))

	s := sm.Metrics().AppendEmpty()
	s.SetName("http.server.requests")
	sum := s.SetEmptySum()
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	sum.SetIsMonotonic(true)
	sp := sum.DataPoints().AppendEmpty()
	sp.SetStartTimestamp(t0)
	sp.SetTimestamp(t1)
	sp.SetIntValue(42)
	ex := sp.Exemplars().AppendEmpty()
	ex.SetIntValue(1)
	ex.SetTimestamp(t0)
	ex.SetTraceID(traceID)
	ex.SetSpanID(spanID)

	h := sm.Metrics().AppendEmpty()
	h.SetName("http.server.duration")
	h.SetUnit("ms")
	hist := h.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hp := hist.DataPoints().AppendEmpty()
	hp.SetTimestamp(t1)
	hp.SetCount(6)
	hp.SetSum(321.5)
	hp.SetMin(1.5)
	hp.SetMax(250)
	hp.ExplicitBounds().FromRaw([]float64{10, 100})
	hp.BucketCounts().FromRaw([]uint64{3, 2, 1})

	e := sm.Metrics().AppendEmpty()
	e.SetName("rpc.duration")
	eh := e.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	ep := eh.DataPoints().AppendEmpty()
	ep.SetTimestamp(t1)
	ep.SetCount(5)
	ep.SetScale(2)
	ep.SetZeroCount(1)
	ep.Positive().SetOffset(-1)
	ep.Positive().BucketCounts().FromRaw([]uint64{1, 3})

	q := sm.Metrics().AppendEmpty()
	q.SetName("go.gc.pause")
	qp := q.SetEmptySummary().DataPoints().AppendEmpty()
	qp.SetTimestamp(t1)
	qp.SetCount(10)
	qp.SetSum(0.5)
	v := qp.QuantileValues().AppendEmpty()
	v.SetQuantile(0.99)
	v.SetValue(0.2)
	return md
}

func someLogs() plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	sl := rl.ScopeLogs().AppendEmpty()
	newResource(rl.Resource(), sl.Scope())
	lr := sl.LogRecords().AppendEmpty()
	lr.SetTimestamp(t0)
	lr.SetObservedTimestamp(t1)
	lr.SetSeverityNumber(plog.SeverityNumberError)
	lr.Body().SetStr("payment gateway timed out")
	lr.Attributes().PutStr("order", "o-17")
	lr.SetTraceID(traceID)
	lr.SetSpanID(spanID)
	// Collected logs often have no time of their own and no severity text; a body can be a map.
	collected := sl.LogRecords().AppendEmpty()
	collected.SetObservedTimestamp(t1)
	collected.SetSeverityNumber(plog.SeverityNumberWarn2)
	body := collected.Body().SetEmptyMap()
	body.PutStr("msg", "disk 91% full")
	body.PutDouble("used", 0.91)
	body.PutEmptySlice("mounts").AppendEmpty().SetStr("/var")
	return ld
}

func someSpans() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	ss := rs.ScopeSpans().AppendEmpty()
	newResource(rs.Resource(), ss.Scope())
	span := ss.Spans().AppendEmpty()
	span.SetName("POST /pay")
	span.SetKind(ptrace.SpanKindClient)
	span.SetTraceID(traceID)
	span.SetSpanID(spanID)
	span.SetParentSpanID(parent)
	span.SetStartTimestamp(t0)
	span.SetEndTimestamp(t0 + 12_500_000)
	span.Status().SetCode(ptrace.StatusCodeError)
	span.Status().SetMessage("upstream 503")
	span.Attributes().PutStr("peer.service", "payments")
	span.Attributes().PutBool("retry", true)
	ev := span.Events().AppendEmpty()
	ev.SetName("exception")
	ev.SetTimestamp(t0 + 12_000_000)
	ev.Attributes().PutStr("exception.type", "TimeoutError")
	link := span.Links().AppendEmpty()
	link.SetTraceID(traceID)
	link.SetSpanID(parent)
	root := ss.Spans().AppendEmpty()
	root.SetName("checkout")
	root.SetKind(ptrace.SpanKindServer)
	root.SetTraceID(traceID)
	root.SetSpanID(parent)
	root.SetStartTimestamp(t0)
	root.SetEndTimestamp(t1)
	return td
}

// Each data point, log record and span becomes one record, as docs/ingest.md describes
// (the golden files are its examples).
func TestRecordsAreTheDocumentedMapping(t *testing.T) {
	for name, d := range map[string]httpinput.Decoded{
		"metrics": MetricRecords(everyMetricType(), 0),
		"logs":    LogRecords(someLogs(), 0),
		"traces":  SpanRecords(someSpans(), 0),
	} {
		t.Run(name, func(t *testing.T) {
			if d.Rejected != 0 {
				t.Fatalf("rejected %d: %s", d.Rejected, d.Reason)
			}
			golden(t, filepath.Join("testdata", name+".ndjson"), bytes.Join(d.Records, []byte("\n")))
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("records differ from %s (go test -update rewrites it):\n got: %s\nwant: %s", path, got, want)
	}
}

// A record the broker could not hold is left out and counted, with a reason that says which
// and why; the rest are kept.
func TestARecordOverTheLimitIsLeftOutAndSaidWhy(t *testing.T) {
	ld := someLogs()
	big := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty()
	big.Body().SetStr(string(bytes.Repeat([]byte("x"), 2000)))
	d := LogRecords(ld, 1000)
	if len(d.Records) != 2 || d.Rejected != 1 {
		t.Fatalf("%d records, %d rejected: want the 2 small ones kept and the big one rejected", len(d.Records), d.Rejected)
	}
	want := `1 log records not stored: log record 3 of scope "otel.checkout" is 2`
	if !bytes.HasPrefix([]byte(d.Reason), []byte(want)) || !bytes.Contains([]byte(d.Reason), []byte("over the broker's max_record_bytes (1000)")) {
		t.Errorf("reason %q, want it to start %q and name the limit", d.Reason, want)
	}
}
