package api

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/store"
)

// short are limits small enough for tests to see them act.
var short = config.API{
	ReadTimeout:  config.Duration(200 * time.Millisecond),
	WriteTimeout: config.Duration(200 * time.Millisecond),
	IdleTimeout:  config.Duration(200 * time.Millisecond),
}

// A Server built without the loader (zero limits) gets the limits a pipeline file gets when
// it leaves them out.
func TestDefaultLimitsAreTheConfigDefaults(t *testing.T) {
	fields := reflect.TypeFor[config.API]()
	tag := func(name string) string {
		f, ok := fields.FieldByName(name)
		if !ok {
			t.Fatalf("config.API has no field %s", name)
		}
		return f.Tag.Get("default")
	}
	duration := func(name string) time.Duration {
		d, err := config.ParseDuration(tag(name))
		if err != nil {
			t.Fatal(err)
		}
		return d.D()
	}
	size := func(name string) int {
		s, err := config.ParseSize(tag(name))
		if err != nil {
			t.Fatal(err)
		}
		return int(s)
	}
	maxConns, err := strconv.Atoi(tag("MaxConnections"))
	if err != nil {
		t.Fatal(err)
	}
	want := limits{
		readTimeout:    duration("ReadTimeout"),
		writeTimeout:   duration("WriteTimeout"),
		idleTimeout:    duration("IdleTimeout"),
		maxConnections: maxConns,
		maxHeaderBytes: size("MaxHeaderBytes"),
		maxURLBytes:    size("MaxURLBytes"),
	}
	if got := limitsOf(&config.API{}); got != want {
		t.Fatalf("limits of an empty config: %+v, want the config defaults %+v", got, want)
	}
}

// A client that holds a connection without finishing a request (slowloris) is disconnected
// once the read timeout has passed, however steadily it trickles bytes; so is an idle
// keep-alive connection after the idle timeout.
func TestSlowClientsAreDisconnected(t *testing.T) {
	tests := []struct {
		name    string
		prefix  string // sent at once
		trickle string // then sent a byte at a time, repeated, until the server hangs up
	}{
		{name: "headers a byte at a time", prefix: "GET /-/healthy HTTP/1.1\r\nHost: test\r\n", trickle: "X-Slow: abcdefgh\r\n"},
		{name: "connects and sends nothing"},
		{name: "request line a byte at a time", trickle: "GET /-/healthy"},
		{name: "body a byte at a time", prefix: "POST /-/healthy HTTP/1.1\r\nHost: test\r\nContent-Length: 100000\r\n\r\n", trickle: "x"},
		{name: "idle after a request", prefix: "GET /-/healthy HTTP/1.1\r\nHost: test\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := short
			_, base := startServer(t, &cfg, Deps{})
			conn := dial(t, base)
			if _, err := io.WriteString(conn, tt.prefix); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			defer close(stop)
			go trickle(conn, tt.trickle, stop)
			assertClosedByServer(t, conn)
		})
	}
}

// trickle writes s one byte every 10ms, over and over, until a write fails or stop.
func trickle(conn net.Conn, s string, stop <-chan struct{}) {
	if s == "" {
		return
	}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-time.After(10 * time.Millisecond):
		}
		if _, err := conn.Write([]byte{s[i%len(s)]}); err != nil {
			return
		}
	}
}

// assertClosedByServer reads conn until the server closes it; a read that is still waiting
// after waitFor means the server held the connection.
func assertClosedByServer(t *testing.T, conn net.Conn) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(waitFor))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server still holds the connection after %s", waitFor)
	}
	// nil is EOF; a reset also means the server closed the connection.
}

// Connections beyond max_connections get 503 and are closed at once, while those already
// served go on; a slot freed by a client that leaves serves a new one.
func TestConnectionLimit(t *testing.T) {
	cfg := config.API{MaxConnections: 2}
	_, base := startServer(t, &cfg, Deps{})
	first, second := dial(t, base), dial(t, base)
	for _, c := range []net.Conn{first, second} {
		if code := request(t, c, "/-/healthy"); code != 200 {
			t.Fatalf("a connection within the limit: %d, want 200", code)
		}
	}

	extra := dial(t, base)
	extra.SetReadDeadline(time.Now().Add(waitFor))
	resp, err := http.ReadResponse(bufio.NewReader(extra), nil)
	if err != nil {
		t.Fatalf("a connection beyond the limit: %v, want a 503", err)
	}
	if resp.StatusCode != 503 {
		t.Fatalf("a connection beyond the limit: %d, want 503", resp.StatusCode)
	}
	assertClosedByServer(t, extra)

	for _, c := range []net.Conn{first, second} {
		if code := request(t, c, "/-/healthy"); code != 200 {
			t.Fatalf("a connection served before the limit was reached: %d, want 200", code)
		}
	}
	first.Close()
	waitUntil(t, "a new connection is served in the freed slot", func() bool {
		c := dial(t, base)
		defer c.Close()
		return request(t, c, "/-/healthy") == 200
	})
}

