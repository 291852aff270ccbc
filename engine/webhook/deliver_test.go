package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/enginetest"
)

// answer is a response a test receiver gives.
type answer struct {
	status     int
	body       string
	retryAfter string
}

// answers is a receiver behaviour: the n-th request gets script[n-1], later ones 200.
func answers(script ...answer) func(n int, r *http.Request, w http.ResponseWriter) {
	return func(n int, r *http.Request, w http.ResponseWriter) {
		if n > len(script) {
			return
		}
		a := script[n-1]
		if a.retryAfter != "" {
			w.Header().Set("Retry-After", a.retryAfter)
		}
		w.WriteHeader(a.status)
		fmt.Fprint(w, a.body)
	}
}

// How one record fares against receivers that fail in different ways: what is retried,
// how long each wait is (read from the fake clock, so no test waits), and what a record
// given up carries to the dead-letter topic.
func TestDeliveryOfOneRecord(t *testing.T) {
	now := newFakeClock().Now()
	tests := []struct {
		name      string
		settings  string
		script    []answer
		requests  int
		waits     []time.Duration
		rejected  bool
		errHas    []string
		errHasNot []string
	}{
		{name: "success at once", script: nil, requests: 1},
		{name: "retried until it succeeds", settings: `backoff: {initial: 100ms, max: 250ms}`,
			script:   []answer{{status: 503}, {status: 502}, {status: 500}, {status: 429}},
			requests: 5, waits: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond}},
		{name: "408 and 425 are retried", script: []answer{{status: 408}, {status: 425}}, requests: 3,
			waits: []time.Duration{500 * time.Millisecond, time.Second}},
		{name: "Retry-After in seconds on a 429", script: []answer{{status: 429, retryAfter: "7"}}, requests: 2,
			waits: []time.Duration{7 * time.Second}},
		{name: "Retry-After as an HTTP date on a 503", script: []answer{{status: 503, retryAfter: now.Add(12 * time.Second).Format(http.TimeFormat)}},
			requests: 2, waits: []time.Duration{12 * time.Second}},
		{name: "Retry-After on a 500 is not the receiver's to ask", script: []answer{{status: 500, retryAfter: "60"}}, requests: 2,
			waits: []time.Duration{500 * time.Millisecond}},
		{name: "Retry-After beyond max_elapsed gives up", settings: `max_elapsed: 1m`,
			script: []answer{{status: 503, retryAfter: "120", body: "maintenance"}}, requests: 1, rejected: true,
			errHas: []string{"gave up after 1 attempt in 0s: the receiver asked to wait 2m0s (Retry-After), beyond max_elapsed (1m0s)", "last status 503 Service Unavailable", `body "maintenance"`}},
		{name: "a 400 is given up at once", script: []answer{{status: 400, body: `{"error":"field alerts is required"}`}}, requests: 1, rejected: true,
			errHas: []string{"refused, not retried", "last status 400 Bad Request", `body "{\"error\":\"field alerts is required\"}"`}},
		{name: "a 401 is given up at once", script: []answer{{status: 401}}, requests: 1, rejected: true,
			errHas: []string{"last status 401 Unauthorized"}},
		{name: "a redirect is not followed", script: []answer{{status: 302}}, requests: 1, rejected: true,
			errHas: []string{"302 Found", "redirects are not followed"}},
		{name: "max_attempts exhausted", settings: `max_attempts: 3, backoff: {initial: 1s, max: 1s}`,
			script: []answer{{status: 500, body: "boom 1"}, {status: 500, body: "boom 2"}, {status: 500, body: "boom 3"}}, requests: 3, rejected: true,
			waits:  []time.Duration{time.Second, time.Second},
			errHas: []string{"gave up after 3 attempts (max_attempts)", "last status 500 Internal Server Error", `body "boom 3"`}, errHasNot: []string{"boom 1"}},
		{name: "max_elapsed exhausted", settings: `max_elapsed: 10s, backoff: {initial: 4s, max: 4s}`,
			script: []answer{{status: 503}, {status: 503}, {status: 503}, {status: 503}}, requests: 3, rejected: true,
			waits:  []time.Duration{4 * time.Second, 4 * time.Second},
			errHas: []string{"gave up after 3 attempts in 8s: the next would come after max_elapsed (10s)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, answers(tt.script...))
			o, clock := newTestOutput(t, settingsFor(rc, tt.settings))
			rec := metricEvent("a", 0, 95)
			var rejects engine.Rejects
			if err := o.Write(context.Background(), []*engine.Record{rec}, &rejects); err != nil {
				t.Fatal(err)
			}
			if got := len(rc.requests()); got != tt.requests {
				t.Errorf("%d requests, want %d", got, tt.requests)
			}
			if got := clock.waits(); !slices.Equal(got, tt.waits) {
				t.Errorf("waits %v, want %v", got, tt.waits)
			}
			if rejected := rejects.Len() == 1; rejected != tt.rejected {
				t.Fatalf("rejected = %v, want %v (%v)", rejected, tt.rejected, rejects.Items)
			}
			if !tt.rejected {
				return
			}
			it := rejects.Items[0]
			if it.Record != rec || it.Stage != "output" {
				t.Errorf("reject %+v, want the record at stage output", it)
			}
			msg := it.Err.Error()
			mustContain(t, "reason", msg, append([]string{"webhook POST " + rc.URL}, tt.errHas...)...)
			for _, s := range tt.errHasNot {
				if strings.Contains(msg, s) {
					t.Errorf("reason %q contains %q", msg, s)
				}
			}
		})
	}
}

