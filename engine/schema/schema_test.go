package schema

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// compileString compiles an inline schema the way Compile compiles a file.
func compileString(t testing.TB, src string) *Validator {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	if err := c.AddResource("mem://schema.json", strings.NewReader(src)); err != nil {
		t.Fatalf("add schema: %v", err)
	}
	ref, err := c.Compile("mem://schema.json")
	if err != nil {
		t.Fatalf("compile schema %s: %v", src, err)
	}
	return New(ref)
}

func decode(t testing.TB, doc string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("decode %s: %v", doc, err)
	}
	return v
}

// assertAgrees checks Validate against the expectation and against the reference, and
// that a valid instance is accepted by the fast tree itself (not only by the fallback),
// since that is the point of the package.
func assertAgrees(t *testing.T, v *Validator, instance any, wantValid bool) {
	t.Helper()
	err := v.Validate(instance)
	refErr := v.Reference().Validate(toJSON(instance))
	if (err == nil) != wantValid {
		t.Fatalf("Validate(%#v) = %v, want valid=%v", instance, err, wantValid)
	}
	if (refErr == nil) != wantValid {
		t.Fatalf("reference on %#v = %v, want valid=%v (bad test case)", instance, refErr, wantValid)
	}
	if err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("Validate(%#v) error %T %v, want *jsonschema.ValidationError", instance, err, err)
		}
		if err.Error() != refErr.Error() {
			t.Fatalf("error text %q differs from the reference's %q", err, refErr)
		}
	}
	if v.fast != nil {
		got := v.fast.check(instance)
		if wantValid && got != valid {
			t.Fatalf("fast tree says %v for valid %#v: it falls back to the slow reference", got, instance)
		}
		if !wantValid && got == valid {
			t.Fatalf("fast tree accepts invalid %#v", instance)
		}
	}
}

func TestRepoSchemas(t *testing.T) {
	tests := []struct {
		schema string
		doc    string
		valid  bool
	}{
		{"raw-agent", `{"tenant_id":"acme","host":"host-a","metric":"cpu_load","value":92,"ts_event":"2025-10-16T09:00:00Z","unit":"percent","tags":{"env":"prod"}}`, true},
		{"raw-agent", `{"host":"h","metric":"m","value":1.5}`, true},
		{"raw-agent", `{"host":"h","metric":"m","value":1,"ts_event":1760605200}`, true},
		{"raw-agent", `{"host":"h","metric":"m","value":1,"ts_event":"2025-10-16T09:00:00.123+02:00"}`, true},
		{"raw-agent", `{"host":"h","metric":"m","value":1,"extra":{"any":[1,2]}}`, true},
		{"raw-agent", `{"host":"h","metric":"cpu load","value":1}`, false},                 // pattern
		{"raw-agent", `{"host":"h","metric":"9cpu","value":1}`, false},                     // pattern
		{"raw-agent", `{"host":"","metric":"m","value":1}`, false},                         // minLength
		{"raw-agent", `{"host":"h","metric":"m"}`, false},                                  // required
		{"raw-agent", `{"host":"h","metric":"m","value":"92"}`, false},                     // type
		{"raw-agent", `{"host":"h","metric":"m","value":1,"ts_event":"yesterday"}`, false}, // format in anyOf
		{"raw-agent", `{"host":"h","metric":"m","value":1,"ts_event":"2025-10-16 09:00:00Z"}`, false},
		{"raw-agent", `{"host":"h","metric":"m","value":1,"ts_event":true}`, false},
		{"raw-agent", `{"host":"h","metric":"m","value":1,"tags":{"env":3}}`, false}, // additionalProperties schema
		{"raw-agent", `[]`, false},
		{"envelope", `{"event_id":"e1","ts_event":"2025-10-16T09:00:00Z","ts_ingest":"2025-10-16T09:00:01Z","tenant_id":"acme","source":{"type":"host","source_id":"host-a"},"metric":"cpu_load","value":92,"schema_version":1,"tags":{"env":"prod"}}`, true},
		{"envelope", `{"event_id":"e1","ts_event":"2025-10-16T09:00:00Z","ts_ingest":"2025-10-16T09:00:01Z","tenant_id":"acme","source":{"type":"host","source_id":"host-a"},"metric":"cpu_load","value":92,"schema_version":1.5}`, false},
		{"envelope", `{"event_id":"e1","ts_event":"2025-10-16T09:00:00Z","ts_ingest":"2025-10-16T09:00:01Z","tenant_id":"acme","source":{"type":"host"},"metric":"cpu_load","value":92}`, false},
		{"envelope", `{"event_id":"e1","ts_event":"2025-02-30T09:00:00Z","ts_ingest":"2025-10-16T09:00:01Z","tenant_id":"acme","source":{"type":"host","source_id":"h"},"metric":"cpu_load","value":92}`, false},
	}
	validators := map[string]*Validator{}
	for _, name := range []string{"raw-agent", "envelope"} {
		v, err := Compile("../../schemas/" + name + ".v1.json")
		if err != nil {
			t.Fatal(err)
		}
		if ok, why := v.FastPath(); !ok {
			t.Fatalf("%s: no fast path: %s", name, why)
		}
		validators[name] = v
	}
	for _, tt := range tests {
		t.Run(tt.schema+"/"+tt.doc, func(t *testing.T) {
			assertAgrees(t, validators[tt.schema], decode(t, tt.doc), tt.valid)
		})
	}
}

