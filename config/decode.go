package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// loader holds the state of one Load: the file being read, every problem found so far and
// where each decoded path came from, so that checks run after decoding can still point at
// the exact line and column of the value they complain about.
type loader struct {
	file      string
	what      string   // the kind of file, when it is not a pipeline (DecodeFile)
	lines     []string // the raw file, to find where block scalar content starts
	reg       Registry
	lookupEnv func(string) (string, bool)

	errs  Errors
	warns Errors

	nodes map[string]*yaml.Node // decoded path -> value node
	keys  map[string]*yaml.Node // decoded path -> key node (for mapping entries)
	root  *yaml.Node

	refs   []reference // names of declared things, checked once everything is decoded
	source *sourceText // the file's text, for expressions whose characters need finding
	// typos are the fields an unknown key was probably meant to be (path -> true): their
	// absence is already explained by the unknown key, so it is not reported again.
	typos map[string]bool
	// failedPaths are the paths whose values did not decode or are missing though required.
	failedPaths map[string]bool
	// unresolved are the scalars holding a ${VAR} that could not be expanded: the error says
	// so once, and they are not decoded or validated, which would only repeat it.
	unresolved map[*yaml.Node]bool

	// extraOutputs are outputs written where one was already (postgres and parquet in one
	// sink): an error, but lint still knows the tables they name.
	extraOutputs []*OutputEntry

	active map[*yaml.Node]bool // anchors being decoded, to stop self-referencing aliases
	budget int                 // nodes left to decode, to stop alias bombs
}

func (l *loader) pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: l.file, Line: 1, Col: 1}
	}
	p := Pos{File: l.file, Line: n.Line, Col: n.Column}
	if p.Line <= 0 {
		p.Line = 1
	}
	if p.Col <= 0 {
		p.Col = 1
	}
	return p
}

// posOf returns the position recorded for path, or for its nearest recorded parent when the
// path itself was never written (a missing field is reported at the struct that lacks it).
func (l *loader) posOf(path string) Pos {
	for {
		if n, ok := l.nodes[path]; ok {
			return l.pos(n)
		}
		if path == "" {
			return l.pos(l.root)
		}
		path = parentPath(path)
	}
}

// keyPosOf is posOf but prefers the key of a mapping entry, which is where a name is written.
func (l *loader) keyPosOf(path string) Pos {
	if n, ok := l.keys[path]; ok {
		return l.pos(n)
	}
	return l.posOf(path)
}

func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

func joinPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

func indexPath(parent string, i int) string { return parent + "[" + strconv.Itoa(i) + "]" }

var (
	durationType   = reflect.TypeFor[Duration]()
	sizeType       = reflect.TypeFor[Size]()
	exprType       = reflect.TypeFor[Expr]()
	fieldsType     = reflect.TypeFor[Fields]()
	processorsType = reflect.TypeFor[[]ProcessorEntry]()
	validatorType  = reflect.TypeFor[Validator]()
)

const (
	errTooComplex    = "the document expands to too many nodes (are aliases nested too deeply?)"
	errAliasYourself = "alias refers to a node that contains it"
)

// describe names what a node holds, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		v := n.Value
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		return strconv.Quote(v)
	}
	return "an alias"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// value decodes n into v, recording n as the node of path.
