package runtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/engine/enginetest"
	"github.com/eventops/eventops-engine/engine/runtime"
	"github.com/eventops/eventops-engine/engine/runtime/runtimetest"
)

const remoteWritePipeline = `version: 1
broker: {embedded: {listen: 127.0.0.1:0, data_dir: %s}}
topics:
  metrics.prom: {partitions: 1, ingest: true}
  out: {partitions: 1}
  dead: {partitions: 1}
dead_letter: dead
streams:
  - name: prom
    input: {topic: metrics.prom, prometheus_remote_write: {listen: "127.0.0.1:0"}}
    processors:
      - filter: {when: 'metric == "up"'}
      - map: {metric: metric, job: labels.job, value: value, ts: ts}
    output: {topic: out}
`

// A real Prometheus (Debian's prometheus), scraping itself every second and remote-writing
// to the engine with nothing but the URL set, gets its samples through: the stream sees its
// "up" series with the job's label and value 1.
func TestRealPrometheusRemoteWritesToTheEngine(t *testing.T) {
	bin := prometheusBinary(t)
	cfg := loadEmbedded(t, remoteWritePipeline)
	running, stop := runtimetest.Start(t, cfg, components, runtime.RunOptions{})
	defer stop()
	promAddr := enginetest.FreeAddr(t)
	logs := startPrometheus(t, bin, promAddr, fmt.Sprintf(`global: {scrape_interval: 1s}
scrape_configs:
  - job_name: self
    static_configs: [{targets: [%q]}]
remote_write:
  - url: http://%s/api/v1/write
    queue_config: {batch_send_deadline: 1s}
`, promAddr, running.ReceiverAddr("prom", "prometheus_remote_write")))
	found := awaitRecord(t, running.Broker.Addrs(), logs, `up{job="self"} = 1`, func(v map[string]any) bool {
		return v["metric"] == "up" && v["job"] == "self" && v["value"] == 1.0 && v["ts"] != nil
	})
	t.Logf("first sample: %s", found)
}

const nativeHistogramPipeline = `version: 1
broker: {embedded: {listen: 127.0.0.1:0, data_dir: %s}}
topics:
  metrics.prom: {partitions: 1, ingest: true}
  out: {partitions: 1}
  dead: {partitions: 1}
dead_letter: dead
streams:
  - name: prom
    input: {topic: metrics.prom, prometheus_remote_write: {listen: "127.0.0.1:0"}}
    processors:
      - filter: {when: 'metric_type == "native_histogram"'}
      - map: {metric: metric, count: count, sum: sum, buckets: 'len(buckets)', first: 'buckets[0].upper'}
    output: {topic: out}
`

// A real Prometheus with native histograms on (--enable-feature=native-histograms,
// send_native_histograms) scrapes a client_golang native histogram and remote-writes it:
// the stream sees it as one record with its count, sum and buckets.
func TestRealPrometheusRemoteWritesNativeHistograms(t *testing.T) {
	bin := prometheusBinary(t)
	cfg := loadEmbedded(t, nativeHistogramPipeline)
	running, stop := runtimetest.Start(t, cfg, components, runtime.RunOptions{})
	defer stop()
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rpc_seconds", Help: "RPC latency.", NativeHistogramBucketFactor: 1.1})
	reg.MustRegister(h)
	for _, v := range []float64{0.1, 0.5, 2} {
		h.Observe(v)
	}
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer target.Close()
	promAddr := enginetest.FreeAddr(t)
	logs := startPrometheus(t, bin, promAddr, fmt.Sprintf(`global: {scrape_interval: 1s}
scrape_configs:
  - job_name: app
    static_configs: [{targets: [%q]}]
remote_write:
  - url: http://%s/api/v1/write
    send_native_histograms: true
    queue_config: {batch_send_deadline: 1s}
`, strings.TrimPrefix(target.URL, "http://"), running.ReceiverAddr("prom", "prometheus_remote_write")), "--enable-feature=native-histograms")
	found := awaitRecord(t, running.Broker.Addrs(), logs, "the native histogram rpc_seconds", func(v map[string]any) bool {
		return v["metric"] == "rpc_seconds" && v["count"] == 3.0 && v["sum"] == 2.6 && v["buckets"] == 3.0
	})
	t.Logf("native histogram: %s", found)
}

// prometheusBinary is Debian's prometheus: the test skips without it (fails under CI=true,
// where .ci/run installs it).
func prometheusBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("Prometheus is not installed (CI installs Debian's prometheus: .ci/run)")
		}
		t.Skip("Prometheus is not installed: apt-get install prometheus to run this test")
	}
	return bin
}

// startPrometheus runs Prometheus with config on addr until the test ends; what it logs is
// in the builder.
func startPrometheus(t *testing.T, bin, addr, config string, flags ...string) *strings.Builder {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"--config.file=" + filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path=" + filepath.Join(dir, "tsdb"),
		"--web.listen-address=" + addr, "--log.level=warn"}, flags...)...)
	logs := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return logs
}

// awaitRecord reads the engine's topic out until a record satisfies want, for up to 90 s.
func awaitRecord(t *testing.T, brokers []string, logs *strings.Builder, what string, want func(map[string]any) bool) string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("out"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no record of %s reached the stream in 90 s; Prometheus said:\n%s", what, logs.String())
		}
		var found string
		fs.EachRecord(func(r *kgo.Record) {
			var v map[string]any
			if json.Unmarshal(r.Value, &v) == nil && want(v) {
				found = string(r.Value)
			}
		})
		if found != "" {
			return found
		}
	}
}
