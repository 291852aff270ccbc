package runtime_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/postgres/pgtest"
	"github.com/eventops/eventops-engine/engine/runtime"
	"github.com/eventops/eventops-engine/engine/runtime/runtimetest"
)

const seedEvent = `{"tenant_id":"acme","host":"host-a","metric":"cpu_load","value":92,"ts_event":"2025-10-16T09:00:00Z","unit":"percent","tags":{"env":"prod"}}`

// flow is a running test pipeline.
type flow struct {
	t       *testing.T
	dsn     string
	brokers []string
	apiURL  string
	stop    func()
}

// startFlow runs testdata/flow.yaml in-process on random ports with its own PostgreSQL schema
// and broker data directory, and waits until it is up.
func startFlow(t *testing.T, dataDir, dsn string) *flow {
	t.Helper()
	data, err := os.ReadFile("testdata/flow.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f := startPipeline(t, "testdata/flow.yaml", data, map[string]string{"DATA_DIR": dataDir, "PG_DSN": dsn})
	f.dsn = dsn
	return f
}

// startPipeline runs the pipeline file (its text given, so a test can change its ports) and
// waits until it is up; the pipeline stops at the end of the test or at f.stop.
func startPipeline(t *testing.T, file string, data []byte, env map[string]string) *flow {
	t.Helper()
	cfg, err := config.LoadBytes(file, data, components.Registry(), func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	if err != nil {
		t.Fatalf("loading pipeline: %v", err)
	}
	running, stop := runtimetest.Start(t, cfg, components, runtime.RunOptions{})
	f := &flow{t: t, brokers: running.Broker.Addrs(), apiURL: "http://" + running.API.Addr()}
	f.stop = func() {
		if err := stop(); err != nil {
			t.Errorf("pipeline stopped with error: %v", err)
		}
	}
	return f
}

func (f *flow) produce(topic string, values ...string) {
	f.t.Helper()
	f.produceKeyed(topic, "", values...)
}

// produceKeyed produces values with one key, so they land in one partition.
func (f *flow) produceKeyed(topic, key string, values ...string) {
	f.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.brokers...))
	if err != nil {
		f.t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Value: []byte(v)}
		if key != "" {
			recs[i].Key = []byte(key)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		f.t.Fatalf("producing to %s: %v", topic, err)
	}
}

