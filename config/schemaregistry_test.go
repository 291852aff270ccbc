package config

import (
	"os"
	"path/filepath"
	"testing"
)

// schema_registry and format: confluent: every mistake is reported at its setting, saying
// what to write instead.
func TestSchemaRegistry(t *testing.T) {
	const head = "version: 1\nbroker: {embedded: {}}\ndead_letter: dlq\ntopics: {in: {ingest: true}, out: {}, dlq: {}}\n"
	const stream = "streams:\n  - {name: s, input: {topic: in, format: confluent}, output: {topic: out, format: confluent}}\n"
	avsc := filepath.Join(t.TempDir(), "out.avsc")
	if err := os.WriteFile(avsc, []byte(`{"type": "record", "name": "R", "fields": [{"name": "a", "type": "string"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(filepath.Dir(avsc), "bad.avsc")
	if err := os.WriteFile(bad, []byte(`{"type": "record", "name": "R"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	proto := filepath.Join(filepath.Dir(avsc), "out.proto")
	if err := os.WriteFile(proto, []byte("syntax = \"proto3\";\nmessage R { string a = 1; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	brokenProto := filepath.Join(filepath.Dir(avsc), "broken.proto")
	if err := os.WriteFile(brokenProto, []byte("message R { string a = ; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{name: "the engine's own, the output's subject registered at start",
			yaml: head + "schema_registry: {listen: \"127.0.0.1:8081\", subjects: {out-value: {file: " + avsc + "}}}\n" + stream},
		{name: "a Protobuf subject",
			yaml: head + "schema_registry: {listen: \"127.0.0.1:8081\", subjects: {out-value: {file: " + proto + "}}}\n" + stream},
		{name: "a .proto that does not compile", yaml: head + "schema_registry: {listen: \"127.0.0.1:8081\", subjects: {out-value: {file: " + brokenProto + "}}}\n",
			want: []string{"schema_registry.subjects.out-value.file: broken.proto is not a valid PROTOBUF schema"}},
		{name: "an external one", yaml: head + "schema_registry: {url: \"http://redpanda:8081\"}\n" + stream},
		{name: "no registry", yaml: head + stream, want: []string{
			"streams[0].input.format: format: confluent reads schemas from a registry: add schema_registry",
			"streams[0].output.format: format: confluent writes with a registry's schema: add schema_registry",
		}},
		{name: "both url and listen", yaml: head + "schema_registry: {url: \"http://x:8081\", listen: \"127.0.0.1:8081\"}\n",
			want: []string{"schema_registry.listen: set url (an external registry) or listen (the engine's own), not both"}},
		{name: "listen without an embedded broker", yaml: "version: 1\nbroker: {brokers: [\"k:9092\"]}\ndead_letter: dlq\ntopics: {in: {ingest: true}, out: {}, dlq: {}}\nschema_registry: {listen: \"127.0.0.1:8081\"}\n",
			want: []string{"schema_registry.listen: the engine serves its own registry next to its embedded broker only"}},
		{name: "an output subject not registered", yaml: head + "schema_registry: {listen: \"127.0.0.1:8081\"}\n" + stream,
			want: []string{`streams[0].output.format: subject "out-value" is not registered at start: add it under schema_registry.subjects`}},
		{name: "a schema that does not parse", yaml: head + "schema_registry: {listen: \"127.0.0.1:8081\", subjects: {out-value: {file: " + bad + "}}}\n",
			want: []string{"schema_registry.subjects.out-value.file: bad.avsc is not a valid AVRO schema"}},
		{name: "subject without the format", yaml: head + "schema_registry: {url: \"http://x:8081\"}\nstreams:\n  - {name: s, input: {topic: in}, output: {topic: out, subject: x}}\n",
			want: []string{"streams[0].output.subject: subject is the registry subject of format: confluent"}},
		{name: "a receiver's topic", yaml: head + "schema_registry: {url: \"http://x:8081\"}\nstreams:\n  - {name: s, input: {topic: in, format: confluent, http: {listen: \"127.0.0.1:8090\"}}, output: {topic: out}}\n",
			want: []string{"streams[0].input.format: the topic's receivers store JSON"}},
		{name: "a misspelled format", yaml: head + "streams:\n  - {name: s, input: {topic: in, format: avro}, output: {topic: out}}\n",
			want: []string{`streams[0].input.format: must be one of json, confluent; got "avro"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantFindings(t, tc.yaml, tc.want)
		})
	}
}

// The topology: block is the lookup table topology, one row per node with its dependencies;
// a node name that would not survive the depends_on column is refused where it is written.
func TestTopologyBlock(t *testing.T) {
	const head = "version: 1\nbroker: {embedded: {}}\ndead_letter: dlq\ntopics: {in: {ingest: true}, out: {}, dlq: {}}\nstreams:\n  - {name: s, input: {topic: in}, output: {topic: out}}\n"
	p, err := LoadBytes("x.yaml", []byte(head+"topology: {web: [api], api: [db, cache]}\n"), testRegistry(), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	lk := p.Lookups[TopologyLookup]
	if lk.Key != "node" || len(lk.Rows) != 2 || lk.Rows[0]["node"] != "api" || lk.Rows[0]["depends_on"] != "db cache" {
		t.Errorf("lookup %+v", lk)
	}
	wantFindings(t, head+"topology: {web: [\"api gateway\"]}\n", []string{`topology.web[0]: a node name must not be empty or hold spaces, commas or semicolons, got "api gateway"`})
	wantFindings(t, head+"lookups: {topology: {rows: [{node: a}], key: node}}\ntopology: {web: [api]}\n", []string{`topology: the topology: block is the lookup table "topology", and lookups: declares one of that name already`})
}
