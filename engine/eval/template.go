package eval

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/types"
)

// Template is text with {{expr}} placeholders, such as a threshold rule's message or a
// webhook's body: the placeholders are expressions of the same language as the rest of the
// file, checked against the same record types, so a template has no syntax or field names
// of its own to learn.
type Template struct {
	// what names the template in errors: "message", "annotations.<name>", "template".
	what  string
	parts []templatePart
}

type templatePart struct {
	text string
	prog *Program
}

// LiteralTemplate is a template without placeholders: it renders as text.
func LiteralTemplate(text string) *Template {
	return &Template{parts: []templatePart{{text: text}}}
}

// CompileTemplate compiles the placeholders of src, the template named what, checked
// against in (the records it is rendered on); errors point at the placeholder, and warnings
// (fields an open schema does not declare) go to warnings when it is not nil.
func CompileTemplate(src config.Expr, what string, in *types.Type, warnings *config.Errors) (*Template, error) {
	var errs config.Errors
	t := &Template{what: what}
	rest, offset := src.Src, 0
	// at is the 1-based character number of byte offset b of the source, as ExprError wants.
	at := func(b int) int { return utf8.RuneCountInString(src.Src[:b]) + 1 }
	for {
		open := strings.Index(rest, "{{")
		if open < 0 {
			if strings.Contains(rest, "}}") {
				errs = append(errs, config.ExprError(src, at(offset+strings.Index(rest, "}}")), "%s: }} without an opening {{", what))
			}
			t.parts = append(t.parts, templatePart{text: rest})
			break
		}
		end := strings.Index(rest[open+2:], "}}")
		if end < 0 {
			errs = append(errs, config.ExprError(src, at(offset+open), "%s: {{ without a closing }}", what))
			break
		}
		t.parts = append(t.parts, templatePart{text: rest[:open]})
		inner := rest[open+2 : open+2+end]
		// The placeholder's own errors point into it, at its characters in the file.
		lead := len(inner) - len(strings.TrimLeft(inner, " \t"))
		e := src.Sub(at(offset+open+2+lead)-1, strings.TrimSpace(inner))
		if e.Src == "" {
			errs = append(errs, config.ExprError(src, at(offset+open), "%s: empty {{}} placeholder", what))
		} else if p, _, err := CompileChecked(e, Any, in, warnings); err != nil {
			errs.Append(e.Pos, e.Path, err)
		} else {
			t.parts = append(t.parts, templatePart{prog: p})
		}
		consumed := open + 2 + end + 2
		rest, offset = rest[consumed:], offset+consumed
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return t, nil
}

// Render evaluates the placeholders on env.
func (t *Template) Render(env Env) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.prog == nil {
			b.WriteString(p.text)
			continue
		}
		v, err := p.prog.Eval(env)
		if err != nil {
			return "", fmt.Errorf("%s: %w", t.what, err)
		}
		b.WriteString(Text(v))
	}
	return b.String(), nil
}

// Text writes a value the way an operator wants to read it in a message: 92 not 9.2e+01,
// nothing for a missing field.
func Text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case map[string]any, []any:
		b, err := json.Marshal(x)
		if err == nil {
			return string(b)
		}
	}
	return fmt.Sprint(v)
}
