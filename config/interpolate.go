package config

import (
	"fmt"
	"strings"

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
			l.errs.Add(l.pos(n), path, "%v", err)
			return
		}
		for _, name := range unset {
			l.warns.AddWarning(l.pos(n), path, "environment variable %s is not set and ${%s} has no default; using an empty string (write ${%s:-default} to give one)", name, name, name)
		}
		n.Value = out
	}
	// Aliases are skipped: they share the node they point to, which is expanded where it is written.
}

// interpolate expands s: ${VAR} is VAR's value, ${VAR:-default} uses default when VAR is
// unset or empty, and $${ stands for a literal ${. It returns the names of variables that
// were unset without a default, since an empty value is usually a deployment mistake.
func interpolate(s string, lookupEnv func(string) (string, bool)) (string, []string, error) {
	var b strings.Builder
	var unset []string
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), unset, nil
		}
		if i > 0 && s[i-1] == '$' {
			// "$${" is an escaped "${": keep one "$" and the brace, expand nothing.
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", nil, fmt.Errorf("unterminated ${ in %q: close it with } or write $${ for a literal ${", s[i:])
		}
		ref := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDefault := strings.Cut(ref, ":-")
		if !isEnvName(name) {
			return "", nil, fmt.Errorf("invalid environment variable reference ${%s}: write ${NAME} or ${NAME:-default}", ref)
		}
		val, ok := lookupEnv(name)
		switch {
		case hasDefault && val == "":
			val = def
		case !ok:
			unset = append(unset, name)
		}
		b.WriteString(val)
	}
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
