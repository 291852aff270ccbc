package config

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// An output slot is a field of type *OutputEntry in a config struct (Output.Plugin,
// Sink.Plugin): the struct then also accepts, as one of its keys, the type of a registered
// output, whose value decodes into that type's config. Its tag outputs:"streams" or
// outputs:"sinks" says where it is, since only some output types may be used in sinks.
var outputEntryType = reflect.TypeFor[*OutputEntry]()

type outputSlot struct {
	index []int
	sinks bool
}

var outputSlotCache sync.Map // reflect.Type -> outputSlot (index nil: none)

// outputSlotOf finds the output slot of struct type t.
func outputSlotOf(t reflect.Type) (outputSlot, bool) {
	if c, ok := outputSlotCache.Load(t); ok {
		s := c.(outputSlot)
		return s, s.index != nil
	}
	var slot outputSlot
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.Type == outputEntryType {
			slot = outputSlot{index: []int{i}, sinks: f.Tag.Get("outputs") == "sinks"}
			break
		}
	}
	outputSlotCache.Store(t, slot)
	return slot, slot.index != nil
}

// outputTypes lists, sorted, the registered output types a slot accepts.
func (r Registry) outputTypes(sinks bool) []string {
	var out []string
	for _, typ := range slices.Sorted(maps.Keys(r.Outputs)) {
		if !sinks || r.Outputs[typ].InSinks {
			out = append(out, typ)
		}
	}
	return out
}

// outputKey decodes p into the output slot of the struct at path (whose value is sv) when
// p's key names a registered output type, and reports whether it did (or reported why it
// could not). A second output in one place is an error, decoded all the same so that its
// own mistakes are reported too.
func (l *loader) outputKey(p pair, sv reflect.Value, slot outputSlot, path string) bool {
	typ := p.key.Value
	spec, ok := l.reg.Outputs[typ]
	if !ok || p.key.Kind != yaml.ScalarNode {
		return false
	}
	entryPath := joinPath(path, typ)
	if slot.sinks && !spec.InSinks {
		l.errs.Add(l.pos(p.key), entryPath, "a %s output cannot be used in a sink (sinks copy a topic into one of %s); write it as a stream's output", typ, strings.Join(l.reg.outputTypes(true), ", "))
		l.explained(entryPath) // the sink's missing output
		return true
	}
	cfg, ok := l.componentConfig(p.key, p.val, "output", spec.NewConfig, entryPath)
	if !ok {
		return true
	}
	entry := &OutputEntry{Type: typ, Pos: l.pos(p.key), Path: entryPath, Config: cfg}
	fv := sv.FieldByIndex(slot.index)
	if fv.IsNil() {
		fv.Set(reflect.ValueOf(entry))
		return true
	}
	first := fv.Interface().(*OutputEntry)
	hint := "a stream has one output; a sink can copy its topic to the other"
	if slot.sinks {
		hint = "use two sinks to fill both stores"
	}
	l.errs.Add(l.pos(p.key), path, "set exactly one of %s and %s, not both (%s)", first.Type, typ, hint)
	l.extraOutputs = append(l.extraOutputs, entry)
	return true
}

// componentConfig decodes val, the settings written under key at path, into a fresh config
// of a registered component (newConfig must return a pointer).
func (l *loader) componentConfig(key, val *yaml.Node, kind string, newConfig func() any, path string) (any, bool) {
	l.keys[path] = key
	cfg := newConfig()
	cv := reflect.ValueOf(cfg)
	if cv.Kind() != reflect.Pointer || cv.IsNil() {
		l.errs.Add(l.pos(key), path, "internal error: %s %q's config is %T, not a pointer", kind, key.Value, cfg)
		return nil, false
	}
	l.value(val, cv.Elem(), path)
	return cfg, true
}

// outputTypesNote is what an unknown key's error adds in a struct with an output slot: the
// output types that could have been meant.
func (l *loader) outputTypesNote(slot outputSlot) string {
	types := l.reg.outputTypes(slot.sinks)
	if len(types) == 0 {
		return ""
	}
	where := "output types"
	if slot.sinks {
		where = "output types for sinks"
	}
	return "; " + where + ": " + strings.Join(types, ", ")
}

// typoOfOutput reports whether a key at path was probably meant as the output there (a
// misspelled type, or one that cannot be used there): a missing output is then already
// explained.
func (l *loader) typoOfOutput(path string) bool {
	for typ := range l.reg.Outputs {
		if l.typos[joinPath(path, typ)] {
			return true
		}
	}
	return false
}

// outputEntries lists every decoded output of a registered type, in file order: streams'
// outputs, then sinks (not the extraOutputs).
func (l *loader) outputEntries(p *Pipeline) []*OutputEntry {
	var out []*OutputEntry
	for _, s := range p.Streams {
		if s.Output.Plugin != nil {
			out = append(out, s.Output.Plugin)
		}
	}
	for _, s := range p.Sinks {
		if s.Plugin != nil {
			out = append(out, s.Plugin)
		}
	}
	return out
}
