package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestVersionPrintsTheVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.HasPrefix(out.String(), "eventops-engine ") {
		t.Fatalf("version printed %q", out.String())
	}
}

// A broken file is rejected with every error at once, each as file:line:col: path: message,
// including an expression error at its column, and the run never starts.
func TestBrokenPipelineReportsEveryErrorWithPositionAndDoesNotStart(t *testing.T) {
	for _, args := range [][]string{
		{"-c", "testdata/broken.yaml"},
		{"run", "-c", "testdata/broken.yaml"},
		{"run", "--dry-run", "-c", "testdata/broken.yaml"},
	} {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		if code != 1 {
			t.Fatalf("%v: exit %d, want 1", args, code)
		}
		got := out.String() + errb.String()
		for _, want := range []string{
			`testdata/broken.yaml:5:21: topics.in.partitions: expected a number, got "three"`,
			`testdata/broken.yaml:6:20: topics.out.retention: invalid duration "14x"`,
			`testdata/broken.yaml:13:33: streams[0].processors[0].filter.when: expression "valeu >= "`,
			`testdata/broken.yaml:14:26: streams[0].output: unknown field "colour"`,
			"4 errors; nothing was started",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("%v: output lacks %q; got:\n%s", args, want, got)
			}
		}
		if strings.Contains(got, "pipeline running") {
			t.Errorf("%v: a broken pipeline started", args)
		}
	}
}

func TestExamplesLintClean(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"lint", "../../examples/quickstart.yaml", "../../examples/eventops-flow.yaml"}, &out, &errb)
	if code != 0 {
		t.Fatalf("examples do not lint clean (exit %d):\n%s%s", code, out.String(), errb.String())
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{{}, {"run"}, {"lint"}, {"-c"}, {"bogus"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)", args, code)
		}
	}
}
