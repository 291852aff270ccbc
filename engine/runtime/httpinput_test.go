package runtime_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/runtime"
	"github.com/eventops/eventops-engine/engine/runtime/runtimetest"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

const httpPipeline = `version: 1
broker: {embedded: {listen: 127.0.0.1:0, data_dir: %s}}
topics:
  raw: {partitions: 1, ingest: true}
  out: {partitions: 1}
  dead: {partitions: 1}
dead_letter: dead
streams:
  - name: normalize
    input: {topic: raw, http: {listen: "127.0.0.1:0", path: /ingest}}
    processors:
      - map: {host: host, value: float(value)}
    output: {topic: out}
`

// Records POSTed to an http input are in its topic when the answer is 200, and the stream
// processes them like any other; a body that is not records is refused whole, saying where.
func TestHTTPInputStoresBeforeItAnswersAndTheStreamReadsThem(t *testing.T) {
	cfg := loadEmbedded(t, httpPipeline)
	metrics := telemetry.New()
	running, stop := runtimetest.Start(t, cfg, components, runtime.RunOptions{Metrics: metrics})
	defer stop()
	url := "http://" + running.ReceiverAddr("normalize", "http") + "/ingest"

	resp, err := http.Post(url, "application/x-ndjson", strings.NewReader("{\"host\":\"a\",\"value\":1}\n{\"host\":\"b\",\"value\":2}\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("answer %d, want 200", resp.StatusCode)
	}
	// Stored before the answer: the topic's end is already past both records.
	adm := kadm.NewClient(mustClient(t, running.Broker.Addrs()))
	ends, err := adm.ListEndOffsets(context.Background(), "raw")
	if err != nil {
		t.Fatal(err)
	}
	if end, _ := ends.Lookup("raw", 0); end.Offset != 2 {
		t.Fatalf("topic raw ends at %d right after the 200, want 2", end.Offset)
	}

	resp, err = http.Post(url, "application/json", strings.NewReader(`[{"host":"c","value":3}, {"host":`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("a malformed body: answer %d, want 400", resp.StatusCode)
	}

	f := &flow{t: t, brokers: running.Broker.Addrs()}
	var got []string
	for _, r := range f.consume("out", 2) {
		got = append(got, string(r.Value))
	}
	if strings.Join(got, " ") != `{"host":"a","value":1} {"host":"b","value":2}` {
		t.Errorf("the stream wrote %q", got)
	}
	if n := testutil.ToFloat64(metrics.HTTPInputRecords.WithLabelValues("normalize", "http")); n != 2 {
		t.Errorf("eventops_http_input_records_total = %v, want 2", n)
	}
	if n := testutil.ToFloat64(metrics.HTTPInputRequests.WithLabelValues("normalize", "http", "400")); n != 1 {
		t.Errorf("eventops_http_input_requests_total{code=400} = %v, want 1", n)
	}
}

func mustClient(t *testing.T, brokers []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RequestTimeoutOverhead(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// With the broker gone, a request is answered 429 with Retry-After once its timeout has
// passed — never 200 — so its client keeps the records and sends them again.
func TestHTTPInputPushesBackWhenTheBrokerIsGone(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	pipeline := fmt.Sprintf(`version: 1
broker: {brokers: [%s]}
topics: {raw: {ingest: true}, out: {}, dead: {}}
dead_letter: dead
streams:
  - name: s
    input: {topic: raw, http: {listen: "127.0.0.1:0", timeout: 1s}}
    output: {topic: out}
`, cluster.ListenAddrs()[0])
	cfg, err := config.LoadBytes("p.yaml", []byte(pipeline), components.Registry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	running, stop := runtimetest.Start(t, cfg, components, runtime.RunOptions{Drain: time.Second})
	defer stop()
	url := "http://" + running.ReceiverAddr("s", "http") + "/"
	if code, _ := postRecords(t, url, `{"a":1}`); code != 200 {
		t.Fatalf("with the broker up: %d, want 200", code)
	}
	// The stream's transaction for it is committed before the broker goes: one it would
	// still be ending would hold the shutdown for its timeout (docs/reliability.md).
	(&flow{t: t, brokers: []string{cluster.ListenAddrs()[0]}}).consume("out", 1)
	cluster.Close()
	code, retryAfter := postRecords(t, url, `{"a":2}`)
	if code != http.StatusTooManyRequests || retryAfter == "" {
		t.Fatalf("with the broker gone: %d (Retry-After %q), want 429 with Retry-After", code, retryAfter)
	}
}

func postRecords(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}
