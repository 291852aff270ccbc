package schema

import (
	"fmt"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/eventops/eventops-engine/engine/types"
)

// Unmet is a demand of a schema that records of a known type can never meet, found before
// anything runs: an output schema that every record fails sends every record to the
// dead-letter topic.
type Unmet struct {
	// Fields are the dotted paths of the fields concerned (source.source_id): one, or the
	// required fields of one object that no record has.
	Fields []string
	// Why says what the schema demands and what the records are, in words for the user.
	Why string
	// Every is true when no record can pass (a required field is missing or of the wrong
	// type); false when only the records that have the field fail.
	Every bool
}

// Unmet lists what records of type t can never satisfy in the schema. Only what is certain
// is reported: a field the records cannot have (t is a closed object without it, as a map
// writes), or a field whose type (as far as t knows it) is not one the schema allows.
// Whatever is uncertain (anyOf, oneOf, unknown types, open objects) passes.
func (v *Validator) Unmet(t *types.Type) []Unmet {
	if v == nil || v.ref == nil {
		return nil
	}
	var out []Unmet
	unmet(v.ref, t, "", true, 0, origin(t), &out)
	return out
}

// unmet adds what values of type t, at path, can never satisfy in s. every says whether
// the value is certainly there (the record itself, or a required field of a required field);
// from says where the records' type comes from.
func unmet(s *jsonschema.Schema, t *types.Type, path string, every bool, depth int, from string, out *[]Unmet) {
	if s == nil || t.IsUnknown() || t.Kind == types.Nil || depth > maxDepth {
		return
	}
	// Every one of $ref and allOf must hold as well as the schema's own keywords.
	unmet(s.Ref, t, path, every, depth+1, from, out)
	for _, sub := range s.AllOf {
		unmet(sub, t, path, every, depth+1, from, out)
	}
	if kinds := jsonKinds(t); len(s.Types) > 0 && kinds != nil && !slices.ContainsFunc(kinds, func(k string) bool { return slices.Contains(s.Types, k) }) {
		*out = append(*out, Unmet{Fields: []string{path}, Every: every,
			Why: fmt.Sprintf("must be %s, but the records have %s there (the records come %s)", typeList(s.Types), article(kinds[0]), from)})
		return // its properties mean nothing on a value of another type
	}
	if t.Kind != types.Object {
		return
	}
	var missing []string
	for _, name := range s.Required {
		if _, has := t.Field(name); !has && !t.Declared {
			missing = append(missing, joinField(path, name))
		}
	}
	if len(missing) > 0 {
		verb := "is required, but no record has it"
		if len(missing) > 1 {
			verb = "are required, but no record has them"
		}
		*out = append(*out, Unmet{Fields: missing, Every: every,
			Why: fmt.Sprintf("%s (the records, %s, have %s)", verb, from, fieldList(t))})
	}
	for _, name := range sortedKeys(s.Properties) {
		ft, has := t.Field(name)
		if !has || ft == t.Extra {
			continue // absent, or only allowed by an open object: nothing is known of it
		}
		unmet(s.Properties[name], ft, joinField(path, name), every && slices.Contains(s.Required, name), depth+1, from, out)
	}
}

// jsonKinds are the JSON types a non-nil value of t is validated as (a time is written as
// an RFC 3339 string; a float may be a whole number, which "integer" accepts), or nil when
// t does not say.
func jsonKinds(t *types.Type) []string {
	switch t.Kind {
	case types.String, types.Time:
		return []string{"string"}
	case types.Bool:
		return []string{"boolean"}
	case types.Int, types.Float:
		return []string{"number", "integer"}
	case types.Object:
		return []string{"object"}
	case types.Array:
		return []string{"array"}
	}
	return nil
}

func typeList(kinds []string) string {
	var words []string
	for _, k := range kinds {
		words = append(words, article(k))
	}
	return strings.Join(words, " or ")
}

func article(kind string) string {
	switch kind {
	case "object", "array", "integer":
		return "an " + kind
	case "null":
		return "null"
	}
	return "a " + kind
}

func origin(t *types.Type) string {
	if t.Origin == "" {
		return "from the stream's processors"
	}
	return "from " + t.Origin
}

// fieldList names the fields records of the closed object t have.
func fieldList(t *types.Type) string {
	names := t.FieldNames()
	if len(names) == 0 {
		return "no field"
	}
	const most = 12
	if len(names) > most {
		return strings.Join(names[:most], ", ") + ", ..."
	}
	return strings.Join(names, ", ")
}

func joinField(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func sortedKeys(m map[string]*jsonschema.Schema) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