func (l *loader) value(n *yaml.Node, v reflect.Value, path string) {
	if l.budget--; l.budget < 0 {
		if l.budget == -1 {
			l.errs.Add(l.pos(n), path, errTooComplex)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		target := n.Alias
		if target == nil || l.active[target] {
			l.errs.Add(l.pos(n), path, errAliasYourself)
			return
		}
		l.active[target] = true
		defer delete(l.active, target)
		n = target
	} else if n.Anchor != "" && !l.active[n] {
		// An anchored node is "being decoded" from where it is written too, so that an
		// alias inside it to itself is caught at the first level, not one level down.
		l.active[n] = true
		defer delete(l.active, n)
	}
	l.nodes[path] = n
	if l.unresolved[n] {
		l.failedPaths[path] = true
		return
	}

	switch v.Type() {
	case durationType:
		l.duration(n, v, path)
		return
	case sizeType:
		l.size(n, v, path)
		return
	case exprType:
		l.expr(n, v, path)
		return
	case fieldsType:
		v.Set(reflect.ValueOf(l.fields(n, path)))
		return
	case processorsType:
		v.Set(reflect.ValueOf(l.processors(n, path)))
		return
	}

	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) && v.Type().Elem().Kind() != reflect.Struct {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		l.value(n, v.Elem(), path)
		// The pointer's own path was overwritten with the same node; nothing else to do.
		return
	case reflect.Struct:
		l.structure(n, v, path)
		return
	case reflect.Slice:
		l.slice(n, v, path)
	case reflect.Map:
		l.mapping(n, v, path)
	case reflect.Interface:
		if v.NumMethod() != 0 {
			l.errs.Add(l.pos(n), path, "cannot decode into %s", v.Type())
			return
		}
		var x any
		if err := n.Decode(&x); err != nil {
			l.errs.Add(l.pos(n), path, "%v", err)
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		l.scalar(n, v, path)
	}
	l.validate(n, v, path)
}

// scalar decodes strings, booleans and numbers. A number is read from the scalar's text
// whatever its YAML tag, so that "${PARTITIONS:-3}" works after interpolation.
func (l *loader) scalar(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	kind := v.Kind()
	if n.Kind != yaml.ScalarNode {
		l.errs.Add(l.pos(n), path, "expected %s, got %s", kindName(kind), describe(n))
		return
	}
	s := n.Value
	switch kind {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		switch s {
		case "true", "True", "TRUE":
			v.SetBool(true)
		case "false", "False", "FALSE":
			v.SetBool(false)
		default:
			l.errs.Add(l.pos(n), path, "expected true or false, got %s", describe(n))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			l.numberError(n, path, err)
			return
		}
		if v.OverflowInt(i) {
			l.errs.Add(l.pos(n), path, "number %s is too large", s)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			if strings.HasPrefix(s, "-") {
				l.errs.Add(l.pos(n), path, "expected a number of 0 or more, got %s", describe(n))
				return
			}
			l.numberError(n, path, err)
			return
		}
		if v.OverflowUint(u) {
			l.errs.Add(l.pos(n), path, "number %s is too large", s)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			l.errs.Add(l.pos(n), path, "expected a number, got %s", describe(n))
			return
		}
		v.SetFloat(f)
	default:
		l.errs.Add(l.pos(n), path, "cannot decode into %s", v.Type())
	}
}

func (l *loader) numberError(n *yaml.Node, path string, err error) {
	var ne *strconv.NumError
	if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
		l.errs.Add(l.pos(n), path, "number %s is too large", n.Value)
		return
	}
	if _, ferr := strconv.ParseFloat(n.Value, 64); ferr == nil {
		l.errs.Add(l.pos(n), path, "expected a whole number, got %s", describe(n))
		return
	}
	l.errs.Add(l.pos(n), path, "expected a number, got %s", describe(n))
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Struct, reflect.Map:
		return "a mapping"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "a number"
}

func (l *loader) duration(n *yaml.Node, v reflect.Value, path string) {
	l.unitScalar(n, v, path, "a duration", func(s string) (int64, error) {
		d, err := ParseDuration(s)
		return int64(d), err
	})
}

func (l *loader) size(n *yaml.Node, v reflect.Value, path string) {
	l.unitScalar(n, v, path, "a size", func(s string) (int64, error) {
		sz, err := ParseSize(s)
		return int64(sz), err
	})
}

// unitScalar decodes a number written with a unit ("3d", "64MiB") with parse.
func (l *loader) unitScalar(n *yaml.Node, v reflect.Value, path, what string, parse func(string) (int64, error)) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.ScalarNode {
		l.errs.Add(l.pos(n), path, "expected %s, got %s", what, describe(n))
		return
	}
	x, err := parse(n.Value)
	if err != nil {
		l.errs.Add(l.pos(n), path, "%v", err)
		return
	}
	v.SetInt(x)
}

