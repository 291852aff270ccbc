package webhook_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/runtime"
	"github.com/eventops/eventops-engine/engine/runtime/runtimetest"
	outputs "github.com/eventops/eventops-engine/outputs/all"
	processors "github.com/eventops/eventops-engine/processors/all"
)

var components = engine.Components{Processors: processors.Factories(), Outputs: outputs.Factories()}

// Lint reports every mistake of testdata/lint_mistakes.yaml at its file:line:col: settings
// the decoder refuses, templates using fields the records do not have (the alert records of
// a threshold processor, checked inside the template), a format that does not fit the
// records, TLS files that cannot be read, and warns about insecure_skip_verify.
func TestLintPlacesWebhookMistakes(t *testing.T) {
	const file = "testdata/lint_mistakes.yaml"
	want := []string{
		file + `:29:36: sinks[0].webhook.template: expression "toJSON(mesage)": unknown field "mesage" (did you mean "message"?)`,
		file + `:30:56: sinks[1].webhook.url: want an http:// or https:// URL, got scheme "ftp"`,
		file + `:31:92: sinks[2].webhook.format: must be one of json, alertmanager, template; got "slack"`,
		file + `:37:54: sinks[3].webhook.generator_url: expression "fingerprnt": unknown field "fingerprnt" (did you mean "fingerprint"?)`,
		file + `:38:35: sinks[3].webhook.tls.insecure_skip_verify: warning: certificates are not verified`,
		file + `:38:50: sinks[3].webhook.tls.ca_file: open no-such-ca.pem: no such file or directory`,
		file + `:39:105: sinks[4].webhook.format: format alertmanager sends alert records, as a threshold processor emits them; the records reaching this output (the map at processors[0].map of stream normalize) have no rule, fingerprint, state`,
		file + `:44:17: sinks[5].webhook.template: template is the body of format template`,
		file + `:45:28: sinks[5].webhook.batch.max_records: must be at least 1, got 0`,
		file + `:46:21: sinks[5].webhook.bearer_token: set either basic_auth or bearer_token, not both`,
		file + `:48:32: sinks[5].webhook.headers.Authorization: Authorization is set by basic_auth or bearer_token`,
		file + `:48:49: sinks[5].webhook.headers.Bad Header: "Bad Header" is not a valid header name`,
		file + `:49:12: sinks[5].webhook.tls: the url is http, so there is no TLS to configure`,
		file + `:50:17: sinks[5].webhook.group_by: group_by is part of the alertmanager payload`,
	}
	runtimetest.LintFindings(t, file, components, want)
}

// The example pipeline passes lint without a finding, warnings included.
func TestExampleLintsClean(t *testing.T) {
	_, cfg, err := runtime.Check("../../examples/webhook.yaml", runtime.Options{Components: components, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) > 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
}
