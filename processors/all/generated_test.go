package all

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/eventops/eventops-engine/config"
)

var update = flag.Bool("update", false, "rewrite schemas/pipeline.schema.json and docs/components from the component specs")

const (
	schemaFile    = "../../schemas/pipeline.schema.json"
	componentsDir = "../../docs/components"
)

// generatedFiles is every file generated from the component specs, by path from this
// package's directory.
func generatedFiles(t *testing.T) map[string][]byte {
	t.Helper()
	schema, err := config.JSONSchema(components().Registry())
	if err != nil {
		t.Fatal(err)
	}
	pages, err := config.ComponentDocs(components().Registry())
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{schemaFile: schema}
	for name, page := range pages {
		files[filepath.Join(componentsDir, name)] = page
	}
	return files
}

// TestGeneratedFilesAreUpToDate fails when a committed schema or component page no longer
// matches the specs, so that editors and readers never see settings the engine dropped.
func TestGeneratedFilesAreUpToDate(t *testing.T) {
	want := generatedFiles(t)
	committed, err := filepath.Glob(filepath.Join(componentsDir, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	const fix = "run go test ./processors/all -run Generated -update"
	if *update {
		if err := os.MkdirAll(componentsDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for path, content := range want {
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for _, path := range committed {
			if _, ok := want[path]; !ok {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			}
		}
		return
	}
	for path, content := range want {
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v (%s)", path, err, fix)
			continue
		}
		if !bytes.Equal(got, content) {
			t.Errorf("%s is stale (%s); first difference:\n%s", path, fix, firstDifference(got, content))
		}
	}
	for _, path := range committed {
		if _, ok := want[path]; !ok {
			t.Errorf("%s documents no component (%s to remove it)", path, fix)
		}
	}
}

func firstDifference(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ":\n  committed: " + gl + "\n  generated: " + wl
		}
	}
	return "(none)"
}
