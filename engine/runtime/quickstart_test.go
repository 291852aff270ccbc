package runtime_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/runtime"
	"github.com/eventops/eventops-engine/engine/runtime/runtimetest"
)

// The quickstart needs nothing but the binary: with its embedded broker and the local store
// it takes the seed's event, streams its alert, answers /metrics/cpu and /alerts/firing at
// once (before any file is written), leaves the files where the seed says, and after a
// restart still answers from the files, with no row twice, and resolves the alert.
func TestQuickstartRunsOnTheLocalStore(t *testing.T) {
	file, text := quickstart(t, nil)
	t.Chdir(t.TempDir()) // data/ is relative to the working directory, as for a user

	f := startPipeline(t, file, []byte(text), nil)
	resp := f.subscribe("/alerts/stream")
	f.produce("ingest.raw.agent", seedEvent)
	var alert map[string]any
	if err := json.Unmarshal([]byte(readSSEData(t, resp.Body)), &alert); err != nil {
		t.Fatal(err)
	}
	if alert["state"] != "firing" || alert["severity"] != "critical" || alert["rule"] != "cpu_load" {
		t.Fatalf("alert on the stream: %v, want cpu_load firing critical", alert)
	}

	get := func(f *flow, path string) []map[string]any {
		t.Helper()
		r, err := http.Get(f.apiURL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var rows []map[string]any
		if r.StatusCode != 200 {
			t.Fatalf("GET %s: status %d", path, r.StatusCode)
		}
		if err := json.NewDecoder(r.Body).Decode(&rows); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return rows
	}
	var rows []map[string]any
	eventually(t, 10*time.Second, "the reading visible through /metrics/cpu", func() bool {
		rows = get(f, "/metrics/cpu?tenant=acme&host=host-a")
		return len(rows) == 1
	})
	tags, _ := rows[0]["tags"].(map[string]any)
	if rows[0]["value"] != 92.0 || rows[0]["ts"] != "2025-10-16T09:00:00Z" || tags["env"] != "prod" || tags["owner"] != "team-platform" {
		t.Fatalf("/metrics/cpu row lacks the value, time, agent or CMDB tags: %v", rows[0])
	}
	eventually(t, 10*time.Second, "the alert in /alerts/firing", func() bool {
		rows = get(f, "/alerts/firing")
		return len(rows) == 1 && rows[0]["severity"] == "critical"
	})
	if files, _ := filepath.Glob("data/parquet/*/*/*/*.parquet"); len(files) != 0 {
		t.Fatalf("files %v before flush_age: the rows above came from memory, this test wants to see both", files)
	}
	f.stop()

	for _, pattern := range []string{
		"data/parquet/tenant=acme/metric=cpu_load/date=2025-10-16/part-*.parquet",
		"data/parquet-alerts/tenant=acme/date=2025-10-16/part-*.parquet",
	} {
		if files, _ := filepath.Glob(pattern); len(files) != 1 {
			t.Errorf("after a stop, files matching %s: %v, want 1", pattern, files)
		}
	}

	f = startPipeline(t, file, []byte(text), nil)
	if rows := get(f, "/metrics/cpu?tenant=acme&host=host-a"); len(rows) != 1 {
		t.Fatalf("after a restart /metrics/cpu has %d rows, want the 1 in the files: %v", len(rows), rows)
	}
	f.produce("ingest.raw.agent", strings.Replace(strings.Replace(seedEvent, `"value":92`, `"value":50`, 1), "09:00:00", "09:01:00", 1))
	eventually(t, 10*time.Second, "the alert resolved after the restart", func() bool {
		return len(get(f, "/alerts/firing")) == 0
	})
	// The alert and the reading are stored by different streams: wait for the reading too.
	eventually(t, 10*time.Second, "the new reading in /metrics/cpu after the restart", func() bool {
		rows = get(f, "/metrics/cpu?tenant=acme&host=host-a")
		return len(rows) == 2
	})
	if rows[0]["value"] != 50.0 {
		t.Fatalf("/metrics/cpu after the restart: %v, want the new reading then the first", rows)
	}
	if rows := get(f, "/alerts?tenant=acme"); len(rows) != 2 || rows[0]["state"] != "resolved" || rows[1]["state"] != "firing" {
		t.Fatalf("/alerts after the restart: %v, want resolved then firing, each once", rows)
	}
}

// The seed's envelope as Avro is one setting away: with normalize writing signals.metric.v1
// in the Confluent wire format (envelope.v1.avsc, which the quickstart registers) and its
// readers reading it so, the seed's event still fires its alert and reaches /metrics/cpu with
// its CMDB tags, and the topic holds Avro of the registered envelope.
func TestQuickstartWithTheEnvelopeAsAvro(t *testing.T) {
	file, text := quickstart(t, map[string]string{
		"output: {topic: signals.metric.v1, key: tenant_id, schema: envelope}": "output: {topic: signals.metric.v1, key: tenant_id, schema: envelope, format: confluent}",
		"input: {topic: signals.metric.v1}":                                    "input: {topic: signals.metric.v1, format: confluent}",
		"{from: signals.metric.v1, parquet:":                                   "{from: signals.metric.v1, format: confluent, parquet:",
	})
	t.Chdir(t.TempDir())
	f := startPipeline(t, file, []byte(text), nil)
	defer f.stop()
	f.produce("ingest.raw.agent", seedEvent)
	alert := f.consume("ops.alert.v1", 1)[0]
	if !strings.Contains(string(alert.Value), `"state":"firing"`) {
		t.Fatalf("alert %s, want firing", alert.Value)
	}
	raw := f.consume("signals.metric.v1", 1)[0].Value
	if len(raw) < 5 || raw[0] != 0 {
		t.Fatalf("signals.metric.v1 holds %q, not the Confluent wire format", raw)
	}
	eventually(t, 10*time.Second, "the reading visible through /metrics/cpu", func() bool {
		r, err := http.Get(f.apiURL + "/metrics/cpu?tenant=acme&host=host-a")
		if err != nil {
			return false
		}
		defer r.Body.Close()
		var rows []map[string]any
		_ = json.NewDecoder(r.Body).Decode(&rows)
		return len(rows) == 1 && rows[0]["value"] == 92.0 && rows[0]["tags"].(map[string]any)["owner"] == "team-platform"
	})
}

// An agent of another ecosystem (kafkajs with @kafkajs/confluent-schema-registry, its URL the
// only setting) registers its Avro schema with the quickstart's registry and produces the
// seed's reading as Avro; with ingest.raw.agent read as format: confluent, the reading is
// queryable through /metrics/cpu and its alert fires in /alerts/firing.
func TestQuickstartTakesAvroFromKafkaJS(t *testing.T) {
	dir := kafkajsDir(t)
	file, text := quickstart(t, map[string]string{
		"input: {topic: ingest.raw.agent, schema: raw-agent}": "input: {topic: ingest.raw.agent, schema: raw-agent, format: confluent}",
	})
	t.Chdir(t.TempDir())
	cfg, err := config.LoadBytes(file, []byte(text), components.Registry(), nil)
	must(t, err)
	running, stop := runtimetest.Start(t, cfg, components, runtime.RunOptions{})
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "agent.js", running.Broker.Addrs()[0], "http://"+running.RegistryAddr(), "ingest.raw.agent", "acme", "host-a", "2025-10-16T09:00:00Z", "92")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kafkajs agent: %v\n%s", err, out)
	}
	api := "http://" + running.API.Addr()
	eventually(t, 10*time.Second, "the reading in /metrics/cpu and its alert in /alerts/firing", func() bool {
		rows, alerts := getRows(api+"/metrics/cpu?tenant=acme&host=host-a"), getRows(api+"/alerts/firing")
		return len(rows) == 1 && rows[0]["value"] == 92.0 && len(alerts) == 1 && alerts[0]["severity"] == "critical"
	})
}

func getRows(url string) []map[string]any { return getRowsWith(url, "") }

// quickstart is examples/quickstart.yaml (its path, and its text) with its listeners on ports
// of their own and the given replacements made; each must apply.
func quickstart(t *testing.T, replace map[string]string) (string, string) {
	t.Helper()
	all := map[string]string{"listen: 127.0.0.1:9092": "listen: 127.0.0.1:0", `listen: "127.0.0.1:8088"`: `listen: "127.0.0.1:0"`, "listen: 127.0.0.1:8081": "listen: 127.0.0.1:0"}
	maps.Copy(all, replace)
	return example(t, "quickstart.yaml", all)
}
