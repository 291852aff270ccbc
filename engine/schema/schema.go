package schema

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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
// says otherwise, format assertions on). Its errors name the file: with the line and column
// of a JSON syntax error, or of each place where the schema breaks the rules of JSON Schema.
func Compile(path string) (*Validator, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading JSON Schema: %w", err)
	}
	if err := jsonSyntax(path, data); err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	ref, err := c.Compile(path)
	if err != nil {
		return nil, compileError(path, data, err)
	}
	return New(ref), nil
}

// jsonSyntax reports where data is not JSON, as path:line:col, the way editors count.
func jsonSyntax(path string, data []byte) error {
	var doc any
	err := json.Unmarshal(data, &doc)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return nil
	}
	// Offset counts the bytes read, the offending one included; at the end of the input
	// there is none, so the position is just after the last thing written.
	off := int(se.Offset) - 1
	if off >= len(bytes.TrimRight(data, " \t\r\n")) {
		off = len(bytes.TrimRight(data, " \t\r\n"))
	}
	line, col := lineCol(data, max(off, 0))
	return fmt.Errorf("%s:%d:%d: invalid JSON: %w", path, line, col, err)
}

// compileError turns a jsonschema compile error into one that names path once and says
// where in it the schema is wrong. The library's own text repeats the file's URL and the
// meta-schema's keyword path, which say nothing to the schema's author.
func compileError(path string, data []byte, err error) error {
	var se *jsonschema.SchemaError
	if !errors.As(err, &se) {
		return fmt.Errorf("JSON Schema %s: %w", path, err)
	}
	var ve *jsonschema.ValidationError
	if !errors.As(se.Err, &ve) || !sameFile(se.SchemaURL, path) {
		inner := strings.TrimPrefix(se.Err.Error(), "jsonschema: ")
		if !sameFile(se.SchemaURL, path) {
			inner = se.SchemaURL + ": " + inner
		}
		return &compileErr{msg: fmt.Sprintf("%s: invalid JSON Schema: %s", path, inner), err: err}
	}
	type problem struct {
		where, msg string
		off        int // in data, -1 when the pointer cannot be found
	}
	var problems []problem
	seen := map[string]bool{}
	for _, leaf := range leaves(ve) {
		// Alternatives of one anyOf fail at the same place; the first says enough.
		if seen[leaf.InstanceLocation] {
			continue
		}
		seen[leaf.InstanceLocation] = true
		p := problem{where: leaf.InstanceLocation, msg: leaf.Message, off: -1}
		if p.where == "" {
			p.where = "the top level"
		}
		if off, ok := pointerOffset(data, leaf.InstanceLocation); ok {
			p.off = off
		}
		problems = append(problems, p)
	}
	// In file order, so that the position printed first is the first place to fix.
	slices.SortStableFunc(problems, func(a, b problem) int {
		return cmp.Compare(uint(a.off), uint(b.off)) // -1 (not found) sorts last
	})
	var msg strings.Builder
	for i, p := range problems {
		at := ""
		if p.off >= 0 {
			line, col := lineCol(data, p.off)
			at = fmt.Sprintf(":%d:%d", line, col)
		}
		if i == 0 {
			fmt.Fprintf(&msg, "%s%s: not a valid JSON Schema: %s: %s", path, at, p.where, p.msg)
			continue
		}
		also := "; also"
		if at != "" {
			also += " at " + at[1:]
		}
		fmt.Fprintf(&msg, "%s: %s: %s", also, p.where, p.msg)
	}
	return &compileErr{msg: msg.String(), err: err}
}

// compileErr keeps the library's error for errors.As while printing a shorter message.
type compileErr struct {
	msg string
	err error
}

func (e *compileErr) Error() string { return e.msg }
func (e *compileErr) Unwrap() error { return e.err }

// sameFile reports whether the jsonschema URL u names the file at path.
func sameFile(u, path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	return u == "file://"+filepath.ToSlash(abs) || u == "file:///"+strings.TrimPrefix(filepath.ToSlash(abs), "/")
}

// leaves returns the errors at the bottom of ve's tree, in order: the specific ones.
func leaves(ve *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(ve.Causes) == 0 {
		return []*jsonschema.ValidationError{ve}
	}
	var out []*jsonschema.ValidationError
	for _, c := range ve.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

// pointerOffset returns the offset in data of the value the JSON pointer names.
func pointerOffset(data []byte, pointer string) (int, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	valueStart := func() int {
		off := int(dec.InputOffset())
		for off < len(data) && strings.IndexByte(" \t\r\n:,", data[off]) >= 0 {
			off++
		}
		return off
	}
	if pointer == "" {
		return valueStart(), true
	}
	if !strings.HasPrefix(pointer, "/") {
		return 0, false
	}
	for _, token := range strings.Split(pointer[1:], "/") {
		token = strings.NewReplacer("~1", "/", "~0", "~").Replace(token)
		t, err := dec.Token()
		if err != nil {
			return 0, false
		}
		switch t {
		case json.Delim('{'):
			found := false
			for !found && dec.More() {
				key, err := dec.Token()
				if err != nil {
					return 0, false
				}
				if found = key == token; !found && skipValue(dec) != nil {
					return 0, false
				}
			}
			if !found {
				return 0, false
			}
		case json.Delim('['):
			index, err := strconv.Atoi(token)
			if err != nil {
				return 0, false
			}
			for i := 0; i < index; i++ {
				if !dec.More() || skipValue(dec) != nil {
					return 0, false
				}
			}
			if !dec.More() {
				return 0, false
			}
		default:
			return 0, false
		}
	}
	return valueStart(), true
}

// skipValue reads the next value of dec, however deep.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// lineCol converts a byte offset into a 1-based line and a column in characters.
func lineCol(data []byte, off int) (line, col int) {
	off = min(off, len(data))
	start := bytes.LastIndexByte(data[:off], '\n') + 1
	return bytes.Count(data[:off], []byte("\n")) + 1, utf8.RuneCount(data[start:off]) + 1
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