func TestEnvelopeWithGoTypes(t *testing.T) {
	v, err := Compile("../../schemas/envelope.v1.json")
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2025, 10, 16, 9, 0, 0, 123, time.FixedZone("CEST", 2*3600))
	base := func() map[string]any {
		return map[string]any{
			"event_id": "e1", "ts_event": ts, "ts_ingest": ts.UTC(), "tenant_id": "acme",
			"source": map[string]any{"type": "host", "source_id": "h"},
			"metric": "cpu_load", "value": float32(92.5), "schema_version": int64(1),
			"tags": map[string]string{"env": "prod"}, "attributes": map[string]string{},
		}
	}
	tests := []struct {
		name   string
		change func(map[string]any)
		valid  bool
	}{
		{"time.Time, float32, int64, map[string]string", func(map[string]any) {}, true},
		{"int value", func(m map[string]any) { m["value"] = 7 }, true},
		{"uint8 version", func(m map[string]any) { m["schema_version"] = uint8(2) }, true},
		{"float32 version that is not whole", func(m map[string]any) { m["schema_version"] = float32(1.5) }, false},
		{"year 10000 cannot be marshalled", func(m map[string]any) { m["ts_event"] = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, false},
		{"nil tags map is null", func(m map[string]any) { m["tags"] = map[string]string(nil) }, false},
		{"[]string is not an object", func(m map[string]any) { m["tags"] = []string{"a"} }, false},
		{"NaN value", func(m map[string]any) { m["value"] = math.NaN() }, true}, // reference: type number only
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base()
			tt.change(m)
			err := v.Validate(m)
			if (err == nil) != tt.valid {
				t.Fatalf("Validate = %v, want valid=%v", err, tt.valid)
			}
		})
	}
}

