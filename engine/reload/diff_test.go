package reload

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	outputs "github.com/eventops/eventops-engine/outputs/all"
	"github.com/eventops/eventops-engine/processors/all"
)

// registry knows every component type of the engine, as the running binary does.
var registry = engine.Components{Processors: all.Factories(), Outputs: outputs.Factories()}.Registry()

const basePipeline = `version: 1
broker: {embedded: {}}
topics:
  in:  {partitions: 1, ingest: true}
  out: {partitions: 1}
  dlq: {}
dead_letter: dlq
lookups:
  cmdb: {file: cmdb.csv, key: host}
streams:
  - name: normalize
    input: {topic: in}
    processors:
      - map: {host: host, value: float(value)}
      - enrich: {lookup: cmdb, key: host, into: tags}
    output: {topic: out}
  - name: rules
    input: {topic: out}
    processors:
      - threshold:
          rules:
            - {name: hot, when: 'value >= 90', severity: critical}
    output: {topic: dlq}
api:
  routes:
    - {path: /alerts, stream: out}
`

func load(t *testing.T, dir, text string) *config.Pipeline {
	t.Helper()
	file := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := config.LoadBytes(file, []byte(text), registry, nil)
	if err != nil {
		t.Fatalf("loading: %v", err)
	}
	return p
}

// The diff names what a user changed, and only that: moving a stream or adding comments and
// blank lines shifts every position without changing anything.
func TestDiffNamesWhatChanged(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cmdb.csv"), []byte("host,site\nhost-a,fra1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := load(t, dir, basePipeline)
	moved := strings.Replace(basePipeline, "streams:\n", "# the streams\n\nstreams:\n", 1)
	i, j := strings.Index(basePipeline, "  - name: normalize"), strings.Index(basePipeline, "  - name: rules")
	k := strings.Index(basePipeline, "api:")
	reordered := basePipeline[:i] + basePipeline[j:k] + basePipeline[i:j] + basePipeline[k:]
	for _, tc := range []struct {
		name    string
		text    string
		changed []string
		want    []string
	}{
		{"comments and blank lines", moved, nil, nil},
		{"streams in another order", reordered, nil, nil},
		{"a threshold edited", strings.Replace(basePipeline, "value >= 90", "value >= 95", 1), nil, []string{"streams.rules: changed"}},
		{"a rule added", strings.Replace(basePipeline, "            - {name: hot, when: 'value >= 90', severity: critical}\n",
			"            - {name: hot, when: 'value >= 90', severity: critical}\n            - {name: warm, when: 'value >= 80', severity: warning}\n", 1), nil, []string{"streams.rules: changed"}},
		{"a stream and a route added", strings.Replace(strings.Replace(basePipeline, "api:\n", "  - name: copy\n    input: {topic: in}\n    output: {topic: dlq}\napi:\n", 1),
			"    - {path: /alerts, stream: out}\n", "    - {path: /alerts, stream: out}\n    - {path: /raw, stream: in}\n", 1), nil,
			[]string{"streams.copy: added", "api.routes./raw: added"}},
		{"a lookup file edited", basePipeline, []string{filepath.Join(dir, "cmdb.csv")}, []string{"lookups.cmdb: file changed"}},
		{"the broker changed", strings.Replace(basePipeline, "broker: {embedded: {}}", "broker: {brokers: [\"localhost:9092\"]}", 1), nil, []string{"broker: changed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := load(t, dir, tc.text)
			if got := Diff(base, next, tc.changed); !slices.Equal(got, tc.want) {
				t.Errorf("Diff = %q, want %q", got, tc.want)
			}
		})
	}
}

// A broken edit is reported with the file, line and column of each mistake, so that
// GET /-/reload says where to look.
func TestRejectedReloadSaysWhere(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cmdb.csv"), []byte("host,site\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(basePipeline, "when: 'value >= 90'", "whne: 'value >= 90'", 1)
	file := filepath.Join(dir, "pipeline.yaml")
	_, err := config.LoadBytes(file, []byte(broken), registry, nil)
	if err == nil {
		t.Fatal("a broken expression loaded")
	}
	var tr Tracker
	st := tr.Record(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "file change: pipeline.yaml", Rejected, nil, nil, err)
	if st.Result != Rejected || st.Attempts != 1 || !st.LastApplied.IsZero() || len(st.Errors) == 0 {
		t.Fatalf("status %+v", st)
	}
	p := st.Errors[0]
	if p.File != file || p.Line != 22 || p.Col == 0 || !strings.Contains(p.Path, "streams[1].processors[0].threshold.rules[0]") || !strings.Contains(p.Message, "whne") {
		t.Errorf("problem %+v, want %s:22:<col> at streams[1].processors[0].threshold.rules[0], naming whne", p, file)
	}
}