// expr decodes any scalar as expression source. Expressions are compiled later, by the
// component that owns them, so here only the text and its position matter.
func (l *loader) expr(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.ScalarNode {
		l.errs.Add(l.pos(n), path, "expected an expression, got %s (quote the expression if it starts with { or [)", describe(n))
		return
	}
	v.Set(reflect.ValueOf(l.newExpr(n, path)))
}

// newExpr is the expression written as scalar n, with the position of every character of its
// text when YAML's quoting or folding makes the text differ from the file.
func (l *loader) newExpr(n *yaml.Node, path string) Expr {
	e := Expr{Src: n.Value, Pos: l.exprPos(n), Path: path}
	start := e.Pos
	if start.Line < 1 || start.Line > len(l.lines) {
		return e
	}
	if n.Style == 0 && !strings.Contains(n.Value, "\n") {
		if line := l.lines[start.Line-1]; start.Col-1+len(n.Value) <= len(line) && line[start.Col-1:start.Col-1+len(n.Value)] == n.Value {
			return e // a plain scalar copied verbatim from one line
		}
	}
	if l.source == nil {
		l.source = &sourceText{file: l.file, lines: l.lines}
	}
	e.source = l.source
	return e
}

// align finds each rune of value in the file from start on: the value is what YAML made
// of the raw text, so every rune of it appears in the raw text in order, with escapes
// (\" for ", ” for '), line breaks and indentation in between. A rune that cannot be found
// close ahead keeps the previous position.
func (t *sourceText) align(value string, start Pos) []Pos {
	const lookahead = 12
	type rawRune struct {
		r   rune
		pos Pos
	}
	var raw []rawRune
	budget := len(value)*2 + 64
	for ln := start.Line; ln <= len(t.lines) && len(raw) < budget; ln++ {
		text := t.lines[ln-1]
		col := 1
		if ln == start.Line {
			col = start.Col
			if col-1 > len(text) {
				break
			}
			text = text[col-1:]
		}
		for _, r := range text {
			raw = append(raw, rawRune{r, Pos{File: t.file, Line: ln, Col: col}})
			col += len(string(r))
		}
		raw = append(raw, rawRune{'\n', Pos{File: t.file, Line: ln, Col: col}})
	}
	out := make([]Pos, 0, len(value))
	next := 0
	prev := start
	for _, r := range value {
		found := -1
		for k := next; k < len(raw) && k < next+lookahead; k++ {
			if raw[k].r == r || (r == ' ' && raw[k].r == '\n') || (r == '\n' && raw[k].r == '\n') {
				found = k
				break
			}
		}
		if found < 0 {
			out = append(out, prev)
			continue
		}
		prev = raw[found].pos
		out = append(out, prev)
		next = found + 1
		if r == ' ' && raw[found].r == '\n' {
			// A folded line break: the next rune comes after the indentation.
			for next < len(raw) && (raw[next].r == ' ' || raw[next].r == '\t') {
				next++
			}
		}
	}
	return out
}

// exprPos is the position of the first character of a scalar's text, so that an expression
// compiler's column can be added to it.
func (l *loader) exprPos(n *yaml.Node) Pos {
	p := l.pos(n)
	switch n.Style {
	case yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle:
		p.Col++
	case yaml.LiteralStyle, yaml.FoldedStyle:
		// yaml.v3 places a block scalar at its indicator; its text starts on a later line.
		for i := n.Line; i < len(l.lines); i++ { // l.lines is 0-based, so index n.Line is the next line
			line := l.lines[i]
			trimmed := strings.TrimLeft(line, " ")
			if strings.TrimSpace(trimmed) == "" {
				continue
			}
			return Pos{File: l.file, Line: i + 1, Col: len(line) - len(trimmed) + 1}
		}
	}
	return p
}

// pair is one entry of a mapping, after merge keys are expanded.
type pair struct {
	key, val *yaml.Node
}