// A request head too large for the server is answered, and the client reads the answer
// (not a connection reset): 431 for headers, 414 for a URL.
func TestOversizedRequestsAreAnswered(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name    string
		path    string
		headers string
		want    int
	}{
		{name: "ordinary request", path: "/-/healthy", headers: "X-Small: " + long(100) + "\r\n", want: 200},
		{name: "a 7 KB header fits the default 8 KiB", path: "/-/healthy", headers: "X-Big: " + long(7000) + "\r\n", want: 200},
		{name: "a 10 KB header", path: "/-/healthy", headers: "X-Big: " + long(10000) + "\r\n", want: 431},
		{name: "many headers, 10 KB together", path: "/-/healthy", headers: strings.Repeat("X-Many: "+long(90)+"\r\n", 100), want: 431},
		{name: "a 10 KB URL", path: "/-/healthy?q=" + long(10000), want: 414},
		{name: "a 100 KB URL", path: "/" + long(100000), want: 414},
		{name: "a 5 KB URL: fits the head, not the 4 KiB URL limit", path: "/-/healthy?q=" + long(5000), want: 414},
		{name: "a 4000 byte URL", path: "/metrics/cpu?tenant=acme&host=host-a&pad=" + long(3950), want: 200},
	}
	_, base := startServer(t, &config.API{Routes: []config.Route{cpuRoute()}}, Deps{Stores: map[string]store.Store{"metrics": metricsStore()}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := dial(t, base)
			fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: test\r\n%s\r\n", tt.path, tt.headers)
			conn.SetReadDeadline(time.Now().Add(waitFor))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.want {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tt.want)
			}
		})
	}
}

// An SSE stream is a response that never ends: it keeps delivering long after the read,
// write and idle timeouts, with gaps between writes longer than the write timeout.
func TestSSEOutlivesTheTimeouts(t *testing.T) {
	f := newSSEFixtureWith(t, Deps{Heartbeat: 3 * short.WriteTimeout.D()}, short)
	s := connectSSE(t, f.base+"/alerts/stream", "")
	s.waitLine(t, ": ping")
	s.waitLine(t, ": ping")
	f.produce(t, alert(1))
	if ev := s.next(t); ev.data != alertLine(1) {
		t.Fatalf("after two heartbeats (6 write timeouts): %+v, want alert 1", ev)
	}
}

// An SSE client that stops reading is cut off by the write timeout, however much room its
// event buffer still has: each write to it has the timeout.
func TestSSEClientThatStopsReadingIsCutByTheWriteTimeout(t *testing.T) {
	f := newSSEFixtureWith(t, Deps{ClientBuffer: 1 << 16, Heartbeat: time.Hour}, short)
	gauge := f.metrics.SSEClients.WithLabelValues("/alerts/stream")
	dropped := f.metrics.SSEDropped.WithLabelValues("/alerts/stream")
	stuck := dial(t, f.base)
	if tcp, ok := stuck.(*net.TCPConn); ok {
		tcp.SetReadBuffer(4096)
	}
	fmt.Fprintf(stuck, "GET /alerts/stream HTTP/1.1\r\nHost: test\r\n\r\n")
	waitUntil(t, "the stuck client is connected", func() bool { return value(gauge) == 1 })

	big := fmt.Sprintf(`{"rule":"cpu_load_critical","pad":"%s"}`, strings.Repeat("x", 64<<10))
	deadline := time.Now().Add(waitFor)
	for value(gauge) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a client that reads nothing is still connected")
		}
		f.produce(t, big)
	}
	if value(dropped) != 0 {
		t.Fatal("the client was dropped for its full buffer, not cut by the write timeout")
	}
}

func dial(t *testing.T, base string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), waitFor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// request sends a GET on conn (keep-alive) and returns the status, or 0 if no answer came.
func request(t *testing.T, conn net.Conn, path string) int {
	t.Helper()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path)
	conn.SetReadDeadline(time.Now().Add(waitFor))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// A client still sending its oversized headers when the answer comes reads the answer:
// closing a connection with unread input would reset it, and the reset can destroy the
// answer before the client reads it.
func TestOversizedAnswerReachesAClientStillSending(t *testing.T) {
	_, base := startServer(t, &config.API{}, Deps{})
	for i := range 5 {
		conn := dial(t, base)
		fmt.Fprintf(conn, "GET /-/healthy HTTP/1.1\r\nHost: test\r\nX-Big: %s", strings.Repeat("a", 9000))
		conn.SetReadDeadline(time.Now().Add(waitFor))
		r := bufio.NewReader(conn)
		if _, err := r.Peek(1); err != nil { // the server has answered
			t.Fatalf("connection %d: no answer: %v", i, err)
		}
		if _, err := io.WriteString(conn, strings.Repeat("a", 1000)+"\r\n\r\n"); err != nil {
			t.Fatalf("connection %d: sending the rest: %v", i, err)
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("connection %d: reading the answer: %v", i, err)
		}
		if resp.StatusCode != 431 {
			t.Fatalf("connection %d: %d, want 431", i, resp.StatusCode)
		}
		if _, err := io.ReadAll(resp.Body); err != nil {
			t.Fatalf("connection %d: reading the answer's body: %v", i, err)
		}
	}
}