func TestKeywords(t *testing.T) {
	tests := []struct {
		schema  string
		valid   []string
		invalid []string
	}{
		{`true`, []string{`1`, `null`}, nil},
		{`false`, nil, []string{`1`, `{}`}},
		{`{"type":"integer"}`, []string{`1`, `-0`, `1e300`, `1.0`}, []string{`1.5`, `"1"`, `null`}},
		{`{"type":["string","null"]}`, []string{`"a"`, `null`}, []string{`1`, `[]`, `{}`, `true`}},
		{`{"type":"boolean"}`, []string{`true`, `false`}, []string{`0`}},
		{`{"const":1}`, []string{`1`, `1.0`}, []string{`1.0000000000000002`, `"1"`, `true`}},
		{`{"const":0.1}`, []string{`0.1`}, []string{`0.10000000000000002`}},
		{`{"const":0.1000000000000000000001}`, nil, []string{`0.1`}},
		{`{"const":{"a":[1,"x",null]}}`, []string{`{"a":[1,"x",null]}`}, []string{`{"a":[1,"x"]}`, `{"a":[1,"x",false]}`, `{"a":[1,"x",null],"b":1}`}},
		{`{"enum":["a",2,null,[true]]}`, []string{`"a"`, `2`, `null`, `[true]`}, []string{`"b"`, `2.5`, `[false]`, `false`}},
		{`{"minLength":2,"maxLength":3}`, []string{`"ab"`, `"héé"`, `"日本語"`, `5`}, []string{`"a"`, `"abcd"`, `"日本語日"`}},
		{`{"pattern":"^a+$"}`, []string{`"aaa"`, `1`}, []string{`"ab"`, `""`}},
		{`{"pattern":"b"}`, []string{`"abc"`}, []string{`"ac"`}},
		{`{"minimum":1.5,"maximum":3}`, []string{`1.5`, `3`, `2`, `"x"`}, []string{`1.4999999999999998`, `3.0000000000000004`, `-5`}},
		{`{"exclusiveMinimum":0,"exclusiveMaximum":0.3}`, []string{`0.1`, `0.29999999999999993`, `5e-324`}, []string{`0`, `0.3`, `-0`}},
		{`{"minimum":0.1000000000000000000001}`, []string{`0.10000000000000002`}, []string{`0.1`}},
		{`{"maximum":0.0999999999999999999999}`, []string{`0.09999999999999999`}, []string{`0.1`}},
		{`{"minimum":-1e400}`, []string{`-1e308`}, nil},
		{`{"multipleOf":0.01}`, []string{`0.07`, `1.1`, `100`, `0`, `-3.33`, `1e300`}, []string{`0.001`, `0.075`, `1e-300`}},
		{`{"multipleOf":3}`, []string{`9`, `-3`, `3e20`, `0`}, []string{`10`, `1.5`, `1e20`}},
		{`{"multipleOf":1.5}`, []string{`4.5`, `3`}, []string{`4`, `2.25`}},
		{`{"format":"date-time"}`, []string{`"2025-10-16T09:00:00Z"`, `"2016-12-31T23:59:60Z"`, `"2025-10-16t09:00:00.5-01:30"`, `5`}, []string{`"2025-10-16T09:00:00"`, `"2025-13-01T00:00:00Z"`, `"2025-10-16T24:00:00Z"`, `"2025-10-16T12:59:60Z"`}},
		{`{"format":"ipv4"}`, []string{`"10.0.0.1"`, `1`}, []string{`"10.0.0.256"`}},
		{`{"format":"no-such-format"}`, []string{`"anything"`}, nil},
		{`{"required":["a","b"]}`, []string{`{"a":1,"b":2}`, `[]`}, []string{`{"a":1}`, `{}`}},
		{`{"required":["a","b"],"properties":{"a":{"type":"integer"},"c":{"type":"string"}}}`, // a declared, b not
			[]string{`{"a":1,"b":null}`, `{"a":1,"b":2,"c":"s"}`}, []string{`{"b":2}`, `{"a":1}`, `{"a":1.5,"b":2}`, `{"a":1,"b":2,"c":3}`}},
		{`{"minProperties":1,"maxProperties":2}`, []string{`{"a":1}`, `{"a":1,"b":2}`}, []string{`{}`, `{"a":1,"b":2,"c":3}`}},
		{`{"properties":{"a":{"type":"string"}},"additionalProperties":false}`, []string{`{}`, `{"a":"x"}`}, []string{`{"a":1}`, `{"b":1}`}},
		{`{"properties":{"a":true},"patternProperties":{"^x-":{"type":"integer"}},"additionalProperties":{"type":"string"}}`,
			[]string{`{"a":1,"x-b":2,"c":"s"}`}, []string{`{"x-b":2.5}`, `{"c":1}`}},
		{`{"patternProperties":{"^a":{"minimum":5},"b$":{"maximum":7}}}`, []string{`{"ab":6,"c":0}`}, []string{`{"ab":8}`, `{"ab":4}`}},
		{`{"items":{"type":"integer"},"minItems":1,"maxItems":3}`, []string{`[1]`, `[1,2,3]`}, []string{`[]`, `[1,2,3,4]`, `[1,"a"]`}},
		{`{"prefixItems":[{"type":"string"},{"type":"integer"}],"items":false}`, []string{`["a",1]`, `["a"]`, `[]`}, []string{`[1]`, `["a",1,2]`}},
		{`{"prefixItems":[{"type":"string"}]}`, []string{`["a",1,{}]`}, []string{`[1]`}},
		{`{"allOf":[{"minimum":1},{"maximum":2}]}`, []string{`1.5`}, []string{`0`, `3`}},
		{`{"anyOf":[{"type":"string"},{"minimum":10}]}`, []string{`"a"`, `11`}, []string{`9`}},
		{`{"oneOf":[{"type":"integer"},{"minimum":2}]}`, []string{`1`, `2.5`}, []string{`3`, `1.5`}},
		{`{"not":{"type":"string"}}`, []string{`1`, `null`}, []string{`"a"`}},
		{`{"not":{"not":{"multipleOf":2}}}`, []string{`4`}, []string{`3`}},
		{`{"$schema":"http://json-schema.org/draft-07/schema#","items":{"type":"string"}}`, []string{`["a","b"]`}, []string{`["a",1]`}},
	}
	for _, tt := range tests {
		v := compileString(t, tt.schema)
		if ok, why := v.FastPath(); !ok {
			t.Fatalf("%s: no fast path: %s", tt.schema, why)
		}
		for _, doc := range tt.valid {
			t.Run(tt.schema+"/valid/"+doc, func(t *testing.T) { assertAgrees(t, v, decode(t, doc), true) })
		}
		for _, doc := range tt.invalid {
			t.Run(tt.schema+"/invalid/"+doc, func(t *testing.T) { assertAgrees(t, v, decode(t, doc), false) })
		}
	}
}

