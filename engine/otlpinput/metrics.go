package otlpinput

import (
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/eventops/eventops-engine/engine/httpinput"
)

// MetricRecords maps md to one record per data point (docs/ingest.md):
//
//	{"signal": "metric", "metric": "system.cpu.utilization", "metric_type": "gauge", "unit": "1",
//	 "value": 0.42, "ts": "…", "attributes": {…}, "tags": {…}, "service": "…"}
//
// A record over maxRecordBytes (0: no limit) is left out and counted in Rejected.
func MetricRecords(md pmetric.Metrics, maxRecordBytes int) httpinput.Decoded {
	b := &batch{maxRecordBytes: maxRecordBytes}
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			o := newOrigin(rm.Resource(), sm.Scope())
			oj, err := o.json()
			for _, m := range sm.Metrics().All() {
				if err != nil {
					b.reject(fmt.Sprintf("the resource of metric %q could not be written as JSON: %v", m.Name(), err))
					continue
				}
				addMetric(b, o, oj, m)
			}
		}
	}
	return b.decoded("data points")
}

// addMetric adds a record for each of m's data points.
func addMetric(b *batch, o origin, oj originJSON, m pmetric.Metric) {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		for _, p := range m.Gauge().DataPoints().All() {
			addNumberPoint(b, o, oj, m, p, nil)
		}
	case pmetric.MetricTypeSum:
		sum := &sumOf{temporality(m.Sum().AggregationTemporality()), m.Sum().IsMonotonic()}
		for _, p := range m.Sum().DataPoints().All() {
			addNumberPoint(b, o, oj, m, p, sum)
		}
	case pmetric.MetricTypeHistogram:
		for _, p := range m.Histogram().DataPoints().All() {
			b.add(histogramPoint(o, m, p), pointOf(m))
		}
	case pmetric.MetricTypeExponentialHistogram:
		for _, p := range m.ExponentialHistogram().DataPoints().All() {
			b.add(exponentialPoint(o, m, p), pointOf(m))
		}
	case pmetric.MetricTypeSummary:
		for _, p := range m.Summary().DataPoints().All() {
			b.add(summaryPoint(o, m, p), pointOf(m))
		}
	}
}

// pointOf names a data point of m in a reason.
func pointOf(m pmetric.Metric) func() string {
	return func() string { return fmt.Sprintf("a data point of metric %q", m.Name()) }
}

// addNumberPoint adds a gauge's or a sum's point: written directly (appendNumberPoint), or,
// with exemplars, as a map.
func addNumberPoint(b *batch, o origin, oj originJSON, m pmetric.Metric, p pmetric.NumberDataPoint, sum *sumOf) {
	if p.Exemplars().Len() > 0 {
		typ := "gauge"
		rec := numberPoint(o, m, typ, p)
		if sum != nil {
			rec["metric_type"], rec["temporality"], rec["monotonic"] = "sum", sum.temporality, sum.monotonic
		}
		b.add(rec, pointOf(m))
		return
	}
	if cap(b.slab)-len(b.slab) < slabReserve {
		b.slab = make([]byte, 0, slabBytes)
	}
	start := len(b.slab)
	out, err := appendNumberPoint(b.slab, oj, m, p, sum)
	if err != nil {
		b.keep(nil, err, pointOf(m))
		return
	}
	b.slab = out
	b.keep(out[start:len(out):len(out)], nil, pointOf(m))
}

// Records written directly go into slabs of slabBytes shared by a request's records (one
// allocation for many); a slab with less than slabReserve left is not written into.
const (
	slabBytes   = 64 << 10
	slabReserve = 2 << 10
)

// point starts the record of one data point of m: what every type's record has.
func point(o origin, m pmetric.Metric, typ string, attrs pcommon.Map, start, ts pcommon.Timestamp, flags pmetric.DataPointFlags) map[string]any {
	rec := o.record("metric")
	rec["metric"], rec["metric_type"], rec["attributes"] = m.Name(), typ, attributes(attrs)
	if m.Unit() != "" {
		rec["unit"] = m.Unit()
	}
	setTime(rec, "ts", ts)
	setTime(rec, "start_ts", start)
	if flags.NoRecordedValue() {
		rec["no_value"] = true
	}
	return rec
}

func numberPoint(o origin, m pmetric.Metric, typ string, p pmetric.NumberDataPoint) map[string]any {
	rec := point(o, m, typ, p.Attributes(), p.StartTimestamp(), p.Timestamp(), p.Flags())
	if !p.Flags().NoRecordedValue() && p.ValueType() != pmetric.NumberDataPointValueTypeEmpty {
		rec["value"] = number(p.ValueType() == pmetric.NumberDataPointValueTypeInt, p.IntValue(), p.DoubleValue())
	}
	setExemplars(rec, p.Exemplars())
	return rec
}

