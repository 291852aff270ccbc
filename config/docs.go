package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// GeneratedNotice starts every generated page, so that nobody edits one by hand.
const GeneratedNotice = "<!-- Generated from the component specs by `go test ./processors/all -run Generated -update`. Do not edit. -->"

// ComponentDocs returns the Markdown pages of docs/components by file name: one page per
// core component (CoreComponents) and per output and processor in reg, named
// <kind>-<name>.md, and
// README.md, their index. Like JSONSchema, they are generated from the tagged config
// structs, so the documented settings are exactly the ones the loader accepts.
func ComponentDocs(reg Registry) (map[string][]byte, error) {
	pages := map[string][]byte{}
	var index []indexEntry
	for _, c := range CoreComponents {
		page, err := componentPage(c)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", c.Kind, c.Name, err)
		}
		file := c.Kind + "-" + c.Name + ".md"
		pages[file] = page
		index = append(index, indexEntry{file: file, kind: c.Kind, name: c.Name, doc: c.Doc})
	}
	registered, err := registeredComponents(reg)
	if err != nil {
		return nil, err
	}
	for _, c := range registered {
		page, err := componentPage(c)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", c.Kind, c.Name, err)
		}
		file := c.Kind + "-" + c.Name + ".md"
		pages[file] = page
		index = append(index, indexEntry{file: file, kind: c.Kind, name: c.Name, doc: c.Doc})
	}
	pages["README.md"] = indexPage(index)
	return pages, nil
}

// registeredComponents describes the registry's outputs, then its processors, each by type.
func registeredComponents(reg Registry) ([]Component, error) {
	var out []Component
	for _, typ := range reg.outputTypes(false) {
		spec := reg.Outputs[typ]
		ct, err := configType("output", typ, spec.NewConfig)
		if err != nil {
			return nil, err
		}
		paths := []string{"streams[].output." + typ}
		if spec.InSinks {
			paths = append(paths, "sinks[]."+typ)
		}
		out = append(out, Component{Kind: "output", Name: typ, Doc: spec.Doc, Example: spec.Example, Config: ct, Paths: paths})
	}
	for _, typ := range slices.Sorted(maps.Keys(reg.Processors)) {
		spec := reg.Processors[typ]
		ct, err := configType("processor", typ, spec.NewConfig)
		if err != nil {
			return nil, err
		}
		out = append(out, Component{Kind: "processor", Name: typ, Doc: spec.Doc, Example: spec.Example, Config: ct,
			Paths: []string{"streams[].processors[]." + typ}})
	}
	return out, nil
}

type indexEntry struct {
	file, kind, name, doc string
}

func indexPage(entries []indexEntry) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n# Components\n\n", GeneratedNotice)
	b.WriteString("The inputs, outputs and processors a stream is made of, with every setting, its type, default and meaning. " +
		"These pages, the loader and the JSON Schema for editors ([schemas/pipeline.schema.json](../../schemas/pipeline.schema.json), " +
		"also printed by `eventops-engine schema`) are generated from the same specs, so they always agree.\n\n")
	b.WriteString("| Component | Kind | What it does |\n|---|---|---|\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "| [`%s`](%s) | %s | %s |\n", e.name, e.file, e.kind, tableText(firstSentence(e.doc)))
	}
	return []byte(b.String())
}

// componentPage renders one component: its description, example and settings tables.
func componentPage(c Component) ([]byte, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n# `%s` %s\n\n", GeneratedNotice, c.Name, c.Kind)
	if c.Doc != "" {
		fmt.Fprintf(&b, "%s\n\n", markdownText(c.Doc))
	}
	if len(c.Paths) > 0 {
		quoted := make([]string, len(c.Paths))
		for i, p := range c.Paths {
			quoted[i] = "`" + p + "`"
		}
		fmt.Fprintf(&b, "Written at %s in a pipeline file.\n\n", strings.Join(quoted, " and "))
	}
	if c.Example != "" {
		fmt.Fprintf(&b, "## Example\n\n```yaml\n%s\n```\n\n", strings.TrimRight(c.Example, "\n"))
	}
	b.WriteString("## Settings\n\n")
	t := c.Config
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return nil, fmt.Errorf("no config type")
	}
	w := &pageWriter{b: &b, used: map[reflect.Type]bool{}}
	if t.Kind() != reflect.Struct || isSpecialType(t) {
		fmt.Fprintf(&b, "The value of `%s` is itself its configuration: a %s.\n", c.Name, w.typeWords(t, "", nil, false))
	} else {
		var fields []structField
		for _, f := range structFields(t) {
			if len(c.Settings) == 0 || slices.Contains(c.Settings, f.name) {
				fields = append(fields, f)
			}
		}
		for _, want := range c.Settings {
			if !slices.ContainsFunc(fields, func(f structField) bool { return f.name == want }) {
				return nil, fmt.Errorf("setting %q is not a field of %s", want, t)
			}
		}
		w.settingsTables(t, fields, "")
	}
	w.typeNotes()
	return []byte(b.String()), nil
}

// pageWriter writes the settings of one page and remembers which special types they use,
// to explain those at the end.
type pageWriter struct {
	b    *strings.Builder
	used map[reflect.Type]bool
	// open maps each struct type whose table is being written to its key: a type that
	// holds itself (a route's routes) refers back to it instead of nesting for ever.
	open map[reflect.Type]string
}

