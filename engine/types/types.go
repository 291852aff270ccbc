// Package types describes the shape of the records that reach each step of a stream: which
// fields they have and of what type. Lint uses it to check expressions before anything runs:
// the input's JSON Schema gives the raw record's type, every map processor defines the type
// the next processor sees, and a stream reading a topic another stream writes sees that
// stream's output type.
//
// A Type is a description for checking, never a runtime constraint: records are still plain
// decoded JSON, and a field a type says is a number may be missing at run time.
package types

import (
	"maps"
	"slices"
	"strings"
)

// Kind is what a value is.
type Kind uint8

const (
	// Unknown is a value of any type: nothing is checked about it.
	Unknown Kind = iota
	Nil
	Bool
	Int
	Float
	String
	// Time is a time.Time, as now() and parse_time() give before the record is encoded.
	Time
	Object
	Array
)

// Type is the type of a value. The zero Type (and a nil *Type) is Unknown.
type Type struct {
	Kind Kind
	// Fields are an Object's known fields.
	Fields map[string]*Type
	// Extra is the type of an Object's other fields; nil means it has no others.
	Extra *Type
	// Declared marks an Object whose Fields come from a JSON Schema that does not forbid
	// other fields: a reference to an undeclared one is suspicious (a warning), not an error.
	Declared bool
	// Elem is an Array's element type.
	Elem *Type
	// Values are a String's possible values when they are known (the rule names of alert
	// records), nil when it may be any string.
	Values []string
	// Origin says where an Object's fields were defined ("schema raw-agent", "the map at
	// streams[0].processors[0]"), for messages about fields it does not have.
	Origin string
}

// Common types.
var (
	Any    = &Type{Kind: Unknown}
	TNil   = &Type{Kind: Nil}
	TBool  = &Type{Kind: Bool}
	TInt   = &Type{Kind: Int}
	TFloat = &Type{Kind: Float}
	TStr   = &Type{Kind: String}
	TTime  = &Type{Kind: Time}
)

// OpenObject is an object whose fields are unknown: every field is allowed and Unknown.
func OpenObject() *Type { return &Type{Kind: Object, Extra: Any} }

// ObjectOf is a closed object with exactly the given fields.
func ObjectOf(origin string, fields map[string]*Type) *Type {
	return &Type{Kind: Object, Fields: fields, Origin: origin}
}

// ArrayOf is an array of elem.
func ArrayOf(elem *Type) *Type { return &Type{Kind: Array, Elem: orAny(elem)} }

func orAny(t *Type) *Type {
	if t == nil {
		return Any
	}
	return t
}

// IsUnknown reports whether nothing is known about t.
func (t *Type) IsUnknown() bool { return t == nil || t.Kind == Unknown }

// Field returns the type of field name of an object and whether the object may have it.
func (t *Type) Field(name string) (*Type, bool) {
	if t.IsUnknown() {
		return Any, true
	}
	if t.Kind != Object {
		return nil, false
	}
	if f, ok := t.Fields[name]; ok {
		return orAny(f), true
	}
	if t.Extra != nil {
		return t.Extra, true
	}
	return nil, false
}

// With returns a copy of object t with field name set to f (t itself is not changed).
func (t *Type) With(name string, f *Type) *Type {
	if t.IsUnknown() || t.Kind != Object {
		return t
	}
	c := *t
	c.Fields = maps.Clone(t.Fields)
	if c.Fields == nil {
		c.Fields = map[string]*Type{}
	}
	c.Fields[name] = f
	return &c
}

// FieldNames lists an object's known fields, sorted.
func (t *Type) FieldNames() []string {
	if t == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(t.Fields))
}

// Encoded is the type a value has after it is written to a topic as JSON and read back:
// times become RFC 3339 strings and every number a float.
func Encoded(t *Type) *Type {
	if t == nil {
		return Any
	}
	switch t.Kind {
	case Time:
		return TStr
	case Int:
		return TFloat
	case Array:
		return ArrayOf(Encoded(t.Elem))
	case Object:
		c := *t
		c.Fields = make(map[string]*Type, len(t.Fields))
		for k, f := range t.Fields {
			c.Fields[k] = Encoded(f)
		}
		if t.Extra != nil {
			c.Extra = Encoded(t.Extra)
		}
		return &c
	}
	return t
}

// Union is the type of a value that is either a or b, as when two streams write the same
// topic. Objects are merged field by field (a field only one of them has may be missing,
// which is what nil is for); anything else that differs is Unknown.
func Union(a, b *Type) *Type {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case a.IsUnknown() || b.IsUnknown():
		return Any
	case a.Kind == Nil:
		return b
	case b.Kind == Nil:
		return a
	case a.Kind != b.Kind:
		if (a.Kind == Int || a.Kind == Float) && (b.Kind == Int || b.Kind == Float) {
			return TFloat
		}
		return Any
	}
	switch a.Kind {
	case Array:
		return ArrayOf(Union(a.Elem, b.Elem))
	case Object:
		u := &Type{Kind: Object, Fields: map[string]*Type{}, Declared: a.Declared || b.Declared}
		if a.Origin == b.Origin {
			u.Origin = a.Origin
		} else {
			u.Origin = a.Origin + " and " + b.Origin
		}
		for k, f := range a.Fields {
			u.Fields[k] = f
		}
		for k, f := range b.Fields {
			if prev, ok := u.Fields[k]; ok {
				u.Fields[k] = Union(prev, f)
			} else {
				u.Fields[k] = f
			}
		}
		switch {
		case a.Extra == nil:
			u.Extra = b.Extra
		case b.Extra == nil:
			u.Extra = a.Extra
		default:
			u.Extra = Union(a.Extra, b.Extra)
		}
		return u
	case String:
		if a.Values == nil || b.Values == nil {
			return TStr
		}
		values := slices.Clone(a.Values)
		for _, v := range b.Values {
			if !slices.Contains(values, v) {
				values = append(values, v)
			}
		}
		slices.Sort(values)
		return &Type{Kind: String, Values: values}
	}
	return a
}

// String writes t the way messages name types: number, string, object {a, b}, list of string.
func (t *Type) String() string {
	if t == nil {
		return "any"
	}
	switch t.Kind {
	case Nil:
		return "nil"
	case Bool:
		return "bool"
	case Int:
		return "int"
	case Float:
		return "number"
	case String:
		return "string"
	case Time:
		return "time"
	case Array:
		return "list of " + t.Elem.String()
	case Object:
		names := t.FieldNames()
		if len(names) == 0 {
			return "object"
		}
		if len(names) > 6 {
			names = append(names[:6], "...")
		}
		return "object {" + strings.Join(names, ", ") + "}"
	}
	return "any"
}
