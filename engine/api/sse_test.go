package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

const alertTopic = "ops.alert.v1"

// waitFor bounds every wait in these tests; nothing here should take more than a second.
const waitFor = 15 * time.Second

type sseEvent struct {
	id, event, data string
}

// sseStream reads an SSE response line by line in the background, so that tests can wait
// for the next event with a deadline.
type sseStream struct {
	lines chan string
	resp  *http.Response
}

func connectSSE(t *testing.T, url, lastEventID string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{lines: make(chan string, 1024), resp: resp}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	// The server sends a comment as soon as the client is registered with the hub.
	s.waitLine(t, ": connected")
	return s
}

func (s *sseStream) line(t *testing.T, deadline <-chan time.Time) string {
	t.Helper()
	select {
	case l, ok := <-s.lines:
		if !ok {
			t.Fatalf("stream ended")
		}
		return l
	case <-deadline:
		t.Fatalf("no SSE line within %s", waitFor)
	}
	return ""
}

func (s *sseStream) waitLine(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(waitFor)
	for s.line(t, deadline) != want {
	}
}

// next returns the next event, skipping comments.
func (s *sseStream) next(t *testing.T) sseEvent {
	t.Helper()
	deadline := time.After(waitFor)
	var ev sseEvent
	for {
		l := s.line(t, deadline)
		switch {
		case l == "":
			if ev.data != "" {
				return ev
			}
		case strings.HasPrefix(l, ":"):
		case strings.HasPrefix(l, "id: "):
			ev.id = strings.TrimPrefix(l, "id: ")
		case strings.HasPrefix(l, "event: "):
			ev.event = strings.TrimPrefix(l, "event: ")
		case strings.HasPrefix(l, "data: "):
			ev.data = strings.TrimPrefix(l, "data: ")
		default:
			t.Fatalf("unexpected SSE line %q", l)
		}
	}
}

type sseFixture struct {
	srv      *Server
	base     string
	producer *kgo.Client
	metrics  *telemetry.Metrics
}

func newSSEFixture(t *testing.T, deps Deps) *sseFixture {
	t.Helper()
	return newSSEFixtureWith(t, deps, config.API{})
}

// newSSEFixtureWith is newSSEFixture with the server's limits (timeouts, ...) from cfg.
func newSSEFixtureWith(t *testing.T, deps Deps, cfg config.API) *sseFixture {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, alertTopic))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(cluster.Close)
	producer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	t.Cleanup(producer.Close)
	deps.KafkaOpts = []kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}
	deps.Metrics = telemetry.New()
	// An alert from before the server starts must not be streamed: clients get what happens
	// after they connect.
	f := &sseFixture{producer: producer, metrics: deps.Metrics}
	f.produce(t, `{"rule":"before start"}`)
	cfg.Routes = []config.Route{{Path: "/alerts/stream", Stream: alertTopic}}
	f.srv, f.base = startServer(t, &cfg, deps)
	return f
}

