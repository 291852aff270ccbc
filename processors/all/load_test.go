package all

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/lookup"
	"github.com/eventops/eventops-engine/engine/runtime"
)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// buildAll builds the processors of every stream the way the runtime does, collecting
// config errors with their positions.
func buildAll(t *testing.T, file string) (map[string][]engine.Processor, error) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p, err := config.LoadBytes(filepath.Base(file), data, components().Registry(), func(string) (string, bool) { return "", false })
	if err != nil {
		return nil, err
	}
	set, err := lookup.LoadAll(p.Lookups)
	if err != nil {
		t.Fatal(err)
	}
	var errs config.Errors
	out := map[string][]engine.Processor{}
	for _, s := range p.Streams {
		for _, pe := range s.Processors {
			f, _ := Factory(pe.Type)
			proc, err := f.Build(pe.Config, engine.BuildEnv{Stream: s.Name, Path: pe.Path, Lookups: set,
				Clock: fixedClock(time.Date(2025, 10, 16, 12, 0, 0, 0, time.UTC))})
			if err != nil {
				errs.Append(pe.Pos, pe.Path, err)
				continue
			}
			out[s.Name] = append(out[s.Name], proc)
		}
	}
	return out, errs.Err()
}

func TestPipelineFileDecodesAndRuns(t *testing.T) {
	streams, err := buildAll(t, "testdata/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	raw := func(host string, minute int, v float64) *engine.Record {
		return &engine.Record{Value: map[string]any{"tenant_id": "acme", "host": host, "metric": "cpu_load", "value": v,
			"ts_event": time.Date(2025, 10, 16, 9, minute, 0, 0, time.UTC).Format(time.RFC3339)}}
	}
	batch := []*engine.Record{raw("host-a", 0, 95), raw("host-b", 0, 85), raw("host-a", 1, 96), raw("host-a", 2, 97),
		{Value: map[string]any{"note": "no metric"}}}
	var rejects engine.Rejects
	for _, name := range []string{"normalize", "rules"} {
		for _, p := range streams[name] {
			if batch, err = p.Process(t.Context(), batch, &rejects); err != nil {
				t.Fatal(err)
			}
		}
	}
	if rejects.Len() != 0 {
		t.Fatalf("rejects: %v", rejects.Items)
	}
	var got []string
	for _, a := range batch {
		got = append(got, a.Value["rule"].(string)+"/"+a.Value["source_id"].(string)+": "+a.Value["message"].(string))
	}
	want := []string{
		"cpu_load_critical/host-a: CPU 95% on host-a (par1)", // pending: the rule has for: 2m
		"cpu_load_high/host-a: cpu_load_high: metric == \"cpu_load\" && value >= 80",
		"cpu_load_high/host-b: cpu_load_high: metric == \"cpu_load\" && value >= 80",
		"cpu_load_critical/host-a: CPU 97% on host-a (par1)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("alerts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if batch[2].Value["tags"].(map[string]any)["site"] != "unknown" { // host-b
		t.Errorf("host-b missing from the CMDB did not get the default site: %v", batch[2].Value["tags"])
	}
}

func TestBrokenPipelineErrorsPointAtTheirPlace(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"testdata/broken_decode.yaml", []string{
			`broken_decode.yaml:10:52: streams[0].processors[1].enrich.on_miss: must be one of keep, drop, default; got "skip"`,
			`broken_decode.yaml:13:52: streams[0].processors[2].threshold.rules[0].severity: must be one of critical, warning, info; got "page"`,
		}},
		{"testdata/broken_build.yaml", []string{
			`broken_build.yaml:9:26: streams[0].processors[0].enrich.lookup: lookup table "cmbd" is not declared: there is no lookups: section`,
			`broken_build.yaml:12:38: streams[0].processors[1].threshold.rules[0].when: expression "value >": unexpected token EOF`,
			`broken_build.yaml:15:36: streams[0].processors[1].threshold.rules[1].message: expression "value}% on {{host": unexpected token Bracket`,
			`broken_build.yaml:16:72: streams[0].processors[1].threshold.rules[2].message: message: {{ without a closing }}`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			// The runtime's own check path: load, then build what decoded.
			_, _, err := runtime.Check(tt.file, runtime.Options{Components: components()})
			if err == nil {
				t.Fatal("broken pipeline built")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("errors lack %q; got:\n%v", want, err)
				}
			}
		})
	}
}
