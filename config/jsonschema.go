package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Patterns of the strings the loader reads as something else. Each also accepts any string
// holding "${", because ${VAR} is replaced before decoding and its value is unknown here.
// They are ECMAScript-compatible, as editors evaluate them in JavaScript; editors built on
// vscode-json-languageservice show patternErrorMessage instead of the pattern itself.
const (
	interpolatedPattern = `\$\{`
	integerPattern      = `^[-+]?[0-9]+$|` + interpolatedPattern
	booleanPattern      = `^(true|True|TRUE|false|False|FALSE)$|` + interpolatedPattern
	durationPattern     = `^(forever|infinite|0|([0-9.]+(ns|us|µs|ms|s|m|h|d|w))+)$|` + interpolatedPattern
	sizePattern         = `^\s*[-+]?[0-9.]+\s*([bB]|[kKmMgGtT]([iI]?[bB])?)?\s*$|` + interpolatedPattern
)

// scalarTypes are the JSON types of YAML scalars once a file is converted to JSON. The
// loader reads a string setting from any scalar (port: 8088 is the string "8088"), so a
// schema that asked for "string" would reject files that load.
var scalarTypes = []string{"string", "number", "boolean"}

// specialTypeDocs explain the types that are not plain YAML values, in the schema's
// definitions and at the end of every component page that uses them.
var specialTypeDocs = map[reflect.Type]string{
	durationType: "A duration: a number with a unit (ms, s, m, h, d, w) such as 500ms, 30s, 3d or 1h30m; 0; or forever.",
	sizeType:     "A number of bytes, optionally with a unit: 512, 64KiB, 10MB, 1GiB (KiB, MiB, GiB, TiB are powers of 1024; kB, MB, GB, TB powers of 1000).",
	exprType: "An expr-lang expression (https://expr-lang.org) over the record's fields; a missing field is nil. " +
		"Quote it in YAML when it starts with { or [ or contains ': '.",
	fieldsType: "An ordered mapping of names to expressions; a nested mapping instead of an expression builds a nested object.",
}

// JSONSchema returns the JSON Schema (draft-07, the draft editors support best) of a
// pipeline file, indented. It is generated from the same tagged structs and processor specs
// the loader decodes with, so it cannot drift from what the engine accepts: descriptions
// come from doc tags, and default, enum and required from the tags of the same names.
func JSONSchema(reg Registry) ([]byte, error) {
	g := &schemaGenerator{defs: map[string]map[string]any{}, names: map[reflect.Type]string{}, reg: reg}
	root, err := g.structSchema(reflect.TypeFor[Pipeline]())
	if err != nil {
		return nil, err
	}
	root["$schema"] = "http://json-schema.org/draft-07/schema#"
	root["title"] = "eventops-engine pipeline"
	root["description"] = "A pipeline file of eventops-engine: topics, streams (input, processors, output), sinks and the HTTP API. " +
		"Any value may use ${VAR} or ${VAR:-default}, replaced from the environment before the file is read."
	root["definitions"] = g.defs
	return encodeSchema(root, "pipeline")
}

// encodeSchema is a schema as committed: indented JSON, "<" and ">" left as they are.
func encodeSchema(root map[string]any, what string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("encoding the %s JSON Schema: %w", what, err)
	}
	return buf.Bytes(), nil
}

// JSONSchemaOf is the JSON Schema of a file decoded by DecodeFile into a value of type t
// (another file kind than a pipeline), made from the same tags.
func JSONSchemaOf(t reflect.Type, title, description string) ([]byte, error) {
	g := &schemaGenerator{defs: map[string]map[string]any{}, names: map[reflect.Type]string{}}
	root, err := g.structSchema(t)
	if err != nil {
		return nil, err
	}
	root["$schema"] = "http://json-schema.org/draft-07/schema#"
	root["title"] = title
	root["description"] = description
	if len(g.defs) > 0 {
		root["definitions"] = g.defs
	}
	return encodeSchema(root, title)
}

