package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads, interpolates, decodes and validates the pipeline file at path. On failure the
// returned error is Errors: every problem found, sorted by position.
func Load(path string, reg Registry) (*Pipeline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return LoadBytes(path, data, reg, os.LookupEnv)
}

// LoadBytes is Load on data already read; lookupEnv resolves ${VAR} references.
// When the file parses but has errors, the partially decoded pipeline is returned together
// with the errors, for tools that want to check more of it (runtime.Check); it must not run.
//
// It works in four passes over one yaml.Node tree: parse, expand ${VAR} in scalar values,
// decode into the tagged structs (calling each config's Validate), and check what spans the
// whole file (declared topics, dead letters, tables served by routes). Nothing stops at the
// first problem, so that one run of the linter shows everything that is wrong.
func LoadBytes(file string, data []byte, reg Registry, lookupEnv func(string) (string, bool)) (*Pipeline, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	l := &loader{
		file:      file,
		lines:     strings.Split(string(data), "\n"),
		reg:       reg,
		lookupEnv: lookupEnv,
		nodes:     map[string]*yaml.Node{},
		keys:      map[string]*yaml.Node{},
		active:    map[*yaml.Node]bool{},
		budget:    max(100_000, 100*len(data)),
	}
	doc, err := l.parse(data)
	if err != nil {
		return nil, Errors{err}
	}
	l.root = doc
	l.interpolateNode(doc, "")

	p := &Pipeline{File: file}
	l.value(doc, reflect.ValueOf(p).Elem(), "")
	l.check(p)
	p.positions = make(map[string]Pos, len(l.nodes))
	for path, n := range l.nodes {
		p.positions[path] = l.pos(n)
	}

	l.warns.Sort()
	p.Warnings = l.warns
	if len(l.errs) > 0 {
		// The partial pipeline goes back with the errors so that the build phase can still
		// report expression errors in the same run; it must never be run.
		return p, l.errs.Err()
	}
	return p, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+)(?:, column (\d+))?: `)

// parse returns the root mapping of the single YAML document in data.
func (l *loader) parse(data []byte) (root *yaml.Node, err *Error) {
	defer func() {
		// yaml.v3 has panicked on hostile input before; a linter must report, not crash.
		if r := recover(); r != nil {
			root, err = nil, &Error{Pos: Pos{File: l.file, Line: 1, Col: 1}, Msg: fmt.Sprintf("invalid YAML: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if derr := dec.Decode(&doc); derr != nil {
		if errors.Is(derr, io.EOF) {
			return nil, &Error{Pos: Pos{File: l.file, Line: 1, Col: 1}, Msg: "the pipeline file is empty; it needs at least version, broker, topics and streams"}
		}
		return nil, l.syntaxError(data, derr)
	}
	var extra yaml.Node
	switch derr := dec.Decode(&extra); {
	case derr == nil:
		return nil, &Error{Pos: l.pos(&extra), Msg: "a pipeline file holds one YAML document; remove the second '---' or split the file"}
	case !errors.Is(derr, io.EOF):
		return nil, l.syntaxError(data, derr)
	}
	root = &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{Pos: l.pos(root), Msg: "the pipeline file must be a mapping (version: 1, broker: ..., streams: ...), got " + describe(root)}
	}
	return root, nil
}

// syntaxError turns a yaml.v3 error into an *Error. yaml.v3 names only a line, and for
// parser errors ("did not find expected key") that line is where the enclosing collection
// starts, counted from 0. So for those, and for errors with no line at all, the problem line
// is found again as the shortest prefix of the file that fails the same way; the column is
// where that line's content starts.
func (l *loader) syntaxError(data []byte, err error) *Error {
	msg := err.Error()
	pos := Pos{File: l.file, Line: 1, Col: 1}
	hasLine := false
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		pos.Line, _ = strconv.Atoi(m[1])
		if m[2] != "" {
			pos.Col, _ = strconv.Atoi(m[2])
		}
		msg = msg[len(m[0]):]
		hasLine = true
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	if !hasLine || strings.HasPrefix(msg, "did not find expected") {
		if line := l.firstFailingLine(data, msg, pos.Line); line > 0 {
			pos.Line = line
			pos.Col = l.contentCol(line, msg)
		}
	}
	if pos.Line <= 0 {
		pos.Line = 1
	}
	if pos.Col <= 0 {
		pos.Col = 1
	}
	return &Error{Pos: pos, Msg: "invalid YAML: " + msg}
}

// firstFailingLine binary-searches the smallest number of leading lines of data that fail
// to parse with the message msg, starting from line from; 0 when none does.
func (l *loader) firstFailingLine(data []byte, msg string, from int) int {
	fails := func(n int) bool {
		prefix := strings.Join(l.lines[:n], "\n")
		var node yaml.Node
		err := safeUnmarshal([]byte(prefix), &node)
		if err == nil {
			return false
		}
		m := err.Error()
		if sub := yamlLineRE.FindStringSubmatch(m); sub != nil {
			m = m[len(sub[0]):]
		}
		return strings.TrimPrefix(m, "yaml: ") == msg
	}
	lo, hi := max(1, from), len(l.lines)
	if lo > hi || !fails(hi) {
		return 0
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// contentCol is the column where line's content starts, or of the alias an "unknown anchor"
// error names.
func (l *loader) contentCol(line int, msg string) int {
	text := l.lines[line-1]
	if m := unknownAnchorRE.FindStringSubmatch(msg); m != nil {
		if i := strings.Index(text, "*"+m[1]); i >= 0 {
			return i + 1
		}
	}
	return len(text) - len(strings.TrimLeft(text, " \t")) + 1
}

var unknownAnchorRE = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

func safeUnmarshal(data []byte, node *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return yaml.Unmarshal(data, node)
}
