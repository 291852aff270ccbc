package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/eventops/eventops-engine/engine/ruletest"

	"github.com/eventops/eventops-engine/config"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/lint-golden")

// unsetLintVar makes sure the variable testdata/unset_var.yaml refers to is unset, so that
// the warning for it is part of the output.
func unsetLintVar(t *testing.T) {
	t.Helper()
	t.Setenv("EVENTOPS_LINT_TEST_DSN", "") // restores the variable after the test
	os.Unsetenv("EVENTOPS_LINT_TEST_DSN")
}

// What a user sees from lint: the findings on stdout, the summary on stderr, the exit status.
// Each case's expected output is testdata/lint-golden/<name>.txt; go test -update rewrites them.
func TestLintOutputAndExitStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		exit int
	}{
		{"text", []string{"lint", "testdata/broken.yaml"}, 1},
		{"json", []string{"lint", "--format", "json", "testdata/broken.yaml"}, 1},
		{"github", []string{"lint", "--format=github", "testdata/broken.yaml"}, 1},
		{"warning_only_passes", []string{"lint", "testdata/warning_only.yaml"}, 0},
		{"strict_makes_warning_an_error", []string{"lint", "--strict", "testdata/warning_only.yaml"}, 1},
		{"strict_json", []string{"lint", "--strict", "--format", "json", "testdata/warning_only.yaml"}, 1},
		{"flags_after_files", []string{"lint", "testdata/warning_only.yaml", "--format", "github", "--strict"}, 1},
		{"unset_var_is_an_error", []string{"lint", "testdata/unset_var.yaml"}, 1},
		{"clean_file", []string{"lint", "../../examples/quickstart.yaml"}, 0},
		{"what_takes_a_pipeline_down", []string{"lint", "testdata/takes_pipeline_down.yaml"}, 1},
		{"directory_recursive_skips_hidden_and_non_yaml", []string{"lint", "testdata/lintdir"}, 1},
		{"sorted_across_files", []string{"lint", "testdata/unset_var.yaml", "testdata/broken.yaml"}, 1},
		{"file_named_twice_linted_once", []string{"lint", "testdata/lintdir", "testdata/lintdir/broken.yaml"}, 1},
		{"missing_file_still_lints_the_others", []string{"lint", "testdata/no-such-file.yaml", "testdata/broken.yaml"}, 2},
		{"directory_without_yaml", []string{"lint", "testdata/no-pipelines", "--format", "json"}, 2},
		{"after_double_dash_everything_is_a_file", []string{"lint", "--", "--strict"}, 2},
		{"unknown_format", []string{"lint", "--format", "xml", "testdata/broken.yaml"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unsetLintVar(t)
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			got := fmt.Sprintf("$ eventops-engine %s\nexit %d\n-- stdout --\n%s-- stderr --\n%s",
				strings.Join(tc.args, " "), code, stdout.String(), stderr.String())
			golden := filepath.Join("testdata", "lint-golden", tc.name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
			if code != tc.exit {
				t.Errorf("exit %d, want %d", code, tc.exit)
			}
		})
	}
}

// GitHub reads "::error file=F,line=L::message" up to the first "::" and a line break ends
// the command, so a message or path holding those characters must be escaped or the
// annotation is lost or cut short.
func TestGitHubAnnotationsEscapeWhatGitHubWouldMisread(t *testing.T) {
	for _, tc := range []struct {
		name    string
		finding config.Error
		want    string
	}{
		{
			name:    "plain",
			finding: config.Error{Pos: config.Pos{File: "p/a.yaml", Line: 3, Col: 7}, Path: "streams[0].input", Msg: `unknown field "topc"`},
			want:    "::error file=p/a.yaml,line=3,col=7,title=streams[0].input::unknown field \"topc\"\n",
		},
		{
			name:    "percent and line breaks in the message",
			finding: config.Error{Pos: config.Pos{File: "a.yaml", Line: 1, Col: 1}, Msg: "100% sure\r\nsecond line", Warning: true},
			want:    "::warning file=a.yaml,line=1,col=1::100%25 sure%0D%0Asecond line\n",
		},
		{
			name:    "colon and comma in the properties, not in the message",
			finding: config.Error{Pos: config.Pos{File: "C:/odd,name.yaml", Line: 2, Col: 4}, Path: "lookups.a,b:c", Msg: "a: b, c"},
			want:    "::error file=C%3A/odd%2Cname.yaml,line=2,col=4,title=lookups.a%2Cb%3Ac::a: b, c\n",
		},
		{
			name:    "no position",
			finding: config.Error{Msg: "cannot build"},
			want:    "::error::cannot build\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			writeGitHubFinding(&b, &tc.finding)
			if b.String() != tc.want {
				t.Errorf("got  %q\nwant %q", b.String(), tc.want)
			}
		})
	}
}

// The promise: whatever lint accepts, run accepts, and the reverse, with the same
// findings. Every example, every loader test file and every lint golden case goes through
// both `lint FILE` and `run --dry-run -c FILE`.
func TestLintAndRunDryRunAgree(t *testing.T) {
	for k, v := range map[string]string{"BROKERS": "localhost:9092", "PARTS": "6", "TABLE": "metrics", "EMPTY": ""} {
		t.Setenv(k, v)
	}
	// PG_DSN stays unset: a file that needs it fails both ways alike, and the examples
	// default it.
	t.Setenv("PG_DSN", "")
	os.Unsetenv("PG_DSN")
	// Rule test files are not pipelines: run would not take them.
	files := slices.DeleteFunc(globFiles(t, "../../examples/*.yaml"), ruletest.IsTestFile)
	files = append(files, globFiles(t, "../../config/testdata/*.yaml")...)
	// Only the pipelines: the schema and CSV fixtures next to them are not pipeline files.
	files = append(files, globFiles(t, "../../config/testdata/lint/*.yaml")...)
	if len(files) < 10 {
		t.Fatalf("only %d files found; the globs no longer match the repository layout", len(files))
	}
	var accepted int
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			var lintOut, lintErr bytes.Buffer
			lintCode := run([]string{"lint", file}, &lintOut, &lintErr)
			var runOut, runErr bytes.Buffer
			runCode := run([]string{"run", "--dry-run", "-c", file}, &runOut, &runErr)

			if lintCode != runCode {
				t.Errorf("lint exits %d, run --dry-run exits %d\nlint:\n%s%s\nrun:\n%s", lintCode, runCode, lintOut.String(), lintErr.String(), runErr.String())
			}
			// run prints the findings and then one line saying whether it would start.
			runLines := strings.SplitAfter(runErr.String(), "\n")
			runFindings := strings.Join(runLines[:len(runLines)-2], "")
			if lintOut.String() != runFindings {
				t.Errorf("different findings\nlint:\n%s\nrun --dry-run:\n%s", lintOut.String(), runFindings)
			}
			if runCode == 0 {
				accepted++
			}
		})
	}
	if accepted == 0 {
		t.Error("no file was accepted by both; the comparison only covered failures")
	}
}

func globFiles(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return files
}
