package otlpinput

import (
	"fmt"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/eventops/eventops-engine/engine/httpinput"
)

// hostGauges is n gauge points from n/10 hosts, as a Collector batching host agents sends.
func hostGauges(n int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	for h := range n / 10 {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "node-agent")
		rm.Resource().Attributes().PutStr("host.name", fmt.Sprintf("host-%03d", h))
		ms := rm.ScopeMetrics().AppendEmpty().Metrics()
		for i := range 10 {
			m := ms.AppendEmpty()
			m.SetName(fmt.Sprintf("system.metric.%d", i))
			p := m.SetEmptyGauge().DataPoints().AppendEmpty()
			p.SetTimestamp(pcommon.Timestamp(1_765_000_000_000_000_000 + i))
			p.SetDoubleValue(float64(i) / 10)
			p.Attributes().PutStr("state", "user")
		}
	}
	return md
}

// The decode and the mapping of an OTLP/HTTP request of 500 gauge points, per point.
func BenchmarkOTLPMetricsRequest(b *testing.B) {
	body, err := pmetricotlp.NewExportRequestFromMetrics(hostGauges(500)).MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	sig := signals[Metrics]
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		d, err := sig.decode(httpinput.Request{Body: body, ContentType: protobufType}, httpinput.Limits{})
		if err != nil || len(d.Records) != 500 {
			b.Fatal(err, len(d.Records))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*500), "ns/point")
}
