package schema

import (
	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/eventops/eventops-engine/engine/types"
)

// RecordType is the type of the records the schema accepts, for checking the expressions
// that read them. origin names the schema in messages ("schema raw-agent").
//
// Only what is certain is kept: an object's declared properties with their types; a
// property whose schema allows several types (anyOf of string and number, say) is of
// unknown type. An object that does not forbid other properties is marked Declared, so that
// a reference to an undeclared field is a warning rather than an error; one whose
// additionalProperties is a schema (a map of tags) accepts any field of that type.
func (v *Validator) RecordType(origin string) *types.Type {
	if v == nil || v.ref == nil {
		return types.Any
	}
	return typeOf(v.ref, origin, 0)
}

// maxDepth stops recursive schemas ($ref to an ancestor) from recursing forever.
const maxDepth = 16

func typeOf(s *jsonschema.Schema, origin string, depth int) *types.Type {
	if s == nil || depth > maxDepth {
		return types.Any
	}
	// A $ref with no siblings is the schema it points to (draft 2019+ allows siblings;
	// when there are any, the referenced schema still bounds the shape).
	if s.Ref != nil && len(s.Types) == 0 && len(s.Properties) == 0 {
		return typeOf(s.Ref, origin, depth+1)
	}
	if len(s.AllOf) == 1 && len(s.Types) == 0 && len(s.Properties) == 0 {
		return typeOf(s.AllOf[0], origin, depth+1)
	}
	alternatives := append(append([]*jsonschema.Schema{}, s.AnyOf...), s.OneOf...)
	if len(alternatives) > 0 && len(s.Types) == 0 && len(s.Properties) == 0 {
		var t *types.Type
		for _, alt := range alternatives {
			at := typeOf(alt, origin, depth+1)
			if t != nil && t.Kind != at.Kind {
				return types.Any
			}
			t = types.Union(t, at)
		}
		return t
	}
	kinds := nonNull(s.Types)
	if len(kinds) != 1 {
		if len(kinds) == 0 && len(s.Properties) > 0 {
			kinds = []string{"object"}
		} else {
			return types.Any
		}
	}
	switch kinds[0] {
	case "string":
		return types.TStr
	case "number":
		return types.TFloat
	case "integer":
		// Decoded JSON numbers are floats whatever the schema says.
		return types.TFloat
	case "boolean":
		return types.TBool
	case "array":
		switch items := s.Items.(type) {
		case *jsonschema.Schema:
			return types.ArrayOf(typeOf(items, origin, depth+1))
		}
		if s.Items2020 != nil {
			return types.ArrayOf(typeOf(s.Items2020, origin, depth+1))
		}
		return types.ArrayOf(types.Any)
	case "object":
		fields := make(map[string]*types.Type, len(s.Properties))
		for name, p := range s.Properties {
			fields[name] = typeOf(p, origin, depth+1)
		}
		obj := &types.Type{Kind: types.Object, Fields: fields, Origin: origin}
		switch ap := s.AdditionalProperties.(type) {
		case bool:
			if ap {
				obj.Extra = types.Any
			}
		case *jsonschema.Schema:
			obj.Extra = typeOf(ap, origin, depth+1)
		default:
			// Not written: other properties are allowed but were not declared.
			switch {
			case len(s.PatternProperties) > 0 || s.UnevaluatedProperties != nil:
				obj.Extra = types.Any
			case len(fields) == 0:
				obj.Extra = types.Any
			default:
				obj.Declared = true
			}
		}
		return obj
	}
	return types.Any
}

func nonNull(kinds []string) []string {
	var out []string
	for _, k := range kinds {
		if k != "null" {
			out = append(out, k)
		}
	}
	return out
}
