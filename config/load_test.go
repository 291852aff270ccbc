package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.errors golden files from the current output")

// fakeThreshold stands in for a real processor config: the loader only needs the tags and
// a Validate that blames a field.
type fakeThreshold struct {
	Rules []fakeRule `yaml:"rules" required:"true"`
}

type fakeRule struct {
	Name     string   `yaml:"name" required:"true"`
	When     Expr     `yaml:"when" required:"true"`
	For      Duration `yaml:"for"`
	Severity string   `yaml:"severity" default:"warning" enum:"info,warning,critical"`
}

func (t *fakeThreshold) Validate() error {
	if len(t.Rules) == 0 {
		return errors.New("needs at least one rule")
	}
	var errs []error
	seen := map[string]bool{}
	for i, r := range t.Rules {
		if seen[r.Name] {
			errs = append(errs, FieldErrorf(fmt.Sprintf("rules[%d].name", i), "duplicate rule name %q", r.Name))
		}
		seen[r.Name] = true
		if r.For < 0 {
			errs = append(errs, FieldErrorf(fmt.Sprintf("rules[%d].for", i), "for must be a finite duration"))
		}
	}
	return errors.Join(errs...)
}

type fakeFilter struct {
	When Expr `yaml:"when" required:"true"`
}

// fakePostgres stands in for a real output config that writes a table.
type fakePostgres struct {
	DSN       string `yaml:"dsn" required:"true"`
	Table     string `yaml:"table" required:"true"`
	DedupeKey string `yaml:"dedupe_key" default:"event_id"`
	Columns   Fields `yaml:"columns"`
}

func (c *fakePostgres) TableName() string { return c.Table }
func (c *fakePostgres) StoreKind() string { return "PostgreSQL" }

// fakeNotify stands in for an output that writes no table and cannot be a sink's.
type fakeNotify struct {
	URL string `yaml:"url" required:"true"`
}

func testRegistry() Registry {
	return Registry{
		Processors: map[string]ProcessorSpec{
			"map":       {NewConfig: func() any { return &Fields{} }},
			"threshold": {NewConfig: func() any { return &fakeThreshold{} }},
			"filter":    {NewConfig: func() any { return &fakeFilter{} }},
		},
		Outputs: map[string]OutputSpec{
			"postgres": {NewConfig: func() any { return &fakePostgres{} }, InSinks: true},
			"notify":   {NewConfig: func() any { return &fakeNotify{} }},
		},
	}
}

// postgresOf is the postgres output decoded at e.
func postgresOf(t *testing.T, e *OutputEntry) *fakePostgres {
	t.Helper()
	if e == nil || e.Type != "postgres" {
		t.Fatalf("output is %+v, want a postgres output", e)
	}
	return e.Config.(*fakePostgres)
}

func testEnv(name string) (string, bool) {
	env := map[string]string{"BROKERS": "redpanda:9092", "EMPTY": "", "TABLE": "metrics", "PARTS": "6"}
	v, ok := env[name]
	return v, ok
}

