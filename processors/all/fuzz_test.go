package all

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/runtime"
)

// FuzzCheck runs whole pipeline files through the check that lint and run share (decode,
// references, building every processor with type checks) and asserts what lint promises: it
// never panics, and every finding points at a line and column of the file.
func FuzzCheck(f *testing.F) {
	var seeds []string
	for _, pattern := range []string{"../../examples/*.yaml", "../../config/testdata/*.yaml", "../../config/testdata/lint/*.yaml", "testdata/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		seeds = append(seeds, files...)
	}
	for _, file := range seeds {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	// Relative schema and lookup paths resolve against the file's directory: pretend the
	// input sits next to the examples so that their references resolve.
	const file = "../../examples/fuzz.yaml"
	opts := runtime.Options{Components: components(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	noEnv := func(string) (string, bool) { return "", false }
	f.Fuzz(func(t *testing.T, data []byte) {
		_, cfg, err := runtime.CheckBytes(file, data, opts, noEnv)
		var findings config.Errors
		if cfg != nil {
			findings = append(findings, cfg.Warnings...)
		}
		if err != nil {
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want config.Errors: %v", err, err)
			}
			findings = append(findings, errs...)
		}
		for _, e := range findings {
			if e.Pos.Line <= 0 || e.Pos.Col <= 0 || e.Pos.File != file {
				t.Fatalf("finding without a position in the file: %#v", e)
			}
		}
	})
}
