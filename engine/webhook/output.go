package webhook

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/amalert"
	"github.com/eventops/eventops-engine/engine/eval"
)

// Output sends records to an HTTP receiver.
type Output struct {
	cfg    *Config
	url    *url.URL
	target string // "POST <redacted url>", as messages name the receiver
	enc    encoder
	plan   planner
	client *http.Client
	// redact removes the configured secrets from text bound for errors and logs.
	redact func(string) string
	// templates is the clock templates' now() reads: the engine's.
	templates engine.Clock
	clock     clock
	jitter    func(bound time.Duration) time.Duration
	metrics   metrics
	log       *slog.Logger
	// delivered remembers what the receiver acknowledged across restarts; nil without a
	// delivery log.
	delivered *deliveryLog

	// retrying counts the requests waiting to try again, and lastFailure is the newest
	// failure among them: what /-/ready reports while the receiver fails (Problem).
	retrying    atomic.Int64
	lastFailure atomic.Pointer[string]
}

var _ engine.HealthReporter = (*Output)(nil)

// Problem says, while requests wait to be tried again, the newest failure; nil otherwise.
func (o *Output) Problem() error {
	if o.retrying.Load() == 0 {
		return nil
	}
	if f := o.lastFailure.Load(); f != nil {
		return errors.New(*f)
	}
	return nil
}

var (
	_ engine.Output          = (*Output)(nil)
	_ engine.SelfTimedOutput = (*Output)(nil)
)

// New opens an output for c (validated by its Validate), checking its templates against
// env.Input. It connects to nothing until the first Write.
func New(c *Config, env engine.OutputEnv) (*Output, error) {
	comp, err := compile(c, env.BuildEnv)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", redactedParseError(err))
	}
	o := &Output{
		cfg:       c,
		url:       u,
		target:    c.Method + " " + redactURL(u),
		enc:       comp.encoder(c),
		client:    newClient(c, comp.tls),
		redact:    secretsRedactor(c, u),
		templates: env.Clock,
		clock:     wallClock{},
		jitter:    fullJitter,
		metrics:   newMetrics(env),
		log:       env.Logger,
	}
	o.plan = planner{enc: o.enc, maxRecords: c.Batch.MaxRecords, maxBody: int(c.MaxBodyBytes), onePerKey: c.Format == FormatAlertmanager || c.Format == formatAlertmanagerAPI}
	if o.templates == nil {
		o.templates = engine.WallClock{}
	}
	if o.log == nil {
		o.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o, nil
}

