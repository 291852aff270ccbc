package runtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/runtime"
	"github.com/eventops/eventops-engine/engine/runtime/runtimetest"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

const otlpPipeline = `version: 1
broker: {embedded: {listen: 127.0.0.1:0, data_dir: %s}}
topics:
  otel: {partitions: 1, ingest: true}
  out: {partitions: 1}
  dead: {partitions: 1}
dead_letter: dead
streams:
  - name: otel
    input:
      topic: otel
      otlp: {http: {listen: "127.0.0.1:0"}, grpc: {listen: "127.0.0.1:0"}}
    processors:
      - map: {signal: signal, what: 'signal == "metric" ? metric : signal == "span" ? name : body', service: service, value: value, severity: severity, kind: kind}
    output: {topic: out}
`

// The OpenTelemetry Go SDK's own exporters, in their default configuration but for the
// endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, as an operator sets it), send metrics over HTTP and
// over gRPC, logs and traces; each export succeeds, and the stream reads what they sent.
func TestOpenTelemetrySDKExportersSendToTheEngine(t *testing.T) {
	cfg := loadEmbedded(t, otlpPipeline)
	running, stop := runtimetest.Start(t, cfg, components, runtime.RunOptions{})
	defer stop()
	ctx := t.Context()
	res := resource.NewSchemaless(attribute.String("service.name", "checkout"), attribute.String("host.name", "web-1"))
	// What the SDK cannot export it hands to the global error handler.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { t.Errorf("the SDK could not export: %v", err) }))
	defer otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {}))

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+running.ReceiverAddr("otel", "otlp.http"))
	httpMetrics, err := otlpmetrichttp.New(ctx)
	must(t, err)
	sendMetric(t, httpMetrics, res, "orders.pending", 17)
	logs, err := otlploghttp.New(ctx)
	must(t, err)
	sendLog(t, logs, res, "payment gateway timed out")
	spans, err := otlptracehttp.New(ctx)
	must(t, err)
	sendSpan(t, spans, res, "POST /pay")

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+running.ReceiverAddr("otel", "otlp.grpc"))
	grpcMetrics, err := otlpmetricgrpc.New(ctx)
	must(t, err)
	sendMetric(t, grpcMetrics, res, "queue.depth", 3)

	f := &flow{t: t, brokers: running.Broker.Addrs()}
	var got []string
	for _, r := range f.consume("out", 4) {
		var v map[string]any
		must(t, json.Unmarshal(r.Value, &v))
		if v["service"] != "checkout" {
			t.Errorf("record %s: want the resource's service.name", r.Value)
		}
		got = append(got, string(r.Value))
	}
	slices.Sort(got)
	want := []string{
		`{"kind":"client","service":"checkout","signal":"span","what":"POST /pay"}`,
		`{"service":"checkout","severity":"ERROR","signal":"log","what":"payment gateway timed out"}`,
		`{"service":"checkout","signal":"metric","value":17,"what":"orders.pending"}`,
		`{"service":"checkout","signal":"metric","value":3,"what":"queue.depth"}`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("the stream wrote\n%s\nwant\n%s", got, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sendMetric records value on gauge name and exports it, failing t if the export fails.
func sendMetric(t *testing.T, exp sdkmetric.Exporter, res *resource.Resource, name string, value int64) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(res))
	gauge, err := provider.Meter("test").Int64Gauge(name)
	must(t, err)
	gauge.Record(t.Context(), value, metric.WithAttributes(attribute.String("queue", "payments")))
	var rm metricdata.ResourceMetrics
	must(t, reader.Collect(t.Context(), &rm))
	must(t, exp.Export(t.Context(), &rm))
	must(t, exp.Shutdown(context.Background()))
}

func sendLog(t *testing.T, exp sdklog.Exporter, res *resource.Resource, body string) {
	t.Helper()
	provider := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewSimpleProcessor(exp)), sdklog.WithResource(res))
	var rec otellog.Record
	rec.SetBody(attribute.StringValue(body))
	rec.SetSeverity(otellog.SeverityError)
	rec.SetSeverityText("ERROR")
	provider.Logger("test").Emit(t.Context(), rec)
	must(t, provider.Shutdown(context.Background()))
}

