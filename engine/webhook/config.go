package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/eventops/eventops-engine/config"
)

// Formats of the request body.
const (
	FormatJSON         = "json"
	FormatAlertmanager = "alertmanager"
	FormatTemplate     = "template"
)

// Config is the webhook output's settings: where records are sent, in which body, and how
// hard to try.
type Config struct {
	URL    string `yaml:"url" required:"true" doc:"Where requests go: an http or https URL. Redirects are not followed (they would carry the headers to an address nobody configured): give the final address. A password or query values in it are redacted from errors, but secrets are better sent in headers."`
	Method string `yaml:"method" default:"POST" enum:"POST,PUT,PATCH" doc:"HTTP method."`
	Format string `yaml:"format" default:"json" enum:"json,alertmanager,template" doc:"Body of a request: json sends the record as its JSON object (an array of them when batch.max_records is above 1); alertmanager sends alert records as Alertmanager sends them to its webhook receivers (version 4), so receivers written for Alertmanager work unchanged; template sends the text of template."`

	Template *config.Expr `yaml:"template" doc:"With format template: the body, text with {{expr}} placeholders evaluated on the record (expressions as everywhere in the file, e.g. '{\"text\": {{toJSON(message)}}}'). Lint checks the fields they use."`

	Receiver     string       `yaml:"receiver" default:"eventops-engine" doc:"With format alertmanager: the receiver name the payload carries."`
	ExternalURL  string       `yaml:"external_url" doc:"With format alertmanager: externalURL in the payload, the address of what sent it (e.g. this engine's API)."`
	GeneratorURL *config.Expr `yaml:"generator_url" doc:"With format alertmanager: each alert's generatorURL, a template like template, e.g. 'http://ops.example.com:8088/alerts?fingerprint={{fingerprint}}'."`
	GroupBy      []string     `yaml:"group_by" doc:"With format alertmanager: label names that split a batch into groups, one payload per group (groupLabels and groupKey say which), as Alertmanager's route group_by does. Without it a payload holds any alerts of the batch."`

	Batch Batch `yaml:"batch" doc:"How many records one request carries."`

	Delivery `yaml:",inline"`

	IdempotencyHeader string `yaml:"idempotency_header" default:"Idempotency-Key" doc:"Header whose value identifies what a request carries, the same each time the same records are sent again (a retry, a redelivery after a restart), so a receiver can drop repeats: for an alert its fingerprint, state and transition time, else its event_id; for a batch, a hash of its records' keys. Empty to send none."`

	// validFor is, for the alertmanager output's senders, how far ahead a firing alert's
	// endsAt is.
	validFor time.Duration

	DeliveryLog DeliveryLog `yaml:"delivery_log" doc:"Where the output remembers what the receiver acknowledged, so that a restart after a kill -9 or a crash sends none of it again."`
}

// Delivery is how requests are sent: timeouts, retries, concurrency, credentials and size
// limits, shared by the webhook and alertmanager outputs.
type Delivery struct {
	Timeout     config.Duration `yaml:"timeout" default:"10s" doc:"Longest wait for one request's response status; a receiver that does not answer in time is tried again."`
	MaxAttempts int             `yaml:"max_attempts" default:"10" doc:"Requests made for one record before it goes to the dead-letter topic."`
	MaxElapsed  config.Duration `yaml:"max_elapsed" default:"5m" doc:"Longest time one record is retried, from its first attempt; then it goes to the dead-letter topic with the last status and body."`
	Backoff     Backoff         `yaml:"backoff" doc:"Waits between attempts: exponential with full jitter. A 429 or 503 with Retry-After waits as long as the receiver asks, if that fits in max_elapsed."`
	Concurrency int             `yaml:"concurrency" default:"4" doc:"Requests in flight at once. Records with one key (an alert's fingerprint, else the Kafka record key) are still delivered in order, each after the one before it succeeded or was given up."`

	Headers     map[string]string `yaml:"headers" doc:"Headers added to every request, e.g. {X-Api-Key: '${HOOK_KEY}'}. Their values are never logged and are redacted from errors."`
	BasicAuth   *BasicAuth        `yaml:"basic_auth" doc:"HTTP basic authentication. Not with bearer_token."`
	BearerToken string            `yaml:"bearer_token" doc:"Sent as Authorization: Bearer <token>; use ${VAR}. Not with basic_auth."`
	TLS         *TLS              `yaml:"tls" doc:"TLS settings for an https URL."`

	MaxBodyBytes config.Size `yaml:"max_body_bytes" default:"1MiB" doc:"Largest request body. A batch over it is split; a single record over it goes to the dead-letter topic with its size instead of being sent."`
}

