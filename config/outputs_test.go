package config

import (
	"testing"
)

// Registered outputs are written as a key of a stream's output or of a sink, and every
// mistake in choosing one is reported at the key, under the path the user wrote.
func TestOutputKeys(t *testing.T) {
	const head = "version: 1\nbroker: {embedded: {}}\ndead_letter: dlq\ntopics: {in: {ingest: true}, out: {}, dlq: {}}\n"
	stream := func(output string) string {
		return "streams:\n  - {name: s, input: {topic: in}, output: " + output + "}\n"
	}
	for _, tc := range []struct {
		name, yaml string
		want       []string // the findings, each as a part it must hold, in order
	}{
		{name: "a registered output", yaml: stream("{postgres: {dsn: x, table: t}}")},
		{name: "an output that cannot be a sink's, in a stream", yaml: stream("{notify: {url: x}}")},
		{name: "its settings under its path", yaml: stream("{postgres: {dsn: x}}"),
			want: []string{`streams[0].output.postgres: missing required field "table"`}},
		{name: "a misspelled type", yaml: stream("{postgress: {dsn: x, table: t}}"),
			want: []string{`streams[0].output: unknown field "postgress" (did you mean "postgres"?); output types: notify, postgres`}},
		{name: "two types", yaml: stream("{postgres: {dsn: x, table: t}, notify: {url: x}}"),
			want: []string{`streams[0].output: set exactly one of postgres and notify, not both`}},
		{name: "a topic and a type that can be a sink", yaml: stream("{topic: out, postgres: {dsn: x, table: t}}"),
			want: []string{`streams[0].output: set exactly one of topic and postgres, not both (use a sink to also copy the topic to postgres)`}},
		{name: "a topic and a type that cannot", yaml: stream("{topic: out, notify: {url: x}}"),
			want: []string{`streams[0].output: set exactly one of topic and notify, not both`}},
		{name: "no output at all", yaml: stream("{key: tenant_id}"),
			want: []string{`streams[0].output: set one of topic, notify or postgres`}},
		{name: "a sink", yaml: "sinks:\n  - {from: in, postgres: {dsn: x, table: t}}\n"},
		{name: "a sink without output", yaml: "sinks:\n  - {from: in}\n",
			want: []string{`sinks[0]: a sink needs an output to copy its topic to: add one of postgres`}},
		{name: "a sink with a type that cannot be a sink's", yaml: "sinks:\n  - {from: in, notify: {url: x}}\n",
			want: []string{`sinks[0].notify: a notify output cannot be used in a sink (sinks copy a topic into one of postgres)`}},
		{name: "a sink with a misspelled type", yaml: "sinks:\n  - {from: in, postgre: {dsn: x, table: t}}\n",
			want: []string{`sinks[0]: unknown field "postgre" (did you mean "postgres"?); output types for sinks: postgres`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantFindings(t, head+tc.yaml, tc.want)
		})
	}
}

// A decoded output says what it is and where it was written.
func TestOutputEntryIsPlaced(t *testing.T) {
	const file = "version: 1\nbroker: {embedded: {}}\ndead_letter: dlq\ntopics: {in: {ingest: true}, dlq: {}}\n" +
		"streams:\n  - name: s\n    input: {topic: in}\n    output:\n      postgres: {dsn: x, table: t}\n" +
		"sinks:\n  - {from: in, name: copy, postgres: {dsn: y, table: u}}\n"
	p, err := LoadBytes("x.yaml", []byte(file), testRegistry(), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		entry *OutputEntry
		path  string
		pos   Pos
		table string
	}{
		{p.Streams[0].Output.Plugin, "streams[0].output.postgres", Pos{File: "x.yaml", Line: 9, Col: 7}, "t"},
		{p.Sinks[0].Plugin, "sinks[0].postgres", Pos{File: "x.yaml", Line: 11, Col: 28}, "u"},
	} {
		if tc.entry.Path != tc.path || tc.entry.Pos != tc.pos || postgresOf(t, tc.entry).Table != tc.table {
			t.Errorf("entry %+v, want path %s at %v, table %s", tc.entry, tc.path, tc.pos, tc.table)
		}
	}
}

// A sink is named after the table its output writes, or its output's type when it writes
// no table.
func TestSinkStreamName(t *testing.T) {
	for _, tc := range []struct {
		sink Sink
		want string
	}{
		{Sink{Name: "copy", From: "in"}, "copy"},
		{Sink{From: "in", Plugin: &OutputEntry{Type: "postgres", Config: &fakePostgres{Table: "metrics"}}}, "sink.in.metrics"},
		{Sink{From: "in", Plugin: &OutputEntry{Type: "notify", Config: &fakeNotify{}}}, "sink.in.notify"},
		{Sink{From: "in"}, "sink.in.store"},
	} {
		if got := tc.sink.StreamName(); got != tc.want {
			t.Errorf("%+v: StreamName() = %q, want %q", tc.sink, got, tc.want)
		}
	}
}
