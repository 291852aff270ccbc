package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
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
	l := newLoader(file, data)
	l.reg, l.lookupEnv = reg, lookupEnv
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

func newLoader(file string, data []byte) *loader {
	return &loader{
		file:        file,
		lines:       strings.Split(string(data), "\n"),
		lookupEnv:   func(string) (string, bool) { return "", false },
		nodes:       map[string]*yaml.Node{},
		keys:        map[string]*yaml.Node{},
		active:      map[*yaml.Node]bool{},
		failedPaths: map[string]bool{},
		budget:      max(100_000, 100*len(data)),
	}
}

// DecodeFile decodes a YAML file other than a pipeline (a rule test file, say) into v, a
// pointer to a struct tagged like the pipeline's (yaml, required, default, enum, doc), with
// the same checks and messages: unknown keys with "did you mean", wrong types, durations,
// missing required fields, and each type's Validate, every problem at its file:line:col.
// what names the file in messages about its shape ("test file"). It returns where each
// decoded path came from, for checks made after decoding.
func DecodeFile(file string, data []byte, v any, what string) (Positions, error) {
	l := newLoader(file, data)
	l.what = what
	doc, err := l.parse(data)
	if err != nil {
		return nil, Errors{err}
	}
	l.root = doc
	l.value(doc, reflect.ValueOf(v).Elem(), "")
	pos := make(Positions, len(l.nodes))
	for path, n := range l.nodes {
		pos[path] = l.pos(n)
	}
	l.errs.Sort()
	return pos, l.errs.Err()
}

// Positions are the file positions of decoded paths ("tests[0].expect[1].at").
type Positions map[string]Pos

// Of is the position of path, or of the nearest enclosing path decoded.
func (ps Positions) Of(path string) Pos {
	for p := path; ; p = parentPath(p) {
		if pos, ok := ps[p]; ok {
			return pos
		}
		if p == "" {
			return Pos{}
		}
	}
}

func (l *loader) kind() string {
	if l.what != "" {
		return l.what
	}
	return "pipeline file"
}

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
			if l.what != "" {
				return nil, &Error{Pos: Pos{File: l.file, Line: 1, Col: 1}, Msg: "the " + l.what + " is empty"}
			}
			return nil, &Error{Pos: Pos{File: l.file, Line: 1, Col: 1}, Msg: "the pipeline file is empty; it needs at least version, broker, topics and streams"}
		}
		return nil, l.syntaxError(data, derr)
	}
	var extra yaml.Node
	switch derr := dec.Decode(&extra); {
	case derr == nil:
		return nil, &Error{Pos: l.pos(&extra), Msg: "a " + l.kind() + " holds one YAML document; remove the second '---' or split the file"}
	case !errors.Is(derr, io.EOF):
		return nil, l.syntaxError(data, derr)
	}
	root = &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		if l.what != "" {
			return nil, &Error{Pos: l.pos(root), Msg: "the " + l.what + " must be a mapping, got " + describe(root)}
		}
		return nil, &Error{Pos: l.pos(root), Msg: "the pipeline file must be a mapping (version: 1, broker: ..., streams: ...), got " + describe(root)}
	}
	return root, nil
}