// schemaGenerator turns config types into schemas, one definition per named struct or
// special type, referenced wherever the type is used.
type schemaGenerator struct {
	reg   Registry
	defs  map[string]map[string]any
	names map[reflect.Type]string
}

// definitionName is the name of t under definitions: config's own types by their Go
// name, component types qualified by their package ("threshold.Rule").
func definitionName(t reflect.Type) string {
	if t.PkgPath() == durationType.PkgPath() {
		return t.Name()
	}
	return t.String()
}

// ref returns a reference to t's definition, generating it on first use.
func (g *schemaGenerator) ref(t reflect.Type, build func() (map[string]any, error)) (map[string]any, error) {
	name, ok := g.names[t]
	if !ok {
		name = definitionName(t)
		for other, taken := range g.names {
			if taken == name {
				return nil, fmt.Errorf("JSON Schema: types %s (%s) and %s (%s) would share the definition %q", t, t.PkgPath(), other, other.PkgPath(), name)
			}
		}
		g.names[t] = name
		g.defs[name] = map[string]any{} // a placeholder, so that recursive types (Fields) terminate
		def, err := build()
		if err != nil {
			return nil, err
		}
		g.defs[name] = def
	}
	return map[string]any{"$ref": "#/definitions/" + name}, nil
}

// typeSchema returns the schema of a value of type t.
func (g *schemaGenerator) typeSchema(t reflect.Type) (map[string]any, error) {
	switch t {
	case durationType:
		return g.ref(t, func() (map[string]any, error) {
			return map[string]any{
				"description": specialTypeDocs[durationType],
				"anyOf": []any{
					map[string]any{"type": "string", "pattern": durationPattern, "patternErrorMessage": "Expected a duration such as 500ms, 30s, 5m, 3d or 1h30m, or forever."},
					map[string]any{"const": 0},
				},
			}, nil
		})
	case sizeType:
		return g.ref(t, func() (map[string]any, error) {
			return map[string]any{
				"description":         specialTypeDocs[sizeType],
				"type":                []string{"integer", "string"},
				"pattern":             sizePattern,
				"patternErrorMessage": "Expected a number of bytes, optionally with a unit: 512, 64KiB, 10MB, 1GiB.",
			}, nil
		})
	case exprType:
		return g.ref(t, func() (map[string]any, error) {
			return map[string]any{
				"description": specialTypeDocs[exprType],
				"type":        scalarTypes,
			}, nil
		})
	case fieldsType:
		return g.ref(t, func() (map[string]any, error) {
			return map[string]any{
				"description": specialTypeDocs[fieldsType],
				"type":        "object",
				"additionalProperties": map[string]any{"anyOf": []any{
					map[string]any{"type": scalarTypes, "minLength": 1},
					map[string]any{"$ref": "#/definitions/" + definitionName(fieldsType)},
				}},
			}, nil
		})
	case processorsType:
		return g.processorsSchema()
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.typeSchema(t.Elem())
	case reflect.Struct:
		return g.ref(t, func() (map[string]any, error) { return g.shorthandSchema(t) })
	case reflect.Slice, reflect.Array:
		items, err := g.typeSchema(t.Elem())
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": "array", "items": items}, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("JSON Schema: %s: map keys must be strings", t)
		}
		values, err := g.typeSchema(t.Elem())
		if err != nil {
			return nil, err
		}
		if acceptsNull(t.Elem()) {
			// "ops.deadletter.v1:" alone declares a topic with default settings.
			values = map[string]any{"anyOf": []any{values, map[string]any{"type": "null"}}}
		}
		return map[string]any{"type": "object", "additionalProperties": values}, nil
	case reflect.String:
		return map[string]any{"type": scalarTypes}, nil
	case reflect.Bool:
		return map[string]any{"type": []string{"boolean", "string"}, "pattern": booleanPattern, "patternErrorMessage": "Expected true or false."}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": []string{"integer", "string"}, "pattern": integerPattern, "patternErrorMessage": "Expected a whole number."}, nil
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": []string{"number", "string"}, "pattern": interpolatedPattern, "patternErrorMessage": "Expected a number."}, nil
	case reflect.Interface:
		return map[string]any{}, nil
	}
	return nil, fmt.Errorf("JSON Schema: no schema for settings of type %s", t)
}

