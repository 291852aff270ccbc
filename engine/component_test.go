package engine_test

import (
	"strings"
	"testing"

	"github.com/eventops/eventops-engine/engine"
)

type fakeConfig struct{ Table string }

func TestConfigOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  any
		want string // part of the error, "" for none
	}{
		{"its config", &fakeConfig{Table: "t"}, ""},
		{"a value, not the pointer NewConfig makes", fakeConfig{}, "fake output: config is engine_test.fakeConfig, want *engine_test.fakeConfig"},
		{"another type", &struct{}{}, "config is *struct {}"},
		{"nothing", nil, "config is <nil>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := engine.ConfigOf[fakeConfig]("fake output", tc.cfg)
			switch {
			case tc.want == "" && (err != nil || c != tc.cfg):
				t.Errorf("ConfigOf = %v, %v; want the config itself", c, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("ConfigOf error = %v, want it to hold %q", err, tc.want)
			}
		})
	}
}

// The loader sees every listed component type, with what it needs of each, and the
// runtime finds each factory by its type.
func TestComponentsRegistry(t *testing.T) {
	c := engine.Components{
		Processors: []engine.ProcessorFactory{{Type: "map", Doc: "maps", NewConfig: func() any { return &fakeConfig{} }}},
		Outputs:    []engine.OutputFactory{{Type: "store", Doc: "stores", InSinks: true, NewConfig: func() any { return &fakeConfig{} }}},
	}
	reg := c.Registry()
	if p, ok := reg.Processors["map"]; !ok || p.Doc != "maps" || p.NewConfig == nil {
		t.Errorf("registry processor map = %+v, %v", p, ok)
	}
	if o, ok := reg.Outputs["store"]; !ok || o.Doc != "stores" || !o.InSinks || o.NewConfig == nil {
		t.Errorf("registry output store = %+v, %v", o, ok)
	}
	if f, ok := c.Output("store"); !ok || f.Type != "store" {
		t.Errorf("Output(store) = %+v, %v", f, ok)
	}
	if _, ok := c.Output("map"); ok {
		t.Error("Output(map) found a processor type")
	}
	if f, ok := c.Processor("map"); !ok || f.Type != "map" {
		t.Errorf("Processor(map) = %+v, %v", f, ok)
	}
}