func TestUnsupportedKeywordsUseReference(t *testing.T) {
	tests := []struct{ schema, keyword, valid, invalid string }{
		{`{"$defs":{"s":{"type":"string"}},"properties":{"a":{"$ref":"#/$defs/s"}}}`, "$ref", `{"a":"x"}`, `{"a":1}`},
		{`{"if":{"type":"string"},"then":{"minLength":2}}`, "if", `"ab"`, `"a"`},
		{`{"uniqueItems":true}`, "uniqueItems", `[1,2]`, `[1,1]`},
		{`{"contains":{"type":"string"}}`, "contains", `[1,"a"]`, `[1]`},
		{`{"propertyNames":{"maxLength":1}}`, "propertyNames", `{"a":1}`, `{"ab":1}`},
		{`{"dependentRequired":{"a":["b"]}}`, "dependentRequired", `{"a":1,"b":1}`, `{"a":1}`},
		{`{"unevaluatedProperties":false,"properties":{"a":true}}`, "unevaluatedProperties", `{"a":1}`, `{"b":1}`},
		{`{"properties":{"n":{"multipleOf":1e-30}}}`, "multipleOf", `{"n":1}`, `{"n":1e-31}`},
	}
	for _, tt := range tests {
		t.Run(tt.keyword, func(t *testing.T) {
			v := compileString(t, tt.schema)
			ok, why := v.FastPath()
			if ok || !strings.Contains(why, tt.keyword) {
				t.Fatalf("FastPath() = %v, %q; want no fast path because of %s", ok, why, tt.keyword)
			}
			assertAgrees(t, v, decode(t, tt.valid), true)
			assertAgrees(t, v, decode(t, tt.invalid), false)
		})
	}
}

