package httpinput

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine"
)

// memStore keeps what it stores; fail makes every Write fail, block makes Write wait for
// its context.
type memStore struct {
	mu      sync.Mutex
	stored  []string
	fail    error
	block   atomic.Bool
	waiting chan struct{} // told when a Write blocks
	unblock chan struct{} // closed: blocked Writes fail at once
}

func (s *memStore) Write(ctx context.Context, batch []*engine.Record, _ *engine.Rejects) error {
	if s.block.Load() {
		if s.waiting != nil {
			s.waiting <- struct{}{}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.unblock:
			return errors.New("unblocked")
		}
	}
	if s.fail != nil {
		return s.fail
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range batch {
		s.stored = append(s.stored, string(r.Raw))
	}
	return nil
}

// blocking is a store whose Writes wait, telling waiting (if set) when one does.
func blocking(waiting chan struct{}) *memStore {
	s := &memStore{waiting: waiting, unblock: make(chan struct{})}
	s.block.Store(true)
	return s
}

func newTestReceiver(store Store) *Receiver {
	return New(Config{Stream: "s", Topic: "ingest", MaxBodyBytes: 1 << 10, MaxRecordBytes: 100, Timeout: time.Second, MaxInFlight: 2},
		Routes{"/ingest": JSON}, store, slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics{})
}

func post(r *Receiver, body string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/ingest", strings.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

// What a client may send, and what the topic gets: each record as it was sent, or nothing
// and an answer that says where and why.
func TestReceiverStoresEachRecordOrSaysWhyNot(t *testing.T) {
	gz := func(s string) string {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		_, _ = w.Write([]byte(s))
		_ = w.Close()
		return b.String()
	}
	tests := []struct {
		name, body string
		headers    []string
		code       int
		stored     []string
		says       string
	}{
		{name: "one object", body: `{"host":"a","value":1}`, code: 200, stored: []string{`{"host":"a","value":1}`}},
		{name: "an array", body: ` [{"a":1}, {"b":2}] `, code: 200, stored: []string{`{"a":1}`, `{"b":2}`}},
		{name: "newline-delimited, blank lines and CRLF", body: "{\"a\":1}\r\n\n{\"b\":2}\n", code: 200, stored: []string{`{"a":1}`, `{"b":2}`}},
		{name: "gzip", body: gz("{\"a\":1}\n{\"b\":2}"), headers: []string{"Content-Encoding", "gzip"}, code: 200, stored: []string{`{"a":1}`, `{"b":2}`}},
		{name: "malformed third line", body: "{\"a\":1}\n{\"b\":2}\n{\"c\":}\n", code: 400, says: `record 3 (line 3, column 6): malformed JSON`},
		{name: "cut short", body: "{\"a\":1}\n{\"b\":", code: 400, says: `record 2 (line 2, column 6): malformed JSON`},
		{name: "not an object", body: "{\"a\":1}\n  42\n", code: 400, says: `record 2 (line 2, column 3): not a JSON object`},
		{name: "not an object in an array", body: `[{"a":1}, "x"]`, code: 400, says: `record 2 (line 1, column 11): not a JSON object`},
		{name: "an empty array", body: `[]`, code: 400, says: `the array holds no records`},
		{name: "after the array", body: `[{"a":1}] {"b":2}`, code: 400, says: `line 1, column 11: the body goes on after its array`},
		{name: "empty", body: " \n", code: 400, says: `the body holds no records`},
		{name: "a record over the broker's limit", body: `{"a":"` + strings.Repeat("x", 100) + `"}`, code: 413, says: `record 1: 108 bytes, over the broker's max_record_bytes 100`},
		{name: "a body over max_body_bytes", body: strings.Repeat(`{"a":1}`+"\n", 200), code: 413, says: `over max_body_bytes (1024 bytes)`},
		{name: "gzip over max_body_bytes once unzipped", body: gz(strings.Repeat(`{"a":1}`+"\n", 200)), headers: []string{"Content-Encoding", "gzip"}, code: 413, says: `over max_body_bytes`},
		{name: "not gzip", body: `{"a":1}`, headers: []string{"Content-Encoding", "gzip"}, code: 400, says: `the body is not gzip`},
		{name: "another encoding", body: `{"a":1}`, headers: []string{"Content-Encoding", "br"}, code: 415, says: `send the body plain or gzip`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &memStore{}
			w := post(newTestReceiver(store), tt.body, tt.headers...)
			if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.says) {
				t.Fatalf("answer %d %s, want %d saying %q", w.Code, w.Body, tt.code, tt.says)
			}
			if strings.Join(store.stored, "|") != strings.Join(tt.stored, "|") {
				t.Errorf("stored %q, want %q", store.stored, tt.stored)
			}
			if tt.code == 200 && !strings.Contains(w.Body.String(), `"accepted":`) {
				t.Errorf("answer %s does not say how many records it accepted", w.Body)
			}
		})
	}
}

