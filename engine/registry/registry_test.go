package registry

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

const (
	v1 = `{"type": "record", "name": "Reading", "namespace": "ops", "fields": [{"name": "host", "type": "string"}, {"name": "value", "type": "double"}]}`
	// v2 adds a field with a default: readers of v2 read v1 data (BACKWARD).
	v2 = `{"type": "record", "name": "Reading", "namespace": "ops", "fields": [{"name": "host", "type": "string"}, {"name": "value", "type": "double"}, {"name": "unit", "type": "string", "default": ""}]}`
	// v3 adds a field without a default: v3 cannot read v2 data.
	v3 = `{"type": "record", "name": "Reading", "namespace": "ops", "fields": [{"name": "host", "type": "string"}, {"name": "value", "type": "double"}, {"name": "unit", "type": "string", "default": ""}, {"name": "site", "type": "string"}]}`
)

// client is franz-go's Schema Registry client talking to a registry kept in dir.
func client(t *testing.T, dir string) *sr.Client {
	t.Helper()
	store, err := Open(filepath.Join(dir, "registry.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewServer(store, slog.New(slog.DiscardHandler)).Handler())
	t.Cleanup(srv.Close)
	cl, err := sr.NewClient(sr.URLs(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// A real client registers, finds by id, by version and by text; the same schema registered
// again keeps its id and version; everything is still there after a restart.
func TestRegisterFindAndSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	cl := client(t, dir)
	ctx := context.Background()
	s1, err := cl.CreateSchema(ctx, "readings-value", sr.Schema{Schema: v1})
	if err != nil || s1.ID != 1 || s1.Version != 1 {
		t.Fatalf("first registration: %+v, %v", s1, err)
	}
	again, err := cl.CreateSchema(ctx, "readings-value", sr.Schema{Schema: strings.ReplaceAll(v1, " ", "")})
	if err != nil || again.ID != 1 || again.Version != 1 {
		t.Errorf("the same schema (other whitespace) registered again: %+v, %v; want id 1, version 1", again, err)
	}
	other, err := cl.CreateSchema(ctx, "other-value", sr.Schema{Schema: v1})
	if err != nil || other.ID != 1 {
		t.Errorf("the same schema under another subject: %+v, %v; want the same id 1", other, err)
	}
	s2, err := cl.CreateSchema(ctx, "readings-value", sr.Schema{Schema: v2})
	if err != nil || s2.ID != 2 || s2.Version != 2 {
		t.Fatalf("v2: %+v, %v", s2, err)
	}
	cl = client(t, dir) // a restart: a new store from the same file
	byID, err := cl.SchemaByID(ctx, 2)
	if err != nil || byID.Schema != v2 || byID.Type != sr.TypeAvro {
		t.Errorf("schema 2 after a restart: %+v, %v", byID, err)
	}
	latest, err := cl.SchemaByVersion(ctx, "readings-value", -1)
	if err != nil || latest.Version != 2 || latest.ID != 2 {
		t.Errorf("latest: %+v, %v", latest, err)
	}
	found, err := cl.LookupSchema(ctx, "readings-value", sr.Schema{Schema: v1})
	if err != nil || found.Version != 1 {
		t.Errorf("lookup of v1: %+v, %v", found, err)
	}
	subjects, _ := cl.Subjects(ctx)
	if strings.Join(subjects, ",") != "other-value,readings-value" {
		t.Errorf("subjects %v", subjects)
	}
}

// Under BACKWARD (the default) a field added without a default is refused with 409, saying
// why; the compatibility endpoint says the same; NONE lets it in.
func TestAvroCompatibilityIsEnforced(t *testing.T) {
	cl := client(t, t.TempDir())
	ctx := context.Background()
	for _, s := range []string{v1, v2} {
		if _, err := cl.CreateSchema(ctx, "r-value", sr.Schema{Schema: s}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := cl.CreateSchema(ctx, "r-value", sr.Schema{Schema: v3})
	var re *sr.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 409 || !strings.Contains(re.Message, "cannot read data written with the old one") {
		t.Fatalf("v3 under BACKWARD: %v, want 409 saying the new schema cannot read the old data", err)
	}
	res, err := cl.CheckCompatibility(ctx, "r-value", -1, sr.Schema{Schema: v3})
	if err != nil || res.Is {
		t.Errorf("check of v3: %+v, %v; want not compatible", res, err)
	}
	if r := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatForward}, "r-value"); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	if _, err := cl.CreateSchema(ctx, "r-value", sr.Schema{Schema: v3}); err != nil {
		t.Errorf("v3 under FORWARD (v2 reads v3 data, ignoring site): %v", err)
	}
	if r := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, "r-value"); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	if _, err := cl.CreateSchema(ctx, "r-value", sr.Schema{Schema: `{"type": "string"}`}); err != nil {
		t.Errorf("anything under NONE: %v", err)
	}
}

// What is not a schema, or asks for what is not there, gets Confluent's error codes.
func TestErrorsAreConfluents(t *testing.T) {
	cl := client(t, t.TempDir())
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		call   func() error
		status int
		code   int
	}{
		{"an invalid Avro schema", func() error {
			_, err := cl.CreateSchema(ctx, "x", sr.Schema{Schema: `{"type": "record"}`})
			return err
		}, 422, 42201},
		{"an invalid JSON Schema", func() error {
			_, err := cl.CreateSchema(ctx, "x", sr.Schema{Schema: `{`, Type: sr.TypeJSON})
			return err
		}, 422, 42201},
		{"a subject not there", func() error { _, err := cl.SchemaByVersion(ctx, "nope", -1); return err }, 404, 40401},
		{"an id not there", func() error { _, err := cl.SchemaByID(ctx, 99); return err }, 404, 40403},
	} {
		var re *sr.ResponseError
		if err := tc.call(); !errors.As(err, &re) || re.StatusCode != tc.status || re.ErrorCode != tc.code {
			t.Errorf("%s: %v, want %d with error_code %d", tc.name, err, tc.status, tc.code)
		}
	}
}

// Protobuf: a field added is compatible; a field whose type changes, or a message removed,
// is refused with 409 saying which field or message.
func TestProtobufCompatibilityIsEnforced(t *testing.T) {
	cl := client(t, t.TempDir())
	ctx := context.Background()
	const v1 = "syntax = \"proto3\";\npackage ops;\nmessage Reading { string host = 1; double value = 2; }\nmessage Unit { string name = 1; }\n"
	const v2 = "syntax = \"proto3\";\npackage ops;\nmessage Reading { string host = 1; double value = 2; string site = 3; }\nmessage Unit { string name = 1; }\n"
	for _, s := range []string{v1, v2} {
		if _, err := cl.CreateSchema(ctx, "r-value", sr.Schema{Schema: s, Type: sr.TypeProtobuf}); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
	}
	for name, tc := range map[string]struct{ schema, says string }{
		"a type change":     {strings.Replace(v2, "double value = 2", "int32 value = 2", 1), "field 2 (value) of ops.Reading: its type changes from double to int32"},
		"a message removed": {strings.Replace(v2, "message Unit { string name = 1; }\n", "", 1), "message ops.Unit is removed"},
		"repeated":          {strings.Replace(v2, "string site = 3", "repeated string site = 3", 1), "its cardinality changes (singular to repeated)"},
	} {
		_, err := cl.CreateSchema(ctx, "r-value", sr.Schema{Schema: tc.schema, Type: sr.TypeProtobuf})
		var re *sr.ResponseError
		if !errors.As(err, &re) || re.StatusCode != 409 || !strings.Contains(re.Message, tc.says) {
			t.Errorf("%s: %v, want 409 saying %q", name, err, tc.says)
		}
	}
	// int32 → int64 share the varint encoding: compatible.
	if _, err := cl.CreateSchema(ctx, "n-value", sr.Schema{Schema: "syntax = \"proto3\";\nmessage N { int32 n = 1; }\n", Type: sr.TypeProtobuf}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateSchema(ctx, "n-value", sr.Schema{Schema: "syntax = \"proto3\";\nmessage N { int64 n = 1; }\n", Type: sr.TypeProtobuf}); err != nil {
		t.Errorf("int32 to int64: %v", err)
	}
}

// JSON Schema: a new optional property on a closed schema is compatible; a property made
// required, a type narrowed, an enum value removed are refused with 409 saying where.
func TestJSONSchemaCompatibilityIsEnforced(t *testing.T) {
	cl := client(t, t.TempDir())
	ctx := context.Background()
	const v1 = `{"type": "object", "properties": {"host": {"type": "string"}, "value": {"type": "number"}, "level": {"enum": ["warn", "crit"]}}, "required": ["host"], "additionalProperties": false}`
	const v2 = `{"type": "object", "properties": {"host": {"type": "string"}, "value": {"type": "number"}, "level": {"enum": ["warn", "crit", "info"]}, "site": {"type": "string"}}, "required": ["host"], "additionalProperties": false}`
	for _, s := range []string{v1, v2} {
		if _, err := cl.CreateSchema(ctx, "j-value", sr.Schema{Schema: s, Type: sr.TypeJSON}); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	for name, tc := range map[string]struct{ schema, says string }{
		"made required":  {strings.Replace(v2, `"required": ["host"]`, `"required": ["host", "site"]`, 1), `property "site" becomes required`},
		"type narrowed":  {strings.Replace(v2, `"value": {"type": "number"}`, `"value": {"type": "integer"}`, 1), "property value: type number is no longer accepted"},
		"enum narrowed":  {strings.Replace(v2, `"warn", "crit", "info"`, `"crit", "info"`, 1), "property level: enum value warn is removed"},
		"bound tightens": {strings.Replace(v2, `"host": {"type": "string"}`, `"host": {"type": "string", "maxLength": 8}`, 1), "property host: maxLength tightens to 8"},
	} {
		_, err := cl.CreateSchema(ctx, "j-value", sr.Schema{Schema: tc.schema, Type: sr.TypeJSON})
		var re *sr.ResponseError
		if !errors.As(err, &re) || re.StatusCode != 409 || !strings.Contains(re.Message, tc.says) {
			t.Errorf("%s: %v, want 409 saying %q", name, err, tc.says)
		}
	}
}