// pairs lists the entries of the mapping n, reporting duplicate and non-scalar keys.
// Entries pulled in with "<<: *anchor" come after the explicit ones and never override them.
func (l *loader) pairs(n *yaml.Node, path string) []pair {
	var out []pair
	seen := map[string]*yaml.Node{}
	var merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merged = append(merged, l.mergePairs(val, path, map[*yaml.Node]bool{n: true})...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			l.errs.Add(l.pos(k), path, "keys must be plain strings, got %s", describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			l.errs.Add(l.pos(k), path, "duplicate key %q (first written at line %d)", k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{k, val})
	}
	for _, p := range merged {
		if _, ok := seen[p.key.Value]; ok {
			continue
		}
		seen[p.key.Value] = p.key
		out = append(out, p)
	}
	return out
}

// mergePairs lists the entries a "<<" key merges in. visited holds the mappings already
// merged: merging one twice adds nothing, and skipping it stops cycles and alias bombs.
func (l *loader) mergePairs(n *yaml.Node, path string, visited map[*yaml.Node]bool) []pair {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if visited[n] {
		return nil
	}
	visited[n] = true
	switch n.Kind {
	case yaml.MappingNode:
		var out []pair
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
				out = append(out, l.mergePairs(n.Content[i+1], path, visited)...)
				continue
			}
			if k.Kind == yaml.ScalarNode {
				out = append(out, pair{k, n.Content[i+1]})
			}
		}
		return out
	case yaml.SequenceNode:
		var out []pair
		for _, c := range n.Content {
			out = append(out, l.mergePairs(c, path, visited)...)
		}
		return out
	}
	l.errs.Add(l.pos(n), path, "<< merges a mapping or a list of mappings, got %s", describe(n))
	return nil
}

func (l *loader) slice(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		l.errs.Add(l.pos(n), path, "expected a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, c := range n.Content {
		l.value(c, s.Index(i), indexPath(path, i))
	}
	v.Set(s)
}