func (f *sseFixture) produce(t *testing.T, values ...string) {
	t.Helper()
	for _, v := range values {
		if err := f.producer.ProduceSync(context.Background(), &kgo.Record{Topic: alertTopic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

func alert(i int) string { return fmt.Sprintf(`{"rule": "cpu_load_critical", "n": %d}`, i) }
func alertLine(i int) string {
	return fmt.Sprintf(`{"rule":"cpu_load_critical","n":%d}`, i)
}

func TestSSEDeliversEventsProducedAfterConnect(t *testing.T) {
	f := newSSEFixture(t, Deps{})
	s := connectSSE(t, f.base+"/alerts/stream", "")
	f.produce(t, "{\n  \"rule\": \"cpu_load_critical\",\n  \"n\": 1\n}")
	ev := s.next(t)
	want := sseEvent{id: "0:2", event: "alert", data: alertLine(1)}
	if ev != want {
		t.Fatalf("got %+v, want %+v (multi-line JSON compacted to one data line, id is the next offset)", ev, want)
	}
	if got := value(f.metrics.SSEClients.WithLabelValues("/alerts/stream")); got != 1 {
		t.Fatalf("eventops_sse_clients = %v, want 1", got)
	}
}

func TestSSEResumesAfterLastEventID(t *testing.T) {
	tests := []struct {
		name   string
		replay int // events kept in memory; fewer than produced makes the server read the broker
	}{
		{name: "from the in-memory ring", replay: 100},
		{name: "older than the ring, read back from the broker", replay: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSSEFixture(t, Deps{ReplayEvents: tt.replay})
			first := connectSSE(t, f.base+"/alerts/stream", "")
			f.produce(t, alert(1), alert(2), alert(3), alert(4), alert(5))
			var ids []string
			for i := 1; i <= 5; i++ {
				ev := first.next(t)
				if ev.data != alertLine(i) {
					t.Fatalf("event %d: %q", i, ev.data)
				}
				ids = append(ids, ev.id)
			}

			again := connectSSE(t, f.base+"/alerts/stream", ids[1])
			f.produce(t, alert(6))
			for i := 3; i <= 6; i++ {
				ev := again.next(t)
				if ev.data != alertLine(i) {
					t.Fatalf("after resuming from event 2, got %q, want event %d", ev.data, i)
				}
				if i <= 5 && ev.id != ids[i-1] {
					t.Errorf("replayed event %d has id %q, first delivered as %q", i, ev.id, ids[i-1])
				}
			}
		})
	}
}

// A reload notice reaches every open stream between the alerts, without an id: a client
// that reconnects with the id of the alert before the notice resumes right after that alert.
func TestSSEReloadNotice(t *testing.T) {
	f := newSSEFixture(t, Deps{})
	s := connectSSE(t, f.base+"/alerts/stream", "")
	f.produce(t, alert(1))
	before := s.next(t)
	f.srv.Announce("reload", map[string]any{"result": "applied", "changes": []string{"streams.rules: changed"}})
	f.produce(t, alert(2))
	notice := s.next(t)
	if notice.event != "reload" || notice.id != "" || notice.data != `{"changes":["streams.rules: changed"],"result":"applied"}` {
		t.Fatalf("notice %+v, want event reload without an id, with the status as data", notice)
	}
	if ev := s.next(t); ev.data != alertLine(2) {
		t.Fatalf("after the notice: %+v, want alert 2", ev)
	}
	again := connectSSE(t, f.base+"/alerts/stream", before.id)
	if ev := again.next(t); ev.event != "alert" || ev.data != alertLine(2) {
		t.Fatalf("resumed after alert 1: %+v, want alert 2 (notices are not replayed)", ev)
	}
}

func TestSSEHeartbeat(t *testing.T) {
	f := newSSEFixture(t, Deps{Heartbeat: 10 * time.Millisecond})
	s := connectSSE(t, f.base+"/alerts/stream", "")
	s.waitLine(t, ": ping")
	s.waitLine(t, ": ping")
}

func TestSSESlowClientIsDroppedWithoutStallingOthers(t *testing.T) {
	f := newSSEFixture(t, Deps{ClientBuffer: 4, Heartbeat: time.Hour})
	gauge := f.metrics.SSEClients.WithLabelValues("/alerts/stream")
	dropped := f.metrics.SSEDropped.WithLabelValues("/alerts/stream")

	// The slow client sends its request and never reads a byte.
	slow, err := net.Dial("tcp", f.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if tcp, ok := slow.(*net.TCPConn); ok {
		tcp.SetReadBuffer(4096)
	}
	fmt.Fprintf(slow, "GET /alerts/stream HTTP/1.1\r\nHost: test\r\n\r\n")
	waitUntil(t, "the slow client is connected", func() bool { return value(gauge) == 1 })

	fast := connectSSE(t, f.base+"/alerts/stream", "")
	received := make(chan string, 1<<16)
	go func() {
		defer close(received)
		for l := range fast.lines {
			if data, ok := strings.CutPrefix(l, "data: "); ok {
				received <- data
			}
		}
	}()

	big := fmt.Sprintf(`{"rule":"cpu_load_critical","pad":"%s"}`, strings.Repeat("x", 64<<10))
	produced, got := 0, 0
	deadline := time.Now().Add(waitFor)
	for value(dropped) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("slow client not dropped after %d events of 64 KiB", produced)
		}
		f.produce(t, big)
		produced++
		// The fast client keeps up: it has every event before the next is produced.
		select {
		case _, ok := <-received:
			if !ok {
				t.Fatalf("fast client's stream ended after %d events", got)
			}
			got++
		case <-time.After(waitFor):
			t.Fatalf("fast client stalled at %d of %d events", got, produced)
		}
	}
	if got != produced {
		t.Fatalf("fast client got %d of %d events", got, produced)
	}
	waitUntil(t, "the dropped client is unregistered", func() bool { return value(gauge) == 1 })
	f.produce(t, alert(1))
	select {
	case data := <-received:
		if data != alertLine(1) {
			t.Fatalf("fast client got %.40q after the drop, want %s", data, alertLine(1))
		}
	case <-time.After(waitFor):
		t.Fatal("fast client got nothing after the slow one was dropped")
	}
}

// waitUntil polls cond until it holds or the test deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEventName(t *testing.T) {
	tests := map[string]string{
		"/alerts/stream":      "alert",
		"/alerts":             "alert",
		"/ops/incidents/live": "incident",
		"/stream":             "message",
		"/hosts/:host/stream": "host",
		"/status":             "status",
	}
	for path, want := range tests {
		if got := eventName(path); got != want {
			t.Errorf("eventName(%q) = %q, want %q", path, got, want)
		}
	}
}

// value reads a gauge or counter.
func value(m prometheus.Metric) float64 {
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		panic(err)
	}
	if out.Gauge != nil {
		return out.Gauge.GetValue()
	}
	return out.Counter.GetValue()
}