func sendSpan(t *testing.T, exp sdktrace.SpanExporter, res *resource.Resource, name string) {
	t.Helper()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(res))
	_, span := provider.Tracer("test").Start(t.Context(), name, trace.WithSpanKind(trace.SpanKindClient))
	span.End()
	must(t, provider.Shutdown(context.Background()))
}

// A broker that cannot take records for a while (every produce of the receiver refused as
// NOT_ENOUGH_REPLICAS) makes the engine answer 429; the SDK's exporter, in its
// default configuration, waits and sends again, and once the broker takes records again
// everything it sent is in the topic: backpressure, not loss.
func TestAnExporterIsPushedBackWhileTheBrokerCannotStoreAndLosesNothing(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(-1))
	must(t, err)
	defer cluster.Close()
	var refusing atomic.Bool
	refusing.Store(true)
	cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		produce := req.(*kmsg.ProduceRequest)
		// The receiver's producer is the one not in a transaction (the stream's is).
		if !refusing.Load() || produce.TransactionID != nil {
			return nil, nil, false
		}
		return refuseProduce(produce), nil, true
	})
	pipeline := fmt.Sprintf(`version: 1
broker: {brokers: [%s]}
topics: {otel: {ingest: true}, out: {}, dead: {}}
dead_letter: dead
streams:
  - name: s
    input: {topic: otel, otlp: {http: {listen: "127.0.0.1:0", timeout: 1s}, grpc: {listen: "127.0.0.1:0", timeout: 1s}}}
    processors:
      - map: {metric: metric, value: value}
    output: {topic: out}
`, cluster.ListenAddrs()[0])
	cfg, err := config.LoadBytes("p.yaml", []byte(pipeline), components.Registry(), nil)
	must(t, err)
	metrics := telemetry.New()
	running, stop := runtimetest.Start(t, cfg, components, runtime.RunOptions{Metrics: metrics, Drain: time.Second})
	defer stop()
	res := resource.NewSchemaless(attribute.String("service.name", "checkout"))
	// The exporters' one change from their defaults here: an export may take 30 s in all,
	// not 10, so that a loaded machine's slower first attempt (1 s timeout, answer, 1 s
	// RetryInfo, the SDK's own backoff of about 5 s) leaves room for the retry.
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "30000")
	for i, proto := range []struct{ key, pushedBack string }{{config.OTLPHTTP, "429"}, {config.OTLPGRPC, "ResourceExhausted"}} {
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+running.ReceiverAddr("s", proto.key))
		var exp sdkmetric.Exporter
		if proto.key == config.OTLPHTTP {
			exp, err = otlpmetrichttp.New(t.Context())
		} else {
			exp, err = otlpmetricgrpc.New(t.Context())
		}
		must(t, err)
		refusing.Store(true)
		pushedBack := func() bool {
			return testutil.ToFloat64(metrics.HTTPInputRequests.WithLabelValues("s", proto.key, proto.pushedBack)) > 0
		}
		go func() { // the broker takes records again once the engine has pushed back
			waitFor(t.Context(), pushedBack)
			refusing.Store(false)
		}()
		sendMetric(t, exp, res, "orders.pending", int64(i)) // fails t if the SDK gave up
		if !pushedBack() {
			t.Fatalf("%s: the engine never answered %s: the broker's refusal was not seen", proto.key, proto.pushedBack)
		}
		rec := (&flow{t: t, brokers: []string{cluster.ListenAddrs()[0]}}).consume("out", i+1)[i]
		if want := fmt.Sprintf(`{"metric":"orders.pending","value":%d}`, i); string(rec.Value) != want {
			t.Errorf("%s: the stream read %s, want %s", proto.key, rec.Value, want)
		}
	}
}

// waitFor returns once cond holds, or ctx ends.
func waitFor(ctx context.Context, cond func() bool) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// refuseProduce answers every partition of req with NOT_ENOUGH_REPLICAS, a refusal a
// producer retries.
func refuseProduce(req *kmsg.ProduceRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range req.Topics {
		topic := kmsg.NewProduceResponseTopic()
		topic.Topic, topic.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			p := kmsg.NewProduceResponseTopicPartition()
			p.Partition = rp.Partition
			p.ErrorCode = kerr.NotEnoughReplicas.Code
			topic.Partitions = append(topic.Partitions, p)
		}
		resp.Topics = append(resp.Topics, topic)
	}
	return resp
}
