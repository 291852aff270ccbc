package window

import (
	"strings"
	"testing"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/eval"
	"github.com/eventops/eventops-engine/engine/types"
)

var registry = config.Registry{Processors: map[string]config.ProcessorSpec{
	"window": {NewConfig: Factory.NewConfig, Doc: Factory.Doc, Example: Factory.Example},
}}

// metricType is the envelope the normalizing map writes.
var metricType = types.ObjectOf("the map at streams[0].processors[0]", map[string]*types.Type{
	"tenant_id": types.TStr, "metric": types.TStr, "value": types.TFloat, "ts_event": types.TStr, "unit": types.TStr,
	"source": types.ObjectOf("the map", map[string]*types.Type{"type": types.TStr, "source_id": types.TStr}),
	"tags":   {Kind: types.Object, Extra: types.Any},
})

// load loads a pipeline whose one processor is the window written in body (indented
// under "- window:"), and builds it against metricType, as lint does.
func load(t *testing.T, body string) (*Processor, string) {
	t.Helper()
	src := "version: 1\nbroker: {embedded: {}}\ndead_letter: dlq\ntopics: {in: {}, out: {}, dlq: {}, late.metrics: {}}\nstreams:\n  - name: s\n    input: {topic: in}\n    processors:\n      - window:\n" +
		body + "    output: {topic: out}\n"
	p, err := config.LoadBytes("p.yaml", []byte(src), registry, func(string) (string, bool) { return "", false })
	if err != nil {
		return nil, err.Error()
	}
	pe := p.Streams[0].Processors[0]
	proc, err := Factory.Build(pe.Config, engine.BuildEnv{Path: pe.Path, Input: metricType})
	if err != nil {
		var errs config.Errors
		for _, e := range config.FlattenErrors(err) {
			errs.Append(pe.Pos, pe.Path, e)
		}
		return nil, errs.Err().Error()
	}
	return proc.(*Processor), ""
}

