package runtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("Prometheus is not installed (CI installs Debian's prometheus: .ci/run)")
		}
		t.Skip("Prometheus is not installed: apt-get install prometheus to run this test")
	}
	cfg := loadEmbedded(t, remoteWritePipeline)
	running, stop := runtimetest.Start(t, cfg, components, runtime.RunOptions{})
	defer stop()

	dir := t.TempDir() // Prometheus's
	promAddr := enginetest.FreeAddr(t)
	promCfg := fmt.Sprintf(`global: {scrape_interval: 1s}
scrape_configs:
  - job_name: self
    static_configs: [{targets: [%q]}]
remote_write:
  - url: http://%s/api/v1/write
    queue_config: {batch_send_deadline: 1s}
`, promAddr, running.ReceiverAddr("prom", "prometheus_remote_write"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(promCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	cl, err := kgo.NewClient(kgo.SeedBrokers(running.Broker.Addrs()...), kgo.ConsumeTopics("out"),
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
			t.Fatalf("no sample of up{job=\"self\"} reached the stream in 90 s; Prometheus said:\n%s", logs.String())
		}
		var found string
		fs.EachRecord(func(r *kgo.Record) {
			var v struct {
				Metric, Job, TS string
				Value           any
			}
			if json.Unmarshal(r.Value, &v) == nil && v.Metric == "up" && v.Job == "self" && v.Value == 1.0 && v.TS != "" {
				found = string(r.Value)
			}
		})
		if found != "" {
			t.Logf("first sample: %s", found)
			return
		}
	}
}