// Batch says how many records one request carries.
type Batch struct {
	MaxRecords int `yaml:"max_records" default:"1" doc:"Most records in one request; 1 sends one request per record. Not with format template. With format alertmanager a notification holds each alert once: a second transition of an alert in the same batch (firing, then resolved) goes in the next request, after the first."`
}

// DeliveryLog is the file of the idempotency keys of the records the receiver acknowledged.
type DeliveryLog struct {
	Dir  string `yaml:"dir" default:"data/webhook" doc:"Directory of the log, one file per output named after its stream (<stream>.log), relative to the working directory as the broker's data_dir is. The stream commits a batch's offsets once the whole batch is delivered, so a kill halfway makes the next run read the batch again: records the log holds are not sent again (eventops_webhook_redelivery_skipped_total). Empty for no log: then those records are sent again, with the same idempotency key. The log survives a kill of the process, not a power cut of the host (no fsync)."`
	Keep int    `yaml:"keep" default:"100000" doc:"Newest keys kept; a batch read again must be among them, so keep it well above the records in flight (batch_size of the stream or sink)."`
}

// Backoff is the wait between attempts of one request.
type Backoff struct {
	Initial config.Duration `yaml:"initial" default:"500ms" doc:"Upper bound of the first wait; each further wait's bound doubles."`
	Max     config.Duration `yaml:"max" default:"30s" doc:"Largest bound of a wait."`
}

// BasicAuth is a username and password sent with every request.
type BasicAuth struct {
	Username string `yaml:"username" required:"true" doc:"User name."`
	Password string `yaml:"password" doc:"Password; use ${VAR}. Redacted from errors."`
}

// TLS configures the client side of https connections. Files are read relative to the
// working directory, as the engine's data paths are.
type TLS struct {
	CAFile             string `yaml:"ca_file" doc:"PEM file of the certificate authorities that may sign the receiver's certificate, instead of the system's."`
	CertFile           string `yaml:"cert_file" doc:"PEM client certificate, for receivers that authenticate clients; with key_file."`
	KeyFile            string `yaml:"key_file" doc:"PEM private key of cert_file."`
	ServerName         string `yaml:"server_name" doc:"Name the receiver's certificate must have, when it is not the URL's host."`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" doc:"Accept any certificate: anyone on the path can read and change the requests. For tests only; lint warns."`
}

var _ config.Validator = (*Config)(nil)

// Limits of the settings: beyond them a value is a mistake, not a choice.
const (
	maxConcurrency = 256
	minBodyBytes   = 1 << 10
)

// labelNameRE is Prometheus' and Alertmanager's rule for label names.
var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Validate checks every setting that needs neither the records nor the network.
func (c *Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, config.FieldErrorf(field, format, args...))
	}
	if err := checkURL(c.URL); err != nil {
		add("url", "%v", err)
	}
	c.validateFormat(add)
	c.validateBatch(add)
	c.Delivery.validate(add)
	c.validateHeaders(add)
	if c.TLS != nil && strings.HasPrefix(strings.ToLower(c.URL), "http:") {
		add("tls", "the url is http, so there is no TLS to configure; use an https URL or remove tls")
	}
	return errors.Join(errs...)
}

// checkURL accepts an absolute http or https URL with a host.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %v", redactedParseError(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("want an http:// or https:// URL, got scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("the URL has no host")
	}
	return nil
}

// redactedParseError is url.Parse's error without the URL it quotes, which may hold a
// secret.
func redactedParseError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// validateFormat checks that the settings of one format are not given to another.
func (c *Config) validateFormat(add func(field, format string, args ...any)) {
	hasTemplate := c.Template != nil && !c.Template.IsZero()
	switch {
	case c.Format == FormatTemplate && !hasTemplate:
		add("template", "format template needs template: the body to send")
	case c.Format != FormatTemplate && hasTemplate:
		add("template", "template is the body of format template; set format: template or remove it (format is %s)", c.Format)
	}
	if c.Format == FormatTemplate && c.Batch.MaxRecords > 1 {
		add("batch.max_records", "format template sends one record per request; a batch needs format json or alertmanager")
	}
	if c.Format != FormatAlertmanager {
		for _, f := range []struct {
			field string
			set   bool
		}{
			{"external_url", c.ExternalURL != ""},
			{"generator_url", c.GeneratorURL != nil && !c.GeneratorURL.IsZero()},
			{"group_by", len(c.GroupBy) > 0},
		} {
			if f.set {
				add(f.field, "%s is part of the alertmanager payload; set format: alertmanager or remove it (format is %s)", f.field, c.Format)
			}
		}
	}
	for i, name := range c.GroupBy {
		if !labelNameRE.MatchString(name) {
			add(fmt.Sprintf("group_by[%d]", i), "%q is not a label name (letters, digits and _, not starting with a digit)", name)
		}
	}
	if c.ExternalURL != "" {
		if err := checkURL(c.ExternalURL); err != nil {
			add("external_url", "%v", err)
		}
	}
}

