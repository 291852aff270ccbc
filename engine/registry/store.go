// Package registry is the schema registry the engine serves next to its embedded broker: the
// Confluent Schema Registry's REST API (subjects, versions, schemas by id, compatibility
// levels and checks), so that any Confluent-compatible serializer — Java, Go, kafkajs,
// confluent-kafka-python — registers and fetches schemas from the engine as it would from
// Confluent's or Redpanda's. Against an external broker the engine uses that cluster's
// registry instead (engine/confluent).
//
// Schemas are kept in one JSON file in the broker's data directory, replaced atomically on
// every change, so they survive restarts as the broker's records do. Compatibility is checked
// for each type (BACKWARD, FORWARD, FULL and their _TRANSITIVE forms, NONE): Avro by
// hamba/avro's schema resolution, Protobuf by wire compatibility (engine/protofile), JSON
// Schema on the keywords event schemas use (jsoncompat.go).
package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/hamba/avro/v2"

	"github.com/eventops/eventops-engine/engine/atomicfile"
	"github.com/eventops/eventops-engine/engine/protofile"
)

// Schema types, as the API names them ("" is AVRO).
const (
	Avro     = "AVRO"
	JSON     = "JSON"
	Protobuf = "PROTOBUF"
)

// Reference is a schema's reference to another subject's version.
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// schema is one registered schema text, shared by every subject version that registered it.
type schema struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Text       string      `json:"text"`
	References []Reference `json:"references,omitempty"`
}

// version is one version of a subject.
type version struct {
	Version int  `json:"version"`
	ID      int  `json:"id"`
	Deleted bool `json:"deleted,omitempty"`
}

type subject struct {
	Versions      []version `json:"versions"`
	Compatibility string    `json:"compatibility,omitempty"`
}

// state is everything the registry keeps: what its file holds.
type state struct {
	Schemas       []schema            `json:"schemas"` // by id - 1
	Subjects      map[string]*subject `json:"subjects"`
	Compatibility string              `json:"compatibility"`
}

// Store holds the registry's schemas, in memory and in its file.
type Store struct {
	mu   sync.Mutex
	path string
	st   state
}

// Open loads the store kept at path ("" keeps nothing on disk); a missing file is an empty
// registry with BACKWARD compatibility, Confluent's default.
func Open(path string) (*Store, error) {
	s := &Store{path: path, st: state{Subjects: map[string]*subject{}, Compatibility: "BACKWARD"}}
	if path == "" {
		return s, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("schema registry: %w", err)
	}
	if err := json.Unmarshal(data, &s.st); err != nil {
		return nil, fmt.Errorf("schema registry: %s is not the registry's file: %w", path, err)
	}
	if s.st.Subjects == nil {
		s.st.Subjects = map[string]*subject{}
	}
	return s, nil
}

// save writes the state to the store's file; the caller holds mu.
func (s *Store) save() error {
	if s.path == "" {
		return nil
	}
	data, err := json.Marshal(s.st)
	if err != nil {
		return err
	}
	return atomicfile.Write(s.path, data)
}

// Error is an error the API answers with: its HTTP status and Confluent error code.
type Error struct {
	Status, Code int
	Message      string
}

func (e *Error) Error() string { return e.Message }

func notFound(code int, format string, a ...any) *Error {
	return &Error{Status: 404, Code: code, Message: fmt.Sprintf(format, a...)}
}

// Confluent's error codes.
const (
	codeSubjectNotFound  = 40401
	codeVersionNotFound  = 40402
	codeSchemaNotFound   = 40403
	codeInvalidSchema    = 42201
	codeInvalidVersion   = 42202
	codeInvalidCompat    = 42203
	codeIncompatible     = 409
	codeReferenceMissing = 42201
)

// normalType is t as the API names it ("" is AVRO), or an error for an unknown type.
func normalType(t string) (string, error) {
	switch strings.ToUpper(t) {
	case "", Avro:
		return Avro, nil
	case JSON:
		return JSON, nil
	case Protobuf:
		return Protobuf, nil
	}
	return "", &Error{Status: 422, Code: codeInvalidSchema, Message: fmt.Sprintf("schema type %q: one of AVRO, JSON, PROTOBUF", t)}
}

