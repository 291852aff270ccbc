package schema

import (
	"encoding/json"
	"os"
	"testing"
)

// fuzzSchemas cover every keyword the fast tree supports, alone and combined, with the
// numbers and patterns most likely to expose a rounding or matching difference.
var fuzzSchemas = []string{
	`{"type":"object","required":["a"],"properties":{"a":{"type":"integer","minimum":-5,"exclusiveMaximum":100.5},"b":{"type":["string","null"],"minLength":1,"maxLength":4,"pattern":"^[a-c]+$"},"c":{"type":"array","items":{"type":"number","multipleOf":0.1},"minItems":1,"maxItems":3}},"additionalProperties":{"type":"boolean"}}`,
	`{"properties":{"t":{"format":"date-time"},"e":{"enum":[1,"1",null,true,[1,{"x":2.5}],{"k":"v"}]},"c":{"const":0.3}},"patternProperties":{"^x":{"maximum":0.1,"exclusiveMinimum":-0.1}},"minProperties":1,"maxProperties":3}`,
	`{"anyOf":[{"type":"string","format":"date-time"},{"type":"number","multipleOf":7}],"not":{"const":14}}`,
	`{"oneOf":[{"type":"integer"},{"minimum":2.5},{"type":"string","maxLength":2}],"allOf":[{"not":{"type":"null"}}]}`,
	`{"prefixItems":[{"type":"string"},{"enum":[0.1,0.2,1e21]}],"items":{"type":"object","additionalProperties":false,"properties":{"k":true}},"maxItems":4}`,
	`{"type":"array","items":{"multipleOf":0.01,"minimum":0.1000000000000000000001,"maximum":1e21}}`,
	`{"type":["object","array"],"properties":{"a":{"multipleOf":1.5}},"items":{"multipleOf":3}}`,
	`{"additionalProperties":false,"patternProperties":{"^[0-9]+$":{"type":"integer","exclusiveMinimum":0},"^a.*z$":{"minLength":2}}}`,
	`{"$schema":"http://json-schema.org/draft-07/schema#","items":{"type":"string","pattern":"é|\\d{2}"},"minItems":2}`,
}

// fuzzSeeds are instances near the edges of fuzzSchemas and the repo schemas.
var fuzzSeeds = []string{
	`{"a":1,"b":"abc","c":[0.3,0.1],"d":true}`, `{"a":100.5}`, `{"a":-5,"b":null,"c":[]}`, `{"a":2.0,"b":"abcd","z":"no"}`,
	`{"t":"2016-12-31T23:59:60Z","e":[1,{"x":2.5}],"c":0.3}`, `{"t":"2025-10-16T09:00:00+24:00","x1":0.1}`, `{"xa":-0.1,"e":{"k":"v"}}`,
	`"2025-10-16T09:00:00Z"`, `14`, `21`, `0`, `-0`, `7e300`, `1e-7`, `2.5`, `3`, `"ab"`, `null`, `[]`, `{}`,
	`["a",0.2,{"k":1}]`, `["a",1e21,{"j":1}]`, `[0.1,0.11,1,1e21,1.0000000000000002e21]`, `[0.10000000000000002]`,
	`{"a":4.5,"b":[9,10]}`, `[3,6,4.5]`, `{"12":3,"abz":"xx","az":""}`, `{"0":0}`, `["é","12","x"]`,
	`{"tenant_id":"acme","host":"host-a","metric":"cpu_load","value":92,"ts_event":"2025-10-16T09:00:00Z","unit":"percent","tags":{"env":"prod"}}`,
	`{"host":"h","metric":"a:b-c.d","value":1e-320,"ts_event":-1.5}`,
	`{"event_id":"e","ts_event":"2025-10-16T09:00:00.5-01:30","ts_ingest":"2025-10-16t09:00:00z","tenant_id":"t","source":{"type":"h","source_id":"s"},"metric":"m","value":1,"schema_version":1e3}`,
}

func FuzzAgreesWithReference(f *testing.F) {
	var validators []*Validator
	for _, src := range fuzzSchemas {
		v := compileString(f, src)
		if ok, why := v.FastPath(); !ok {
			f.Fatalf("fuzz schema %s has no fast path: %s", src, why)
		}
		validators = append(validators, v)
	}
	for _, path := range []string{"../../schemas/raw-agent.v1.json", "../../schemas/envelope.v1.json"} {
		v, err := Compile(path)
		if err != nil {
			f.Fatal(err)
		}
		validators = append(validators, v)
	}
	for _, seed := range fuzzSeeds {
		f.Add([]byte(seed))
	}
	if b, err := os.ReadFile("../../schemas/raw-agent.v1.json"); err == nil {
		f.Add(b) // a big nested document with strings and patterns
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var doc any
		if json.Unmarshal(data, &doc) != nil {
			return
		}
		for i, v := range validators {
			fast := v.fast.check(doc)
			refValid := v.ref.Validate(doc) == nil
			switch {
			case fast == valid && !refValid:
				t.Fatalf("schema %d: fast path ACCEPTS what the reference rejects: %s", i, data)
			case fast == invalid && refValid:
				t.Fatalf("schema %d: fast path rejects what the reference accepts: %s", i, data)
			}
		}
	})
}