func (l *loader) mapping(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		l.errs.Add(l.pos(n), path, "expected a mapping, got %s", describe(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		l.errs.Add(l.pos(n), path, "cannot decode into %s: keys must be strings", v.Type())
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for _, p := range l.pairs(n, path) {
		elemPath := joinPath(path, p.key.Value)
		l.keys[elemPath] = p.key
		elem := reflect.New(v.Type().Elem()).Elem()
		l.value(p.val, elem, elemPath)
		m.SetMapIndex(reflect.ValueOf(p.key.Value).Convert(v.Type().Key()), elem)
	}
	v.Set(m)
}

// structField is a decodable field of a config struct, with its tags parsed once.
type structField struct {
	name     string // YAML key
	index    []int
	def      string
	hasDef   bool
	required bool
	enum     []string
	doc      string
	ref      string // the section whose names the value must be one of: topics, schemas, lookups
}

// reference is a value that names something declared elsewhere in the file.
type reference struct {
	section string // topics, schemas, lookups
	name    string
	path    string
}

var structFieldsCache sync.Map // reflect.Type -> []structField

// structFields lists the YAML fields of struct type t. Anonymous struct fields without a
// name are inlined, so components can share common settings by embedding.
func structFields(t reflect.Type) []structField {
	if c, ok := structFieldsCache.Load(t); ok {
		return c.([]structField)
	}
	var out []structField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, hasTag := f.Tag.Lookup("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && f.Type.Kind() == reflect.Struct && (name == "" || opts == "inline") {
			for _, inner := range structFields(f.Type) {
				inner.index = append([]int{i}, inner.index...)
				out = append(out, inner)
			}
			continue
		}
		if !f.IsExported() || f.Type == outputEntryType {
			continue // an output slot has no key of its own (outputs.go)
		}
		if opts == "inline" && f.Type.Kind() == reflect.Struct {
			for _, inner := range structFields(f.Type) {
				inner.index = append([]int{i}, inner.index...)
				out = append(out, inner)
			}
			continue
		}
		if !hasTag || name == "" {
			name = strings.ToLower(f.Name)
		}
		sf := structField{name: name, index: []int{i}, doc: f.Tag.Get("doc")}
		sf.def, sf.hasDef = f.Tag.Lookup("default")
		sf.required = f.Tag.Get("required") == "true"
		sf.ref = f.Tag.Get("ref")
		if e := f.Tag.Get("enum"); e != "" {
			sf.enum = strings.Split(e, ",")
		}
		out = append(out, sf)
	}
	structFieldsCache.Store(t, out)
	return out
}

// structure decodes a mapping into a struct: known keys into their fields, defaults for the
// absent ones, errors for unknown, missing required and out-of-enum ones; then Validate.
func (l *loader) structure(n *yaml.Node, v reflect.Value, path string) {
	if field, ok := shorthandOf(v.Type()); ok && n.Kind == yaml.ScalarNode && !isNull(n) {
		// "dashboard: false" is "dashboard: {enabled: false}".
		key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: field, Line: n.Line, Column: n.Column}
		n = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column, Content: []*yaml.Node{key, n}}
	}
	if !isNull(n) && n.Kind != yaml.MappingNode {
		l.errs.Add(l.pos(n), path, "expected a mapping, got %s", describe(n))
		return
	}
	errsBefore := len(l.errs)
	fields := structFields(v.Type())
	byName := make(map[string]int, len(fields))
	names := make([]string, len(fields))
	for i, f := range fields {
		byName[f.name] = i
		names[i] = f.name
	}
	slot, hasSlot := outputSlotOf(v.Type())
	keys := names
	if hasSlot {
		keys = append(slices.Clone(names), l.reg.outputTypes(slot.sinks)...)
	}
	set := make([]bool, len(fields))
	if n.Kind == yaml.MappingNode {
		for _, p := range l.pairs(n, path) {
			i, ok := byName[p.key.Value]
			if !ok && hasSlot && l.outputKey(p, v, slot, path) {
				continue
			}
			if !ok {
				note := ""
				if hasSlot && !slices.Contains(names, closest(p.key.Value, keys)) {
					note = l.outputTypesNote(slot) // it may be an output type
				}
				l.unknownKey(p.key, path, keys, note)
				continue
			}
			f := fields[i]
			fv := v.FieldByIndex(f.index)
			fpath := joinPath(path, f.name)
			l.keys[fpath] = p.key
			if isNull(resolveAlias(p.val)) && !decodesNull(fv.Type()) {
				if f.required {
					l.errs.Add(l.pos(p.val), fpath, "missing value for required field %q", f.name)
					set[i] = true
				}
				continue // as if absent, so the default applies
			}
			set[i] = true
			l.value(p.val, fv, fpath)
			if f.ref != "" && fv.Kind() == reflect.String && fv.String() != "" {
				l.refs = append(l.refs, reference{section: f.ref, name: fv.String(), path: fpath})
			}
			l.checkEnum(f, fv, p.val, fpath)
		}
	}
	for i, f := range fields {
		if set[i] {
			continue
		}
		fv := v.FieldByIndex(f.index)
		fpath := joinPath(path, f.name)
		switch {
		case f.required && l.typos[fpath]:
			// Written with a typo: the unknown-field error says so.
		case f.required:
			l.errs.Add(l.pos(n), path, "missing required field %q", f.name)
			l.failedPaths[fpath] = true
		case f.hasDef:
			synthetic := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: f.def, Line: n.Line, Column: n.Column}
			l.value(synthetic, fv, fpath)
			delete(l.nodes, fpath) // a default was not written in the file
		case fv.Kind() == reflect.Struct && fv.Type() != exprType:
			l.defaults(fv, n)
		}
	}
	if len(l.errs) == errsBefore {
		l.validate(n, v, path)
	}
}

// Shorthand is a config struct that may also be written as one scalar, which sets the field
// Shorthand names: dashboard: false is dashboard: {enabled: false}.
type Shorthand interface{ Shorthand() string }

var shorthandType = reflect.TypeFor[Shorthand]()

// shorthandOf names the field a scalar sets for struct type t, if t has a shorthand.
func shorthandOf(t reflect.Type) (string, bool) {
	if t.Kind() != reflect.Struct || !t.Implements(shorthandType) {
		return "", false
	}
	return reflect.Zero(t).Interface().(Shorthand).Shorthand(), true
}

