package runtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/broker"
	"github.com/eventops/eventops-engine/engine/runtime"
	"github.com/eventops/eventops-engine/engine/runtime/runtimetest"
)

const replayLines = `{"host":"host-a","value":42}
{"host":"host-b","value":95}

{"host":
{"host":"host-c","value":12}
`

// filePipeline is a pipeline reading file: replay writes what it reads to readings, alerts
// runs a stateful rule over the same file; keep (reading a topic) keeps the pipeline running
// unless omitted.
func filePipeline(dir, file string, keep bool) string {
	p := fmt.Sprintf(`version: 1
broker: {embedded: {listen: 127.0.0.1:0, data_dir: %s}}
topics:
  readings: {partitions: 1}
  alerts: {partitions: 1}
  dead: {partitions: 1}
dead_letter: dead
api: {listen: "127.0.0.1:0"}
streams:
  - name: replay
    input: {file: {path: %s}, batch_size: 2}
    processors:
      - map: {id: record_id(), host: host, value: float(value)}
    output: {topic: readings}
  - name: rules
    input: {file: {path: %s}}
    processors:
      - threshold:
          series: [host]
          rules:
            - name: hot
              severities: [{severity: critical, when: 'value >= 90'}]
    output: {topic: alerts}
`, filepath.Join(dir, "broker"), file, file)
	if keep {
		p += `  - name: keep
    input: {topic: readings}
    output: {drop: {}}
`
	}
	return p
}

// A file input feeds a stream line by line, in order, each line with an id of its own that
// a replay of the same file gives again; a malformed line goes to the dead-letter topic with
// its reason and its line, and the rest goes on; a stateful processor keeps its state across
// the file's batches (in memory: the file is read from its start on every start).
func TestAFileInputFeedsItsLinesAndDeadLettersTheMalformedOne(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "replay.ndjson")
	if err := os.WriteFile(file, []byte(replayLines), 0o644); err != nil {
		t.Fatal(err)
	}
	f := startPipeline(t, filepath.Join(dir, "p.yaml"), []byte(filePipeline(dir, file, true)), nil)
	defer f.stop()

	readings := f.consume("readings", 3)
	var hosts, ids []string
	for _, r := range readings {
		var v struct{ ID, Host string }
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		hosts, ids = append(hosts, v.Host), append(ids, v.ID)
	}
	if strings.Join(hosts, ",") != "host-a,host-b,host-c" {
		t.Fatalf("readings in the order %v, want the file's", hosts)
	}
	if ids[0] == "" || ids[0] == ids[1] || ids[1] == ids[2] {
		t.Fatalf("record ids %v: want one per line", ids)
	}

	alerts := f.consume("alerts", 1)
	var alert map[string]any
	json.Unmarshal(alerts[0].Value, &alert)
	if alert["state"] != "firing" || alert["severity"] != "critical" {
		t.Fatalf("alert %v, want host-b firing critical", alert)
	}

	dead := f.consume("dead", 2) // the malformed line, once from each stream
	for _, d := range dead {
		h := map[string]string{}
		for _, x := range d.Headers {
			h[x.Key] = string(x.Value)
		}
		if string(d.Value) != `{"host":` || h[broker.HeaderSourceTopic] != "file:"+file || h[broker.HeaderSourceOffset] != "3" || !strings.Contains(h[broker.HeaderReason], "JSON") {
			t.Errorf("dead letter %q with headers %v: want the 4th line (offset 3) of %s, with a JSON reason", d.Value, h, file)
		}
	}

	// The same file read again (a second pipeline, as after a restart) gives the same ids.
	again := t.TempDir()
	g := startPipeline(t, filepath.Join(again, "p.yaml"), []byte(filePipeline(again, file, true)), nil)
	defer g.stop()
	for i, r := range g.consume("readings", 3) {
		var v struct{ ID string }
		json.Unmarshal(r.Value, &v)
		if v.ID != ids[i] {
			t.Errorf("line %d: id %s on the second read, %s on the first", i, v.ID, ids[i])
		}
	}
}

// A pipeline whose streams all read files stops by itself, without error, once every
// stream has delivered everything it read: a replay ends.
func TestAPipelineOfFileInputsStopsWhenEveryFileIsDone(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "replay.ndjson")
	if err := os.WriteFile(file, []byte(replayLines), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadBytes(filepath.Join(dir, "p.yaml"), []byte(filePipeline(dir, file, false)), components.Registry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := runtime.Build(cfg, runtime.Options{Components: components})
	if err != nil {
		t.Fatal(err)
	}
	var brokers []string // set once it runs
	ctx, cancel := context.WithTimeout(context.Background(), runtimetest.Timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- plan.Run(ctx, runtime.RunOptions{Started: func(r *runtime.Running) { brokers = r.Broker.Addrs() }})
	}()
	select {
	case err := <-done:
		if err != nil || ctx.Err() != nil {
			t.Fatalf("the pipeline stopped with %v (context: %v), want nil by itself", err, ctx.Err())
		}
	case <-time.After(runtimetest.Timeout):
		t.Fatal("the pipeline did not stop after reading its files")
	}
	if len(brokers) == 0 {
		t.Fatal("the pipeline never started")
	}
	// Everything was delivered before it stopped: the embedded broker's data directory
	// holds the three readings and both dead letters.
	keepOnly := fmt.Sprintf(`version: 1
broker: {embedded: {listen: 127.0.0.1:0, data_dir: %s}}
topics: {readings: {partitions: 1}, dead: {partitions: 1}}
dead_letter: dead
api: {listen: "127.0.0.1:0"}
streams:
  - {name: keep, input: {topic: readings}, output: {drop: {}}}
`, filepath.Join(dir, "broker"))
	f := startPipeline(t, filepath.Join(dir, "keep.yaml"), []byte(keepOnly), nil)
	defer f.stop()
	if n := len(f.consume("readings", 3)); n != 3 {
		t.Fatalf("%d readings", n)
	}
	if n := len(f.consume("dead", 2)); n != 2 {
		t.Fatalf("%d dead letters", n)
	}
}

// A stream on a file writes its topic without a transaction; a file of several megabytes
// fills produce requests to the broker's limit, and every line still arrives.
func TestAFileOfManyMegabytesReachesItsTopic(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "big.ndjson")
	var b strings.Builder
	const lines = 12000
	for i := range lines {
		fmt.Fprintf(&b, `{"host":"host-%05d","value":%d,"pad":"%s"}`+"\n", i, i, strings.Repeat("x", 400))
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	p := fmt.Sprintf(`version: 1
broker: {embedded: {listen: 127.0.0.1:0, data_dir: %s}}
topics: {readings: {partitions: 1}, dead: {partitions: 1}}
dead_letter: dead
api: {listen: "127.0.0.1:0"}
streams:
  - {name: replay, input: {file: {path: %s}}, output: {topic: readings}}
  - {name: keep, input: {topic: readings}, output: {drop: {}}}
`, filepath.Join(dir, "broker"), file)
	f := startPipeline(t, filepath.Join(dir, "p.yaml"), []byte(p), nil)
	defer f.stop()
	if n := len(f.consume("readings", lines)); n != lines {
		t.Fatalf("%d of %d lines in the topic", n, lines)
	}
}
