package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/amalert"
	"github.com/eventops/eventops-engine/engine/eval"
	"github.com/eventops/eventops-engine/engine/types"
)

// Factory declares the webhook output.
var Factory = engine.OutputFactory{
	Type: "webhook",
	Doc: "Sends records to an HTTP endpoint, as a stream's output or in a sink: each record as " +
		"JSON, a body from a template, or alert records as Alertmanager's webhook payload " +
		"(version 4), which every Alertmanager webhook receiver accepts unchanged. One request " +
		"per record, or batches of up to batch.max_records. Failed requests are retried with " +
		"exponential backoff and full jitter, honouring Retry-After, up to max_attempts and " +
		"max_elapsed; then, or at once for a 4xx other than 408, 425 and 429, the record goes to " +
		"the dead-letter topic with the last status and body. The batch's offsets are committed " +
		"only once every record is delivered or dead-lettered, so a restart loses nothing; the " +
		"delivery log keeps it from sending again what the receiver acknowledged before a kill " +
		"(only a request whose answer was on its way comes twice, with the same idempotency key).",
	Example: `output:
  webhook:
    url: http://127.0.0.1:9000/hooks/alerts
    format: alertmanager
    generator_url: 'http://127.0.0.1:8088/alerts?fingerprint={{fingerprint}}'
    headers: {X-Api-Key: '${HOOK_KEY:-dev}'}
`,
	NewConfig: func() any { return &Config{} },
	InSinks:   true,
	Check:     check,
	Build:     build,
}

// check compiles the templates against the records that reach the output, checks that
// format alertmanager gets alert records, and reads the TLS files; it writes no table.
func check(cfg any, env engine.BuildEnv) ([]string, error) {
	c, err := engine.ConfigOf[Config]("webhook output", cfg)
	if err != nil {
		return nil, err
	}
	_, err = compile(c, env)
	return nil, err
}

func build(_ context.Context, cfg any, env engine.OutputEnv) (engine.Output, error) {
	c, err := engine.ConfigOf[Config]("webhook output", cfg)
	if err != nil {
		return nil, err
	}
	o, err := New(c, env)
	if err != nil || c.DeliveryLog.Dir == "" {
		return o, err
	}
	log, err := openDeliveryLog(filepath.Join(c.DeliveryLog.Dir, logFileName(env.Stream)), c.DeliveryLog.Keep)
	if err != nil {
		return nil, fmt.Errorf("delivery_log: %w", err)
	}
	o.delivered = log
	return o, nil
}

// logFileName is the delivery log's file name for a stream: its name, with what a file name
// cannot hold replaced.
func logFileName(stream string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, stream) + ".log"
}

// compiled is what a config needs besides its settings: templates and the TLS config.
type compiled struct {
	body         *eval.Template
	generatorURL *eval.Template
	tls          *tls.Config
}

// compile checks and compiles c's templates and TLS files, with every problem at once.
func compile(c *Config, env engine.BuildEnv) (*compiled, error) {
	var errs []error
	comp := &compiled{}
	template := func(e *config.Expr, what string) *eval.Template {
		if e == nil || e.IsZero() {
			return nil
		}
		t, err := eval.CompileTemplate(*e, what, env.Input, env.Warnings)
		errs = append(errs, err)
		return t
	}
	if c.Format == FormatTemplate {
		comp.body = template(c.Template, "template")
	}
	if c.Format == FormatAlertmanager || c.Format == formatAlertmanagerAPI {
		comp.generatorURL = template(c.GeneratorURL, "generator_url")
		errs = append(errs, checkAlertRecords(env.Input, c.Format))
	}
	var err error
	comp.tls, err = tlsConfig(c.TLS)
	errs = append(errs, err)
	if c.TLS != nil && c.TLS.InsecureSkipVerify && env.Warnings != nil {
		// Placed by the runtime, which knows where the setting is written.
		env.Warnings.AddWarning(config.Pos{}, env.Path+".tls.insecure_skip_verify",
			"certificates are not verified: anyone on the way to the receiver can read and change the requests (secrets included); use tls.ca_file for a private CA")
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return comp, nil
}

// checkAlertRecords reports, when the records' type is known, that they are not alerts.
func checkAlertRecords(in *types.Type, format string) error {
	missing := amalert.MissingFields(in)
	if len(missing) == 0 {
		return nil
	}
	origin := "the records reaching this output"
	if in.Origin != "" {
		origin += " (" + in.Origin + ")"
	}
	if format == formatAlertmanagerAPI {
		return fmt.Errorf("the alertmanager output sends alert records, as a threshold processor emits them; %s have no %s", origin, strings.Join(missing, ", "))
	}
	return config.FieldErrorf("format", "format alertmanager sends alert records, as a threshold processor emits them; %s have no %s: use format json or template for other records", origin, strings.Join(missing, ", "))
}

// tlsConfig reads t's files; nil without settings (the system's roots then apply).
func tlsConfig(t *TLS) (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	out := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	var errs []error
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		out.RootCAs = x509.NewCertPool()
		switch {
		case err != nil:
			errs = append(errs, config.FieldErrorf("tls.ca_file", "%v", err))
		case !out.RootCAs.AppendCertsFromPEM(pem):
			errs = append(errs, config.FieldErrorf("tls.ca_file", "%s holds no PEM certificate", t.CAFile))
		}
	}
	if t.CertFile != "" && t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			errs = append(errs, config.FieldErrorf("tls.cert_file", "cannot load the client certificate: %v", err))
		}
		out.Certificates = []tls.Certificate{cert}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// encoder is the body encoder of c's format.
func (comp *compiled) encoder(c *Config) encoder {
	switch c.Format {
	case FormatAlertmanager:
		return alertmanagerEncoder{cfg: c, generatorURL: comp.generatorURL}
	case FormatTemplate:
		return templateEncoder{tmpl: comp.body}
	case formatAlertmanagerAPI:
		return apiEncoder{generatorURL: comp.generatorURL, validFor: c.validFor}
	}
	return jsonEncoder{batched: c.Batch.MaxRecords > 1}
}
