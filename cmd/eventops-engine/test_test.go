package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// eventops-engine test exits like lint: 0 when every case passes, 1 when one fails (with
// the diff at the expectation's position on stdout), 2 for a file with errors or bad usage.
func TestTestCommandExitCodes(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
	}{
		{"examples pass", []string{"test", "../../examples/"}, 0, []string{"ok   ../../examples/quickstart_test.yaml", "ok   ../../examples/eventops-flow_test.yaml"}},
		{"a wrong expectation fails", []string{"test", "../../engine/ruletest/testdata/wrong_test.yaml"}, 1,
			[]string{"--- FAIL: wrong severity", "wrong_test.yaml:11:17: alerts active at 2025-10-16T09:01:00Z", `nearest: severity: want "critical", got "warning"`}},
		{"--run keeps the matching cases", []string{"test", "--run", "^right$", "../../engine/ruletest/testdata/wrong_test.yaml"}, 0, []string{"1 case, 0 failed"}},
		{"a broken test file", []string{"test", "../../engine/ruletest/testdata/bad_test.yaml"}, 2, []string{`bad_test.yaml:2:11: streams[0]: the pipeline has no stream "rulez"`}},
		{"no files", []string{"test"}, 2, nil},
		{"a missing file", []string{"test", "nope_test.yaml"}, 2, nil},
		{"a directory without tests", []string{"test", "testdata"}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tt.args, &out, &errb); code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out.String(), errb.String())
			}
			for _, want := range tt.stdout {
				if !strings.Contains(out.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

func TestTestCommandWritesJUnitAndCoverage(t *testing.T) {
	junit := filepath.Join(t.TempDir(), "junit.xml")
	var out, errb bytes.Buffer
	if code := run([]string{"test", "--junit", junit, "--coverage", "../../examples/"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	x, err := os.ReadFile(junit)
	if err != nil || !bytes.Contains(x, []byte(`<testsuite name="../../examples/quickstart_test.yaml"`)) {
		t.Errorf("JUnit file: %v\n%s", err, x)
	}
	// Every rule of every example is exercised by its tests.
	m := regexp.MustCompile(`coverage: (\d+) of (\d+) rules raised an alert, (\d+) of (\d+) streams read a record`).FindStringSubmatch(out.String())
	if m == nil || m[1] != m[2] || m[3] != m[4] {
		t.Errorf("no full coverage line:\n%s", out.String())
	}
}