func histogramPoint(o origin, m pmetric.Metric, p pmetric.HistogramDataPoint) map[string]any {
	rec := point(o, m, "histogram", p.Attributes(), p.StartTimestamp(), p.Timestamp(), p.Flags())
	rec["temporality"] = temporality(m.Histogram().AggregationTemporality())
	rec["count"], rec["bounds"], rec["bucket_counts"] = int64(p.Count()), floats(p.ExplicitBounds().AsRaw()), counts(p.BucketCounts().AsRaw())
	setSumMinMax(rec, p.HasSum(), p.Sum(), p.HasMin(), p.Min(), p.HasMax(), p.Max())
	setExemplars(rec, p.Exemplars())
	return rec
}

func exponentialPoint(o origin, m pmetric.Metric, p pmetric.ExponentialHistogramDataPoint) map[string]any {
	rec := point(o, m, "exponential_histogram", p.Attributes(), p.StartTimestamp(), p.Timestamp(), p.Flags())
	rec["temporality"] = temporality(m.ExponentialHistogram().AggregationTemporality())
	rec["count"], rec["scale"], rec["zero_count"], rec["zero_threshold"] = int64(p.Count()), int64(p.Scale()), int64(p.ZeroCount()), httpinput.JSONFloat(p.ZeroThreshold())
	rec["positive"], rec["negative"] = buckets(p.Positive()), buckets(p.Negative())
	setSumMinMax(rec, p.HasSum(), p.Sum(), p.HasMin(), p.Min(), p.HasMax(), p.Max())
	setExemplars(rec, p.Exemplars())
	return rec
}

func summaryPoint(o origin, m pmetric.Metric, p pmetric.SummaryDataPoint) map[string]any {
	rec := point(o, m, "summary", p.Attributes(), p.StartTimestamp(), p.Timestamp(), p.Flags())
	rec["count"], rec["sum"] = int64(p.Count()), httpinput.JSONFloat(p.Sum())
	quantiles := make([]any, 0, p.QuantileValues().Len())
	for _, q := range p.QuantileValues().All() {
		quantiles = append(quantiles, map[string]any{"quantile": httpinput.JSONFloat(q.Quantile()), "value": httpinput.JSONFloat(q.Value())})
	}
	rec["quantiles"] = quantiles
	return rec
}

func setSumMinMax(rec map[string]any, hasSum bool, sum float64, hasMin bool, lo float64, hasMax bool, hi float64) {
	for _, f := range []struct {
		key string
		has bool
		v   float64
	}{{"sum", hasSum, sum}, {"min", hasMin, lo}, {"max", hasMax, hi}} {
		if f.has {
			rec[f.key] = httpinput.JSONFloat(f.v)
		}
	}
}

func buckets(b pmetric.ExponentialHistogramDataPointBuckets) map[string]any {
	return map[string]any{"offset": int64(b.Offset()), "bucket_counts": counts(b.BucketCounts().AsRaw())}
}

// setExemplars sets the point's exemplars, if it has any.
func setExemplars(rec map[string]any, es pmetric.ExemplarSlice) {
	if es.Len() == 0 {
		return
	}
	out := make([]any, 0, es.Len())
	for _, e := range es.All() {
		ex := map[string]any{"value": number(e.ValueType() == pmetric.ExemplarValueTypeInt, e.IntValue(), e.DoubleValue()), "attributes": attributes(e.FilteredAttributes())}
		setTime(ex, "ts", e.Timestamp())
		setTraceContext(ex, e.TraceID(), e.SpanID())
		out = append(out, ex)
	}
	rec["exemplars"] = out
}

func number(isInt bool, i int64, f float64) any {
	if isInt {
		return i
	}
	return httpinput.JSONFloat(f)
}

func temporality(t pmetric.AggregationTemporality) string {
	switch t {
	case pmetric.AggregationTemporalityCumulative:
		return "cumulative"
	case pmetric.AggregationTemporalityDelta:
		return "delta"
	}
	return "unspecified"
}

func floats(fs []float64) []any {
	out := make([]any, len(fs))
	for i, f := range fs {
		out[i] = httpinput.JSONFloat(f)
	}
	return out
}

func counts(ns []uint64) []any {
	out := make([]any, len(ns))
	for i, n := range ns {
		out[i] = int64(n)
	}
	return out
}
