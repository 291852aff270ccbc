package schema

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine/types"
)

// Lint says an output schema can never be met only when that is certain: each case gives
// the records' type, a record of that type, and what Unmet must find ("field" when no record
// can pass, "field?" when only records having the field fail). When Unmet finds nothing the
// record must pass the schema, and when it finds something the record (which has the
// fields named) must fail: lint is never wrong about the records it describes.
func TestUnmet(t *testing.T) {
	closed := func(fields map[string]*types.Type) *types.Type { return types.ObjectOf("the map at test", fields) }
	const envelope = `{"type": "object", "required": ["id", "value", "source"], "properties": {
		"id": {"type": "string"}, "value": {"type": "number"}, "unit": {"type": "string"},
		"source": {"type": "object", "required": ["host"], "properties": {"host": {"type": "string"}}},
		"meta": {"type": "object", "required": ["owner"]}}}`
	source := closed(map[string]*types.Type{"host": types.TStr})
	for _, tc := range []struct {
		name   string
		schema string
		typ    *types.Type
		record map[string]any
		want   []string
	}{
		{
			name: "every field as the schema wants it", schema: envelope,
			typ:    closed(map[string]*types.Type{"id": types.TStr, "value": types.TFloat, "unit": types.TStr, "source": source}),
			record: map[string]any{"id": "a", "value": 1.5, "unit": "%", "source": map[string]any{"host": "h"}},
		},
		{
			name: "a required field no record has", schema: envelope,
			typ:    closed(map[string]*types.Type{"id": types.TStr, "source": source}),
			record: map[string]any{"id": "a", "source": map[string]any{"host": "h"}},
			want:   []string{"value"},
		},
		{
			name: "a required field of the wrong type", schema: envelope,
			typ:    closed(map[string]*types.Type{"id": types.TStr, "value": types.TStr, "source": source}),
			record: map[string]any{"id": "a", "value": "1.5", "source": map[string]any{"host": "h"}},
			want:   []string{"value"},
		},
		{
			name: "an optional field of the wrong type fails only the records having it", schema: envelope,
			typ:    closed(map[string]*types.Type{"id": types.TStr, "value": types.TFloat, "unit": types.TFloat, "source": source}),
			record: map[string]any{"id": "a", "value": 1.5, "unit": 2.0, "source": map[string]any{"host": "h"}},
			want:   []string{"unit?"},
		},
		{
			name: "a required field of a required object", schema: envelope,
			typ:    closed(map[string]*types.Type{"id": types.TStr, "value": types.TFloat, "source": closed(map[string]*types.Type{"name": types.TStr})}),
			record: map[string]any{"id": "a", "value": 1.5, "source": map[string]any{"name": "h"}},
			want:   []string{"source.host"},
		},
		{
			name: "a required field of an optional object fails only the records having it", schema: envelope,
			typ:    closed(map[string]*types.Type{"id": types.TStr, "value": types.TFloat, "source": source, "meta": closed(map[string]*types.Type{"site": types.TStr})}),
			record: map[string]any{"id": "a", "value": 1.5, "source": map[string]any{"host": "h"}, "meta": map[string]any{"site": "s"}},
			want:   []string{"meta.owner?"},
		},
		{
			name: "a time is written as a string, an int is a number", schema: `{"type": "object", "required": ["ts", "n"], "properties": {"ts": {"type": "string"}, "n": {"type": "number"}}}`,
			typ:    closed(map[string]*types.Type{"ts": types.TTime, "n": types.TInt}),
			record: map[string]any{"ts": time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), "n": 3.0},
		},
		{
			name: "a float may be a whole number, which integer accepts", schema: `{"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}`,
			typ:    closed(map[string]*types.Type{"n": types.TFloat}),
			record: map[string]any{"n": 2.0},
		},
		{
			name: "fields of unknown type are not judged", schema: envelope,
			typ:    closed(map[string]*types.Type{"id": types.Any, "value": types.Any, "source": types.Any}),
			record: map[string]any{"id": "a", "value": 1.5, "source": map[string]any{"host": "h"}},
		},
		{
			name: "an open object may have any field", schema: envelope,
			typ:    types.OpenObject(),
			record: map[string]any{"id": "a", "value": 1.5, "source": map[string]any{"host": "h"}},
		},
		{
			name: "a type from an open schema may have undeclared fields", schema: envelope,
			typ:    &types.Type{Kind: types.Object, Fields: map[string]*types.Type{"id": types.TStr}, Declared: true},
			record: map[string]any{"id": "a", "value": 1.5, "source": map[string]any{"host": "h"}},
		},
		{
			name: "anyOf is not judged", schema: `{"anyOf": [{"required": ["a"]}, {"required": ["b"]}]}`,
			typ:    closed(map[string]*types.Type{"b": types.TStr}),
			record: map[string]any{"b": "x"},
		},
		{
			name: "allOf and $ref must all hold", schema: `{"$defs": {"id": {"required": ["id"]}}, "allOf": [{"$ref": "#/$defs/id"}, {"required": ["value"]}]}`,
			typ:    closed(map[string]*types.Type{"name": types.TStr}),
			record: map[string]any{"name": "x"},
			want:   []string{"id", "value"},
		},
		{
			name: "records of unknown shape are not judged", schema: envelope,
			typ:    types.Any,
			record: map[string]any{"id": "a", "value": 1.5, "source": map[string]any{"host": "h"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := compileString(t, tc.schema)
			var got []string
			every := false
			for _, u := range v.Unmet(tc.typ) {
				if u.Why == "" {
					t.Errorf("%s: no reason given", u.Fields)
				}
				mark := "?"
				if u.Every {
					mark, every = "", true
				}
				for _, f := range u.Fields {
					got = append(got, f+mark)
				}
			}
			slices.Sort(got)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("Unmet found %v, want %v", got, tc.want)
			}
			// Each case's record has the fields Unmet names.
			err := v.Validate(tc.record)
			switch {
			case len(got) > 0 && err == nil:
				t.Errorf("lint says %v fail (every record: %v), but %v passes", got, every, tc.record)
			case len(got) == 0 && err != nil:
				t.Errorf("lint finds nothing, but %v fails: %v", tc.record, err)
			}
		})
	}
}