// consume reads n records of topic from the beginning.
func (f *flow) consume(topic string, n int) []*kgo.Record {
	f.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted())) // as a stream reads it
	if err != nil {
		f.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			f.t.Fatalf("read %d of %d records from %s before the deadline", len(out), n, topic)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

func (f *flow) count(table string) int {
	f.t.Helper()
	conn, err := pgx.Connect(context.Background(), f.dsn)
	if err != nil {
		f.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "select count(*) from "+table).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// subscribe opens an SSE route; the response is closed at the end of the test.
func (f *flow) subscribe(path string) *http.Response {
	f.t.Helper()
	req, _ := http.NewRequest("GET", f.apiURL+path, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	f.t.Cleanup(cancel)
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		f.t.Fatalf("%s: content type %q, want text/event-stream", path, ct)
	}
	return resp
}

// eventually polls cond until it is true or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSeedQuickstartEndToEnd(t *testing.T) {
	dsn := pgtest.DSN(t)
	f := startFlow(t, t.TempDir(), dsn)

	// Subscribe to live alerts before the event is sent: the stream shows events from now on.
	resp := f.subscribe("/alerts/stream")

	f.produce("ingest.raw.agent", seedEvent)

	alert := readSSEData(t, resp.Body)
	var a map[string]any
	if err := json.Unmarshal([]byte(alert), &a); err != nil {
		t.Fatalf("alert is not JSON: %q", alert)
	}
	if a["severity"] != "critical" || a["rule"] != "cpu_load_critical" || a["state"] != "firing" {
		t.Fatalf("unexpected alert %v", a)
	}

	var rows []map[string]any
	eventually(t, 10*time.Second, "metric row visible through the API", func() bool {
		r, err := http.Get(f.apiURL + "/metrics/cpu?tenant=acme&host=host-a")
		if err != nil {
			return false
		}
		defer r.Body.Close()
		rows = nil
		_ = json.NewDecoder(r.Body).Decode(&rows)
		return r.StatusCode == 200 && len(rows) == 1
	})
	row := rows[0]
	tags, _ := row["tags"].(map[string]any)
	if row["value"] != 92.0 || tags["env"] != "prod" || tags["owner"] != "team-platform" || tags["site"] != "fra1" {
		t.Fatalf("metric row lacks the value, the agent tags or the CMDB tags: %v", row)
	}
	eventually(t, 10*time.Second, "one row in alerts", func() bool { return f.count("alerts") == 1 })
	if n := f.count("metrics"); n != 1 {
		t.Fatalf("metrics has %d rows, want 1", n)
	}

	// A missing required parameter is a clear 400.
	r, err := http.Get(f.apiURL + "/metrics/cpu?tenant=acme")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 400 || !strings.Contains(string(body), "host") {
		t.Fatalf("missing host: status %d body %s", r.StatusCode, body)
	}
}

func TestBadInputGoesToDeadLetterWithReasonAndStreamContinues(t *testing.T) {
	dsn := pgtest.DSN(t)
	f := startFlow(t, t.TempDir(), dsn)

	bad := []string{
		`this is not json`,
		`{"tenant_id":"acme","metric":"cpu_load","value":50}`,                     // no host: schema
		`{"tenant_id":"acme","host":"host-a","metric":"cpu_load","value":"high"}`, // value is a string
	}
	good := `{"tenant_id":"acme","host":"host-b","metric":"cpu_load","value":10,"ts_event":"2025-10-16T09:00:00Z"}`
	f.produce("ingest.raw.agent", append(bad, good)...)

	dead := f.consume("ops.deadletter.v1", len(bad))
	reasons := map[string]string{}
	for _, r := range dead {
		h := headers(r)
		if h["eventops.stream"] != "normalize" || h["eventops.source.topic"] != "ingest.raw.agent" || h["eventops.source.offset"] == "" {
			t.Errorf("dead letter lacks provenance headers: %v", h)
		}
		reasons[string(r.Value)] = h["eventops.stage"] + ": " + h["eventops.reason"]
	}
	for _, b := range bad {
		if _, ok := reasons[b]; !ok {
			t.Errorf("record %q did not reach the dead-letter topic with its original bytes", b)
		}
	}
	if r := reasons[bad[0]]; !strings.Contains(r, "decode") || !strings.Contains(r, "JSON") {
		t.Errorf("garbage line reason %q does not say it is malformed JSON", r)
	}
	if r := reasons[bad[1]]; !strings.Contains(r, "schema") || !strings.Contains(r, "host") {
		t.Errorf("schema violation reason %q does not name the missing field", r)
	}
	if r := reasons[bad[2]]; !strings.Contains(r, "/value") {
		t.Errorf("string value reason %q does not point at /value", r)
	}
	eventually(t, 10*time.Second, "the good event after the bad ones is stored", func() bool { return f.count("metrics") == 1 })
}

// A 5 MB event (it reached the input compressed) makes an output record the broker would
// refuse: it goes to the dead-letter topic, cut to fit, with its size and reason, and the
// events behind it are processed. Before, the refused write was retried forever.
func TestOversizedEventIsDeadLetteredAndStreamContinues(t *testing.T) {
	dsn := pgtest.DSN(t)
	f := startFlow(t, t.TempDir(), dsn)
	huge := `{"tenant_id":"acme","host":"` + strings.Repeat("h", 5<<20) + `","metric":"cpu_load","value":1}`
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.brokers...), kgo.ProducerBatchCompression(kgo.Lz4Compression()), kgo.ProducerBatchMaxBytes(8<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	good := `{"tenant_id":"acme","host":"host-b","metric":"cpu_load","value":10,"ts_event":"2025-10-16T09:00:00Z"}`
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "ingest.raw.agent", Key: []byte("k"), Value: []byte(huge)}, &kgo.Record{Topic: "ingest.raw.agent", Key: []byte("k"), Value: []byte(good)}).FirstErr(); err != nil {
		t.Fatalf("producing the 5 MB event: %v", err)
	}
	dead := f.consume("ops.deadletter.v1", 1)
	h := headers(dead[0])
	if h["eventops.stage"] != "output" || !strings.Contains(h["eventops.reason"], "max_record_bytes") || h["eventops.original_bytes"] != fmt.Sprint(len(huge)) {
		t.Errorf("dead letter headers %v: want stage output, the size limit in the reason, and the original size", h)
	}
	if len(dead[0].Value) > 1_000_000 || !strings.HasPrefix(huge, string(dead[0].Value)) {
		t.Errorf("dead letter value of %d bytes: want the start of the event, cut to fit", len(dead[0].Value))
	}
	eventually(t, 20*time.Second, "the event after the oversized one is stored", func() bool { return f.count("metrics") == 1 })
}

