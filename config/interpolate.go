package config

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// interpolateNode expands ${VAR} references in every scalar value below n. Keys are left
// alone: a key names a field or a thing, and letting the environment rename it would make
// a file mean different things on different machines. It runs on the parsed tree, not the
// raw text, so that every position reported later is a position in the file as written.
func (l *loader) interpolateNode(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			l.interpolateNode(c, path)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			l.interpolateNode(c, fmt.Sprintf("%s[%d]", path, i))
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			l.interpolateNode(n.Content[i+1], joinPath(path, n.Content[i].Value))
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		out, unset, err := interpolate(n.Value, l.lookupEnv)
		if err != nil {
			l.errs.Add(l.refPos(n, err.at), path, "%s", err.msg)
			l.markUnresolved(n)
			return
		}
		for _, ref := range unset {
			l.errs.Add(l.refPos(n, ref.at), path, "environment variable %s is not set and ${%s} has no default: set it, or write ${%s:-default} to give one (${%s:-} for an empty value)", ref.name, ref.name, ref.name, ref.name)
		}
		if len(unset) > 0 {
			l.markUnresolved(n)
			return
		}
		n.Value = out
	}
	// Aliases are skipped: they share the node they point to, which is expanded where it is written.
}

// markUnresolved keeps n from being decoded: its value is not what the file means, and the
// error about its ${VAR} is the one to report.
func (l *loader) markUnresolved(n *yaml.Node) {
	if l.unresolved == nil {
		l.unresolved = map[*yaml.Node]bool{}
	}
	l.unresolved[n] = true
}

// envRef is a ${NAME} reference: the variable's name and the offset of its "${" in the
// scalar's value.
type envRef struct {
	name string
	at   int
}

// interpolationError is a malformed reference, at the offset of its "${" in the value.
type interpolationError struct {
	msg string
	at  int
}

func (e *interpolationError) Error() string { return e.msg }

// interpolate expands s: ${VAR} is VAR's value, ${VAR:-default} uses default when VAR is
// unset or empty, and $${ stands for a literal ${. It returns the references to variables
// that are unset without a default, which the caller reports as errors: an empty value in
// their place is a deployment mistake (an empty PostgreSQL DSN connects to libpq's default
// database). A variable set to the empty string is taken as written.
func interpolate(s string, lookupEnv func(string) (string, bool)) (string, []envRef, *interpolationError) {
	var b strings.Builder
	var unset []envRef
	for i := 0; ; {
		j := nextRef(s, i)
		if j < 0 {
			b.WriteString(s[i:])
			return b.String(), unset, nil
		}
		if j > 0 && s[j-1] == '$' {
			// "$${" is an escaped "${": keep one "$" and the brace, expand nothing.
			b.WriteString(s[i : j-1])
			b.WriteString("${")
			i = j + 2
			continue
		}
		b.WriteString(s[i:j])
		end := strings.IndexByte(s[j:], '}')
		if end < 0 {
			return "", nil, &interpolationError{fmt.Sprintf("unterminated ${ in %q: close it with } or write $${ for a literal ${", s[j:]), j}
		}
		ref := s[j+2 : j+end]
		i = j + end + 1
		name, def, hasDefault := strings.Cut(ref, ":-")
		if !isEnvName(name) {
			return "", nil, &interpolationError{fmt.Sprintf("invalid environment variable reference ${%s}: write ${NAME} or ${NAME:-default}", ref), j}
		}
		val, ok := lookupEnv(name)
		switch {
		case hasDefault && val == "":
			val = def
		case !ok:
			unset = append(unset, envRef{name, j})
		}
		b.WriteString(val)
	}
}

// nextRef returns the offset of the next "${" in s at or after from, or -1.
func nextRef(s string, from int) int {
	j := strings.Index(s[from:], "${")
	if j < 0 {
		return -1
	}
	return from + j
}

// refPos returns the position of the "${" at offset at in the value of n. yaml.v3 gives the
// position of the scalar only, so the reference is found again in the line it starts on,
// as the same "${" counting from the scalar's start. When the value does not read the same
// there (a multi-line or block scalar, an escape before the reference), the scalar's own
// position is used.
func (l *loader) refPos(n *yaml.Node, at int) Pos {
	pos := l.pos(n)
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 || n.Line < 1 || n.Line > len(l.lines) {
		return pos
	}
	text := l.lines[n.Line-1]
	start := byteIndex(text, n.Column)
	if start < 0 {
		return pos
	}
	if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0 {
		start++ // past the opening quote
	}
	// The reference's text up to its "}" must read the same in the file.
	want := n.Value[at:]
	if end := strings.IndexByte(want, '}'); end >= 0 {
		want = want[:end+1]
	}
	ordinal := strings.Count(n.Value[:at], "${")
	for i := start; ; i += 2 {
		j := strings.Index(text[i:], "${")
		if j < 0 {
			return pos
		}
		i += j
		if ordinal == 0 {
			if !strings.HasPrefix(text[i:], want) {
				return pos
			}
			pos.Col = utf8.RuneCountInString(text[:i]) + 1
			return pos
		}
		ordinal--
	}
}

// byteIndex converts a 1-based column in characters, as yaml.v3 counts them, into a byte
// index in text, or -1 when text is shorter.
func byteIndex(text string, col int) int {
	for i := range text {
		if col--; col == 0 {
			return i
		}
	}
	return -1
}

func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