// unknownKey reports key, which is none of the keys of the struct at path, and notes the
// key it was probably meant to be: that one is missing because of it.
func (l *loader) unknownKey(key *yaml.Node, path string, keys []string, note string) {
	l.errs.Add(l.pos(key), path, "unknown field %q%s%s", key.Value, suggestion(key.Value, keys), note)
	// What it breaks is the field it was meant to be, which is missing; a key that is no
	// misspelling breaks only itself. The rest of the mapping is as written.
	unknown := l.errs[len(l.errs)-1]
	unknown.Covers = joinPath(path, key.Value)
	if meant := closest(key.Value, keys); meant != "" {
		l.explained(joinPath(path, meant))
		unknown.Covers = joinPath(path, meant)
	}
}

// explained notes that the absence of the field at path is already reported.
func (l *loader) explained(path string) {
	if l.typos == nil {
		l.typos = map[string]bool{}
	}
	l.typos[path] = true
}

// defaults fills the defaults of an absent struct-valued field, so that code reading
// Broker.ClientID gets the default even when "broker:" has no client_id.
func (l *loader) defaults(v reflect.Value, at *yaml.Node) {
	for _, f := range structFields(v.Type()) {
		fv := v.FieldByIndex(f.index)
		switch {
		case f.hasDef:
			synthetic := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: f.def, Line: at.Line, Column: at.Column}
			saved := l.nodes
			l.nodes = map[string]*yaml.Node{}
			l.value(synthetic, fv, f.name)
			l.nodes = saved
		case fv.Kind() == reflect.Struct && fv.Type() != exprType:
			l.defaults(fv, at)
		}
	}
}

// decodesNull reports whether an explicit null means something for type t: "embedded:"
// with nothing after it asks for an embedded broker with default settings.
func decodesNull(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t != exprType && t != durationType && t != sizeType ||
		t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct && t.Elem() != exprType
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// validate calls Validate on v when it has one, placing each *FieldError at the field it
// names (resolved under path) and any other error at n.
func (l *loader) validate(n *yaml.Node, v reflect.Value, path string) {
	var val Validator
	switch {
	case v.CanAddr() && v.Addr().Type().Implements(validatorType):
		val = v.Addr().Interface().(Validator)
	case v.Type().Implements(validatorType) && (v.Kind() != reflect.Pointer || !v.IsNil()):
		val = v.Interface().(Validator)
	default:
		return
	}
	err := safeValidate(val)
	for _, e := range FlattenErrors(err) {
		var fe *FieldError
		var ce *Error
		switch {
		case errors.As(e, &ce):
			l.errs = append(l.errs, ce)
		case errors.As(e, &fe):
			fpath := fe.Under(path)
			if l.unresolved[l.nodes[fpath]] {
				continue // about a value whose ${VAR} is already reported
			}
			l.errs.Add(l.posWithin(fpath, path, n), fpath, "%s", fe.Msg)
		default:
			l.errs.Add(l.pos(n), path, "%v", e)
		}
	}
}

// posWithin is posOf, but never climbs above the struct being validated (whose node is n).
func (l *loader) posWithin(fpath, structPath string, n *yaml.Node) Pos {
	for p := fpath; len(p) > len(structPath); p = parentPath(p) {
		if node, ok := l.nodes[p]; ok {
			return l.pos(node)
		}
	}
	return l.pos(n)
}

// safeValidate runs a component's Validate, turning a panic on a half-filled config into
// an error: a bad file must be reported, never crash the process that loads it.
func safeValidate(v Validator) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error: Validate panicked: %v", r)
		}
	}()
	return v.Validate()
}

// FlattenErrors lists the single errors inside err: the items of Errors and of errors.Join,
// at any depth. Components may return any of these from Validate or Build.
func FlattenErrors(err error) []error {
	if err == nil {
		return nil
	}
	switch e := err.(type) {
	case Errors:
		out := make([]error, len(e))
		for i := range e {
			out[i] = e[i]
		}
		return out
	case interface{ Unwrap() []error }:
		var out []error
		for _, inner := range e.Unwrap() {
			out = append(out, FlattenErrors(inner)...)
		}
		return out
	}
	return []error{err}
}