// A reason quotes at most 512 bytes of the last response body.
func TestReasonQuotesTheStartOfTheBody(t *testing.T) {
	long := strings.Repeat("x", 600) + "END"
	rc := newReceiver(t, answers(answer{status: 422, body: long}))
	o, _ := newTestOutput(t, settingsFor(rc, ""))
	var rejects engine.Rejects
	if err := o.Write(context.Background(), []*engine.Record{metricEvent("a", 0, 1)}, &rejects); err != nil || rejects.Len() != 1 {
		t.Fatalf("Write: %v, rejects %v", err, rejects.Items)
	}
	msg := rejects.Items[0].Err.Error()
	mustContain(t, "reason", msg, `body "`+strings.Repeat("x", 512)+`"`)
	if strings.Contains(msg, "x"+strings.Repeat("x", 512)) || strings.Contains(msg, "END") {
		t.Errorf("reason quotes more than 512 bytes: %d bytes long", len(msg))
	}
}

// A receiver that accepts the connection and never answers is given up after timeout and
// tried again.
func TestReceiverThatNeverAnswersIsTimedOutAndRetried(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rc := newReceiver(t, func(n int, r *http.Request, w http.ResponseWriter) {
		if n == 1 {
			select {
			case <-r.Context().Done(): // the client gave up
			case <-release:
			}
		}
	})
	o, clock := newTestOutput(t, settingsFor(rc, `timeout: 50ms, max_attempts: 2`))
	var rejects engine.Rejects
	if err := o.Write(context.Background(), []*engine.Record{metricEvent("a", 0, 1)}, &rejects); err != nil || rejects.Len() != 0 {
		t.Fatalf("Write: %v, rejects %v", err, rejects.Items)
	}
	if n := len(rc.requests()); n != 2 {
		t.Errorf("%d requests, want 2 (the one timed out, then its retry)", n)
	}
	if w := clock.waits(); len(w) != 1 {
		t.Errorf("waits %v, want one backoff before the retry", w)
	}
}

// A timeout that is never answered ends as a reason saying so.
func TestTimeoutsExhaustedSayTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rc := newReceiver(t, func(n int, r *http.Request, w http.ResponseWriter) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	o, _ := newTestOutput(t, settingsFor(rc, `timeout: 20ms, max_attempts: 2`))
	var rejects engine.Rejects
	if err := o.Write(context.Background(), []*engine.Record{metricEvent("a", 0, 1)}, &rejects); err != nil || rejects.Len() != 1 {
		t.Fatalf("Write: %v, rejects %v", err, rejects.Items)
	}
	mustContain(t, "reason", rejects.Items[0].Err.Error(), "gave up after 2 attempts", "last error: no response within 20ms (timeout)")
}

// No more requests are in flight than concurrency allows, and that many are used: the
// receiver holds requests in waves of `limit`, releasing a wave a moment after it is
// complete, so an output sending more at once is seen with more in flight, and one sending
// fewer leaves its waves incomplete (each then released by a deadline).
func TestConcurrencyLimitIsRespectedAndUsed(t *testing.T) {
	const limit, records = 3, 12
	var (
		mu         sync.Mutex
		changed    = sync.NewCond(&mu)
		inFlight   int
		most       int
		arrived    int
		released   = map[int]bool{} // wave -> released
		incomplete int
	)
	release := func(wave int) {
		mu.Lock()
		defer mu.Unlock()
		released[wave] = true
		changed.Broadcast()
	}
	rc := newReceiver(t, func(n int, r *http.Request, w http.ResponseWriter) {
		mu.Lock()
		defer mu.Unlock()
		inFlight++
		most = max(most, inFlight)
		arrived++
		wave := (arrived - 1) / limit
		if arrived%limit == 0 {
			// A moment for a request beyond the limit to arrive, if the output sends one.
			time.AfterFunc(20*time.Millisecond, func() { release(wave) })
		}
		deadline := time.AfterFunc(2*time.Second, func() {
			mu.Lock()
			defer mu.Unlock()
			if !released[wave] {
				incomplete++
				released[wave] = true
			}
			changed.Broadcast()
		})
		for !released[wave] {
			changed.Wait()
		}
		deadline.Stop()
		inFlight--
	})
	o, _ := newTestOutput(t, settingsFor(rc, fmt.Sprintf("concurrency: %d", limit)))
	batch := enginetest.Events(0, records)
	for _, rec := range batch {
		rec.Key = nil // records without a key may all be in flight at once
	}
	var rejects engine.Rejects
	if err := o.Write(context.Background(), batch, &rejects); err != nil || rejects.Len() != 0 {
		t.Fatalf("Write: %v, rejects %v", err, rejects.Items)
	}
	mu.Lock()
	defer mu.Unlock()
	if most != limit || incomplete > 0 {
		t.Errorf("at most %d requests in flight, want exactly %d (waves left incomplete: %d)", most, limit, incomplete)
	}
	if arrived != records {
		t.Errorf("%d requests, want %d", arrived, records)
	}
}

