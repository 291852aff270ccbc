package all

import (
	"testing"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/lookup"
	"github.com/eventops/eventops-engine/processors/enrich"
	"github.com/eventops/eventops-engine/processors/threshold"
)

func TestEveryFactoryIsComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range Factories() {
		if f.Type == "" || f.Doc == "" || f.NewConfig == nil || f.Build == nil {
			t.Errorf("factory %q is incomplete", f.Type)
		}
		if seen[f.Type] {
			t.Errorf("type %q listed twice", f.Type)
		}
		seen[f.Type] = true
		if c := f.NewConfig(); c == nil {
			t.Errorf("%s: NewConfig returned nil", f.Type)
		}
		if _, ok := components().Registry().Processors[f.Type]; !ok {
			t.Errorf("%s missing from the registry", f.Type)
		}
	}
	for _, typ := range []string{"map", "filter", "enrich", "threshold"} {
		if _, ok := Factory(typ); !ok {
			t.Errorf("processor %q not listed", typ)
		}
	}
}

// TestSeedPipelineChain runs the seed's flow through the processors built from the registry:
// raw agent event -> map -> enrich -> threshold -> one critical alert with CMDB tags.
func TestSeedPipelineChain(t *testing.T) {
	e := func(s string) *config.Expr { return &config.Expr{Src: s} }
	env := engine.BuildEnv{Lookups: lookup.Set{"cmdb": lookup.New("cmdb", lookup.Rows{"host-a": {"site": "par1"}})}}
	build := func(typ string, fill func(cfg any)) engine.Processor {
		f, _ := Factory(typ)
		cfg := f.NewConfig()
		fill(cfg)
		p, err := f.Build(cfg, env)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		return p
	}
	chain := []engine.Processor{
		build("map", func(c any) {
			*c.(*config.Fields) = config.Fields{
				{Name: "event_id", Expr: e("record_id()")},
				{Name: "tenant_id", Expr: e(`tenant_id ?? "default"`)},
				{Name: "source", Expr: e(`{type: "host", source_id: host ?? "unknown"}`)},
				{Name: "metric", Expr: e("metric")},
				{Name: "value", Expr: e("float(value)")},
				{Name: "ts_event", Expr: e("ts_event ?? now()")},
				{Name: "tags", Expr: e("tags")},
			}
		}),
		build("enrich", func(c any) {
			*c.(*enrich.Config) = enrich.Config{Lookup: "cmdb", Key: *e("source.source_id")}
		}),
		build("threshold", func(c any) {
			*c.(*threshold.Config) = threshold.Config{Rules: []threshold.Rule{{
				Name:    "cpu_load_critical",
				When:    *e(`metric == "cpu_load" && value >= 90`),
				Message: e("CPU {{value}}% on {{source.source_id}} at {{tags.site}}"),
			}}}
		}),
	}
	batch := []*engine.Record{{Value: map[string]any{
		"tenant_id": "acme", "host": "host-a", "metric": "cpu_load", "value": 92.0,
		"ts_event": "2025-10-16T09:00:00Z", "unit": "percent", "tags": map[string]any{"env": "prod"},
	}}}
	var rejects engine.Rejects
	for _, p := range chain {
		var err error
		if batch, err = p.Process(t.Context(), batch, &rejects); err != nil {
			t.Fatal(err)
		}
	}
	if rejects.Len() != 0 || len(batch) != 1 {
		t.Fatalf("%d alerts, rejects %v", len(batch), rejects.Items)
	}
	a := batch[0].Value
	if a["severity"] != "warning" || a["state"] != "firing" || a["message"] != "CPU 92% on host-a at par1" {
		t.Fatalf("alert = %v", a)
	}
	if tags := a["tags"].(map[string]any); tags["env"] != "prod" || tags["site"] != "par1" {
		t.Fatalf("alert tags = %v", tags)
	}
}
