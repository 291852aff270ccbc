package enrich

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/lookup"
)

const path = "streams[0].processors[1].enrich"

func cmdb() lookup.Set {
	return lookup.Set{"cmdb": lookup.New("cmdb", lookup.Rows{
		"host-a": {"site": "par1", "owner": "team-db", "env": "staging"},
		"42":     {"site": "fra2"},
	})}
}

func envelope(sourceID any, tags map[string]any) map[string]any {
	v := map[string]any{"tenant_id": "acme", "metric": "cpu_load", "value": 92.0,
		"source": map[string]any{"type": "host", "source_id": sourceID}}
	if tags != nil {
		v["tags"] = tags
	}
	return v
}

func ptr[T any](v T) *T { return &v }

func TestEnrichHitAndMiss(t *testing.T) {
	base := Config{Lookup: "cmdb", Key: config.Expr{Src: "source.source_id"}}
	with := func(f func(c *Config)) Config { c := base; f(&c); return c }
	tests := []struct {
		name     string
		cfg      Config
		value    map[string]any
		wantKept bool
		wantTags string // JSON of the enriched object (at into), "" for none
		into     string
	}{
		{"hit merges row into existing tags, lookup wins", base,
			envelope("host-a", map[string]any{"env": "prod", "rack": "r1"}), true,
			`{"env":"staging","owner":"team-db","rack":"r1","site":"par1"}`, "tags"},
		{"hit with overwrite false keeps the record's values", with(func(c *Config) { c.Overwrite = ptr(false) }),
			envelope("host-a", map[string]any{"env": "prod"}), true,
			`{"env":"prod","owner":"team-db","site":"par1"}`, "tags"},
		{"hit creates the object when missing", base, envelope("host-a", nil), true,
			`{"env":"staging","owner":"team-db","site":"par1"}`, "tags"},
		{"hit copies only the listed fields", with(func(c *Config) { c.Fields = []string{"site"} }),
			envelope("host-a", nil), true, `{"site":"par1"}`, "tags"},
		{"hit into a nested path", with(func(c *Config) { c.Into = "attributes.cmdb" }),
			envelope("host-a", nil), true, `{"cmdb":{"env":"staging","owner":"team-db","site":"par1"}}`, "attributes"},
		{"numeric key matches its decimal form", base, envelope(42.0, nil), true, `{"site":"fra2"}`, "tags"},
		{"miss with keep leaves the record unchanged", base, envelope("host-z", map[string]any{"env": "prod"}), true,
			`{"env":"prod"}`, "tags"},
		{"missing key field is a miss", base, map[string]any{"metric": "cpu_load", "source": map[string]any{}}, true, "", "tags"},
		{"miss with drop removes the record", with(func(c *Config) { c.OnMiss = OnMissDrop }),
			envelope("host-z", nil), false, "", "tags"},
		{"miss with default merges defaults without replacing values", with(func(c *Config) {
			c.OnMiss = OnMissDefault
			c.Default = map[string]string{"site": "unknown", "env": "unknown"}
		}), envelope("host-z", map[string]any{"env": "prod"}), true, `{"env":"prod","site":"unknown"}`, "tags"},
		{"hit with on_miss default uses the row", with(func(c *Config) {
			c.OnMiss = OnMissDefault
			c.Default = map[string]string{"site": "unknown"}
		}), envelope("host-a", nil), true, `{"env":"staging","owner":"team-db","site":"par1"}`, "tags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Factory.Build(&tt.cfg, engine.BuildEnv{Path: path, Lookups: cmdb()})
			if err != nil {
				t.Fatal(err)
			}
			rec := &engine.Record{Value: tt.value}
			var rejects engine.Rejects
			out, err := p.Process(context.Background(), []*engine.Record{rec}, &rejects)
			if err != nil || rejects.Len() != 0 {
				t.Fatalf("err %v, rejects %v", err, rejects.Items)
			}
			if kept := len(out) == 1; kept != tt.wantKept {
				t.Fatalf("kept = %v, want %v", kept, tt.wantKept)
			}
			if !tt.wantKept {
				if d := p.(*Processor).Dropped(); d != 1 {
					t.Fatalf("dropped count = %d, want 1", d)
				}
				return
			}
			got := ""
			if v, ok := out[0].Value[tt.into]; ok {
				b, _ := json.Marshal(v)
				got = string(b)
			}
			if got != tt.wantTags {
				t.Fatalf("%s = %s, want %s", tt.into, got, tt.wantTags)
			}
			if out[0].Value["metric"] != tt.value["metric"] {
				t.Fatal("other fields changed")
			}
		})
	}
}