func TestTimeValuesMatchLibraryDateTime(t *testing.T) {
	dateTime := jsonschema.Formats["date-time"]
	zones := []*time.Location{time.UTC, time.FixedZone("", -30), time.FixedZone("", 5*3600+45*60),
		time.FixedZone("", -(23*3600 + 59*60 + 59)), time.FixedZone("", 24*3600), time.FixedZone("", -100*3600)}
	years := []int{-1, 0, 1, 1970, 2016, 9999, 10000}
	for _, zone := range zones {
		for _, year := range years {
			for _, nanos := range []int{0, 1, 500000000, 999999999} {
				tm := time.Date(year, 12, 31, 23, 59, 59, nanos, time.UTC).In(zone)
				s, marshalable := timeJSON(tm)
				if marshalableTime(tm) != marshalable {
					t.Fatalf("%v: marshalableTime = %v, encoding/json marshals: %v", tm, !marshalable, marshalable)
				}
				if marshalable && !dateTime(s) {
					t.Fatalf("%v: encoding/json writes %q, which the reference's date-time rejects", tm, s)
				}
				if marshalable && timeLength(tm) != len(s) {
					t.Fatalf("%v: timeLength %d, want %d", tm, timeLength(tm), len(s))
				}
			}
		}
	}
}

func TestValidAllocatesNothing(t *testing.T) {
	for _, tt := range []struct{ schema, doc string }{
		{"raw-agent", `{"tenant_id":"acme","host":"host-a","metric":"cpu_load","value":92,"ts_event":"2025-10-16T09:00:00Z","unit":"percent","tags":{"env":"prod"}}`},
		{"envelope", `{"event_id":"e1","ts_event":"2025-10-16T09:00:00Z","ts_ingest":"2025-10-16T09:00:01.5+02:00","tenant_id":"acme","source":{"type":"host","source_id":"host-a"},"metric":"cpu_load","value":92,"tags":{"env":"prod"}}`},
	} {
		v, err := Compile("../../schemas/" + tt.schema + ".v1.json")
		if err != nil {
			t.Fatal(err)
		}
		doc := decode(t, tt.doc)
		if allocs := testing.AllocsPerRun(100, func() {
			if err := v.Validate(doc); err != nil {
				t.Fatal(err)
			}
		}); allocs != 0 {
			t.Errorf("%s: %v allocations per valid record, want 0", tt.schema, allocs)
		}
	}
}

// TestCompileErrorsPointIntoTheFile checks that a schema file that is not JSON, or not a
// valid JSON Schema, is reported once by its path, at the line and column to fix.
func TestCompileErrorsPointIntoTheFile(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		want   string // after the file's path
	}{
		{
			name:   "trailing comma",
			schema: "{\n  \"type\": \"object\",\n  \"properties\": {\n    \"value\": {\"type\": \"number\"},\n  }\n}\n",
			want:   ":5:3: invalid JSON: invalid character '}' looking for beginning of object key string",
		},
		{
			name:   "missing comma",
			schema: "{\n  \"type\": \"object\"\n  \"required\": [\"value\"]\n}\n",
			want:   ":3:3: invalid JSON: invalid character '\"' after object key:value pair",
		},
		{
			name:   "file ends inside the object",
			schema: "{\n  \"type\": \"object\",\n",
			want:   ":2:20: invalid JSON: unexpected end of JSON input",
		},
		{
			name:   "columns count characters",
			schema: "{\"description\": \"température\" \"type\": \"object\"}",
			want:   ":1:31: invalid JSON: invalid character '\"' after object key:value pair",
		},
		{
			name:   "unknown type name",
			schema: "{\n  \"type\": \"object\",\n  \"properties\": {\n    \"value\": {\"type\": \"nmber\"}\n  }\n}\n",
			want:   `:4:23: not a valid JSON Schema: /properties/value/type: value must be one of "array", "boolean", "integer", "null", "number", "object", "string"`,
		},
		{
			name:   "every place that breaks the rules",
			schema: "{\n  \"required\": \"value\",\n  \"properties\": {\"host\": {\"pattern\": \"([\"}}\n}\n",
			want:   `:2:15: not a valid JSON Schema: /required: expected array, but got string; also at 3:38: /properties/host/pattern: '([' is not valid 'regex'`,
		},
		{
			name:   "not an object",
			schema: "[{\"type\": \"object\"}]\n",
			want:   ":1:1: not a valid JSON Schema: the top level: expected object or boolean, but got array",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "event.schema.json")
			if err := os.WriteFile(path, []byte(tt.schema), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Compile(path)
			if err == nil || err.Error() != path+tt.want {
				t.Fatalf("got  %v\nwant %s", err, path+tt.want)
			}
		})
	}
}
