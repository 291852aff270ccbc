package runtime_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/enginetest"
	"github.com/eventops/eventops-engine/engine/runtime"
	"github.com/eventops/eventops-engine/engine/runtime/runtimetest"
)

// examples/otel.yaml with the real clients, each configured by nothing but its endpoint: the
// OpenTelemetry SDK's log exporter sends payment timeouts and the alert on their rate fires
// (/alerts/firing); its gRPC metric exporter sends a gauge, and Prometheus remote-writes its
// own "up", both queryable through /metrics.
func TestOtelExampleWithTheRealClients(t *testing.T) {
	promBin := prometheusBinary(t)
	file, err := filepath.Abs("../../examples/otel.yaml")
	must(t, err)
	src, err := os.ReadFile(file)
	must(t, err)
	text := string(src)
	for _, old := range []string{"listen: 127.0.0.1:9092", `listen: "127.0.0.1:4318"`, `listen: "127.0.0.1:4317"`, `listen: "127.0.0.1:9201"`, `listen: "127.0.0.1:8088"`} {
		if !strings.Contains(text, old) {
			t.Fatalf("otel.yaml no longer contains %q; update the test", old)
		}
		text = strings.Replace(text, old, `listen: "127.0.0.1:0"`, 1)
	}
	t.Chdir(t.TempDir()) // data/ is relative to the working directory, as for a user
	cfg, err := config.LoadBytes(file, []byte(text), components.Registry(), nil)
	must(t, err)
	running, stop := runtimetest.Start(t, cfg, components, runtime.RunOptions{})
	defer stop()
	api := "http://" + running.API.Addr()
	res := resource.NewSchemaless(attribute.String("service.name", "checkout"), attribute.String("host.name", "web-1"), attribute.String("tenant.id", "acme"))

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+running.ReceiverAddr("otel-metrics", config.OTLPHTTP))
	logs, err := otlploghttp.New(t.Context())
	must(t, err)
	// Six timeouts in one minute, then one more 75 s after the minute's start: its time moves
	// the window's watermark past the minute's end (lateness 10 s), which closes the minute.
	minute := time.Now().UTC().Truncate(time.Minute).Add(-3 * time.Minute)
	sendLogs(t, logs, res, minute, 0, 10, 20, 30, 40, 50, 75)

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+running.ReceiverAddr("otel-metrics", config.OTLPGRPC))
	metrics, err := otlpmetricgrpc.New(t.Context())
	must(t, err)
	sendMetric(t, metrics, res, "system.cpu.utilization", 1)

	promAddr := enginetest.FreeAddr(t)
	promLogs := startPrometheus(t, promBin, promAddr, fmt.Sprintf("global: {scrape_interval: 1s}\nscrape_configs: [{job_name: self, static_configs: [{targets: [%q]}]}]\nremote_write: [{url: \"http://%s/api/v1/write\", queue_config: {batch_send_deadline: 1s}}]\n",
		promAddr, running.ReceiverAddr("prom", "prometheus_remote_write")))

	get := func(path string) []map[string]any { return getRows(api + path) }
	eventually(t, 30*time.Second, "the payment_timeouts alert in /alerts/firing", func() bool {
		for _, a := range get("/alerts/firing") {
			if a["rule"] == "payment_timeouts" && a["source_id"] == "checkout" && a["value"] == 6.0 {
				return true
			}
		}
		return false
	})
	eventually(t, 30*time.Second, "the OTLP gauge in /metrics", func() bool {
		rows := get("/metrics?tenant=acme&host=web-1&metric=system.cpu.utilization")
		return len(rows) == 1 && rows[0]["value"] == 1.0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for len(get("/metrics?tenant=default&host="+promAddr+"&metric=up")) == 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("Prometheus's up{instance=%q} never reached /metrics; Prometheus said:\n%s", promAddr, promLogs.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// sendLogs sends one ERROR "payment gateway timed out" log per offset (seconds after start),
// stamped with that time, and fails t if the export fails.
func sendLogs(t *testing.T, exp sdklog.Exporter, res *resource.Resource, start time.Time, offsets ...int) {
	t.Helper()
	provider := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewSimpleProcessor(exp)), sdklog.WithResource(res))
	for _, s := range offsets {
		var rec otellog.Record
		rec.SetTimestamp(start.Add(time.Duration(s) * time.Second))
		rec.SetBody(attribute.StringValue("payment gateway timed out"))
		rec.SetSeverity(otellog.SeverityError)
		rec.SetSeverityText("ERROR")
		provider.Logger("checkout").Emit(t.Context(), rec)
	}
	must(t, provider.Shutdown(context.Background()))
}
