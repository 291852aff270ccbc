package reload

import (
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"

	"github.com/eventops/eventops-engine/config"
)

// Diff lists what differs between two loaded pipelines, one line per named part
// ("streams.rules: changed", "api.routes./alerts: added"), in a stable order. Parts are
// compared by what they say, not where they are written: moving a stream down the file or
// adding a comment above it changes nothing. changedFiles are referenced files whose
// contents changed on disk (a lookup table edited): their users are reported changed.
func Diff(old, new *config.Pipeline, changedFiles []string) []string {
	var out []string
	changed := func(file string) bool { return ChangedFile(changedFiles, file) }
	section := func(name string, a, b map[string]any) {
		for _, k := range slices.Sorted(maps.Keys(a)) {
			bv, ok := b[k]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("%s.%s: removed", name, k))
			case !Same(a[k], bv):
				out = append(out, fmt.Sprintf("%s.%s: changed", name, k))
			}
		}
		for _, k := range slices.Sorted(maps.Keys(b)) {
			if _, ok := a[k]; !ok {
				out = append(out, fmt.Sprintf("%s.%s: added", name, k))
			}
		}
	}
	if !Same(old.Broker, new.Broker) {
		out = append(out, "broker: changed")
	}
	section("topics", byName(old.Topics), byName(new.Topics))
	if old.DeadLetter != new.DeadLetter {
		out = append(out, "dead_letter: changed")
	}
	section("schemas", byName(old.Schemas), byName(new.Schemas))
	section("lookups", byName(old.Lookups), byName(new.Lookups))
	for _, name := range slices.Sorted(maps.Keys(new.Lookups)) {
		if _, had := old.Lookups[name]; had && Same(old.Lookups[name], new.Lookups[name]) && changed(new.Lookups[name].File) {
			out = append(out, fmt.Sprintf("lookups.%s: file changed", name))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(new.Schemas)) {
		if _, had := old.Schemas[name]; had && old.Schemas[name] == new.Schemas[name] && changed(new.Schemas[name]) {
			out = append(out, fmt.Sprintf("schemas.%s: file changed", name))
		}
	}
	streamName := func(s config.Stream) string { return s.Name }
	section("streams", keyed(old.Streams, streamName), keyed(new.Streams, streamName))
	section("sinks", keyed(old.Sinks, config.Sink.StreamName), keyed(new.Sinks, config.Sink.StreamName))
	oldAPI, newAPI := old.API != nil, new.API != nil
	switch {
	case oldAPI && !newAPI:
		out = append(out, "api: removed")
	case !oldAPI && newAPI:
		out = append(out, "api: added")
	case oldAPI && newAPI:
		a, b := *old.API, *new.API
		a.Routes, b.Routes = nil, nil
		if !Same(a, b) {
			out = append(out, "api: changed")
		}
		routePath := func(r config.Route) string { return r.Path }
		section("api.routes", keyed(old.API.Routes, routePath), keyed(new.API.Routes, routePath))
	}
	return out
}

// ChangedFile tells whether file is one of changed, comparing absolute paths (the watcher
// reports absolute paths, a pipeline may name its files relative to the working directory).
func ChangedFile(changed []string, file string) bool {
	abs, err := filepath.Abs(file)
	if err != nil {
		return false
	}
	for _, c := range changed {
		if ca, err := filepath.Abs(c); err == nil && ca == abs {
			return true
		}
	}
	return false
}

func byName[V any](m map[string]V) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// keyed names items by key, for comparing two lists of named parts.
func keyed[T any](items []T, key func(T) string) map[string]any {
	out := make(map[string]any, len(items))
	for _, it := range items {
		out[key(it)] = it
	}
	return out
}

var (
	posType  = reflect.TypeFor[config.Pos]()
	exprType = reflect.TypeFor[config.Expr]()
	// placedBy are fields that only say where a value was written: a processor's or an
	// output's config path holds its stream's index.
	placedBy = map[reflect.Type]string{reflect.TypeFor[config.ProcessorEntry](): "Path", reflect.TypeFor[config.OutputEntry](): "Path"}
)

// Same tells whether two config values say the same thing: equal in every field except the
// positions they were read from (config.Pos, and an expression's Pos and Path).
func Same(a, b any) bool {
	return same(reflect.ValueOf(a), reflect.ValueOf(b))
}

func same(a, b reflect.Value) bool {
	if !a.IsValid() || !b.IsValid() {
		return a.IsValid() == b.IsValid()
	}
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return same(a.Elem(), b.Elem())
	case reflect.Struct:
		if a.Type() == posType {
			return true
		}
		if a.Type() == exprType {
			return a.FieldByName("Src").String() == b.FieldByName("Src").String()
		}
		for i := range a.NumField() {
			f := a.Type().Field(i)
			if !f.IsExported() || f.Type == posType || placedBy[a.Type()] == f.Name {
				continue
			}
			if !same(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() { // a nil slice and an empty one say the same
			return false
		}
		for i := range a.Len() {
			if !same(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			bv := b.MapIndex(k)
			if !bv.IsValid() || !same(a.MapIndex(k), bv) {
				return false
			}
		}
		return true
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return a.Pointer() == b.Pointer()
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}