// Records with one key reach the receiver in batch order, each after the one before it
// was answered, while records of other keys go on in parallel; a receiver failing now and
// then does not reorder them. The receiver holds each request until one of every key is in
// flight (or briefly, when fewer are left), so an output sending a key's next record early
// would be seen doing it.
func TestRecordsOfOneKeyArriveInOrder(t *testing.T) {
	const keys, perKey = 3, 6
	var (
		mu         sync.Mutex
		inFlight   = map[string]bool{}
		arrivedNew = sync.NewCond(&mu)
		delivered  = map[string][]int{}
		violations []string
	)
	rc := newReceiver(t, nil)
	rc.respond = func(n int, r *http.Request, w http.ResponseWriter) {
		var v struct {
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal(rc.requests()[n-1].body, &v); err != nil {
			t.Error(err)
			return
		}
		key, seqText, _ := strings.Cut(v.EventID, "-")
		seq, _ := strconv.Atoi(seqText)
		mu.Lock()
		defer mu.Unlock()
		if inFlight[key] {
			violations = append(violations, fmt.Sprintf("%s sent while an earlier record of %s was in flight", v.EventID, key))
		}
		inFlight[key] = true
		arrivedNew.Broadcast()
		hold := time.AfterFunc(50*time.Millisecond, func() { mu.Lock(); defer mu.Unlock(); arrivedNew.Broadcast() })
		deadline := time.Now().Add(50 * time.Millisecond)
		for len(inFlight) < keys && time.Now().Before(deadline) {
			arrivedNew.Wait()
		}
		hold.Stop()
		delete(inFlight, key)
		if n%4 == 0 { // every fourth request fails, and its record is sent again
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if d := delivered[key]; len(d) > 0 && d[len(d)-1] >= seq {
			violations = append(violations, fmt.Sprintf("%s delivered after %s-%d", v.EventID, key, d[len(d)-1]))
		}
		delivered[key] = append(delivered[key], seq)
	}
	o, _ := newTestOutput(t, settingsFor(rc, "concurrency: 4, backoff: {initial: 1ms, max: 1ms}"))
	var batch []*engine.Record
	for seq := range perKey {
		for k := range keys {
			key := string(rune('a' + k))
			batch = append(batch, &engine.Record{Key: []byte(key), Value: map[string]any{"event_id": fmt.Sprintf("%s-%d", key, seq)}})
		}
	}
	var rejects engine.Rejects
	if err := o.Write(context.Background(), batch, &rejects); err != nil || rejects.Len() != 0 {
		t.Fatalf("Write: %v, rejects %v", err, rejects.Items)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, v := range violations {
		t.Error(v)
	}
	for k := range keys {
		key := string(rune('a' + k))
		if want := []int{0, 1, 2, 3, 4, 5}; !slices.Equal(delivered[key], want) {
			t.Errorf("key %s delivered as %v, want %v", key, delivered[key], want)
		}
	}
}

// While a receiver fails and requests wait to be tried again, the output says so (the
// stream's /-/ready reports it: the runtime never sees these failures, they are retried
// inside Write); once the receiver answers, it says nothing.
func TestProblemWhileTheReceiverFails(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	rc := newReceiver(t, func(n int, r *http.Request, w http.ResponseWriter) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	o, _ := newTestOutput(t, settingsFor(rc, `max_attempts: 1000000000, max_elapsed: 100000h`))
	if err := o.Problem(); err != nil {
		t.Fatalf("Problem before any request: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		done <- o.Write(context.Background(), []*engine.Record{metricEvent("a", 0, 1)}, &engine.Rejects{})
	}()
	eventually(t, "the output reports the failing receiver", func() bool { return o.Problem() != nil })
	mustContain(t, "problem", o.Problem().Error(), "failing, retrying", "503")
	down.Store(false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := o.Problem(); err != nil {
		t.Errorf("Problem after the receiver answered: %v", err)
	}
}
