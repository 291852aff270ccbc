package netguard

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"
)

// waitFor bounds every wait; nothing here should take more than a fraction of it.
const waitFor = 10 * time.Second

// fastBackoff keeps the tests' retries short.
var fastBackoff = Options{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}

// flakyListener fails its first n Accepts with err, as a listener does while the process
// has no file descriptor left, then accepts for real.
type flakyListener struct {
	net.Listener
	n   atomic.Int64
	err error
}

func flaky(t *testing.T, n int, err error) *flakyListener {
	t.Helper()
	ln, err2 := net.Listen("tcp", "127.0.0.1:0")
	if err2 != nil {
		t.Fatal(err2)
	}
	f := &flakyListener{Listener: ln, err: err}
	f.n.Store(int64(n))
	return f
}

func (f *flakyListener) Accept() (net.Conn, error) {
	if f.n.Add(-1) >= 0 {
		return nil, f.err
	}
	return f.Listener.Accept()
}

// acceptError is an error as Go's net package returns it from a failed accept(2).
func acceptError(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

var failures = []struct {
	name string
	n    int
	err  error
}{
	{"one EMFILE", 1, acceptError(syscall.EMFILE)},
	{"a long run of EMFILE", 50, acceptError(syscall.EMFILE)},
	{"ENFILE", 3, acceptError(syscall.ENFILE)},
	{"ECONNABORTED", 3, acceptError(syscall.ECONNABORTED)},
	{"an error of no known kind", 3, errors.New("something odd")},
}

// fasthttp (the API's server) stops serving for good on an accept error that is not a
// timeout; guarded, it serves once the failures stop, and the failures are counted.
func TestFasthttpServesAfterAcceptErrors(t *testing.T) {
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			name := "test-fasthttp-" + tc.name
			before := AcceptErrors()[name]
			ln := Wrap(flaky(t, tc.n, tc.err), withName(name))
			addr := serveHTTP(t, ln)
			if body := httpGet(t, addr); body != "ok" {
				t.Fatalf("GET after %d accept errors: %q, want ok", tc.n, body)
			}
			if got := AcceptErrors()[name] - before; got != uint64(tc.n) {
				t.Fatalf("AcceptErrors()[%q] grew by %d, want %d", name, got, tc.n)
			}
		})
	}
}

// The failure the guard exists for: unguarded, fasthttp's Serve returns on the first
// EMFILE and nothing serves the port any more.
func TestFasthttpUnguardedStopsOnEMFILE(t *testing.T) {
	ln := flaky(t, 1, acceptError(syscall.EMFILE))
	defer ln.Close()
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.WriteString("ok") }}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.EMFILE) {
			t.Fatalf("Serve returned %v, want the EMFILE", err)
		}
	case <-time.After(waitFor):
		t.Fatal("unguarded Serve kept going; the guard may no longer be needed")
	}
}

// kfake (the embedded broker) ends its accept loop on any error; guarded, a client reaches
// the broker once the failures stop.
func TestKfakeServesAfterAcceptErrors(t *testing.T) {
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			opts := withName("test-kfake-" + tc.name)
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(func(network, _ string) (net.Listener, error) {
				return Wrap(flaky(t, tc.n, tc.err), opts), nil
			}))
			if err != nil {
				t.Fatal(err)
			}
			defer cluster.Close()
			cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			if err := cl.Ping(ctx); err != nil {
				t.Fatalf("broker unreachable after %d accept errors: %v", tc.n, err)
			}
		})
	}
}

// Closing the listener ends a backoff at once: the server's Serve returns as for any
// closed listener (fasthttp: nil), however long the backoff would have been.
func TestCloseEndsBackoff(t *testing.T) {
	inner := flaky(t, 1<<30, acceptError(syscall.EMFILE))
	ln := Wrap(inner, Options{Name: "test-close", MinBackoff: time.Hour, MaxBackoff: time.Hour})
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {}}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	waitUntil(t, "the first accept failed", func() bool { return inner.n.Load() < 1<<30 })
	ln.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v after Close, want nil", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Serve still waiting after Close")
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
}

func withName(name string) Options {
	o := fastBackoff
	o.Name = name
	return o
}

// serveHTTP serves "ok" on ln with fasthttp until the test ends.
func serveHTTP(t *testing.T, ln net.Listener) string {
	t.Helper()
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.WriteString("ok") }}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ln.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func httpGet(t *testing.T, addr string) string {
	t.Helper()
	client := &http.Client{Timeout: waitFor}
	resp, err := client.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET: reading body: %v", err)
	}
	return string(body)
}

// waitUntil polls cond until it holds or waitFor passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// While descriptors are short, accepts fail and succeed by turns; the log says when
// failures start and when they end, not once per failure.
func TestFailuresAreLoggedWithoutFlooding(t *testing.T) {
	tests := []struct {
		name   string
		events string // f: a failed accept, s: a successful one
		want   []string
	}{
		{name: "no failure", events: "sss", want: nil},
		{name: "a run of failures", events: "sffffs", want: []string{"WARN accept failed", "INFO accepting connections again"}},
		{name: "failures that come and go", events: "fsfsfsfsfs", want: []string{"WARN accept failed", "INFO accepting connections again"}},
		{name: "failures that never end", events: "ffffff", want: []string{"WARN accept failed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var lines []string
			log := slog.New(recorder{&lines})
			f := failureLog{every: time.Hour}
			for _, e := range tc.events {
				if e == 'f' {
					f.failed(log, acceptError(syscall.EMFILE))
				} else {
					f.succeeded(log)
				}
			}
			if !slices.Equal(lines, tc.want) {
				t.Fatalf("logged %q, want %q", lines, tc.want)
			}
		})
	}
}

// recorder keeps each record's level and the start of its message.
type recorder struct{ lines *[]string }

func (r recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r recorder) Handle(_ context.Context, rec slog.Record) error {
	msg, _, _ := strings.Cut(rec.Message, ";")
	*r.lines = append(*r.lines, rec.Level.String()+" "+msg)
	return nil
}
func (r recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r recorder) WithGroup(string) slog.Handler      { return r }