func loadTestdata(t *testing.T, name string) (*Pipeline, error) {
	t.Helper()
	path := filepath.Join("testdata", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return LoadBytes(path, data, testRegistry(), testEnv)
}

// TestLoadErrors loads every testdata/bad_*.yaml and compares the whole error output, one
// "file:line:col: path: message" per line, with testdata/<name>.errors.
func TestLoadErrors(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "bad_*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/bad_*.yaml files: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			p, err := loadTestdata(t, name+".yaml")
			if err == nil {
				t.Fatalf("loaded without errors: %+v", p)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want config.Errors: %v", err, err)
			}
			for _, e := range errs {
				if e.Pos.Line <= 0 || e.Pos.Col <= 0 || e.Pos.File != file {
					t.Errorf("error without a usable position: %#v", e)
				}
			}
			got := err.Error() + "\n"
			golden := filepath.Join("testdata", name+".errors")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./config -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s (run with -update if the change is intended)\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

func TestLoadFull(t *testing.T) {
	p, err := loadTestdata(t, "good_full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	day := Duration(24 * time.Hour)
	checks := []struct {
		what      string
		got, want any
	}{
		{"version", p.Version, 1},
		{"brokers from ${BROKERS:-...} with BROKERS set", p.Broker.Brokers, []string{"redpanda:9092"}},
		{"client_id default", p.Broker.ClientID, "eventops-engine"},
		{"topic partitions", p.Topics["ingest.raw.agent"].Partitions, 3},
		{"topic retention 3d", p.Topics["ingest.raw.agent"].Retention, 3 * day},
		{"partitions default", p.Topics["ops.deadletter.v1"].Partitions, 1},
		{"cleanup default", p.Topics["ingest.raw.agent"].Cleanup, "delete"},
		{"cleanup set", p.Topics["ops.alert.v1"].Cleanup, "compact"},
		{"configs kept", p.Topics["ops.deadletter.v1"].Configs, map[string]string{"max.message.bytes": "1048576"}},
		{"schema path resolved against the pipeline's directory", p.Schemas["raw-agent"], filepath.Join("testdata", "schemas", "raw-agent.v1.json")},
		{"lookup path resolved", p.Lookups["cmdb"].File, filepath.Join("testdata", "cmdb.csv")},
		{"lookup format from extension", p.Lookups["cmdb"].Format, "csv"},
		{"stream names", []string{p.Streams[0].Name, p.Streams[1].Name}, []string{"normalize", "rules"}},
		{"input start default", p.Streams[0].Input.Start, "earliest"},
		{"input batch_size default", p.Streams[0].Input.BatchSize, 10000},
		{"input start set", p.Streams[1].Input.Start, "latest"},
		{"output key", p.Streams[0].Output.Key.Src, "tenant_id"},
		{"processor types", []string{p.Streams[0].Processors[0].Type, p.Streams[1].Processors[0].Type}, []string{"map", "threshold"}},
		{"processor path", p.Streams[1].Processors[0].Path, "streams[1].processors[0].threshold"},
		{"processor pos", p.Streams[1].Processors[0].Pos, Pos{File: p.File, Line: 27, Col: 9}},
		{"threshold rule", p.Streams[1].Processors[0].Config.(*fakeThreshold).Rules[0].Name, "cpu_load_critical"},
		{"threshold for", p.Streams[1].Processors[0].Config.(*fakeThreshold).Rules[0].For, Duration(2 * time.Minute)},
		{"sink tables", []string{postgresOf(t, p.Sinks[0].Plugin).Table, postgresOf(t, p.Sinks[1].Plugin).Table}, []string{"metrics", "alerts"}},
		{"sink dedupe_key default", postgresOf(t, p.Sinks[0].Plugin).DedupeKey, "event_id"},
		{"api listen", p.API.Listen, "127.0.0.1:8088"},
		{"route limit", p.API.Routes[0].Limit, 1000},
		{"route limit default", p.API.Routes[1].Limit, 100},
		{"route where order", []string{p.API.Routes[0].Where[0].Name, p.API.Routes[0].Where[1].Name}, []string{"tenant", "metric"}},
		{"pos of a topic", p.Pos["topics.ops.alert.v1"], Pos{File: p.File, Line: 6, Col: 3}},
		{"pos of a stream", p.Pos["streams.rules"], Pos{File: p.File, Line: 24, Col: 5}},
		{"pos of a lookup", p.Pos["lookups.cmdb"], Pos{File: p.File, Line: 10, Col: 3}},
		{"pos of a sink", p.Pos["sinks[1]"], Pos{File: p.File, Line: 33, Col: 5}},
		{"pos of a route", p.Pos["api.routes[1]"], Pos{File: p.File, Line: 38, Col: 7}},
		{"${PG_DSN:-default} unset takes the default", postgresOf(t, p.Sinks[0].Plugin).DSN, "postgres://postgres@127.0.0.1:5432/test"},
		{"no warnings", len(p.Warnings), 0},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.what, c.got, c.want)
		}
	}
	m := *p.Streams[0].Processors[0].Config.(*Fields)
	var names []string
	for _, f := range m {
		names = append(names, f.Name)
	}
	if want := []string{"event_id", "tenant_id", "source", "ts_event"}; !reflect.DeepEqual(names, want) {
		t.Errorf("map fields lost their order: got %v, want %v", names, want)
	}
	if src := m[2].Nested[1]; src.Name != "source_id" || src.Expr.Src != `host ?? "unknown"` {
		t.Errorf("nested field: got %+v", src)
	}
}

// TestExprPositions checks that an expression's Pos is its first character in the file, so
// that compile errors can point inside it, for every way YAML lets one write a scalar.
func TestExprPositions(t *testing.T) {
	p, err := loadTestdata(t, "good_exprs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	when := func(i int) Expr { return p.Streams[0].Processors[i].Config.(*fakeFilter).When }
	fields := *p.Streams[0].Processors[6].Config.(*Fields)
	tests := []struct {
		name      string
		expr      Expr
		src       string
		line, col int
		path      string
	}{
		{"plain", when(0), "value > 1", 13, 24, "streams[0].processors[0].filter.when"},
		{"single-quoted", when(1), "value > 2", 14, 25, "streams[0].processors[1].filter.when"},
		{"double-quoted", when(2), "value > 3", 15, 25, "streams[0].processors[2].filter.when"},
		{"literal block", when(3), "value > 4\n", 18, 13, "streams[0].processors[3].filter.when"},
		{"folded block after a blank line", when(4), "\nvalue > 5", 22, 15, "streams[0].processors[4].filter.when"},
		{"plain boolean scalar", when(5), "true", 23, 24, "streams[0].processors[5].filter.when"},
		{"map field", *fields[0].Expr, "record_id()", 25, 15, "streams[0].processors[6].map.id"},
		{"nested quoted map field", *fields[1].Nested[0].Expr, `"h-" + host`, 27, 20, "streams[0].processors[6].map.source.host"},
		{"output key", *p.Streams[0].Output.Key, "host", 28, 31, "streams[0].output.key"},
		{"header", *p.Streams[0].Output.Headers["x-tenant"], "tenant_id", 28, 57, "streams[0].output.headers.x-tenant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Expr{Src: tt.expr.Src, Pos: tt.expr.Pos, Path: tt.expr.Path}
			want := Expr{Src: tt.src, Pos: Pos{File: p.File, Line: tt.line, Col: tt.col}, Path: tt.path}
			if got.Src != want.Src || got.Pos != want.Pos || got.Path != want.Path {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}
	if p.Broker.Embedded == nil || p.Broker.Embedded.DataDir != "data/broker" || p.Broker.Embedded.CleanerInterval != Duration(time.Minute) {
		t.Errorf("'embedded:' with no value should mean an embedded broker with defaults, got %+v", p.Broker.Embedded)
	}
}

func TestInterpolation(t *testing.T) {
	p, err := loadTestdata(t, "good_env.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"${VAR} set", p.Broker.Brokers[0], "redpanda:9092"},
		{"${VAR:-default} unset", p.Broker.Brokers[1], "localhost:9092"},
		{"unquoted ${VAR:-default}", p.DeadLetter, "dlq"},
		{"${VAR} into a number", p.Topics["in"].Partitions, 6},
		{"${VAR:-default} with VAR empty", p.Topics["dlq"].Partitions, 2},
		{"$${ escapes", p.Streams[0].Processors[0].Config.(*fakeFilter).When.Src, `label == "${NOT_A_VAR}"`},
		{"${VAR} set in a table", postgresOf(t, p.Streams[0].Output.Plugin).Table, "metrics"},
		{"unset ${VAR:-} is explicitly empty", postgresOf(t, p.Streams[0].Output.Plugin).DSN, ""},
		{"no warnings", len(p.Warnings), 0},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.what, c.got, c.want)
		}
	}
}

func TestInterpolate(t *testing.T) {
	tests := []struct {
		in, want string
		unset    []string
		err      string
	}{
		{in: "plain", want: "plain"},
		{in: "${BROKERS}", want: "redpanda:9092"},
		{in: "a-${TABLE}-b-${TABLE}", want: "a-metrics-b-metrics"},
		{in: "${NOPE:-x:y}", want: "x:y"},
		{in: "${EMPTY:-fallback}", want: "fallback"},
		{in: "${EMPTY}", want: ""},
		{in: "${TABLE:-other}", want: "metrics"},
		{in: "${NOPE:-}", want: ""},
		{in: "${NOPE}", want: "", unset: []string{"NOPE"}},
		{in: "$${TABLE} ${TABLE}", want: "${TABLE} metrics"},
		{in: "cost $5 and $$", want: "cost $5 and $$"},
		{in: "${TABLE", err: "unterminated ${"},
		{in: "${}", err: "invalid environment variable reference"},
		{in: "${A B}", err: "invalid environment variable reference"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, unset, err := interpolate(tt.in, testEnv)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got error %v, want one containing %q", err, tt.err)
				}
				return
			}
			var names []string
			for _, ref := range unset {
				names = append(names, ref.name)
			}
			if err != nil || got != tt.want || !reflect.DeepEqual(names, tt.unset) {
				t.Errorf("got %q, unset %v, err %v; want %q, unset %v", got, unset, err, tt.want, tt.unset)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "500ms", want: 500 * time.Millisecond},
		{in: "30s", want: 30 * time.Second},
		{in: "5m", want: 5 * time.Minute},
		{in: "2h", want: 2 * time.Hour},
		{in: "3d", want: 72 * time.Hour},
		{in: "2w", want: 14 * 24 * time.Hour},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "1.5h", want: 90 * time.Minute},
		{in: "0", want: 0},
		{in: "forever", want: -1},
		{in: "infinite", want: -1},
		{in: "", err: "empty duration"},
		{in: "10", err: "missing unit"},
		{in: "3days", err: `unknown unit "days"`},
		{in: "-5s", err: "invalid duration"},
		{in: "1..5s", err: "invalid duration"},
		{in: "99999999w", err: "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, %v; want an error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got.D() != tt.want {
				t.Errorf("got %v, %v; want %v", got.D(), err, tt.want)
			}
		})
	}
}