func TestReceiverAnswersOnlyPostOnItsPath(t *testing.T) {
	r := newTestReceiver(&memStore{})
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/ingest", nil))
	if w.Code != 405 || w.Header().Get("Allow") != "POST" {
		t.Errorf("GET: %d, Allow %q", w.Code, w.Header().Get("Allow"))
	}
	w = httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/other", strings.NewReader(`{}`)))
	if w.Code != 404 || !strings.Contains(w.Body.String(), "POSTed to /ingest") {
		t.Errorf("another path: %d %s", w.Code, w.Body)
	}
}

// When the topic cannot take the records in time, the client is told to come back (429 and
// Retry-After), never 200: what it sent is still its own to send again.
func TestReceiverPushesBackWhenTheTopicCannotTakeRecords(t *testing.T) {
	for name, store := range map[string]*memStore{
		"the broker refuses": {fail: errors.New("broker down")},
		"the broker is slow": blocking(nil),
	} {
		t.Run(name, func(t *testing.T) {
			r := newTestReceiver(store)
			r.cfg.Timeout = 50 * time.Millisecond
			w := post(r, `{"a":1}`)
			if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "send again") {
				t.Errorf("answer %d %s, Retry-After %q", w.Code, w.Body, w.Header().Get("Retry-After"))
			}
		})
	}
}

// Requests beyond max_in_flight are turned away at once instead of queueing in memory.
func TestReceiverTurnsAwayRequestsBeyondMaxInFlight(t *testing.T) {
	store := blocking(make(chan struct{}, 2))
	r := newTestReceiver(store)
	r.cfg.Timeout = time.Minute
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			post(r, `{"a":1}`)
		}()
	}
	<-store.waiting
	<-store.waiting // both slots taken
	w := post(r, `{"a":1}`)
	close(store.unblock)
	wg.Wait()
	if w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), "2 requests are being stored already") {
		t.Errorf("a third request: %d %s", w.Code, w.Body)
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{"{\"a\":1}\n\n {\"b\":\"x\\ny\"}\r\n", "{\"a\":\n1}\n{}", `{"a":1}`, `[{"a":1},{"b":[1,2]}]`, "{\"a\":1}\n{\"b\":2}", `[1]`, `{"a":`, `  `, `[{"a":1}] x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if quick, ok := splitLines(body, 0); ok {
			general, err := splitAny(body, false, 0)
			if err != nil || !slices.EqualFunc(quick, general, bytes.Equal) {
				t.Fatalf("one object per line: %q, but the general way gives %q, %v", quick, general, err)
			}
		}
		records, err := Split(body, 0)
		if err != nil {
			return
		}
		for i, rec := range records {
			if !bytes.HasPrefix(rec, []byte("{")) || !json.Valid(rec) {
				t.Fatalf("record %d of %q is not a JSON object: %q", i, body, rec)
			}
		}
	})
}

// A write the broker has not finished when its request is answered keeps the request's slot
// until it ends: requests stuck on a broker that is gone stop new ones at max_in_flight,
// instead of piling up behind it.
func TestAnsweredRequestKeepsItsSlotWhileItsWriteGoesOn(t *testing.T) {
	store := blocking(make(chan struct{}, 2))
	r := newTestReceiver(store)
	r.cfg.Timeout = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest(http.MethodPost, "/ingest", strings.NewReader(`{"a":1}`)).WithContext(ctx)
	answered := make(chan int)
	go func() {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		answered <- w.Code
	}()
	<-store.waiting
	cancel() // the client went away; the write goes on
	if code := <-answered; code == http.StatusOK {
		t.Fatalf("a request whose write had not ended was answered %d", code)
	}
	if len(r.slots) != 1 {
		t.Fatalf("%d slots taken after the answer, want 1: the write still runs", len(r.slots))
	}
	close(store.unblock)
	// The write ends and gives its slot back; a new request then finds room again.
	store.block.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for len(r.slots) != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if w := post(r, `{"a":2}`); w.Code != http.StatusOK {
		t.Fatalf("after the write ended: %d %s", w.Code, w.Body)
	}
}
