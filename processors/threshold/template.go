package threshold

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/eval"
)

// template is a compiled message or annotation: literal text and {{expr}} placeholders.
type template struct {
	// what names the template in errors: "message" or "annotations.<name>".
	what  string
	parts []templatePart
}

type templatePart struct {
	text string
	prog *eval.Program
}

// compileTemplate compiles the placeholders of src, the template named what; errors point
// at the placeholder.
func compileTemplate(src config.Expr, what string, env engine.BuildEnv) (*template, error) {
	var errs config.Errors
	t := &template{what: what}
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
		} else if p, _, err := eval.CompileChecked(e, eval.Any, env.Input, env.Warnings); err != nil {
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

// render evaluates the placeholders on env.
func (t *template) render(env eval.Env) (string, error) {
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
		b.WriteString(format(v))
	}
	return b.String(), nil
}

// format writes a value the way an operator wants to read it in a message: 92 not 9.2e+01,
// nothing for a missing field.
func format(v any) string {
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