// validateBatch checks the limits of batching and of the delivery log.
func (c *Config) validateBatch(add func(field, format string, args ...any)) {
	if c.Batch.MaxRecords < 1 {
		add("batch.max_records", "must be at least 1, got %d", c.Batch.MaxRecords)
	}
	if c.DeliveryLog.Dir != "" && c.DeliveryLog.Keep < 1 {
		add("delivery_log.keep", "must be at least 1, got %d (set dir to \"\" for no log)", c.DeliveryLog.Keep)
	}
}

// validate checks the limits of retries, concurrency and bodies, and the headers.
func (c *Delivery) validate(add func(field, format string, args ...any)) {
	if c.Timeout <= 0 {
		add("timeout", "must be positive, e.g. 10s: without it a receiver that never answers holds the stream for ever")
	}
	if c.MaxAttempts < 1 {
		add("max_attempts", "must be at least 1, got %d", c.MaxAttempts)
	}
	if c.MaxElapsed <= 0 {
		add("max_elapsed", "must be positive, e.g. 5m")
	}
	if c.Backoff.Initial <= 0 {
		add("backoff.initial", "must be positive, e.g. 500ms")
	}
	if c.Backoff.Max < c.Backoff.Initial {
		add("backoff.max", "must be at least backoff.initial (%s), got %s", c.Backoff.Initial, c.Backoff.Max)
	}
	if c.Concurrency < 1 || c.Concurrency > maxConcurrency {
		add("concurrency", "must be between 1 and %d, got %d", maxConcurrency, c.Concurrency)
	}
	if c.MaxBodyBytes < minBodyBytes {
		add("max_body_bytes", "must be at least %s, got %s", config.Size(minBodyBytes), c.MaxBodyBytes)
	}
	if c.TLS != nil && (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add("tls", "set both cert_file and key_file (a client certificate needs its key), or neither")
	}
	c.validateHeaders(add)
}

// reservedHeaders are set by the HTTP client itself; a value here would be ignored or
// would break the request.
var reservedHeaders = []string{"Host", "Content-Length", "Transfer-Encoding", "Connection"}

// validateHeaders checks that no header is the idempotency header.
func (c *Config) validateHeaders(add func(field, format string, args ...any)) {
	for name := range c.Headers {
		if c.IdempotencyHeader != "" && http.CanonicalHeaderKey(name) == http.CanonicalHeaderKey(c.IdempotencyHeader) {
			add("headers."+name, "%s is the idempotency header (idempotency_header), whose value the output sets per request", http.CanonicalHeaderKey(name))
		}
	}
	if c.IdempotencyHeader != "" && !httpguts.ValidHeaderFieldName(c.IdempotencyHeader) {
		add("idempotency_header", "%q is not a valid header name", c.IdempotencyHeader)
	}
}

// validateHeaders checks header names and values, and that authentication is set once.
func (c *Delivery) validateHeaders(add func(field, format string, args ...any)) {
	for name, value := range c.Headers {
		field := "headers." + name
		canonical := http.CanonicalHeaderKey(name)
		switch {
		case !httpguts.ValidHeaderFieldName(name):
			add(field, "%q is not a valid header name", name)
		case !httpguts.ValidHeaderFieldValue(value):
			add(field, "the value has characters a header cannot carry (a line break?)")
		case containsFold(reservedHeaders, canonical):
			add(field, "%s is set by the HTTP client itself", canonical)
		case canonical == "Authorization" && (c.BasicAuth != nil || c.BearerToken != ""):
			add(field, "Authorization is set by basic_auth or bearer_token; keep one of them")
		}
	}
	if c.BasicAuth != nil && c.BearerToken != "" {
		add("bearer_token", "set either basic_auth or bearer_token, not both: each is an Authorization header")
	}
	if c.BearerToken != "" && !httpguts.ValidHeaderFieldValue(c.BearerToken) {
		add("bearer_token", "the token has characters a header cannot carry (a line break?)")
	}
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