func TestEnrichDoesNotChangeSharedObjects(t *testing.T) {
	shared := map[string]any{"env": "prod"}
	p, err := Factory.Build(&Config{Lookup: "cmdb", Key: config.Expr{Src: "source.source_id"}}, engine.BuildEnv{Lookups: cmdb()})
	if err != nil {
		t.Fatal(err)
	}
	batch := []*engine.Record{{Value: envelope("host-a", shared)}, {Value: envelope("host-z", shared)}}
	out, _ := p.Process(context.Background(), batch, &engine.Rejects{})
	if len(shared) != 1 || out[1].Value["tags"].(map[string]any)["site"] != nil {
		t.Fatalf("enriching one record leaked into another: shared=%v second=%v", shared, out[1].Value["tags"])
	}
	row, _ := cmdb()["cmdb"].Get("host-a")
	out[0].Value["tags"].(map[string]any)["site"] = "changed"
	if row["site"] != "par1" {
		t.Fatal("record shares its map with the lookup table")
	}
}

func TestEnrichRejectsRecordsItCannotEnrich(t *testing.T) {
	tests := []struct {
		name  string
		key   string
		value map[string]any
		want  string
	}{
		{"tags is not an object", "source.source_id", envelope("host-a", nil), "tags: it is a string, not an object"},
		{"key expression fails", `source.source_id + 1`, envelope("host-a", nil), "enrich: key:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.value["tags"] = "prod"
			p, err := Factory.Build(&Config{Lookup: "cmdb", Key: config.Expr{Src: tt.key}}, engine.BuildEnv{Path: path, Lookups: cmdb()})
			if err != nil {
				t.Fatal(err)
			}
			rec := &engine.Record{Value: tt.value}
			var rejects engine.Rejects
			out, _ := p.Process(context.Background(), []*engine.Record{rec}, &rejects)
			if len(out) != 0 || rejects.Len() != 1 {
				t.Fatalf("out %d, rejects %d", len(out), rejects.Len())
			}
			if r := rejects.Items[0]; r.Stage != path || !strings.Contains(r.Err.Error(), tt.want) {
				t.Fatalf("reject at %q: %v; want %q", r.Stage, r.Err, tt.want)
			}
		})
	}
}

func TestEnrichConfigErrors(t *testing.T) {
	key := config.Expr{Src: "source.source_id"}
	tests := []struct {
		name      string
		cfg       Config
		wantField string
		want      string
	}{
		{"unknown lookup", Config{Lookup: "cmbd", Key: key}, "lookup", `no lookup table named "cmbd"`},
		{"no lookup", Config{Key: key}, "lookup", "name the lookup table"},
		{"no key", Config{Lookup: "cmdb"}, "key", "expression giving the lookup key"},
		{"bad on_miss", Config{Lookup: "cmdb", Key: key, OnMiss: "skip"}, "on_miss", "keep, drop, default"},
		{"default without on_miss default", Config{Lookup: "cmdb", Key: key, Default: map[string]string{"a": "b"}}, "default", "only with on_miss: default"},
		{"on_miss default without values", Config{Lookup: "cmdb", Key: key, OnMiss: OnMissDefault}, "default", "needs default values"},
		{"bad into", Config{Lookup: "cmdb", Key: key, Into: "tags..x"}, "into", "not a field name"},
		{"field no row has", Config{Lookup: "cmdb", Key: key, Fields: []string{"site", "sitee"}}, "fields[1]", `no column "sitee" (did you mean "site"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate() // as the decoder does, before any build
			if err == nil {
				_, err = Factory.Build(&tt.cfg, engine.BuildEnv{Lookups: cmdb()})
			}
			fe, ok := err.(*config.FieldError)
			if !ok {
				t.Fatalf("error %T %v is not a *config.FieldError", err, err)
			}
			if fe.Field != tt.wantField || !strings.Contains(fe.Msg, tt.want) {
				t.Fatalf("error at %q: %q; want %q containing %q", fe.Field, fe.Msg, tt.wantField, tt.want)
			}
		})
	}
}

func TestEnrichKeyCompileErrorIsPositioned(t *testing.T) {
	key := config.Expr{Src: "source.(", Pos: config.Pos{File: "p.yaml", Line: 12, Col: 30}, Path: path + ".key"}
	_, err := Factory.Build(&Config{Lookup: "cmdb", Key: key}, engine.BuildEnv{Lookups: cmdb()})
	if _, ok := err.(config.Errors); !ok || !strings.HasPrefix(err.Error(), "p.yaml:12:") {
		t.Fatalf("error %T %v", err, err)
	}
}
