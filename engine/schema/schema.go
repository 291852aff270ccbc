package schema

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// Validator checks values against one compiled JSON Schema.
// It is safe for concurrent use.
type Validator struct {
	ref  *jsonschema.Schema
	fast *node // nil when the schema uses a keyword the fast tree does not cover
	// whyNoFast names the first unsupported keyword, for logs and tests.
	whyNoFast string
}

// Compile compiles the JSON Schema file at path (draft 2020-12 unless the file's $schema
// says otherwise, format assertions on).
func Compile(path string) (*Validator, error) {
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	ref, err := c.Compile(path)
	if err != nil {
		return nil, fmt.Errorf("JSON Schema %s: %w", path, err)
	}
	return New(ref), nil
}

// New wraps an already compiled reference schema. It should have been compiled with
// AssertFormat on, like Compile does; otherwise the fast tree checks formats the reference
// ignores, which is safe (the reference gets the last word) but slower.
func New(ref *jsonschema.Schema) *Validator {
	v := &Validator{ref: ref}
	v.fast, v.whyNoFast = build(ref)
	return v
}

// Reference returns the jsonschema/v5 schema that decides every non-valid case.
func (v *Validator) Reference() *jsonschema.Schema { return v.ref }

// FastPath reports whether the fast tree is in use and, when it is not, which keyword
// prevented it (as a JSON pointer into the schema).
func (v *Validator) FastPath() (ok bool, reason string) {
	return v.fast != nil, v.whyNoFast
}

// Validate reports whether value satisfies the schema. On failure the error is the one
// jsonschema/v5 reports, normally a *jsonschema.ValidationError.
func (v *Validator) Validate(value any) error {
	if v.fast != nil && v.fast.check(value) == valid {
		return nil
	}
	return v.validateReference(value)
}

// validateReference runs the reference on value converted to the JSON data model.
func (v *Validator) validateReference(value any) (err error) {
	defer func() {
		// jsonschema/v5 dereferences a nil *big.Rat for NaN and ±Inf, which no JSON
		// document can hold; report it instead of taking the engine down.
		if r := recover(); r != nil {
			err = fmt.Errorf("validating against %s: value is not representable as JSON: %v", v.ref.Location, r)
		}
	}()
	return v.ref.Validate(toJSON(value))
}

// toJSON converts value to what encoding/json would decode after marshalling it, keeping
// values that already are JSON data model (and json.Number, which the reference reads
// natively) as they are. A value encoding/json cannot marshal is left for the reference
// to reject.
func toJSON(value any) any {
	switch x := value.(type) {
	case nil, bool, string, float64, json.Number:
		return value
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = toJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toJSON(e)
		}
		return out
	case map[string]string:
		if x == nil {
			return nil // encoding/json marshals a nil map as null
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = e
		}
		return out
	case []string:
		if x == nil {
			return nil // encoding/json marshals a nil slice as null
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out
	case float32:
		if f, ok := float32ToJSON(x); ok {
			return f
		}
		return value
	case int:
		return float64(x)
	case int8:
		return float64(x)
	case int16:
		return float64(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	case uint:
		return float64(x)
	case uint8:
		return float64(x)
	case uint16:
		return float64(x)
	case uint32:
		return float64(x)
	case uint64:
		return float64(x)
	case time.Time:
		if s, ok := timeJSON(x); ok {
			return s
		}
		return value
	}
	b, err := json.Marshal(value)
	if err != nil {
		return value
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return value
	}
	return out
}

// float32ToJSON returns the float64 that encoding/json decodes from a marshalled float32:
// it writes the shortest decimal that identifies the float32, not its exact binary value.
func float32ToJSON(f float32) (float64, bool) {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return 0, false
	}
	var buf [32]byte
	d, err := strconv.ParseFloat(string(strconv.AppendFloat(buf[:0], float64(f), 'g', -1, 32)), 64)
	return d, err == nil
}

// timeJSON returns the string encoding/json writes for t, and false when it refuses to
// marshal t (a year outside 0..9999 or a zone offset of 24 hours or more).
func timeJSON(t time.Time) (string, bool) {
	b, err := t.MarshalJSON()
	if err != nil {
		return "", false
	}
	return string(b[1 : len(b)-1]), true
}
