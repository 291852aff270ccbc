package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.errors golden files from the current output")

// fakeThreshold stands in for a real processor config: the loader only needs the tags and
// a Validate that blames a field.
type fakeThreshold struct {
	Rules []fakeRule `yaml:"rules" required:"true"`
}

type fakeRule struct {
	Name     string   `yaml:"name" required:"true"`
	When     Expr     `yaml:"when" required:"true"`
	For      Duration `yaml:"for"`
	Severity string   `yaml:"severity" default:"warning" enum:"info,warning,critical"`
}

func (t *fakeThreshold) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, r := range t.Rules {
		if seen[r.Name] {
			errs = append(errs, FieldErrorf(fmt.Sprintf("rules[%d].name", i), "duplicate rule name %q", r.Name))
		}
		seen[r.Name] = true
		if r.For < 0 {
			errs = append(errs, FieldErrorf(fmt.Sprintf("rules[%d].for", i), "for must be a finite duration"))
		}
	}
	return errors.Join(errs...)
}

type fakeFilter struct {
	When Expr `yaml:"when" required:"true"`
}

func testRegistry() Registry {
	return Registry{Processors: map[string]func() any{
		"map":       func() any { return &Fields{} },
		"threshold": func() any { return &fakeThreshold{} },
		"filter":    func() any { return &fakeFilter{} },
	}}
}

func testEnv(name string) (string, bool) {
	env := map[string]string{"BROKERS": "redpanda:9092", "EMPTY": "", "TABLE": "metrics", "PARTS": "6"}
	v, ok := env[name]
	return v, ok
}

func loadTestdata(t *testing.T, name string) (*Pipeline, error) {
	t.Helper()
	path := filepath.Join("testdata", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return LoadBytes(path, data, testRegistry(), testEnv)
}

func TestSmoke(t *testing.T) {
	p, err := loadTestdata(t, "good_full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", p)
	for _, w := range p.Warnings {
		t.Log(w)
	}
	_ = strings.Join
}
