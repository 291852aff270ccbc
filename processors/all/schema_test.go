package all

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"
	"gopkg.in/yaml.v3"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/runtime"
)

// pipelineSchema compiles the generated schema the way an editor would load it.
func pipelineSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	data, err := config.JSONSchema(components().Registry())
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft7
	if err := c.AddResource("pipeline.schema.json", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("pipeline.schema.json")
	if err != nil {
		t.Fatalf("the generated schema does not compile: %v", err)
	}
	return s
}

// yamlToJSON converts a pipeline file to the JSON value editors validate.
func yamlToJSON(t *testing.T, data []byte) any {
	t.Helper()
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestSchemaAcceptsEveryExampleAndGoodTestFile(t *testing.T) {
	s := pipelineSchema(t)
	examples, _ := filepath.Glob("../../examples/*.yaml")
	// Rule test files have their own schema (engine/ruletest checks them against it).
	examples = slices.DeleteFunc(examples, func(f string) bool { return strings.HasSuffix(f, "_test.yaml") })
	good, _ := filepath.Glob("../../config/testdata/good_*.yaml")
	files := append(examples, good...)
	if len(examples) == 0 || len(good) == 0 {
		t.Fatalf("found %d examples and %d good test files", len(examples), len(good))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			if err := s.Validate(yamlToJSON(t, readFile(t, file))); err != nil {
				t.Errorf("%s fails the schema editors use:\n%#v", file, err)
			}
		})
	}
}

// TestSchemaRejectsMistakesWhereTheyAre edits the quickstart the way people get it wrong
// and checks that the schema, like the loader, rejects each edit at the value concerned.
func TestSchemaRejectsMistakesWhereTheyAre(t *testing.T) {
	s := pipelineSchema(t)
	quickstart := string(readFile(t, "../../examples/quickstart.yaml"))
	tests := []struct {
		name, old, new string
		wantAt         string // JSON pointer of the value an editor marks
		wantMsg        string
	}{
		{"typo in a key", "{partitions: 1, retention: 3d, ingest: true}", "{partitions: 1, retnetion: 3d, ingest: true}",
			"/topics/ingest.raw.agent", "retnetion"},
		{"value outside the enum", "cleanup: compact+delete", "cleanup: compact-delete",
			"/topics/ops.alert.v1/cleanup", "compact"},
		{"processor item with two keys", "      - enrich: {lookup: cmdb, key: source.source_id, into: tags}",
			"      - enrich: {lookup: cmdb, key: source.source_id}\n        into: tags",
			"/streams/0/processors/1", "into"},
		{"unknown processor type", "      - map:\n", "      - mapping:\n",
			"/streams/0/processors/0", "mapping"},
		{"bad duration", "retention: 14d", "retention: 14days",
			"/topics/signals.metric.v1/retention", "pattern"},
		{"number that is not one", "{partitions: 1, retention: 7d}", "{partitions: one, retention: 7d}",
			"/topics/ops.deadletter.v1/partitions", ""},
		{"missing required field", "  - name: rules\n", "  - input_name: rules\n",
			"/streams/1", "name"},
		{"unknown setting of a processor", "clear_when:", "clear_whenn:",
			"/streams/1/processors/0/threshold/rules/0", "clear_whenn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(quickstart, tt.old) {
				t.Fatalf("quickstart.yaml no longer contains %q; update the test", tt.old)
			}
			broken := strings.Replace(quickstart, tt.old, tt.new, 1)
			if _, err := config.LoadBytes("quickstart.yaml", []byte(broken), components().Registry(), nil); err == nil {
				t.Errorf("the loader accepts the edit, so the schema must too; the case is wrong")
			}
			err := s.Validate(yamlToJSON(t, []byte(broken)))
			if err == nil {
				t.Fatal("the schema accepts the broken file")
			}
			ve, ok := err.(*jsonschema.ValidationError)
			if !ok {
				t.Fatalf("validation failed with %T: %v", err, err)
			}
			for _, e := range ve.BasicOutput().Errors {
				if e.InstanceLocation == tt.wantAt && strings.Contains(e.Error, tt.wantMsg) {
					return
				}
			}
			t.Errorf("no error at %s mentioning %q; got:\n%#v", tt.wantAt, tt.wantMsg, ve)
		})
	}
}

// examplePipeline declares every name the documented examples use; an example is put into
// its one stream, so each example is checked in a complete, valid file.
const examplePipeline = `
version: 1
broker: {embedded: {}}
topics: {ingest.raw.agent: {ingest: true}, signals.metric.v1: {}, ops.alert.v1: {}, ops.deadletter.v1: {}}
dead_letter: ops.deadletter.v1
schemas: {raw-agent: ../../schemas/raw-agent.v1.json, envelope: ../../schemas/envelope.v1.json}
lookups: {cmdb: {key: host, rows: [{host: host-a, site: par1, owner: ops}]}}
streams:
  - name: example
    input: {topic: ingest.raw.agent}
    output: {topic: signals.metric.v1}
`

// withExample returns examplePipeline with its stream's key set to the example's value.
// exampleEnv is the environment the documented examples are loaded in: the variables they
// require are set, as a deployment would set them.
func exampleEnv(name string) (string, bool) {
	if name == "PG_DSN" {
		return "postgres://postgres@127.0.0.1:5432/test", true
	}
	return "", false
}

func withExample(t *testing.T, key string, value any) []byte {
	t.Helper()
	var p map[string]any
	if err := yaml.Unmarshal([]byte(examplePipeline), &p); err != nil {
		t.Fatal(err)
	}
	p["streams"].([]any)[0].(map[string]any)[key] = value
	out, err := yaml.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDocumentedExamplesLoadAndBuild keeps the examples in the schema and component pages
// from rotting: each one, in a minimal pipeline, decodes, compiles and validates.
func TestDocumentedExamplesLoadAndBuild(t *testing.T) {
	s := pipelineSchema(t)
	files := map[string][]byte{}
	for typ, spec := range components().Registry().Processors {
		var items []any
		if err := yaml.Unmarshal([]byte(spec.Example), &items); err != nil || len(items) != 1 {
			t.Errorf("processor %s: the example is not one processors item (%v):\n%s", typ, err, spec.Example)
			continue
		}
		files["processor "+typ] = withExample(t, "processors", items)
	}
	examples := map[string]string{} // "<kind> <name>" -> example: one key of a stream
	for _, c := range config.CoreComponents {
		examples[c.Kind+" "+c.Name] = c.Example
	}
	for typ, spec := range components().Registry().Outputs {
		examples["output "+typ] = spec.Example
	}
	for name, example := range examples {
		var fragment map[string]any
		if err := yaml.Unmarshal([]byte(example), &fragment); err != nil || len(fragment) != 1 {
			t.Errorf("%s: the example is not one key of a stream (%v):\n%s", name, err, example)
			continue
		}
		for key, value := range fragment {
			files[name] = withExample(t, key, value)
		}
	}
	opts := runtime.Options{Components: components(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			p, err := config.LoadBytes("example.yaml", data, components().Registry(), exampleEnv)
			if err != nil {
				t.Fatalf("the documented example does not load:\n%v\nfile:\n%s", err, data)
			}
			if _, err := runtime.Build(p, opts); err != nil {
				t.Fatalf("the documented example does not build:\n%v\nfile:\n%s", err, data)
			}
			if err := s.Validate(yamlToJSON(t, data)); err != nil {
				t.Errorf("the documented example fails the schema:\n%#v", err)
			}
		})
	}
}
