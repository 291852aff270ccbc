package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits of what is read of a response: enough for any error message, not a receiver's
// whole page; the rest is discarded with the connection.
const (
	maxResponseBytes = 64 << 10
	// maxQuotedBody is how much of the last response body a dead letter quotes.
	maxQuotedBody = 512
)

// clock is the time delivery waits by. It is the wall clock: a receiver is a real server
// and a virtual clock (rule tests) would not pace it; tests put a fake one in its place to
// see the waits without waiting.
type clock interface {
	Now() time.Time
	// Sleep waits d or until ctx is done (then returns ctx.Err()).
	Sleep(ctx context.Context, d time.Duration) error
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// fullJitter is a uniformly random wait in [0, bound], the "full jitter" of AWS's analysis
// of backoff: retries of many records spread out instead of arriving together.
func fullJitter(bound time.Duration) time.Duration {
	if bound <= 0 {
		return 0
	}
	return rand.N(bound + 1)
}

// response is what one attempt got.
type response struct {
	status int    // 0: no response
	line   string // "503 Service Unavailable"
	body   []byte // the first maxQuotedBody bytes
	err    error  // why there was no response
	// retryAfter is the wait the receiver asked for (Retry-After on a 429 or 503).
	retryAfter    time.Duration
	hasRetryAfter bool
}

func (r response) ok() bool { return r.status >= 200 && r.status < 300 }

// retryable says whether trying again may succeed: no response at all (refused, reset,
// timed out), 408 Request Timeout, 425 Too Early, 429 Too Many Requests, or a 5xx. Any
// other status says the request itself is wrong, and repeating it cannot help.
func (r response) retryable() bool {
	switch {
	case r.status == 0:
		return true
	case r.status == http.StatusRequestTimeout, r.status == http.StatusTooEarly, r.status == http.StatusTooManyRequests:
		return true
	}
	return r.status >= 500
}

// send delivers every request, at most concurrency at once, each after the requests it
// waits for; it returns ctx.Err() when the context ended before every request settled.
// Workers take requests in order, so a request's predecessors are always taken (and
// settle) before it: waiting for them never deadlocks.
func (o *Output) send(ctx context.Context, reqs []*request) error {
	var next sync.Mutex
	i := 0
	take := func() *request {
		next.Lock()
		defer next.Unlock()
		if i >= len(reqs) {
			return nil
		}
		i++
		return reqs[i-1]
	}
	var wg sync.WaitGroup
	for range min(o.cfg.Concurrency, len(reqs)) {
		wg.Go(func() {
			for r := take(); r != nil; r = take() {
				if waitAll(ctx, r.after) {
					o.deliver(ctx, r)
				} else {
					r.cancelled = true
				}
				close(r.done)
			}
		})
	}
	wg.Wait()
	for _, r := range reqs {
		if r.cancelled {
			return ctx.Err()
		}
	}
	return nil
}

// remember records in the delivery log that the receiver acknowledged r. A failure to
// record is logged, not retried: the records were delivered, and at worst are sent again
// after a restart, with the same idempotency keys.
func (o *Output) remember(r *request) {
	if o.delivered == nil {
		return
	}
	keys := make([]string, len(r.items))
	for i, it := range r.items {
		keys[i] = it.idem
	}
	if err := o.delivered.add(keys); err != nil {
		o.log.Warn("webhook could not record a delivery; after a restart it may be sent again", "err", err)
	}
}

// waitAll waits until every request of reqs is settled, or reports false when ctx ends first.
func waitAll(ctx context.Context, reqs []*request) bool {
	for _, r := range reqs {
		select {
		case <-r.done:
		case <-ctx.Done():
			return false
		}
	}
	return ctx.Err() == nil
}

// deliver sends r until it succeeds, or gives it up (r.failure) when the receiver refuses
// it for good, after max_attempts, or when the next attempt would come after max_elapsed.
func (o *Output) deliver(ctx context.Context, r *request) {
	start := o.clock.Now()
	retrying := false
	defer func() {
		if retrying {
			o.retrying.Add(-1)
		}
	}()
	for attempt := 1; ; attempt++ {
		resp := o.attempt(ctx, r)
		switch {
		case resp.ok():
			o.remember(r)
			return
		case ctx.Err() != nil:
			r.cancelled = true
			return
		case !resp.retryable():
			r.reason, r.failure = reasonRejected, o.failed(resp, "refused, not retried (only no response, 408, 425, 429 and 5xx are)")
			return
		case attempt >= o.cfg.MaxAttempts:
			r.reason, r.failure = reasonExhausted, o.failed(resp, fmt.Sprintf("gave up after %s (max_attempts) in %s", attempts(attempt), o.since(start)))
			return
		}
		wait := o.wait(attempt, resp)
		if o.clock.Now().Add(wait).Sub(start) > o.cfg.MaxElapsed.D() {
			why := fmt.Sprintf("gave up after %s in %s: the next would come after max_elapsed (%s)", attempts(attempt), o.since(start), o.cfg.MaxElapsed)
			if resp.hasRetryAfter {
				why = fmt.Sprintf("gave up after %s in %s: the receiver asked to wait %s (Retry-After), beyond max_elapsed (%s)", attempts(attempt), o.since(start), wait, o.cfg.MaxElapsed)
			}
			r.reason, r.failure = reasonExhausted, o.failed(resp, why)
			return
		}
		o.metrics.retries.Inc()
		o.log.Debug("webhook request failed; retrying", "url", o.target, "attempt", attempt, "status", resp.status, "wait", wait, "err", o.redact(fmt.Sprint(resp.err)))
		failure := o.failed(resp, fmt.Sprintf("failing, retrying (attempt %d)", attempt)).Error()
		o.lastFailure.Store(&failure)
		if !retrying {
			retrying = true
			o.retrying.Add(1)
		}
		if o.clock.Sleep(ctx, wait) != nil {
			r.cancelled = true
			return
		}
	}
}

func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return strconv.Itoa(n) + " attempts"
}