func TestShutdownEndsOpenStreams(t *testing.T) {
	f := newSSEFixture(t, Deps{Heartbeat: time.Hour})
	s := connectSSE(t, f.base+"/alerts/stream", "")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a client connected: %v", err)
	}
	deadline := time.After(waitFor)
	for {
		select {
		case _, ok := <-s.lines:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("stream still open after Shutdown")
		}
	}
}

// Resuming with Last-Event-ID: a malformed id or one naming a partition the topic lacks is a
// 400; an offset beyond a partition's end resumes from its end, after an event "reset"
// saying so; partitions the id does not name start from now, not from what the server still
// holds of them.
func TestSSEResumeEdges(t *testing.T) {
	const topic = "two"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	producer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	produce := func(partition int32, v string) {
		t.Helper()
		if err := producer.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Partition: partition, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &config.API{Routes: []config.Route{{Path: "/two/stream", Stream: topic}}}
	_, base := startServer(t, cfg, Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}})
	live := connectSSE(t, base+"/two/stream", "")
	produce(0, `{"e":1}`)
	produce(1, `{"f":1}`)
	live.next(t)
	if ev := live.next(t); ev.id != "0:1,1:1" {
		t.Fatalf("after one record in each partition the id is %q, want 0:1,1:1", ev.id)
	}

	for _, id := range []string{"garbage", "0:-1", "0:1,x", "7:0"} {
		req, _ := http.NewRequest(http.MethodGet, base+"/two/stream", nil)
		req.Header.Set("Last-Event-ID", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(body), "Last-Event-ID") {
			t.Errorf("Last-Event-ID %q: %d %s, want 400 naming the header", id, resp.StatusCode, body)
		}
	}

	beyond := connectSSE(t, base+"/two/stream", "0:999,1:1")
	if ev := beyond.next(t); ev.event != "reset" || ev.data != `{"id":"0:1,1:1","partitions":[0]}` {
		t.Fatalf("resuming beyond the end: %+v, want an event reset naming partition 0 and the id from the end", ev)
	}
	produce(0, `{"e":2}`)
	if ev := beyond.next(t); ev.data != `{"e":2}` || ev.id != "0:2,1:1" {
		t.Errorf("after the reset: %+v, want the next record of partition 0", ev)
	}

	onlyZero := connectSSE(t, base+"/two/stream", "0:0")
	produce(1, `{"f":2}`)
	for _, want := range []string{`{"e":1}`, `{"e":2}`, `{"f":2}`} {
		if ev := onlyZero.next(t); ev.data != want {
			t.Fatalf("resuming from 0:0 sent %s, want %s (partition 1 from now: not its first record)", ev.data, want)
		}
	}
}
