package config

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem found in a pipeline file, printed as "file:line:col: path: message".
type Error struct {
	Pos  Pos
	Path string
	Msg  string
	// Warning marks a problem that does not stop the pipeline (an unset ${VAR}, a field
	// that an open schema does not declare); lint --strict treats it as an error.
	Warning bool
	// Covers, set for an unknown key, is the part of the file it leaves unreliable, so
	// that findings there are not reported again: the field it misspells (which is
	// missing), or the key itself; not the whole mapping holding it (Path).
	Covers string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Pos.File != "" || e.Pos.Line > 0 {
		fmt.Fprintf(&b, "%s:%d:%d: ", e.Pos.File, e.Pos.Line, e.Pos.Col)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	if e.Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found, in file order. It is an error when non-empty.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Add appends an error at pos.
func (es *Errors) Add(pos Pos, path, format string, args ...any) {
	*es = append(*es, &Error{Pos: pos, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Append appends err: an *Error or Errors is kept as it is; anything else is placed at pos/path.
func (es *Errors) Append(pos Pos, path string, err error) {
	switch e := err.(type) {
	case nil:
	case *Error:
		*es = append(*es, e)
	case Errors:
		*es = append(*es, e...)
	default:
		*es = append(*es, &Error{Pos: pos, Path: path, Msg: err.Error()})
	}
}

// AddWarning appends a warning at pos.
func (es *Errors) AddWarning(pos Pos, path, format string, args ...any) {
	*es = append(*es, &Error{Pos: pos, Path: path, Msg: fmt.Sprintf(format, args...), Warning: true})
}

// Sort orders errors by file, line and column.
func (es Errors) Sort() {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].Pos, es[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// Err returns es as an error, or nil when it is empty.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	es.Sort()
	return es
}

// FieldError is what a Config's Validate returns to blame one of its fields: Field is the
// field's path relative to the struct being validated ("rules[2].when"); the decoder turns it
// into an *Error at that field's position.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Under is the full path of the field, for a struct decoded at path.
func (e *FieldError) Under(path string) string {
	switch {
	case e.Field == "":
		return path
	case strings.HasPrefix(e.Field, "["):
		return path + e.Field
	}
	return joinPath(path, e.Field)
}

// FieldErrorf returns a *FieldError for field.
func FieldErrorf(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Validator is implemented by config structs that check themselves after decoding.
// Validate may return a *FieldError, a errors.Join of several, or any other error
// (which is placed at the struct itself).
type Validator interface {
	Validate() error
}

// ExprError returns an error placed at the col-th character (1-based) of the expression e.
func ExprError(e Expr, col int, format string, args ...any) *Error {
	pos := e.PosAt(max(col, 1) - 1)
	return &Error{Pos: pos, Path: e.Path, Msg: fmt.Sprintf(format, args...)}
}
