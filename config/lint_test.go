package config_test

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/runtime"
	outputs "github.com/eventops/eventops-engine/outputs/all"
	"github.com/eventops/eventops-engine/processors/all"
)

// updating reports whether -update was given. The flag is declared by package config's own
// tests, which are compiled into the same test binary; declaring it here again would panic.
func updating(t *testing.T) bool {
	t.Helper()
	f := flag.Lookup("update")
	if f == nil {
		t.Fatal("no -update flag: package config's tests used to declare it")
	}
	return f.Value.String() == "true"
}

// lintEnv is the environment the lint cases are written against: ${EVENTOPS_LINT_BROKERS}
// is set, ${EVENTOPS_LINT_UNSET} is not (its cases expect the error).
func lintEnv(t *testing.T) {
	t.Helper()
	t.Setenv("EVENTOPS_LINT_BROKERS", "redpanda:9092")
	t.Setenv("EVENTOPS_LINT_UNSET", "") // restores it after the test
	os.Unsetenv("EVENTOPS_LINT_UNSET")
}

// lintFindings runs the check `eventops-engine lint` runs on file and returns every finding,
// errors and warnings, sorted by position.
func lintFindings(t *testing.T, file string) config.Errors {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, cfg, err := runtime.Check(file, runtime.Options{Logger: logger, Components: engine.Components{Processors: all.Factories(), Outputs: outputs.Factories()}})
	var findings config.Errors
	if cfg != nil {
		findings = append(findings, cfg.Warnings...)
	}
	var errs config.Errors
	switch {
	case err == nil:
	case errors.As(err, &errs):
		findings = append(findings, errs...)
	default:
		t.Fatalf("the file could not be checked at all (not a finding about its content): %v", err)
	}
	findings.Sort()
	return findings
}

// TestLintGolden checks every testdata/lint/*.yaml the way lint does and compares the
// findings, one "file:line:col: path: message" per line, with testdata/lint/<name>.errors.
// Each bad_*.yaml holds one mistake in an otherwise realistic pipeline, so its golden shows
// what a user would see for that mistake; each good_*.yaml must have an empty golden.
func TestLintGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "lint", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/lint/*.yaml files: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			lintEnv(t)
			findings := lintFindings(t, file)
			for _, f := range findings {
				if f.Pos.File != file || f.Pos.Line <= 0 || f.Pos.Col <= 0 {
					t.Errorf("finding without a usable position (file %q, line %d, col %d): %v", f.Pos.File, f.Pos.Line, f.Pos.Col, f)
				}
			}
			wd, err := os.Getwd()
			if err != nil {
				t.Fatal(err)
			}
			var got strings.Builder
			for _, f := range findings {
				// jsonschema names a file it cannot compile by its absolute URL; the golden
				// must not depend on where the repository is checked out.
				got.WriteString(strings.ReplaceAll(f.Error(), wd, "$PWD"))
				got.WriteString("\n")
			}
			if strings.HasPrefix(name, "good_") && got.Len() > 0 {
				t.Errorf("a good pipeline has findings (false positives?):\n%s", got.String())
			}
			golden := filepath.Join("testdata", "lint", name+".errors")
			if updating(t) {
				if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./config -run TestLintGolden -update to create it)", err)
			}
			if got.String() != string(want) {
				t.Errorf("findings differ from %s (run with -update if the change is intended)\ngot:\n%s\nwant:\n%s", golden, got.String(), want)
			}
		})
	}
}