// newClient is an HTTP client that keeps up to concurrency connections to the receiver
// open and follows no redirect: a redirect would carry the headers (credentials) to an
// address nobody configured, so a 3xx is reported instead.
func newClient(c *Config, tlsConfig *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = c.Concurrency
	if tlsConfig != nil {
		tr.TLSClientConfig = tlsConfig
	}
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// TimesItsOwnWrites says that every wait of a Write is bounded by the output itself (a
// timeout per request, max_attempts and max_elapsed per record), so a long Write is records
// being retried, not a hang.
func (o *Output) TimesItsOwnWrites() {}

// Write sends batch and returns when every record is delivered (a 2xx) or given up (in
// rejects, with the reason), or with ctx.Err() when ctx ends first: then the caller writes
// the batch again, and records already delivered are sent again, with the same
// idempotency key.
func (o *Output) Write(ctx context.Context, batch []*engine.Record, rejects *engine.Rejects) error {
	reqs, failed, err := o.deliverAll(ctx, batch)
	if err != nil {
		return err
	}
	for _, f := range failed {
		o.reject(rejects, f.it, f.reason, fmt.Errorf("webhook %s: %w", o.target, f.err))
	}
	for _, r := range reqs {
		for _, it := range r.items {
			if r.failure != nil {
				o.reject(rejects, it, r.reason, r.failure)
			}
		}
	}
	return nil
}

// deliverAll plans and sends batch: the requests (each settled, with its failure if given
// up), the records that could not be sent at all, or ctx's error.
func (o *Output) deliverAll(ctx context.Context, batch []*engine.Record) ([]*request, []settled, error) {
	items, failed := o.prepare(batch)
	reqs, tooLarge := o.plan.plan(items)
	if err := o.send(ctx, reqs); err != nil {
		return nil, nil, err
	}
	return reqs, append(failed, tooLarge...), nil
}

// resend sends batch again as it is, for a sender that repeats what it sent (the
// alertmanager output's firing alerts): nothing is dead-lettered, and it says how many
// records were not delivered.
func (o *Output) resend(ctx context.Context, batch []*engine.Record) (undelivered int, err error) {
	reqs, failed, err := o.deliverAll(ctx, batch)
	if err != nil {
		return 0, err
	}
	undelivered = len(failed)
	for _, r := range reqs {
		if r.failure != nil {
			undelivered += len(r.items)
		}
	}
	return undelivered, nil
}

// prepare encodes each record of batch; those that cannot be sent are given up, and those
// that are not notified (alerts before they fire) dropped.
func (o *Output) prepare(batch []*engine.Record) ([]*item, []settled) {
	items := make([]*item, 0, len(batch))
	var failed []settled
	now := o.templates.Now()
	for _, rec := range batch {
		it := &item{rec: rec, key: orderKey(rec), idem: idempotencyKey(rec)}
		err := o.enc.prepare(it, eval.Env{Vars: rec.Value, Source: rec.Source, Now: now})
		switch {
		case errors.Is(err, amalert.ErrNotNotified):
			o.metrics.skipped.Inc()
		case o.delivered != nil && o.delivered.delivered(it.idem):
			o.metrics.redelivery.Inc()
		case err != nil:
			failed = append(failed, settled{it: it, reason: reasonInvalid, err: err})
		default:
			items = append(items, it)
		}
	}
	return items, failed
}

func (o *Output) reject(rejects *engine.Rejects, it *item, reason string, err error) {
	o.metrics.deadLettered(reason).Inc()
	o.log.Warn("webhook gave a record up; it goes to the dead-letter topic", "reason", reason, "err", err,
		"topic", it.rec.Source.Topic, "partition", it.rec.Source.Partition, "offset", it.rec.Source.Offset)
	rejects.Add(it.rec, "output", err)
}

// Close closes the idle connections and the delivery log.
func (o *Output) Close() error {
	o.client.CloseIdleConnections()
	if o.delivered != nil {
		return o.delivered.Close()
	}
	return nil
}

// redactURL is u with its password and query values replaced by xxxxx.
func redactURL(u *url.URL) string {
	c := *u
	if q := c.Query(); len(q) > 0 {
		for k, vs := range q {
			for i := range vs {
				vs[i] = "xxxxx"
			}
			q[k] = vs
		}
		c.RawQuery = q.Encode()
	}
	return c.Redacted()
}

// minSecretLen is the shortest value redacted from messages: shorter ones (a header such
// as X-Retry: 1) are no secrets, and replacing them would garble every message.
const minSecretLen = 4

// secretsRedactor replaces, in a message, every value configured as or beside a secret:
// header values, the basic auth credentials, the bearer token, the URL's password and query
// values. A receiver may echo them back in its response body, which messages quote.
func secretsRedactor(c *Config, u *url.URL) func(string) string {
	var secrets []string
	for _, v := range c.Headers {
		secrets = append(secrets, v)
	}
	if c.BasicAuth != nil {
		// The Authorization header carries user and password in base64, which a receiver
		// may echo as it got it.
		userPass := base64.StdEncoding.EncodeToString([]byte(c.BasicAuth.Username + ":" + c.BasicAuth.Password))
		secrets = append(secrets, c.BasicAuth.Password, userPass)
	}
	secrets = append(secrets, c.BearerToken)
	if p, ok := u.User.Password(); ok {
		secrets = append(secrets, p, url.QueryEscape(p))
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			secrets = append(secrets, v, url.QueryEscape(v))
		}
	}
	var pairs []string
	for _, s := range secrets {
		if len(s) >= minSecretLen {
			pairs = append(pairs, s, "<redacted>")
		}
	}
	r := strings.NewReplacer(pairs...)
	return r.Replace
}

// metrics are the output's counters, no-ops without a registry (tests).
type metrics struct {
	requests     func(class string) prometheus.Counter
	retries      prometheus.Counter
	deadLettered func(reason string) prometheus.Counter
	skipped      prometheus.Counter
	redelivery   prometheus.Counter
	seconds      prometheus.Observer
}

func newMetrics(env engine.OutputEnv) metrics {
	m := env.Metrics
	if m == nil {
		discard := func(string) prometheus.Counter {
			return prometheus.NewCounter(prometheus.CounterOpts{Name: "discarded"})
		}
		return metrics{requests: discard, retries: discard(""), deadLettered: discard, skipped: discard(""), redelivery: discard(""),
			seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "discarded"})}
	}
	s := env.Stream
	return metrics{
		requests:     func(class string) prometheus.Counter { return m.WebhookRequests.WithLabelValues(s, class) },
		retries:      m.WebhookRetries.WithLabelValues(s),
		deadLettered: func(reason string) prometheus.Counter { return m.WebhookDeadLettered.WithLabelValues(s, reason) },
		skipped:      m.WebhookSkipped.WithLabelValues(s),
		redelivery:   m.WebhookRedeliverySkipped.WithLabelValues(s),
		seconds:      m.WebhookRequestSeconds.WithLabelValues(s),
	}
}
