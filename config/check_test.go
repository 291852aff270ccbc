package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// loadFindings loads yaml and returns its errors as "path: message" lines.
func loadFindings(t *testing.T, yaml string) []string {
	t.Helper()
	_, err := LoadBytes("x.yaml", []byte(yaml), testRegistry(), testEnv)
	var errs Errors
	if err != nil && !errors.As(err, &errs) {
		t.Fatalf("not a list of findings: %v", err)
	}
	var out []string
	for _, e := range errs {
		out = append(out, e.Path+": "+e.Msg)
	}
	return out
}

// wantFindings loads yaml and checks its findings are want, in order, each holding its
// string.
func wantFindings(t *testing.T, yaml string, want []string) {
	t.Helper()
	got := loadFindings(t, yaml)
	if len(got) != len(want) {
		t.Fatalf("want %d findings, got %d:\n%s", len(want), len(got), strings.Join(got, "\n"))
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("finding %d:\n got %s\nwant it to hold %s", i, got[i], w)
		}
	}
}

// The addresses a user writes for the API and the brokers: what is accepted, and for what
// is not, the words that say what to write instead.
func TestListenAddresses(t *testing.T) {
	const head = "version: 1\ndead_letter: dlq\ntopics: {dlq: {}}\n"
	for _, tc := range []struct {
		name, yaml string
		want       string // a part of the one finding; "" for none
	}{
		{"api on every interface", "broker: {embedded: {}}\napi: {listen: \":8088\"}\n", `api.listen: the API would listen on ":8088", which other machines reach, without auth: add api.auth`},
		{"api on every interface, insecure (a warning: TestInsecureAPIIsAWarning)", "broker: {embedded: {}}\napi: {listen: \":8088\", insecure: true}\n", ""},
		{"api on every interface, with auth", "broker: {embedded: {}}\napi: {listen: \":8088\", auth: {tokens: [{name: ci, token: 0123456789abcdef}]}}\n", ""},
		{"api on a LAN address", "broker: {embedded: {}}\napi: {listen: \"10.0.0.5:8088\"}\n", `which other machines reach, without auth`},
		{"api on IPv6 loopback", "broker: {embedded: {}}\napi: {listen: \"[::1]:8088\"}\n", ""},
		{"api on a host name", "broker: {embedded: {}}\napi: {listen: \"localhost:8088\"}\n", ""},
		{"api port alone", "broker: {embedded: {}}\napi: {listen: 8088}\n", `api.listen: listen address "8088" must be host:port, not a port alone: write ":8088"`},
		{"api port alone, quoted", "broker: {embedded: {}}\napi: {listen: \"9000\"}\n", `write ":9000" (every interface) or "127.0.0.1:9000"`},
		{"api without port", "broker: {embedded: {}}\napi: {listen: \"127.0.0.1:\"}\n", `has no port after the colon`},
		{"api port out of range", "broker: {embedded: {}}\napi: {listen: \":65536\"}\n", `has port "65536", which is not a number from 0 to 65535`},
		{"api port a name", "broker: {embedded: {}}\napi: {listen: \":http\"}\n", `has port "http"`},
		{"api not an address", "broker: {embedded: {}}\napi: {listen: \"localhost\"}\n", `must be host:port, e.g. ":8088"`},
		{"embedded on loopback", "broker: {embedded: {listen: \"127.0.0.1:0\"}}\n", ""},
		{"embedded on localhost", "broker: {embedded: {listen: \"localhost:9092\"}}\n", ""},
		{"embedded on IPv6 loopback", "broker: {embedded: {listen: \"[::1]:9092\"}}\n", ""},
		{"embedded on every interface", "broker: {embedded: {listen: \":9092\"}}\n", `broker.embedded.listen: listen address ":9092" is not a loopback address`},
		{"embedded on a public address", "broker: {embedded: {listen: \"0.0.0.0:9092\"}}\n", `is not a loopback address`},
		{"embedded on a host name", "broker: {embedded: {listen: \"broker.example.com:9092\"}}\n", `is not a loopback address`},
		{"embedded port alone", "broker: {embedded: {listen: 9092}}\n", `write "127.0.0.1:9092"`},
		{"registry on every interface", "broker: {embedded: {}}\nschema_registry: {listen: \":8081\"}\n", `schema_registry.listen: listen address ":8081" is not a loopback address`},
		{"registry on loopback", "broker: {embedded: {}}\nschema_registry: {listen: \"127.0.0.1:8081\"}\n", ""},
		{"broker address", "broker: {brokers: [\"redpanda:9092\"]}\n", ""},
		{"broker port alone", "broker: {brokers: [\"9092\"]}\n", `broker.brokers[0]: broker address "9092" must be host:port, not a port alone: write "localhost:9092"`},
		{"broker bad port", "broker: {brokers: [\"redpanda:99999\"]}\n", `has port "99999"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := loadFindings(t, head+tc.yaml)
			switch {
			case tc.want == "" && len(got) > 0:
				t.Errorf("want no finding, got %q", got)
			case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)):
				t.Errorf("want one finding containing %q, got %q", tc.want, got)
			}
		})
	}
}

// Topic cycles: each is reported once, naming every stream and topic of the cycle, and
// pipelines that only look alike (a chain, a stream reading dead letters with its own
// dead-letter topic) are not cycles.
func TestTopicCycles(t *testing.T) {
	const head = "version: 1\nbroker: {embedded: {}}\ndead_letter: dlq\ntopics: {a: {ingest: true}, b: {}, c: {}, d: {}, dlq: {}, dlq2: {}}\n"
	stream := func(name, in, out string, extra ...string) string {
		return "  - {name: " + name + ", input: {topic: " + in + strings.Join(extra, "") + "}, output: {topic: " + out + "}}\n"
	}
	for _, tc := range []struct {
		name    string
		streams string
		sinks   string
		want    []string // the findings, each as parts it must hold, in order
	}{
		{name: "a chain", streams: stream("s1", "a", "b") + stream("s2", "b", "c") + stream("s3", "c", "d")},
		{
			name: "a stream writing its input", streams: stream("s1", "a", "b") + stream("s2", "b", "b"),
			want: []string{`streams[1].output.topic: stream "s2" writes b, the topic it reads`},
		},
		{
			name: "three streams in a cycle", streams: stream("s1", "a", "b") + stream("s2", "b", "c") + stream("s3", "c", "d") + stream("s4", "d", "b"),
			want: []string{`streams[1].output.topic: topic cycle: stream "s2" writes c, which stream "s3" reads; stream "s3" writes d, which stream "s4" reads; stream "s4" writes b, which stream "s2" reads: every record`},
		},
		{
			name: "two separate cycles", streams: stream("s1", "b", "c") + stream("s2", "c", "b") + stream("s3", "d", "a") + stream("s4", "a", "d"),
			want: []string{`streams[0].output.topic: topic cycle: stream "s1" writes c`, `streams[2].output.topic: topic cycle: stream "s3" writes a`},
		},
		{
			name: "reading dead letters with the default dead-letter topic", streams: stream("s1", "dlq", "b"),
			want: []string{`streams[0].input: stream "s1" sends the records it cannot process to the top-level dead_letter dlq, the topic it reads`},
		},
		{name: "reading dead letters with another dead-letter topic", streams: stream("s1", "dlq", "b", ", dead_letter: dlq2")},
		{
			name: "dead letters coming back through another stream", streams: stream("s1", "a", "b", ", dead_letter: c") + stream("s2", "c", "a"),
			want: []string{`streams[0].input.dead_letter: topic cycle: stream "s1" sends the records it cannot process to c, which stream "s2" reads; stream "s2" writes a, which stream "s1" reads: a record that fails would go round`},
		},
		{
			name: "a sink storing the dead letters", streams: stream("s1", "a", "b"),
			sinks: "sinks:\n  - {from: dlq, postgres: {dsn: x, table: t}}\n",
			want:  []string{`sinks[0].from: the sink at sinks[0] sends the records it cannot store to the top-level dead_letter dlq, the topic it reads`},
		},
		{name: "a cycle through an undeclared topic is its own mistake", streams: stream("s1", "a", "nowhere") + stream("s2", "nowhere", "a"),
			want: []string{`streams[0].output.topic: topic "nowhere" is not declared`, `streams[1].input.topic: topic "nowhere" is not declared`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := loadFindings(t, head+"streams:\n"+tc.streams+tc.sinks)
			if len(got) != len(tc.want) {
				t.Fatalf("want %d findings, got %d:\n%s", len(tc.want), len(got), strings.Join(got, "\n"))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("finding %d:\n got %s\nwant it to hold %s", i, got[i], w)
				}
			}
		})
	}
}

// insecure: true lets the API listen beyond this machine without auth, and lint says what
// that exposes.
func TestInsecureAPIIsAWarning(t *testing.T) {
	p, err := LoadBytes("x.yaml", []byte("version: 1\ndead_letter: dlq\ntopics: {dlq: {}}\nbroker: {embedded: {}}\napi: {listen: \":8088\", insecure: true}\n"), testRegistry(), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0].Msg, "anyone who can connect reads every tenant's data") {
		t.Errorf("warnings %v, want one saying what insecure exposes", p.Warnings)
	}
}

// Tokens: one of token and file, long enough, known scopes, no admin bound to a tenant,
// unique names; a bad origin is named.
func TestAPIAuthSettings(t *testing.T) {
	const head = "version: 1\ndead_letter: dlq\ntopics: {dlq: {}}\nbroker: {embedded: {}}\n"
	for _, tc := range []struct {
		name, api, want string
	}{
		{"a read token", `{auth: {tokens: [{name: r, token: 0123456789abcdef}]}}`, ""},
		{"short", `{auth: {tokens: [{name: r, token: secret}]}}`, "api.auth.tokens[0].token: the token has 6 characters; use at least 16"},
		{"empty (an unset variable)", `{auth: {tokens: [{name: r, token: ""}]}}`, "api.auth.tokens[0]: the token is empty"},
		{"both", `{auth: {tokens: [{name: r, token: 0123456789abcdef, file: t.txt}]}}`, "set one of token and file, not both"},
		{"unknown scope", `{auth: {tokens: [{name: r, token: 0123456789abcdef, scopes: [write]}]}}`, `api.auth.tokens[0].scopes[0]: unknown scope "write"`},
		{"admin of a tenant", `{auth: {tokens: [{name: r, token: 0123456789abcdef, scopes: [admin], tenant: acme}]}}`, "cannot have scope admin"},
		{"same name", `{auth: {tokens: [{name: r, token: 0123456789abcdef}, {name: r, token: fedcba9876543210}]}}`, `api.auth.tokens[1].name: another token is named "r"`},
		{"no tokens", `{auth: {tokens: []}}`, "auth needs at least one token"},
		{"bad origin", `{allow_origins: ["ops.example.com"]}`, `api.allow_origins[0]: origin "ops.example.com" must be scheme://host[:port]`},
		{"good origins", `{allow_origins: ["https://ops.example.com", "http://127.0.0.1:3000", "*"]}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := loadFindings(t, head+"api: "+tc.api+"\n")
			switch {
			case tc.want == "" && len(got) > 0:
				t.Errorf("want no finding, got %q", got)
			case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)):
				t.Errorf("want one finding containing %q, got %q", tc.want, got)
			}
		})
	}
}

// broker.tls and broker.sasl: what each mechanism needs, files that exist, and what an
// embedded broker can take.
func TestBrokerSecuritySettings(t *testing.T) {
	const head = "version: 1\ndead_letter: dlq\ntopics: {dlq: {}}\n"
	for _, tc := range []struct {
		name, broker, want string
	}{
		{"scram", `{brokers: ["k:9092"], sasl: {mechanism: SCRAM-SHA-512, username: u, password: p}}`, ""},
		{"plain without password", `{brokers: ["k:9092"], sasl: {mechanism: PLAIN, username: u}}`, "broker.sasl: PLAIN needs password"},
		{"without username", `{brokers: ["k:9092"], sasl: {mechanism: SCRAM-SHA-256, password: p}}`, "SCRAM-SHA-256 needs username"},
		{"both passwords", `{brokers: ["k:9092"], sasl: {mechanism: PLAIN, username: u, password: p, password_file: x.txt}}`, "set one of password and password_file"},
		{"a missing password file", `{brokers: ["k:9092"], sasl: {mechanism: PLAIN, username: u, password_file: nowhere.txt}}`, "broker.sasl.password_file: file"},
		{"oauth without a token file", `{brokers: ["k:9092"], sasl: {mechanism: OAUTHBEARER}}`, "OAUTHBEARER needs token_file"},
		{"an unknown mechanism", `{brokers: ["k:9092"], sasl: {mechanism: GSSAPI, username: u, password: p}}`, "broker.sasl.mechanism"},
		{"oauth on the embedded broker", `{embedded: {}, sasl: {mechanism: OAUTHBEARER, token_file: x}}`, "the embedded broker takes PLAIN"},
		{"tls on the embedded broker", `{embedded: {}, tls: {server_name: x}}`, "tls is for external brokers"},
		{"a client cert without its key", `{brokers: ["k:9092"], tls: {cert: c.pem}}`, "broker.tls.cert: file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := loadFindings(t, head+"broker: "+tc.broker+"\n")
			switch {
			case tc.want == "" && len(got) > 0:
				t.Errorf("want no finding, got %q", got)
			case tc.want != "" && !slices.ContainsFunc(got, func(f string) bool { return strings.Contains(f, tc.want) }):
				t.Errorf("want a finding containing %q, got %q", tc.want, got)
			}
		})
	}
}