func TestDurationStringRoundTrips(t *testing.T) {
	for _, s := range []string{"3d", "2w", "1h30m0s", "500ms", "forever", "0s"} {
		d, err := ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		if d.String() != s {
			t.Errorf("ParseDuration(%q).String() = %q", s, d.String())
		}
	}
}

func TestSuggestion(t *testing.T) {
	fields := []string{"partitions", "replication", "retention", "cleanup", "key"}
	tests := []struct{ got, want string }{
		{"partitons", ` (did you mean "partitions"?)`},
		{"retnetion", ` (did you mean "retention"?)`},
		{"Cleanup", ` (did you mean "cleanup"?)`},
		{"foo", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if s := suggestion(tt.got, fields); s != tt.want {
			t.Errorf("suggestion(%q) = %q, want %q", tt.got, s, tt.want)
		}
	}
}

func TestLoadReadsFile(t *testing.T) {
	p, err := Load(filepath.Join("testdata", "good_full.yaml"), testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if p.File != filepath.Join("testdata", "good_full.yaml") {
		t.Errorf("File = %q", p.File)
	}
	if _, err := Load(filepath.Join("testdata", "no-such-file.yaml"), testRegistry()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want an error wrapping os.ErrNotExist", err)
	}
}

func TestAliases(t *testing.T) {
	const head = "version: 1\nbroker: {embedded: {}}\ndead_letter: a\n"
	tests := []struct {
		name, yaml string
		check      func(*Pipeline) bool
		err        string
	}{
		{
			name: "merge key copies settings, explicit keys win",
			yaml: head + "topics:\n  a: &d {partitions: 2, retention: 3d}\n  b: {<<: *d, retention: 1d}\n",
			check: func(p *Pipeline) bool {
				b := p.Topics["b"]
				return b.Partitions == 2 && b.Retention == Duration(24*time.Hour)
			},
		},
		{
			name: "self-referencing alias is an error, not a hang",
			yaml: head + "topics: {a: {}, b: {}, c: {}}\nstreams:\n  - name: s\n    input: {topic: b}\n    processors:\n      - map: &m {x: *m}\n    output: {topic: c}\n",
			err:  "x.yaml:9:21: streams[0].processors[0].map.x: alias refers to a node that contains it",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := LoadBytes("x.yaml", []byte(tt.yaml), testRegistry(), testEnv)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("got error %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(p) {
				t.Errorf("unexpected result: %+v", p)
			}
		})
	}
}

// TestSyntaxErrors checks where a YAML syntax error is reported and what it says: at the
// character to change, with the fix when the mistake is a common one, and with yaml.v3's
// own words, at the place yaml.v3 stopped, when it is not.
func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // line:col: message
	}{
		{
			name: "a tab indents a key",
			src:  "streams:\n  - name: rules\n\tinput: {topic: a}\n",
			want: "3:1: invalid YAML: a tab character indents this line; YAML indents with spaces only",
		},
		{
			name: "a tab after spaces",
			src:  "topics:\n  in: {partitions: 1}\n  \tout: {partitions: 1}\n",
			want: "3:3: invalid YAML: a tab character indents this line; YAML indents with spaces only",
		},
		{
			name: "a quote closed lines later",
			src:  "rules:\n  - name: high\n    when: 'value >= 90\n    severity: critical\n    message: 'high'\n",
			want: "3:11: invalid YAML: the quoted string that starts here is not closed on this line, so it runs on to the ' on line 5 and takes the lines in between as text; end it with ' on this line",
		},
		{
			name: "a quote never closed",
			src:  "rules:\n  - name: high\n    when: \"value >= 90\n    severity: critical\n",
			want: `3:11: invalid YAML: the quoted string that starts here is never closed; end it with "`,
		},
		{
			name: "a quote on the first line never closed",
			src:  "\"version: 1\nbroker: {}\n",
			want: `1:1: invalid YAML: the quoted string that starts here is never closed; end it with "`,
		},
		{
			name: "a multi-line quoted string is not blamed for a later mistake",
			src:  "a:\n  msg: \"first line\n    second line\"\n  b: 1\n   c: 2\n",
			want: `5:4: invalid YAML: bad indentation: this line starts at column 4, deeper than "b" above it (column 3), so YAML reads it as more of the value of "b"; keys of one mapping must start at the same column`,
		},
		{
			name: "text after a closing quote",
			src:  "filter:\n  when: \"cpu_load\" == metric\n",
			want: `2:20: invalid YAML: the value starts with a quoted string but goes on after its closing quote; quote the whole value: '"cpu_load" == metric'`,
		},
		{
			name: "an unclosed flow mapping",
			src:  "output: {topic: a, key: b\nsinks: []\n",
			want: `1:9: invalid YAML: this "{" is never closed; add "}" where the mapping ends`,
		},
		{
			name: "a missing comma in a flow mapping",
			src:  "enrich: {lookup: cmdb key: host}\n",
			want: `1:23: invalid YAML: a "," is missing before this entry`,
		},
		{
			name: "a missing comma in a flow mapping over several lines",
			src:  "a: {x: 1,\n    y: 2\n    z: 3}\n",
			want: `3:5: invalid YAML: a "," is missing before this entry`,
		},
		{
			name: "a stray closing brace",
			src:  "lookups:\n  cmdb: {file: a.csv, key: host}}\n",
			want: `2:33: invalid YAML: this "}" closes nothing; remove it`,
		},
		{
			name: "a key indented deeper than the one above",
			src:  "streams:\n  - name: a\n    input: {topic: a}\n     processors: []\n",
			want: `4:6: invalid YAML: bad indentation: this line starts at column 6, but "input" above it starts at column 5; keys of one mapping must start at the same column`,
		},
		{
			name: "a key indented deeper than a plain value above",
			src:  "route:\n  order: ts desc\n   limit: 10\n",
			want: `3:4: invalid YAML: bad indentation: this line starts at column 4, deeper than "order" above it (column 3), so YAML reads it as more of the value of "order"; keys of one mapping must start at the same column`,
		},
		{
			name: "a key indented between two blocks",
			src:  "topics:\n  in: {partitions: 1}\n out: {partitions: 1}\n",
			want: `3:2: invalid YAML: bad indentation: this line starts at column 2, which lines up with nothing above it: "in" at column 3, "topics" at column 1`,
		},
		{
			name: "a list item indented too little",
			src:  "rules:\n  - name: a\n    when: x\n - name: b\n",
			want: `4:2: invalid YAML: bad indentation: this line starts at column 2, but the "-" items above it start at column 3; items of one list must start at the same column`,
		},
		{
			name: "a key indented deeper in a second document",
			src:  "a: 1\n---\nb:\n  c: 1\n   d: 2\n",
			want: `5:4: invalid YAML: bad indentation: this line starts at column 4, deeper than "c" above it (column 3), so YAML reads it as more of the value of "c"; keys of one mapping must start at the same column`,
		},
		{
			name: "CRLF line ends",
			src:  "a:\r\n  b: 1\r\n   c: 2\r\n",
			want: `3:4: invalid YAML: bad indentation: this line starts at column 4, deeper than "b" above it (column 3), so YAML reads it as more of the value of "b"; keys of one mapping must start at the same column`,
		},
		{
			name: `": " in a plain value`,
			src:  "rule:\n  message: Warning: CPU load high\n",
			want: `2:19: invalid YAML: the value of "message" holds ": ", which YAML reads as the start of another key; quote the value: 'Warning: CPU load high'`,
		},
		{
			name: "a value starting with @",
			src:  "rule:\n  message: @oncall CPU load high\n",
			want: `2:12: invalid YAML: the value of "message" starts with "@", which YAML reserves; quote the value: '@oncall CPU load high'`,
		},
		{
			name: "an unknown escape in double quotes",
			src:  "filter:\n  when: \"host matches '^web\\d+$'\"\n",
			want: `2:28: invalid YAML: "\d" is not an escape YAML knows in a double-quoted string; write "\\d" for a backslash, or use single quotes, which keep backslashes as they are`,
		},
		{
			name: "columns count characters",
			src:  "rule:\n  message: \"température\" élevée\n",
			want: `2:26: invalid YAML: the value starts with a quoted string but goes on after its closing quote; quote the whole value: '"température" élevée'`,
		},
		{
			name: "a ${VAR} in a plain value inside a flow mapping",
			src:  "sinks:\n  - {from: a, postgres: {dsn: postgres://${PGUSER}@db/test, table: t}}\n",
			want: `2:31: invalid YAML: inside {...} or [...], a value holding ${...} must be quoted, or YAML reads its "{" as the start of a mapping; write "postgres://${PGUSER}@db/test"`,
		},
		{
			name: "an unknown anchor",
			src:  "a: &base {x: 1}\nb: *bsae\n",
			want: "2:4: invalid YAML: unknown anchor 'bsae' referenced",
		},
		{
			name: "a key without a colon keeps yaml's words",
			src:  "topics:\n  in: {partitions: 1}\n  out\n",
			want: "3:3: invalid YAML: could not find expected ':'",
		},
		{
			name: "a list item among keys keeps yaml's words",
			src:  "topics:\n  in: {partitions: 1}\n  - out\n",
			want: "3:3: invalid YAML: did not find expected key",
		},
		{
			name: "a mismatched bracket keeps yaml's words",
			src:  "a: {x: [1, 2}\n",
			want: "1:13: invalid YAML: did not find expected ',' or ']'",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes("t.yaml", []byte(tt.src), testRegistry(), testEnv)
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("want one syntax error, got %v", err)
			}
			if got := fmt.Sprintf("%d:%d: %s", errs[0].Pos.Line, errs[0].Pos.Col, errs[0].Msg); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestEnvReferencePositions checks that an unset ${VAR} is an error at its "${", wherever
// it sits in a single-line scalar, and at the scalar when the reference cannot be found in
// the line as written.
func TestEnvReferencePositions(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // line:col: name of each error
	}{
		{"plain, whole value", "dead_letter: ${NOPE}\n", []string{"1:14: NOPE"}},
		{"plain, inside the value", "api:\n  listen: 127.0.0.1:${NOPE}\n", []string{"2:21: NOPE"}},
		{"double-quoted", "dead_letter: \"${NOPE}\"\n", []string{"1:15: NOPE"}},
		{"single-quoted after a doubled quote", "dead_letter: 'it''s ${NOPE}'\n", []string{"1:21: NOPE"}},
		{"double-quoted after an escape", "dead_letter: \"\\t${NOPE}\"\n", []string{"1:17: NOPE"}},
		{"two in one value", "dead_letter: ${NOPE}-${TABLE}-${ALSO}\n", []string{"1:14: NOPE", "1:31: ALSO"}},
		{"after an escaped $${", "dead_letter: $${NOPE}-${NOPE}\n", []string{"1:23: NOPE"}},
		{"two scalars on one line", "sinks: [{from: \"${NOPE}\", postgres: {dsn: \"${ALSO}\"}}]\n", []string{"1:17: NOPE", "1:44: ALSO"}},
		{"after non-ASCII text", "dead_letter: \"dlq-été-${NOPE}\"\n", []string{"1:23: NOPE"}},
		{"multi-line plain: the scalar", "dead_letter: a\n  ${NOPE}\n", []string{"1:14: NOPE"}},
		{"block scalar: the scalar", "dead_letter: |\n  ${NOPE}\n", []string{"1:14: NOPE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := LoadBytes("t.yaml", []byte(tt.src), testRegistry(), testEnv)
			if p == nil {
				t.Fatalf("the file did not parse: %v", err)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("got %v, want config.Errors", err)
			}
			var got []string
			for _, e := range errs {
				if name, ok := strings.CutPrefix(e.Msg, "environment variable "); ok {
					got = append(got, fmt.Sprintf("%d:%d: %s", e.Pos.Line, e.Pos.Col, strings.Fields(name)[0]))
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// The dashboard may be written as one boolean (dashboard: false turns it off) or as its
// settings; absent, it is served with its defaults.
func TestDashboardShorthand(t *testing.T) {
	for _, tc := range []struct {
		api       string
		on        bool
		title     string
		panelKind string
	}{
		{"{}", true, "EventOps", ""},
		{"{dashboard: false}", false, "EventOps", ""},
		{"{dashboard: true}", true, "EventOps", ""},
		{"{dashboard: {title: Ops, panels: [{silences: {}}]}}", true, "Ops", "silences"},
		{"{dashboard: {enabled: false}}", false, "EventOps", ""},
	} {
		p, err := LoadBytes("t.yaml", []byte("version: 1\nbroker: {embedded: {}}\napi: "+tc.api+"\n"), testRegistry(), testEnv)
		if err != nil {
			t.Fatalf("api: %s: %v", tc.api, err)
		}
		d := &p.API.Dashboard
		if d.On() != tc.on || d.Title != tc.title {
			t.Errorf("api: %s: served %v, title %q; want %v, %q", tc.api, d.On(), d.Title, tc.on, tc.title)
		}
		if kind := ""; len(d.Panels) > 0 {
			kind = d.Panels[0].Kind()
			if kind != tc.panelKind {
				t.Errorf("api: %s: panel kind %q, want %q", tc.api, kind, tc.panelKind)
			}
		}
	}
}
