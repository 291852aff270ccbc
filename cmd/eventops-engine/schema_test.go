package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// The schema command prints what is committed as schemas/pipeline.schema.json, the file the
// examples point editors at, so "eventops-engine schema > pipeline.schema.json" and the
// repository agree.
func TestSchemaPrintsTheCommittedPipelineSchema(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"schema"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var doc map[string]any
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	if doc["$schema"] != "http://json-schema.org/draft-07/schema#" {
		t.Errorf("$schema = %v, want draft-07", doc["$schema"])
	}
	committed, err := os.ReadFile("../../schemas/pipeline.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), committed) {
		t.Error("output differs from schemas/pipeline.schema.json: run go test ./processors/all -run Generated -update")
	}
}

// schema --test prints what is committed as schemas/pipeline-test.schema.json, which the
// examples' test files point editors at.
func TestSchemaTestPrintsTheCommittedTestFileSchema(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"schema", "--test"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	committed, err := os.ReadFile("../../schemas/pipeline-test.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), committed) {
		t.Error("output differs from schemas/pipeline-test.schema.json: run go test ./engine/ruletest -run Schema -update")
	}
}

func TestSchemaRejectsArguments(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"schema", "pipeline.yaml"}, &out, &errb); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if out.Len() != 0 || !strings.Contains(errb.String(), "takes no arguments") {
		t.Errorf("stdout %q, stderr %q", out.String(), errb.String())
	}
}