// TestConfigErrors: every mistake is reported, at the line and column to fix (the body
// starts on line 10; settings at column 11).
func TestConfigErrors(t *testing.T) {
	const w = "streams[0].processors[0].window"
	tests := []struct {
		name, body string
		want       []string
	}{
		{"tumbling without size", `          type: tumbling
          aggregate: {n: count()}
`, []string{"p.yaml:10:11: " + w + ".size: is required for tumbling windows"}},
		{"settings of other window types", `          type: tumbling
          size: 1m
          gap: 10s
          aggregate: {n: count()}
`, []string{"p.yaml:12:16: " + w + ".gap: does not apply to tumbling windows"}},
		{"hopping shape", `          type: hopping
          size: 1m
          hop: 2m
          aggregate: {n: count()}
`, []string{"p.yaml:12:16: " + w + ".hop: must not exceed size (1m0s); windows would leave gaps between them"}},
		{"too many hops", `          {type: hopping, size: 1d, hop: 1s, aggregate: {n: count()}}
`, []string{"p.yaml:10:42: " + w + ".hop: size/hop is 86400; at most 1000 windows may overlap (use a longer hop)"}},
		{"unknown type", `          type: sliding
          aggregate: {n: count()}
`, []string{`p.yaml:10:17: ` + w + `.type: must be one of tumbling, hopping, session; got "sliding"`}},
		{"aggregate mistakes point at the character", `          type: session
          gap: 30s
          aggregate:
            avg: avgg(value)
            p95: p95(value) * 2
            s: sum()
            window_end: max(value)
`, []string{
			`p.yaml:13:18: ` + w + `.aggregate.avg: unknown aggregate "avgg" (did you mean "avg"?)`,
			`p.yaml:14:29: ` + w + `.aggregate.p95: an aggregate is one call and nothing else`,
			`p.yaml:15:19: ` + w + `.aggregate.s: sum needs an argument, e.g. sum(value)`,
			`p.yaml:16:25: ` + w + `.aggregate.window_end: the output field "window_end" is already a field every window record has`,
		}},
		{"group keys", `          type: tumbling
          size: 1m
          group_by: [tenant_id, source, source.source_id, 'lower(metric)']
          group_as: {tenant_id: metric}
          aggregate: {n: count(), source: count()}
`, []string{
			`p.yaml:12:41: ` + w + `.group_by[2]: "source.source_id" overlaps group_by "source": one would overwrite the other in the output`,
			`p.yaml:12:60: ` + w + `.group_by[3]: "lower(metric)" is not a field path`,
			`p.yaml:13:33: ` + w + `.group_as.tenant_id: the output field "tenant_id" is already written by group_by tenant_id`,
			`p.yaml:14:43: ` + w + `.aggregate.source: the output field "source" is already written by group_by source`,
		}},
		{"types of arguments and keys", `          type: tumbling
          size: 1m
          group_by: [tenant_id, source.host]
          aggregate: {avg: avg(metric), top: max(valu)}
`, []string{
			`p.yaml:12:40: ` + w + `.group_by[1]: expression "source.host": "source" has no field "host"`,
			`p.yaml:13:32: ` + w + `.aggregate.avg: avg needs a number; metric is of type string`,
			`p.yaml:13:50: ` + w + `.aggregate.top: expression "valu": unknown field "valu" (did you mean "value"?)`,
		}},
		{"durations", `          type: tumbling
          size: 1m
          lateness: forever
          aggregate: {n: count()}
`, []string{"p.yaml:12:21: " + w + ".lateness: must be a duration of 0 or more"}},
		{"late topic must be declared", `          type: tumbling
          size: 1m
          late: late.metric
          aggregate: {n: count()}
`, []string{`p.yaml:12:17: ` + w + `.late: topic "late.metric" is not declared under topics: (did you mean "late.metrics"?)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := load(t, tt.body)
			lines := strings.Split(got, "\n")
			if got == "" {
				lines = nil
			}
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d errors:\n%s\nwant %d:\n%s", len(lines), got, len(tt.want), strings.Join(tt.want, "\n"))
			}
			for i, want := range tt.want {
				if !strings.HasPrefix(lines[i], want) {
					t.Errorf("error %d:\n got %s\nwant %s...", i, lines[i], want)
				}
			}
		})
	}
}

// TestOutputTypeChecksWhatFollows: the processor after a window sees the window record's
// type, so a threshold on avg checks, and a typo is an error before anything runs.
func TestOutputTypeChecksWhatFollows(t *testing.T) {
	p, errs := load(t, `          type: tumbling
          size: 1m
          group_by: [tenant_id, source.source_id, metric]
          group_as: {site: 'tags.site ?? "none"'}
          aggregate: {avg: avg(value), p95: p95(value), n: count(), last: last(unit), hosts: distinct(source.source_id)}
`)
	if errs != "" {
		t.Fatal(errs)
	}
	out := p.OutputType()
	for _, tt := range []struct {
		expr string
		ok   bool
	}{
		{`metric == "cpu_load" && avg >= 90`, true},
		{`p95 > 100 && n >= 3 && hosts > 1`, true},
		{`source.source_id == "host-a" && tenant_id != ""`, true},
		{`window_end > window_start && ts_event != "" && event_id != ""`, true},
		{`last == "percent" && site == "par1"`, true},
		{`avgg > 1`, false},
		{`value > 1`, false}, // the window consumed the readings
		{`avg == "high"`, false},
		{`source.type == "host"`, false}, // only the grouped path is kept
	} {
		_, err := eval.Check(config.Expr{Src: tt.expr}, eval.Bool, out, nil)
		if (err == nil) != tt.ok {
			t.Errorf("%s: error %v, want ok=%v", tt.expr, err, tt.ok)
		}
	}
}

func TestFactoryExampleBuilds(t *testing.T) {
	body := ""
	for _, line := range strings.Split(strings.TrimSpace(Factory.Example), "\n")[1:] {
		body += "      " + line + "\n"
	}
	if _, errs := load(t, body); errs != "" {
		t.Fatalf("the documented example does not build:\n%s", errs)
	}
}