// settingsTables writes the table of fields of struct t, then one sub-table per field that
// holds a struct (or a list or mapping of them), titled by its key.
func (w *pageWriter) settingsTables(t reflect.Type, fields []structField, prefix string) {
	type nested struct {
		prefix string
		t      reflect.Type
	}
	var subs []nested
	w.b.WriteString("| Key | Type | Default | Required | Description |\n|---|---|---|---|---|\n")
	for _, f := range fields {
		ft := t.FieldByIndex(f.index).Type
		key := prefix + f.name
		subPrefix := key + itemSuffix(ft)
		var sub reflect.Type
		words := w.typeWords(ft, strings.TrimSuffix(subPrefix, "."), &sub, false)
		if sub != nil {
			subs = append(subs, nested{subPrefix, sub})
		}
		switch {
		case len(f.enum) > 0 && ft.Kind() == reflect.Slice:
			words = "list of " + codeList(f.enum)
		case len(f.enum) > 0:
			words = "one of " + codeList(f.enum)
		case f.ref != "" && ft.Kind() == reflect.String:
			words = referenceNouns[f.ref] + " name"
		}
		def := ""
		if f.hasDef {
			def = "`" + f.def + "`"
		}
		req := ""
		if f.required {
			req = "yes"
		}
		fmt.Fprintf(w.b, "| `%s` | %s | %s | %s | %s |\n", key, words, def, req, tableText(fieldDescription(f)))
	}
	if w.open == nil {
		w.open = map[reflect.Type]string{}
	}
	w.open[t] = strings.TrimSuffix(prefix, ".")
	defer delete(w.open, t)
	for _, s := range subs {
		key := strings.TrimSuffix(s.prefix, ".")
		fmt.Fprintf(w.b, "\n### `%s`\n\n", key)
		if outer, ok := w.open[s.t]; ok {
			fmt.Fprintf(w.b, "The same settings as `%s`, nested.\n", outer)
			continue
		}
		w.settingsTables(s.t, structFields(s.t), s.prefix)
	}
}

// itemSuffix is what follows a key to name the settings inside its value: rules[].name
// for a list, labels.<name>.x for a mapping, tls.cert for an object.
func itemSuffix(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if isSpecialType(t) {
		return "."
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "[]" + itemSuffix(t.Elem())
	case reflect.Map:
		return ".<name>" + itemSuffix(t.Elem())
	}
	return "."
}

// typeNotes explains the special types the page used, in a fixed order.
func (w *pageWriter) typeNotes() {
	notes := []struct {
		t    reflect.Type
		word string
	}{{durationType, "duration"}, {sizeType, "size"}, {exprType, "expression"}, {fieldsType, "mapping of names to expressions"}}
	first := true
	for _, n := range notes {
		if !w.used[n.t] {
			continue
		}
		if first {
			w.b.WriteString("\n## Types\n\n")
			first = false
		}
		fmt.Fprintf(w.b, "- **%s**: %s\n", n.word, markdownText(specialTypeDocs[n.t]))
	}
	w.b.WriteString("\nAny value may be written as `${VAR}` or `${VAR:-default}`, replaced from the environment before the file is read.\n")
}

// isSpecialType reports the types a YAML scalar or mapping decodes into as a whole.
func isSpecialType(t reflect.Type) bool {
	_, ok := specialTypeDocs[t]
	return ok
}

// typeWords names a setting's type the way a user reads it ("list of expressions"). When
// the type holds a struct with settings of its own, *sub is set to it and the words link to
// its sub-table, titled key.
func (w *pageWriter) typeWords(t reflect.Type, key string, sub *reflect.Type, plural bool) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	noun := func(one, many string) string {
		if plural {
			return many
		}
		return one
	}
	if isSpecialType(t) {
		w.used[t] = true
	}
	switch t {
	case durationType:
		return noun("duration", "durations")
	case sizeType:
		return noun("size", "sizes")
	case exprType:
		return noun("expression", "expressions")
	case fieldsType:
		return noun("mapping of names to expressions", "mappings of names to expressions")
	case processorsType:
		return "list of processors"
	}
	switch t.Kind() {
	case reflect.String:
		return noun("string", "strings")
	case reflect.Bool:
		return noun("boolean", "booleans")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return noun("integer", "integers")
	case reflect.Float32, reflect.Float64:
		return noun("number", "numbers")
	case reflect.Slice, reflect.Array:
		return "list of " + w.typeWords(t.Elem(), key, sub, true)
	case reflect.Map:
		return noun("mapping", "mappings") + " of names to " + w.typeWords(t.Elem(), key, sub, true)
	case reflect.Struct:
		if sub != nil {
			*sub = t
		}
		return fmt.Sprintf("%s, see [`%s`](#%s)", noun("object", "objects"), key, headingAnchor(key))
	}
	return noun("any value", "any values")
}

// headingAnchor is the anchor GitHub gives the heading "`key`".
func headingAnchor(key string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(key) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

func codeList(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = "`" + v + "`"
	}
	return strings.Join(quoted, ", ")
}

// firstSentence is the text up to the first full stop that ends a sentence.
func firstSentence(s string) string {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '.' && s[i+1] == ' ' && s[i+2] >= 'A' && s[i+2] <= 'Z' {
			return s[:i+1]
		}
	}
	return s
}

// markdownText escapes what Markdown would take for HTML outside code spans: doc strings
// say things like eventops.<stream name>.
func markdownText(s string) string {
	var b strings.Builder
	inCode := false
	for _, r := range s {
		switch {
		case r == '`':
			inCode = !inCode
			b.WriteRune(r)
		case r == '<' && !inCode:
			b.WriteString("&lt;")
		case r == '>' && !inCode:
			b.WriteString("&gt;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// tableText is markdownText for a table cell, where a | would end the cell.
func tableText(s string) string {
	return strings.ReplaceAll(markdownText(s), "|", `\|`)
}
