package ruletest

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"flag"
	"math"
	"os"
	"path/filepath"

	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"
	"gopkg.in/yaml.v3"

	"github.com/eventops/eventops-engine/engine"
	outputs "github.com/eventops/eventops-engine/outputs/all"
	"github.com/eventops/eventops-engine/processors/all"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata and schemas/pipeline-test.schema.json")

func TestExpandValues(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		in   string
		want []float64
		err  string
	}{
		{in: "1 2 3", want: []float64{1, 2, 3}},
		{in: "90+1x3", want: []float64{90, 91, 92, 93}},
		{in: "10-2x2", want: []float64{10, 8, 6}},
		{in: "5x2", want: []float64{5, 5, 5}},
		{in: "1 _ 3", want: []float64{1, nan, 3}},
		{in: "_x3 7", want: []float64{nan, nan, nan, 7}},
		{in: "1 stale 2", want: []float64{1, nan, 2}},
		{in: "-5+1x1 1e-3 2.5", want: []float64{-5, -4, 0.001, 2.5}},
		{in: "", err: "no values"},
		{in: "1 2+1", err: "needs a count"},
		{in: "abc", err: "not a value"},
		{in: "1x-2", err: "whole number"},
		{in: "1x2000000", err: "more than"},
	}
	for _, tt := range tests {
		got, err := ExpandValues(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ExpandValues(%q) error %v, want one saying %q", tt.in, err, tt.err)
			}
			continue
		}
		same := len(got) == len(tt.want)
		for i := 0; same && i < len(got); i++ {
			same = got[i] == tt.want[i] || math.IsNaN(got[i]) && math.IsNaN(tt.want[i])
		}
		if err != nil || !same {
			t.Errorf("ExpandValues(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

// The examples' own tests pass: they are what CI runs with eventops-engine test examples/.
func TestExamplesPass(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*_test.yaml")
	if len(files) < 2 {
		t.Fatalf("examples have %d test files, want one per example pipeline", len(files))
	}
	for _, file := range files {
		s, err := Load(file, components)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, r := range s.Run(context.Background()) {
			if !r.Passed() {
				t.Errorf("%s: %s failed: %v %v", file, r.Name, r.Err, r.Failures)
			}
		}
	}
}

// Wrong expectations fail, each with a diff that says what was expected and what came, at
// the expectation's line and column; the right case in the same file passes.
func TestWrongExpectationsFailWithADiff(t *testing.T) {
	s, err := Load("testdata/wrong_test.yaml", components)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, r := range s.Run(context.Background()) {
		out.WriteString("case " + r.Name + ": ")
		if r.Passed() {
			out.WriteString("passed\n")
			continue
		}
		out.WriteString("FAILED\n")
		for _, f := range r.Failures {
			out.WriteString(f.String() + "\n")
		}
	}
	golden(t, "testdata/wrong_test.golden", out.String())
}

func TestLookupOverride(t *testing.T) {
	s, err := Load("testdata/override_test.yaml", components)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Run(context.Background()) {
		if !r.Passed() {
			t.Errorf("%s: %v %v", r.Name, r.Err, r.Failures)
		}
	}
}

// Mistakes in a test file are reported all at once, each at its position, with the names
// the pipeline has.
func TestLoadErrors(t *testing.T) {
	_, err := Load("testdata/bad_test.yaml", components)
	if err == nil {
		t.Fatal("the bad test file loaded")
	}
	golden(t, "testdata/bad_test.golden", strings.ReplaceAll(err.Error(), "\n", "\n")+"\n")
}

func TestJUnitAndCoverage(t *testing.T) {
	s, err := Load("testdata/wrong_test.yaml", components)
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	r.Add(s, s.Run(context.Background()))
	var buf bytes.Buffer
	if err := r.WriteJUnit(&buf); err != nil {
		t.Fatal(err)
	}
	var doc junitSuites
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("JUnit output does not parse: %v\n%s", err, buf.String())
	}
	if len(doc.Suites) != 1 || doc.Suites[0].Tests != 4 || doc.Suites[0].Failures != 3 {
		t.Fatalf("JUnit suites %+v, want one suite of 4 tests with 3 failures", doc.Suites)
	}
	if c := doc.Suites[0].Cases[0]; c.Failure == nil || !strings.Contains(c.Failure.Text, "severity") || c.Line == 0 {
		t.Errorf("first case %+v: want a failure with the diff and the case's line", c)
	}
	var cov bytes.Buffer
	r.WriteCoverage(&cov)
	if !strings.Contains(cov.String(), "1 of 1 rules raised an alert") || !strings.Contains(cov.String(), "2 of 2 streams read a record") {
		t.Errorf("coverage:\n%s", cov.String())
	}

	// A suite whose cases never make a rule fire shows it.
	s2, err := Load("testdata/override_test.yaml", components)
	if err != nil {
		t.Fatal(err)
	}
	var r2 Report
	r2.Add(s2, s2.Run(context.Background()))
	cov.Reset()
	r2.WriteCoverage(&cov)
	if !strings.Contains(cov.String(), "rule never fired: ../../../examples/quickstart.yaml: rules streams[1].processors[0].threshold: rule cpu_load") {
		t.Errorf("coverage does not name the rule that never fired:\n%s", cov.String())
	}
}

// schemas/pipeline-test.schema.json is generated from the format's types.
func TestSchemaIsCurrent(t *testing.T) {
	got, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	const file = "../../schemas/pipeline-test.schema.json"
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run go test ./engine/ruletest -run Schema -update", file)
	}
}

// Editors validate test files with the generated schema: every test file of the repository
// passes it, and a misspelled field does not.
func TestSchemaAcceptsTheTestFiles(t *testing.T) {
	data, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft7
	if err := c.AddResource("pipeline-test.schema.json", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("pipeline-test.schema.json")
	if err != nil {
		t.Fatalf("the generated schema does not compile: %v", err)
	}
	asJSON := func(data []byte) any {
		var doc any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(doc)
		var v any
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	files, _ := filepath.Glob("../../examples/*_test.yaml")
	files = append(files, "testdata/wrong_test.yaml", "testdata/override_test.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(asJSON(data)); err != nil {
			t.Errorf("%s fails the schema: %v", file, err)
		}
		if err := schema.Validate(asJSON(bytes.Replace(data, []byte("expect:"), []byte("expcet:"), 1))); err == nil {
			t.Errorf("%s with expect: misspelled passes the schema", file)
		}
	}
}

func golden(t *testing.T, file, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./engine/ruletest -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("output differs from %s (run with -update if the change is intended)\ngot:\n%s\nwant:\n%s", file, got, want)
	}
}

// components are the component types the test files' pipelines use: every one the binary has.
var components = engine.Components{Processors: all.Factories(), Outputs: outputs.Factories()}