func (o *Output) since(start time.Time) time.Duration {
	return o.clock.Now().Sub(start).Round(time.Millisecond)
}

// wait is how long to wait before attempt+1: what the receiver asked for, or a full-jitter
// exponential backoff.
func (o *Output) wait(attempt int, resp response) time.Duration {
	if resp.hasRetryAfter {
		return resp.retryAfter
	}
	bound := o.cfg.Backoff.Initial.D()
	for range attempt - 1 {
		if bound >= o.cfg.Backoff.Max.D() {
			break
		}
		bound *= 2
	}
	return o.jitter(min(bound, o.cfg.Backoff.Max.D()))
}

// attempt makes one request, bounded by the timeout.
func (o *Output) attempt(ctx context.Context, r *request) response {
	actx, cancel := context.WithTimeout(ctx, o.cfg.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(actx, o.cfg.Method, o.url.String(), bytes.NewReader(r.body))
	if err != nil {
		return response{err: err}
	}
	o.setHeaders(req, r)
	began := o.clock.Now()
	defer func() { o.metrics.seconds.Observe(o.clock.Now().Sub(began).Seconds()) }()
	resp, err := o.client.Do(req)
	if err != nil {
		o.metrics.requests("error").Inc()
		return response{err: o.transportError(ctx, actx, err)}
	}
	defer resp.Body.Close()
	// A body cut by the timeout still leaves the status, which is what counts.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	o.metrics.requests(statusClass(resp.StatusCode)).Inc()
	out := response{status: resp.StatusCode, line: resp.Status, body: body[:min(len(body), maxQuotedBody)]}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		out.retryAfter, out.hasRetryAfter = retryAfter(resp.Header.Get("Retry-After"), o.clock.Now())
	}
	return out
}

// transportError says why a request got no response, without the URL that net/http puts
// in its errors (its query may hold a secret; messages name the redacted URL instead).
func (o *Output) transportError(ctx, actx context.Context, err error) error {
	if ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no response within %s (timeout)", o.cfg.Timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func statusClass(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code/100) + "xx"
}

// retryAfter reads a Retry-After header: a number of seconds or an HTTP date.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(h, 10, 32); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// setHeaders puts the request's headers: content type, the configured ones, credentials,
// the idempotency key.
func (o *Output) setHeaders(req *http.Request, r *request) {
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "eventops-engine")
	for name, value := range o.cfg.Headers {
		req.Header.Set(name, value)
	}
	switch {
	case o.cfg.BasicAuth != nil:
		req.SetBasicAuth(o.cfg.BasicAuth.Username, o.cfg.BasicAuth.Password)
	case o.cfg.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+o.cfg.BearerToken)
	}
	if o.cfg.IdempotencyHeader != "" {
		req.Header.Set(o.cfg.IdempotencyHeader, r.idem)
	}
}

// failed is the error a given-up request's records carry to the dead-letter topic: the
// redacted URL, why it was given up, the last status (or error) and the start of the last
// response body.
func (o *Output) failed(resp response, why string) error {
	var last string
	switch {
	case resp.status == 0:
		last = fmt.Sprintf("last error: %v", resp.err)
	case resp.status >= 300 && resp.status < 400:
		last = fmt.Sprintf("last status %s: redirects are not followed (they would carry the headers to another address); set url to the final address", resp.line)
	default:
		last = "last status " + resp.line
	}
	if len(resp.body) > 0 {
		last += fmt.Sprintf(", body %q", resp.body)
	}
	return errors.New(o.redact(fmt.Sprintf("webhook %s: %s; %s", o.target, why, last)))
}
