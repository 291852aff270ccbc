package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/enginetest"
	"github.com/eventops/eventops-engine/engine/runtime"
	"github.com/eventops/eventops-engine/engine/runtime/runtimetest"
	"github.com/eventops/eventops-engine/processors/notify"
	"github.com/eventops/eventops-engine/processors/threshold"
)

const amtoolPipeline = `
version: 1
broker:
  embedded: {listen: "127.0.0.1:0", data_dir: "%s", cleaner_interval: 1h}
topics:
  signals.metric.v1:   {partitions: 1, ingest: true}
  ops.alert.v1:        {partitions: 1}
  ops.notification.v1: {partitions: 1}
  ops.deadletter.v1:   {partitions: 1}
dead_letter: ops.deadletter.v1
streams:
  - name: rules
    input: {topic: signals.metric.v1}
    processors:
      - threshold:
          rules:
            - {name: cpu_high, when: 'metric == "cpu_load" && value >= 90', severity: critical}
    output: {topic: ops.alert.v1}
  - name: notify
    input: {topic: ops.alert.v1}
    processors:
      - notify:
          route: {receiver: ops, group_wait: 1h}
          receivers: [{name: ops}]
    output: {topic: ops.notification.v1}
api:
  listen: "%s"
`

// amtool, Alertmanager's own client, works against the engine unchanged: it lists the alerts
// the notify processor holds, adds a silence that suppresses one, lists the silence, and
// expires it. A silence is state: it is still there after a restart of the engine.
func TestAmtoolManagesTheEnginesSilences(t *testing.T) {
	amtool, err := exec.LookPath("amtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("amtool is not installed (CI installs Debian's prometheus-alertmanager: .ci/run)")
		}
		t.Skip("amtool is not installed: apt-get install prometheus-alertmanager to run this test")
	}
	dataDir, addr := t.TempDir(), enginetest.FreeAddr(t)
	url := "http://" + addr
	start := func() (brokers []string, stop func() error) {
		cfg, err := config.LoadBytes("amtool.yaml", []byte(fmt.Sprintf(amtoolPipeline, dataDir, addr)),
			engine.Components{Processors: []engine.ProcessorFactory{threshold.Factory, notify.Factory}}.Registry(), nil)
		if err != nil {
			t.Fatal(err)
		}
		running, stop := runtimetest.Start(t, cfg, engine.Components{Processors: []engine.ProcessorFactory{threshold.Factory, notify.Factory}}, runtime.RunOptions{})
		return running.Broker.Addrs(), stop
	}
	// amtool's output; its stderr only says that the version differs from Alertmanager's,
	// or why it failed.
	try := func(args ...string) (string, error) {
		cmd := exec.Command(amtool, append(args, "--alertmanager.url="+url)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("amtool %s: %w\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
		}
		return string(out), nil
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := try(args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	brokers, stop := start()
	produce(t, brokers, `{"metric":"cpu_load","value":95,"tenant_id":"acme","source":{"source_id":"web-01"},"ts_event":"`+time.Now().UTC().Format(time.RFC3339)+`"}`)
	waitFor(t, "the alert held by the notify processor", func() bool { return alertState(url, "cpu_high") == "active" })
	if out := run("alert", "query"); !strings.Contains(out, "cpu_high") {
		t.Errorf("amtool alert query does not list the firing alert:\n%s", out)
	}

	id := strings.TrimSpace(run("silence", "add", "alertname=cpu_high", "--comment=maintenance", "--author=test", "--duration=1h"))
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
		t.Fatalf("amtool silence add printed %q, want the new silence's ID (a UUID)", id)
	}
	if out := run("silence", "query", "-q"); strings.TrimSpace(out) != id {
		t.Errorf("amtool silence query -q: %q, want the silence %s", out, id)
	}
	waitFor(t, "the alert suppressed by the silence", func() bool { return alertState(url, "cpu_high") == "suppressed" })
	// The silence is state: once the notify stream has checkpointed it, a restart keeps it.
	waitFor(t, "the silence checkpointed", func() bool { return checkpointed(t, brokers, "silence/"+id) })

	if err := stop(); err != nil {
		t.Fatalf("stopping: %v", err)
	}
	_, stop = start()
	defer stop()
	// While the notify stream restores its state the API answers 503 (amtool fails); its
	// first answer after that lists the silence, never an empty list.
	var afterRestart string
	waitFor(t, "amtool answering after the restart", func() bool {
		out, err := try("silence", "query", "-q")
		afterRestart = out
		return err == nil
	})
	if strings.TrimSpace(afterRestart) != id {
		t.Errorf("after a restart amtool silence query -q gives %q, want the silence %s", afterRestart, id)
	}
	run("silence", "expire", id)
	if out := run("silence", "query", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("an expired silence is still listed as active: %q", out)
	}
	if out := run("silence", "query", "--expired", "-q"); strings.TrimSpace(out) != id {
		t.Errorf("amtool silence query --expired -q: %q, want %s", out, id)
	}
	waitFor(t, "the alert active again", func() bool { return alertState(url, "cpu_high") == "active" })
}

func produce(t *testing.T, brokers []string, values ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("signals.metric.v1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, v := range values {
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// checkpointed says whether the notify stream's changelog holds a committed entry whose key
// ends with key.
func checkpointed(t *testing.T, brokers []string, key string) bool {
	t.Helper()
	state, err := readChangelog(t, brokers)
	if err != nil {
		return false
	}
	for k, present := range state {
		if present && strings.HasSuffix(k, key) {
			return true
		}
	}
	return false
}

// readChangelog reads the notify stream's changelog (committed records) to its end.
func readChangelog(t *testing.T, brokers []string) (map[string]bool, error) {
	topic := runtime.ChangelogTopic("eventops.notify")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	out := map[string]bool{}
	for len(left) > 0 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
			if !r.Attrs.IsControl() {
				out[string(r.Key)] = r.Value != nil
			}
		})
	}
	return out, ctx.Err()
}

// alertState is the state Alertmanager's API gives the first alert of rule, "" if none.
func alertState(url, rule string) string {
	resp, err := http.Get(url + "/api/v2/alerts")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var alerts []struct {
		Labels map[string]string `json:"labels"`
		Status struct {
			State string `json:"state"`
		} `json:"status"`
	}
	if json.NewDecoder(resp.Body).Decode(&alerts) != nil {
		return ""
	}
	for _, a := range alerts {
		if a.Labels["alertname"] == rule {
			return a.Status.State
		}
	}
	return ""
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 30s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// With api.auth, amtool works with a token given the Prometheus way (--http.config.file,
// authorization credentials): a read token lists alerts but cannot silence (403); no token
// is refused (401); an admin token silences.
func TestAmtoolWithTokens(t *testing.T) {
	amtool, err := exec.LookPath("amtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("amtool is not installed (CI installs Debian's prometheus-alertmanager: .ci/run)")
		}
		t.Skip("amtool is not installed: apt-get install prometheus-alertmanager to run this test")
	}
	dir, addr := t.TempDir(), enginetest.FreeAddr(t)
	pipeline := fmt.Sprintf(amtoolPipeline, filepath.Join(dir, "broker"), addr) + `  auth:
    tokens:
      - {name: ops, token: "ops-0123456789abcdef", scopes: [admin]}
      - {name: grafana, token: "grafana-0123456789abcdef"}
`
	components := engine.Components{Processors: []engine.ProcessorFactory{threshold.Factory, notify.Factory}}
	cfg, err := config.LoadBytes("amtool.yaml", []byte(pipeline), components.Registry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	running, _ := runtimetest.Start(t, cfg, components, runtime.RunOptions{})
	httpConfig := func(token string) string {
		file := filepath.Join(dir, "http-"+token[:3]+".yml")
		if err := os.WriteFile(file, []byte("authorization:\n  credentials: "+token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return "--http.config.file=" + file
	}
	amtoolWith := func(args ...string) (string, error) {
		out, err := exec.Command(amtool, append(args, "--alertmanager.url=http://"+addr)...).CombinedOutput()
		return string(out), err
	}
	produce(t, running.Broker.Addrs(), `{"metric":"cpu_load","value":95,"tenant_id":"acme","source":{"source_id":"web-01"},"ts_event":"`+time.Now().UTC().Format(time.RFC3339)+`"}`)
	reader, admin := httpConfig("grafana-0123456789abcdef"), httpConfig("ops-0123456789abcdef")
	waitFor(t, "amtool with the read token listing the alert", func() bool {
		out, err := amtoolWith("alert", "query", reader)
		return err == nil && strings.Contains(out, "cpu_high")
	})
	if out, err := amtoolWith("alert", "query"); err == nil {
		t.Errorf("amtool without a token listed the alerts:\n%s", out)
	}
	if out, err := amtoolWith("silence", "add", "alertname=cpu_high", "--comment=x", "--author=t", "--duration=1h", reader); err == nil {
		t.Errorf("amtool with a read token added a silence:\n%s", out)
	}
	out, err := amtoolWith("silence", "add", "alertname=cpu_high", "--comment=x", "--author=t", "--duration=1h", admin)
	if err != nil {
		t.Fatalf("amtool with the admin token: %v\n%s", err, out)
	}
	if list, _ := amtoolWith("silence", "query", "-q", reader); !strings.Contains(list, strings.TrimSpace(out)) {
		t.Errorf("the admin's silence %q is not listed with the read token: %q", out, list)
	}
}
