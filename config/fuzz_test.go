package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad checks that no input makes the loader panic and that every error it returns
// points at a line, since the linter prints file:line:col for each.
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a: &a {b: *a}\nversion: 1\n"))
	f.Add([]byte("streams:\n  - name: x\n    processors:\n      - map: &m {a: *m}\n"))
	f.Add([]byte("base: &b {partitions: 2}\ntopics:\n  t: {<<: *b, retention: 1d}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := LoadBytes(filepath.Join("testdata", "fuzz.yaml"), data, testRegistry(), testEnv)
		if err == nil {
			if p == nil {
				t.Fatal("nil pipeline without an error")
			}
			return
		}
		var errs Errors
		if !errors.As(err, &errs) {
			t.Fatalf("error is %T, want config.Errors: %v", err, err)
		}
		for _, e := range errs {
			if e.Pos.Line <= 0 {
				t.Fatalf("error without a line: %#v", e)
			}
		}
	})
}