func headers(r *kgo.Record) map[string]string {
	out := map[string]string{}
	for _, h := range r.Headers {
		out[h.Key] = string(h.Value)
	}
	return out
}

// readSSEData returns the data of the first event on an SSE body, skipping comments.
func readSSEData(t *testing.T, body io.Reader) string {
	t.Helper()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("alert stream closed before an event arrived")
			}
			if d, ok := strings.CutPrefix(l, "data:"); ok {
				return strings.TrimSpace(d)
			}
		case <-timeout:
			t.Fatal(fmt.Sprintf("no alert on the stream within 20s"))
		}
	}
}

// A burst large enough for the parallel paths (decode split across cores, PostgreSQL writes
// over several connections) arrives in full, once, with its alerts.
func TestBurstArrivesInFullAndOnce(t *testing.T) {
	dsn := pgtest.DSN(t)
	f := startFlow(t, t.TempDir(), dsn)
	const n = 5000
	events := make([]string, n)
	for i := range events {
		events[i] = fmt.Sprintf(`{"tenant_id":"acme","host":"host-%d","metric":"cpu_load","value":%d,"ts_event":"2025-10-16T09:%02d:%02dZ"}`,
			i%20, 50+(i%50), (i/60)%60, i%60)
	}
	f.produce("ingest.raw.agent", events...)
	eventually(t, 60*time.Second, "all events stored", func() bool { return f.count("metrics") >= n })
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rows, distinct int
	if err := conn.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT event_id) FROM metrics").Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != n || distinct != n {
		t.Fatalf("%d rows, %d distinct event ids; want %d", rows, distinct, n)
	}
	// Values 90..99 make each host fire; every firing series gets exactly one firing alert
	// before its next resolve, so alerts exist and none is a duplicate.
	eventually(t, 30*time.Second, "alerts stored", func() bool { return f.count("alerts") > 0 })
	var alerts, dupes int
	conn.QueryRow(context.Background(), "SELECT count(*), count(*) - count(DISTINCT event_id) FROM alerts").Scan(&alerts, &dupes)
	if dupes != 0 {
		t.Fatalf("%d alert rows with %d duplicates", alerts, dupes)
	}
}

// A fresh broker (new data directory) restarts offsets at 0 against a database that already
// holds rows: the new events must be stored, not mistaken for redeliveries of the old ones.
func TestFreshBrokerDoesNotSwallowNewEvents(t *testing.T) {
	dsn := pgtest.DSN(t)
	first := startFlow(t, t.TempDir(), dsn)
	// Same key, so both brokers put the event at the same partition and offset (0).
	first.produceKeyed("ingest.raw.agent", "host-a", `{"tenant_id":"acme","host":"host-a","metric":"cpu_load","value":10}`)
	eventually(t, 20*time.Second, "first event stored", func() bool { return first.count("metrics") == 1 })
	first.stop()

	second := startFlow(t, t.TempDir(), dsn)
	second.produceKeyed("ingest.raw.agent", "host-a", `{"tenant_id":"acme","host":"host-a","metric":"cpu_load","value":20}`)
	eventually(t, 20*time.Second, "the new broker's first event stored next to the old one", func() bool { return second.count("metrics") == 2 })
}
