package registry

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// jsonBreaks lists why a value the JSON Schema prev accepts may be refused by next, on the
// keywords schemas of events use: type, required, properties (and a property constrained
// where prev's open content model took anything), additionalProperties, enum, the numeric,
// length and item bounds, items; recursively. $ref, combinators (allOf, anyOf, oneOf, not) and
// conditionals are not followed.
func jsonBreaks(prev, next map[string]any, at string) []string {
	var out []string
	add := func(format string, a ...any) { out = append(out, where(at)+": "+fmt.Sprintf(format, a...)) }
	if pt, nt := types(prev), types(next); nt != nil {
		for _, t := range pt {
			if !slices.Contains(nt, t) && !(t == "integer" && slices.Contains(nt, "number")) {
				add("type %s is no longer accepted (now %v)", t, nt)
			}
		}
	}
	prevReq, nextReq := stringList(prev["required"]), stringList(next["required"])
	for _, r := range nextReq {
		if !slices.Contains(prevReq, r) {
			add("property %q becomes required", r)
		}
	}
	out = append(out, propertyBreaks(prev, next, at)...)
	if open(prev) && next["additionalProperties"] == false {
		add("other properties are no longer allowed")
	}
	out = append(out, enumBreaks(prev, next, at)...)
	out = append(out, boundBreaks(prev, next, at)...)
	if pi, ok := prev["items"].(map[string]any); ok {
		if ni, ok := next["items"].(map[string]any); ok {
			out = append(out, jsonBreaks(pi, ni, at+"[]")...)
		}
	}
	return out
}

func propertyBreaks(prev, next map[string]any, at string) []string {
	var out []string
	pp, _ := prev["properties"].(map[string]any)
	np, _ := next["properties"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(np)) {
		nsub, _ := np[name].(map[string]any)
		psub, had := pp[name].(map[string]any)
		switch {
		case had:
			out = append(out, jsonBreaks(psub, nsub, join(at, name))...)
		case open(prev) && len(nsub) > 0:
			out = append(out, fmt.Sprintf("%s: property %q is constrained where the old schema took any value", where(at), name))
		}
	}
	if next["additionalProperties"] == false {
		for _, name := range slices.Sorted(maps.Keys(pp)) {
			if _, kept := np[name]; !kept {
				out = append(out, fmt.Sprintf("%s: property %q is removed and others are not allowed", where(at), name))
			}
		}
	}
	return out
}

func enumBreaks(prev, next map[string]any, at string) []string {
	ne, ok := next["enum"].([]any)
	if !ok {
		return nil
	}
	pe, ok := prev["enum"].([]any)
	if !ok {
		return []string{where(at) + ": values are limited to an enum"}
	}
	var out []string
	for _, v := range pe {
		if !slices.ContainsFunc(ne, func(x any) bool { return equalJSON(x, v) }) {
			out = append(out, fmt.Sprintf("%s: enum value %v is removed", where(at), v))
		}
	}
	return out
}

// boundBreaks: a lower bound that rises, or an upper bound that falls (or appears).
func boundBreaks(prev, next map[string]any, at string) []string {
	var out []string
	for _, b := range []struct {
		key   string
		lower bool
	}{{"minimum", true}, {"exclusiveMinimum", true}, {"minLength", true}, {"minItems", true}, {"minProperties", true},
		{"maximum", false}, {"exclusiveMaximum", false}, {"maxLength", false}, {"maxItems", false}, {"maxProperties", false}} {
		n, hasNext := next[b.key].(float64)
		if !hasNext {
			continue
		}
		p, hasPrev := prev[b.key].(float64)
		if !hasPrev || b.lower && n > p || !b.lower && n < p {
			out = append(out, fmt.Sprintf("%s: %s tightens to %v", where(at), b.key, n))
		}
	}
	return out
}

// types are the schema's types, nil when it does not say.
func types(s map[string]any) []string {
	switch t := s["type"].(type) {
	case string:
		return []string{t}
	case []any:
		return stringList(t)
	}
	return nil
}

func stringList(v any) []string {
	items, _ := v.([]any)
	var out []string
	for _, item := range items {
		if s, ok := item.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// open says whether the schema takes properties it does not name (JSON Schema's default).
func open(s map[string]any) bool {
	ap, set := s["additionalProperties"]
	return !set || ap != false
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func join(at, name string) string {
	if at == "" {
		return name
	}
	return at + "." + name
}

func where(at string) string {
	if at == "" {
		return "the value"
	}
	return "property " + at
}