// shorthandSchema is structSchema, or for a struct with a shorthand (Shorthand) either it
// or the value of the field the shorthand sets.
func (g *schemaGenerator) shorthandSchema(t reflect.Type) (map[string]any, error) {
	s, err := g.structSchema(t)
	field, ok := shorthandOf(t)
	if err != nil || !ok {
		return s, err
	}
	for _, f := range structFields(t) {
		if f.name == field {
			fs, err := g.typeSchema(t.FieldByIndex(f.index).Type)
			if err != nil {
				return nil, err
			}
			return map[string]any{"anyOf": []any{fs, s}}, nil
		}
	}
	return nil, fmt.Errorf("JSON Schema: %s: its shorthand sets %q, which it has not", t, field)
}

// structSchema is the object schema of a config struct. Unknown keys are errors in the
// loader, so they are here too.
func (g *schemaGenerator) structSchema(t reflect.Type) (map[string]any, error) {
	props := map[string]any{}
	var required []string
	for _, f := range structFields(t) {
		fs, err := g.fieldSchema(t.FieldByIndex(f.index).Type, f)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", t, f.name, err)
		}
		props[f.name] = fs
		if f.required {
			required = append(required, f.name)
		}
	}
	if slot, ok := outputSlotOf(t); ok {
		if err := g.outputProperties(props, slot); err != nil {
			return nil, fmt.Errorf("%s: %w", t, err)
		}
	}
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s, nil
}

// fieldSchema is the schema of one struct field: its type's schema plus what the field's
// tags say about it.
func (g *schemaGenerator) fieldSchema(t reflect.Type, f structField) (map[string]any, error) {
	s, err := g.typeSchema(t)
	if err != nil {
		return nil, err
	}
	if _, isRef := s["$ref"]; isRef {
		target := t
		for target.Kind() == reflect.Pointer {
			target = target.Elem()
		}
		if acceptsNull(target) {
			// "embedded:" with nothing after it is an embedded broker with default settings.
			s = map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
		} else {
			// In draft-07 the keywords next to a $ref are ignored, so the field's own
			// description and default go around it.
			s = map[string]any{"allOf": []any{s}}
		}
	}
	if len(f.enum) > 0 && t.Kind() == reflect.Slice {
		s = map[string]any{"type": "array", "items": map[string]any{"type": "string", "enum": f.enum}}
	} else if len(f.enum) > 0 {
		// oneOf, not anyOf: the two never overlap, and editors then describe the value once.
		s = map[string]any{"type": "string", "oneOf": []any{
			map[string]any{"enum": f.enum},
			map[string]any{"pattern": interpolatedPattern},
		}}
	}
	if desc := fieldDescription(f); desc != "" {
		s["description"] = desc
	}
	if f.hasDef {
		def, err := typedDefault(t, f.def)
		if err != nil {
			return nil, err
		}
		s["default"] = def
	}
	return s, nil
}

// acceptsNull reports whether a key written with no value is valid for a struct: the
// loader decodes it as the struct with its defaults, which is complete unless a field is
// required.
func acceptsNull(t reflect.Type) bool {
	if t.Kind() != reflect.Struct || !decodesNull(t) {
		return false
	}
	for _, f := range structFields(t) {
		if f.required {
			return false
		}
	}
	return true
}

// referenceNouns say what a ref:"<section>" value names, in messages and descriptions.
var referenceNouns = map[string]string{"topics": "topic", "schemas": "schema", "lookups": "lookup table"}

func fieldDescription(f structField) string {
	desc := f.doc
	if f.ref != "" {
		noun := referenceNouns[f.ref]
		if noun == "" {
			noun = "name"
		}
		desc = strings.TrimSpace(desc + " Must name a " + noun + " declared under " + f.ref + ":.")
	}
	return desc
}

