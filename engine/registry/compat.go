package registry

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/hamba/avro/v2"

	"github.com/eventops/eventops-engine/engine/protofile"
)

// Levels are the compatibility levels, as the API names them.
var Levels = []string{"NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"}

// Compatibility is subj's level ("" for the global one), and whether it is the subject's own.
func (s *Store) Compatibility(subj string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sub := s.st.Subjects[subj]; subj != "" && sub != nil && sub.Compatibility != "" {
		return sub.Compatibility, true
	}
	return s.st.Compatibility, false
}

// SetCompatibility sets subj's level ("" the global one); level "" resets a subject's to the
// global one.
func (s *Store) SetCompatibility(subj, level string) error {
	level = strings.ToUpper(level)
	if level != "" && !slices.Contains(Levels, level) || level == "" && subj == "" {
		return &Error{Status: 422, Code: codeInvalidCompat, Message: fmt.Sprintf("Invalid compatibility level %q: one of %s", level, strings.Join(Levels, ", "))}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if subj == "" {
		s.st.Compatibility = level
		return s.save()
	}
	sub := s.st.Subjects[subj]
	if sub == nil {
		sub = &subject{}
		s.st.Subjects[subj] = sub
	}
	sub.Compatibility = level
	return s.save()
}

// compatible says why text may not become subj's next version under the subject's level;
// the caller holds mu.
func (s *Store) compatible(subj string, sub *subject, typ, text string) error {
	level := s.st.Compatibility
	if sub != nil && sub.Compatibility != "" {
		level = sub.Compatibility
	}
	live := s.live(subj)
	if level == "NONE" || len(live) == 0 {
		return nil
	}
	if !strings.HasSuffix(level, "_TRANSITIVE") {
		live = live[len(live)-1:]
	}
	for _, v := range live {
		if problems := s.check(level, s.st.Schemas[v.ID-1], typ, text); len(problems) > 0 {
			return &Error{Status: 409, Code: codeIncompatible, Message: fmt.Sprintf("Schema being registered is incompatible with an earlier schema for subject %q (version %d, %s): %s", subj, v.Version, level, strings.Join(problems, "; "))}
		}
	}
	return nil
}

// check lists why text (the new schema) is not compatible with old under level.
func (s *Store) check(level string, old schema, typ, text string) []string {
	if old.Type != typ {
		return []string{fmt.Sprintf("the schema type changes from %s to %s", old.Type, typ)}
	}
	switch typ {
	case Protobuf:
		return protoBreaks(level, old.Text, text)
	case JSON:
		return jsonSchemaBreaks(level, old.Text, text)
	}
	oldSc, err1 := parseAvro(old.Text)
	newSc, err2 := parseAvro(text)
	if err1 != nil || err2 != nil {
		return []string{fmt.Sprintf("cannot parse: %v %v", err1, err2)}
	}
	var problems []string
	base := strings.TrimSuffix(level, "_TRANSITIVE")
	if base == "BACKWARD" || base == "FULL" {
		if err := avro.NewSchemaCompatibility().Compatible(newSc, oldSc); err != nil {
			problems = append(problems, "the new schema cannot read data written with the old one: "+err.Error())
		}
	}
	if base == "FORWARD" || base == "FULL" {
		if err := avro.NewSchemaCompatibility().Compatible(oldSc, newSc); err != nil {
			problems = append(problems, "the old schema cannot read data written with the new one: "+err.Error())
		}
	}
	return problems
}

// Check says whether text could be registered as a version of subj next to version v (-1:
// the latest), under the subject's level, and if not why.
func (s *Store) Check(subj string, v int, typ, text string) ([]string, error) {
	typ, err := normalType(typ)
	if err != nil {
		return nil, err
	}
	if _, err := canonical(typ, text); err != nil {
		return nil, &Error{Status: 422, Code: codeInvalidSchema, Message: "invalid schema: " + err.Error()}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ver, err := s.versionOf(subj, v)
	if err != nil {
		return nil, err
	}
	level := s.st.Compatibility
	if sub := s.st.Subjects[subj]; sub.Compatibility != "" {
		level = sub.Compatibility
	}
	if level == "NONE" {
		return nil, nil
	}
	return s.check(level, s.st.Schemas[ver.ID-1], typ, text), nil
}

// protoBreaks lists why a .proto (text) may not follow old under level.
func protoBreaks(level, old, text string) []string {
	prev, err1 := protofile.Compile(old)
	next, err2 := protofile.Compile(text)
	if err1 != nil || err2 != nil {
		return []string{fmt.Sprintf("cannot compile: %v %v", err1, err2)}
	}
	base := strings.TrimSuffix(level, "_TRANSITIVE")
	var problems []string
	if base == "BACKWARD" || base == "FULL" {
		problems = append(problems, protofile.Breaks(prev, next)...)
	}
	if base == "FORWARD" || base == "FULL" {
		for _, p := range protofile.Breaks(next, prev) {
			if !slices.Contains(problems, p) {
				problems = append(problems, p)
			}
		}
	}
	return problems
}

// jsonSchemaBreaks lists why a JSON Schema (text) may not follow old under level.
func jsonSchemaBreaks(level, old, text string) []string {
	var prev, next map[string]any
	if json.Unmarshal([]byte(old), &prev) != nil || json.Unmarshal([]byte(text), &next) != nil {
		return nil // a schema that is not an object (true, false) constrains nothing by keyword
	}
	base := strings.TrimSuffix(level, "_TRANSITIVE")
	var problems []string
	if base == "BACKWARD" || base == "FULL" {
		for _, p := range jsonBreaks(prev, next, "") {
			problems = append(problems, "the new schema refuses what the old one took: "+p)
		}
	}
	if base == "FORWARD" || base == "FULL" {
		for _, p := range jsonBreaks(next, prev, "") {
			problems = append(problems, "the old schema refuses what the new one takes: "+p)
		}
	}
	return problems
}