// fields decodes an ordered mapping of expressions and nested mappings.
func (l *loader) fields(n *yaml.Node, path string) Fields {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		l.errs.Add(l.pos(n), path, "expected a mapping of names to expressions, got %s", describe(n))
		return nil
	}
	var out Fields
	for _, p := range l.pairs(n, path) {
		fpath := joinPath(path, p.key.Value)
		l.keys[fpath] = p.key
		f := Field{Name: p.key.Value, Pos: l.pos(p.key)}
		val := p.val
		if val.Kind == yaml.AliasNode {
			if val.Alias == nil || l.active[val.Alias] {
				l.errs.Add(l.pos(val), fpath, errAliasYourself)
				continue
			}
			l.active[val.Alias] = true
			f = l.field(f, val.Alias, fpath)
			delete(l.active, val.Alias)
		} else {
			f = l.field(f, val, fpath)
		}
		out = append(out, f)
	}
	return out
}

func (l *loader) field(f Field, val *yaml.Node, path string) Field {
	if l.budget--; l.budget < 0 {
		if l.budget == -1 {
			l.errs.Add(l.pos(val), path, errTooComplex)
		}
		return f
	}
	l.nodes[path] = val
	switch {
	case val.Kind == yaml.MappingNode:
		f.Nested = l.fields(val, path)
	case val.Kind == yaml.ScalarNode && val.Value != "":
		e := l.newExpr(val, path)
		f.Expr = &e
	case val.Kind == yaml.ScalarNode:
		l.errs.Add(l.pos(val), path, "missing expression for %q", f.Name)
	default:
		l.errs.Add(l.pos(val), path, "expected an expression or a mapping, got %s", describe(val))
	}
	return f
}

// processors decodes a stream's processor list; each item names its type as its only key.
func (l *loader) processors(n *yaml.Node, path string) []ProcessorEntry {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		l.errs.Add(l.pos(n), path, "expected a list of processors, got %s", describe(n))
		return nil
	}
	known := make([]string, 0, len(l.reg.Processors))
	for name := range l.reg.Processors {
		known = append(known, name)
	}
	sort.Strings(known)
	var out []ProcessorEntry
	for i, item := range n.Content {
		itemPath := indexPath(path, i)
		item = resolveAlias(item)
		l.nodes[itemPath] = item
		if item.Kind != yaml.MappingNode || len(item.Content) == 0 {
			l.errs.Add(l.pos(item), itemPath, "expected a processor: a mapping with one key, its type (one of %s), got %s", strings.Join(known, ", "), describe(item))
			continue
		}
		if len(item.Content) > 2 {
			l.errs.Add(l.pos(item.Content[2]), itemPath, "a processor has exactly one key, its type; found %q and %q (is the indentation of %q's settings right?)", item.Content[0].Value, item.Content[2].Value, item.Content[0].Value)
			continue
		}
		key, val := item.Content[0], item.Content[1]
		typ := key.Value
		spec, ok := l.reg.Processors[typ]
		if key.Kind != yaml.ScalarNode || !ok {
			l.errs.Add(l.pos(key), itemPath, "unknown processor type %q%s; known types: %s", typ, suggestion(typ, known), strings.Join(known, ", "))
			continue
		}
		entryPath := joinPath(itemPath, typ)
		cfg, ok := l.componentConfig(key, val, "processor", spec.NewConfig, entryPath)
		if !ok {
			continue
		}
		out = append(out, ProcessorEntry{Type: typ, Pos: l.pos(key), Path: entryPath, Config: cfg})
	}
	return out
}

// checkEnum reports a value of field f (a string, or each string of a list) that is not
// one of its enum.
func (l *loader) checkEnum(f structField, fv reflect.Value, node *yaml.Node, fpath string) {
	if len(f.enum) == 0 {
		return
	}
	check := func(got string, n *yaml.Node, at string) {
		if !contains(f.enum, got) {
			l.errs.Add(l.pos(resolveAlias(n)), at, "must be one of %s; got %q%s", strings.Join(f.enum, ", "), got, suggestion(got, f.enum))
		}
	}
	switch {
	case fv.Kind() == reflect.String:
		check(fv.String(), node, fpath)
	case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.String:
		items := resolveAlias(node).Content
		for i := range min(fv.Len(), len(items)) {
			check(fv.Index(i).String(), items[i], fmt.Sprintf("%s[%d]", fpath, i))
		}
	}
}