// typedDefault converts a default tag to the JSON value an editor should insert.
func typedDefault(t reflect.Type, def string) (any, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType || t == sizeType {
		return def, nil
	}
	switch t.Kind() {
	case reflect.Bool:
		b, err := strconv.ParseBool(def)
		if err != nil {
			return nil, fmt.Errorf("default %q is not true or false: %w", def, err)
		}
		return b, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		i, err := strconv.ParseInt(def, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("default %q is not a whole number: %w", def, err)
		}
		return i, nil
	case reflect.Float32, reflect.Float64:
		x, err := strconv.ParseFloat(def, 64)
		if err != nil {
			return nil, fmt.Errorf("default %q is not a number: %w", def, err)
		}
		return x, nil
	}
	return def, nil
}

// componentSchema is the schema of a registered component's settings, described by its doc.
func (g *schemaGenerator) componentSchema(kind, typ, doc string, newConfig func() any) (map[string]any, error) {
	ct, err := configType(kind, typ, newConfig)
	if err != nil {
		return nil, fmt.Errorf("JSON Schema: %w", err)
	}
	cfg, err := g.typeSchema(ct)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", kind, typ, err)
	}
	if doc != "" {
		cfg = map[string]any{"allOf": []any{cfg}, "description": doc}
	}
	return cfg, nil
}

// configType is the struct type of a registered component's config: what newConfig
// returns a pointer to.
func configType(kind, typ string, newConfig func() any) (reflect.Type, error) {
	if newConfig == nil {
		return nil, fmt.Errorf("%s %q has no NewConfig", kind, typ)
	}
	ct := reflect.TypeOf(newConfig())
	if ct == nil || ct.Kind() != reflect.Pointer {
		return nil, fmt.Errorf("%s %q's config is %v, not a pointer", kind, typ, ct)
	}
	return ct.Elem(), nil
}

// outputProperties adds to props, the properties of a struct with an output slot, one key
// per registered output type the slot accepts. That exactly one output is set is the
// loader's to say: it is clearer in its words than in a schema's oneOf.
func (g *schemaGenerator) outputProperties(props map[string]any, slot outputSlot) error {
	for _, typ := range g.reg.outputTypes(slot.sinks) {
		spec := g.reg.Outputs[typ]
		cfg, err := g.componentSchema("output", typ, spec.Doc, spec.NewConfig)
		if err != nil {
			return err
		}
		props[typ] = cfg
	}
	return nil
}

// processorsSchema is a stream's processors list: each item is a mapping with exactly one
// key, the processor type, whose value is that type's config.
func (g *schemaGenerator) processorsSchema() (map[string]any, error) {
	var items []any
	for _, typ := range slices.Sorted(maps.Keys(g.reg.Processors)) {
		spec := g.reg.Processors[typ]
		cfg, err := g.componentSchema("processor", typ, spec.Doc, spec.NewConfig)
		if err != nil {
			return nil, err
		}
		item := map[string]any{
			"type":                 "object",
			"properties":           map[string]any{typ: cfg},
			"required":             []string{typ},
			"additionalProperties": false,
			"title":                typ + " processor",
		}
		if spec.Example != "" {
			example, err := exampleItem(spec.Example)
			if err != nil {
				return nil, fmt.Errorf("processor %q: %w", typ, err)
			}
			item["examples"] = []any{example}
		}
		items = append(items, item)
	}
	return map[string]any{
		"type":  "array",
		"items": map[string]any{"oneOf": items},
	}, nil
}

// exampleItem parses a processor's Example, one item of a processors list, into the JSON
// value of that item.
func exampleItem(example string) (any, error) {
	var list []any
	if err := yaml.Unmarshal([]byte(example), &list); err != nil {
		return nil, fmt.Errorf("example is not valid YAML: %w", err)
	}
	if len(list) != 1 {
		return nil, fmt.Errorf("example must be one item of a processors list (\"- type: ...\"), got %d items", len(list))
	}
	return list[0], nil
}
