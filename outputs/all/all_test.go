package all

import (
	"reflect"
	"strings"
	"testing"

	"github.com/eventops/eventops-engine/config"
)

// yamlKeys are the keys of struct t's own settings: an output type named like one of them
// could never be written.
func yamlKeys(t reflect.Type) map[string]bool {
	keys := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
			keys[name] = true
		}
	}
	return keys
}

func TestEveryFactoryIsComplete(t *testing.T) {
	taken := yamlKeys(reflect.TypeFor[config.Output]())
	for k := range yamlKeys(reflect.TypeFor[config.Sink]()) {
		taken[k] = true
	}
	seen := map[string]bool{}
	for _, f := range Factories() {
		switch {
		case f.Type == "" || f.Doc == "" || f.Example == "" || f.NewConfig == nil || f.Check == nil || f.Build == nil:
			t.Errorf("factory %q is incomplete", f.Type)
			continue
		case seen[f.Type]:
			t.Errorf("type %q listed twice", f.Type)
		case taken[f.Type]:
			t.Errorf("type %q is the key of a setting of output: or sinks:, so it could never be written", f.Type)
		}
		seen[f.Type] = true
		if c := reflect.ValueOf(f.NewConfig()); c.Kind() != reflect.Pointer || c.IsNil() || c.Elem().Kind() != reflect.Struct {
			t.Errorf("%s: NewConfig returned %v, want a pointer to a struct", f.Type, c.Type())
		}
	}
	for _, typ := range []string{"postgres", "parquet", "webhook"} {
		if !seen[typ] {
			t.Errorf("output %q not listed", typ)
		}
	}
}
