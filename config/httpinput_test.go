package config

import (
	"testing"
	"time"
)

// An http input goes with the topic it stores into, and every mistake in it is reported at
// the setting, with what to write instead.
func TestHTTPInput(t *testing.T) {
	const head = "version: 1\nbroker: {embedded: {}}\ndead_letter: dlq\ntopics: {in: {ingest: true}, out: {}, dlq: {}}\napi: {listen: \"127.0.0.1:8088\"}\n"
	stream := func(name, input string) string {
		return "  - {name: " + name + ", input: " + input + ", output: {topic: out}}\n"
	}
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{name: "with its topic", yaml: stream("s", `{topic: in, http: {listen: "127.0.0.1:8090", path: /ingest}}`)},
		{name: "without a topic", yaml: stream("s", `{http: {listen: "127.0.0.1:8090"}}`),
			want: []string{`streams[0].input: missing required field "topic": an http, prometheus_remote_write or otlp input stores what it receives in the stream's topic before answering`}},
		{name: "with a file", yaml: stream("s", `{file: {path: x.ndjson}, http: {listen: "127.0.0.1:8090"}}`),
			want: []string{`streams[0].input.http: a receiver stores what it receives in a topic: it goes with topic, not with file or stdin`}},
		{name: "no listen address", yaml: stream("s", `{topic: in, http: {path: /x}}`),
			want: []string{`streams[0].input.http: missing required field "listen"`}},
		{name: "a port alone", yaml: stream("s", `{topic: in, http: {listen: "8090"}}`),
			want: []string{`streams[0].input.http.listen: listen address "8090" must be host:port, not a port alone: write ":8090" (every interface) or "127.0.0.1:8090" (this machine only)`}},
		{name: "a relative path", yaml: stream("s", `{topic: in, http: {listen: "127.0.0.1:8090", path: ingest}}`),
			want: []string{`streams[0].input.http.path: must start with /, got "ingest"`}},
		{name: "limits", yaml: stream("s", `{topic: in, http: {listen: "127.0.0.1:8090", max_in_flight: 0, timeout: 0s}}`),
			want: []string{`streams[0].input.http.max_in_flight: must be at least 1, got 0`, `streams[0].input.http.timeout: must be more than 0`}},
		{name: "the API's address", yaml: stream("s", `{topic: in, http: {listen: "127.0.0.1:8088"}}`),
			want: []string{`streams[0].input.http.listen: listen address "127.0.0.1:8088" is api.listen's too (line 5): give each listener its own port`}},
		{name: "remote_write with its topic", yaml: stream("s", `{topic: in, prometheus_remote_write: {listen: "127.0.0.1:9201"}}`)},
		{name: "remote_write without a topic", yaml: stream("s", `{prometheus_remote_write: {listen: "127.0.0.1:9201"}}`),
			want: []string{`streams[0].input: missing required field "topic"`}},
		{name: "remote_write on the http input's address", yaml: stream("s", `{topic: in, http: {listen: ":9201"}, prometheus_remote_write: {listen: ":9201"}}`),
			want: []string{`streams[0].input.prometheus_remote_write.listen: listen address ":9201" is streams[0].input.http.listen's too`}},
		{name: "otlp over both protocols", yaml: stream("s", `{topic: in, otlp: {http: {listen: "127.0.0.1:4318"}, grpc: {listen: "127.0.0.1:4317"}, signals: [metrics, logs]}}`)},
		{name: "otlp without a protocol", yaml: stream("s", `{topic: in, otlp: {signals: [metrics]}}`),
			want: []string{`streams[0].input.otlp: set http, grpc or both: the protocols the otlp input serves`}},
		{name: "otlp with a signal misspelled", yaml: stream("s", `{topic: in, otlp: {http: {listen: "127.0.0.1:4318"}, signals: [metrics, trace]}}`),
			want: []string{`streams[0].input.otlp.signals[1]: must be one of metrics, logs, traces; got "trace" (did you mean "traces"?)`}},
		{name: "otlp grpc on its http address", yaml: stream("s", `{topic: in, otlp: {http: {listen: ":4318"}, grpc: {listen: ":4318"}}}`),
			want: []string{`streams[0].input.otlp.http.listen: listen address ":4318" is streams[0].input.otlp.grpc.listen's too`}},
		{name: "otlp limits", yaml: stream("s", `{topic: in, otlp: {grpc: {listen: "127.0.0.1:4317", max_in_flight: 0}}}`),
			want: []string{`streams[0].input.otlp.grpc.max_in_flight: must be at least 1, got 0`}},
		{name: "otlp without a topic", yaml: stream("s", `{otlp: {grpc: {listen: "127.0.0.1:4317"}}}`),
			want: []string{`streams[0].input: missing required field "topic"`}},
		{name: "another input's address", yaml: stream("a", `{topic: in, http: {listen: ":8090"}}`) + stream("b", `{topic: in, http: {listen: ":8090"}}`),
			want: []string{`streams[1].input.http.listen: listen address ":8090" is streams[0].input.http.listen's too (line 7)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantFindings(t, head+"streams:\n"+tc.yaml, tc.want)
		})
	}
}

// Unset settings take the documented defaults.
func TestHTTPInputDefaults(t *testing.T) {
	const file = "version: 1\nbroker: {embedded: {}}\ndead_letter: dlq\ntopics: {in: {ingest: true}, out: {}, dlq: {}}\n" +
		"streams:\n  - {name: s, input: {topic: in, http: {listen: \"127.0.0.1:8090\"}}, output: {topic: out}}\n"
	p, err := LoadBytes("x.yaml", []byte(file), testRegistry(), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	h := p.Streams[0].Input.HTTP
	if h.Path != "/" || h.MaxBodyBytes != 8<<20 || h.MaxInFlight != 64 || h.Timeout.D() != 10*time.Second {
		t.Errorf("defaults: %+v", *h)
	}
	const rw = "version: 1\nbroker: {embedded: {}}\ndead_letter: dlq\ntopics: {in: {ingest: true}, out: {}, dlq: {}}\n" +
		"streams:\n  - {name: s, input: {topic: in, prometheus_remote_write: {listen: \"127.0.0.1:9201\"}}, output: {topic: out}}\n"
	p, err = LoadBytes("x.yaml", []byte(rw), testRegistry(), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Streams[0].Input.RemoteWrite; r.Path != "/api/v1/write" || r.MaxInFlight != 64 {
		t.Errorf("remote_write defaults: %+v", *r)
	}
}