// Register adds text as the next version of subj, unless the subject already has it (then
// its existing id); a schema already registered under another subject keeps its id.
func (s *Store) Register(subj, typ, text string, refs []Reference) (int, error) {
	typ, err := normalType(typ)
	if err != nil {
		return 0, err
	}
	canon, err := canonical(typ, text)
	if err != nil {
		return 0, &Error{Status: 422, Code: codeInvalidSchema, Message: "invalid schema: " + err.Error()}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkReferences(refs); err != nil {
		return 0, err
	}
	sub := s.st.Subjects[subj]
	if id, ok := s.existing(sub, typ, canon); ok {
		return id, nil
	}
	if err := s.compatible(subj, sub, typ, text); err != nil {
		return 0, err
	}
	id := s.idOf(typ, canon, text, refs)
	if sub == nil {
		sub = &subject{}
		s.st.Subjects[subj] = sub
	}
	next := 1
	if n := len(sub.Versions); n > 0 {
		next = sub.Versions[n-1].Version + 1
	}
	sub.Versions = append(sub.Versions, version{Version: next, ID: id})
	return id, s.save()
}

// existing is the id of the live version of sub with the same schema, if any.
func (s *Store) existing(sub *subject, typ, canon string) (int, bool) {
	if sub == nil {
		return 0, false
	}
	for _, v := range sub.Versions {
		sc := s.st.Schemas[v.ID-1]
		if !v.Deleted && sc.Type == typ && mustCanonical(sc) == canon {
			return v.ID, true
		}
	}
	return 0, false
}

// idOf is the id of the schema, registering it if no subject has yet.
func (s *Store) idOf(typ, canon, text string, refs []Reference) int {
	for _, sc := range s.st.Schemas {
		if sc.Type == typ && mustCanonical(sc) == canon && slices.Equal(sc.References, refs) {
			return sc.ID
		}
	}
	id := len(s.st.Schemas) + 1
	s.st.Schemas = append(s.st.Schemas, schema{ID: id, Type: typ, Text: text, References: refs})
	return id
}

func (s *Store) checkReferences(refs []Reference) error {
	for _, r := range refs {
		if _, err := s.versionOf(r.Subject, r.Version); err != nil {
			return &Error{Status: 422, Code: codeReferenceMissing, Message: fmt.Sprintf("reference %q: subject %q version %d is not registered", r.Name, r.Subject, r.Version)}
		}
	}
	return nil
}

// canonical is the form two equal schemas share: Avro's parsing canonical form, JSON
// compacted, Protobuf with its whitespace trimmed.
func canonical(typ, text string) (string, error) {
	switch typ {
	case Avro:
		sc, err := parseAvro(text)
		if err != nil {
			return "", err
		}
		return sc.String(), nil
	case JSON:
		var v any
		if err := json.Unmarshal([]byte(text), &v); err != nil {
			return "", fmt.Errorf("a JSON Schema must be JSON: %w", err)
		}
		b, _ := json.Marshal(v)
		return string(b), nil
	}
	if _, err := protofile.Compile(text); err != nil {
		return "", err
	}
	return strings.TrimSpace(text), nil
}

func mustCanonical(sc schema) string {
	c, err := canonical(sc.Type, sc.Text)
	if err != nil {
		return sc.Text
	}
	return c
}

// parseAvro parses an Avro schema on its own: names are not shared with other schemas (two
// versions of one record would clash in a shared cache).
func parseAvro(text string) (avro.Schema, error) {
	return avro.ParseWithCache(text, "", &avro.SchemaCache{})
}

// Found is a subject's version.
type Found struct {
	Subject    string      `json:"subject"`
	ID         int         `json:"id"`
	Version    int         `json:"version"`
	Type       string      `json:"schemaType,omitempty"`
	Schema     string      `json:"schema"`
	References []Reference `json:"references,omitempty"`
}

// Version is version v of subj (-1: the latest).
func (s *Store) Version(subj string, v int) (Found, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ver, err := s.versionOf(subj, v)
	if err != nil {
		return Found{}, err
	}
	return s.found(subj, ver), nil
}

func (s *Store) found(subj string, ver version) Found {
	sc := s.st.Schemas[ver.ID-1]
	f := Found{Subject: subj, ID: sc.ID, Version: ver.Version, Schema: sc.Text, References: sc.References}
	if sc.Type != Avro {
		f.Type = sc.Type
	}
	return f
}

// versionOf finds a live version of subj; the caller holds mu.
func (s *Store) versionOf(subj string, v int) (version, error) {
	live := s.live(subj)
	if live == nil {
		return version{}, notFound(codeSubjectNotFound, "Subject '%s' not found.", subj)
	}
	if v == -1 {
		return live[len(live)-1], nil
	}
	for _, ver := range live {
		if ver.Version == v {
			return ver, nil
		}
	}
	return version{}, notFound(codeVersionNotFound, "Version %d not found.", v)
}

// live are subj's versions not deleted, nil if there are none.
func (s *Store) live(subj string) []version {
	sub := s.st.Subjects[subj]
	if sub == nil {
		return nil
	}
	var out []version
	for _, v := range sub.Versions {
		if !v.Deleted {
			out = append(out, v)
		}
	}
	return out
}

// ByID is the schema with id.
func (s *Store) ByID(id int) (Found, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id < 1 || id > len(s.st.Schemas) {
		return Found{}, notFound(codeSchemaNotFound, "Schema %d not found", id)
	}
	sc := s.st.Schemas[id-1]
	f := Found{ID: id, Schema: sc.Text, References: sc.References}
	if sc.Type != Avro {
		f.Type = sc.Type
	}
	return f, nil
}

// Subjects are the subjects with a live version, sorted.
func (s *Store) Subjects() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []string{}
	for name := range s.st.Subjects {
		if s.live(name) != nil {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Versions are subj's live version numbers.
func (s *Store) Versions(subj string) ([]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := s.live(subj)
	if live == nil {
		return nil, notFound(codeSubjectNotFound, "Subject '%s' not found.", subj)
	}
	out := make([]int, len(live))
	for i, v := range live {
		out[i] = v.Version
	}
	return out, nil
}

// Lookup is the version of subj that has this schema.
func (s *Store) Lookup(subj, typ, text string) (Found, error) {
	typ, err := normalType(typ)
	if err != nil {
		return Found{}, err
	}
	canon, err := canonical(typ, text)
	if err != nil {
		return Found{}, &Error{Status: 422, Code: codeInvalidSchema, Message: "invalid schema: " + err.Error()}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live(subj) == nil {
		return Found{}, notFound(codeSubjectNotFound, "Subject '%s' not found.", subj)
	}
	for _, v := range s.live(subj) {
		if sc := s.st.Schemas[v.ID-1]; sc.Type == typ && mustCanonical(sc) == canon {
			return s.found(subj, v), nil
		}
	}
	return Found{}, notFound(codeSchemaNotFound, "Schema not found")
}

// Delete deletes version v of subj (-1: the latest; 0: every version) and says which.
func (s *Store) Delete(subj string, v int) ([]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.st.Subjects[subj]
	if s.live(subj) == nil {
		return nil, notFound(codeSubjectNotFound, "Subject '%s' not found.", subj)
	}
	if v == -1 {
		v = s.live(subj)[len(s.live(subj))-1].Version
	}
	var deleted []int
	for i := range sub.Versions {
		if !sub.Versions[i].Deleted && (v == 0 || sub.Versions[i].Version == v) {
			sub.Versions[i].Deleted = true
			deleted = append(deleted, sub.Versions[i].Version)
		}
	}
	if len(deleted) == 0 {
		return nil, notFound(codeVersionNotFound, "Version %d not found.", v)
	}
	return deleted, s.save()
}

// SubjectVersion is a subject's version.
type SubjectVersion struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// Usages are the live subject versions that registered schema id, sorted.
func (s *Store) Usages(id int) ([]SubjectVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id < 1 || id > len(s.st.Schemas) {
		return nil, notFound(codeSchemaNotFound, "Schema %d not found", id)
	}
	out := []SubjectVersion{}
	for name, sub := range s.st.Subjects {
		for _, v := range sub.Versions {
			if v.ID == id && !v.Deleted {
				out = append(out, SubjectVersion{name, v.Version})
			}
		}
	}
	slices.SortFunc(out, func(a, b SubjectVersion) int {
		if c := strings.Compare(a.Subject, b.Subject); c != 0 {
			return c
		}
		return a.Version - b.Version
	})
	return out, nil
}
