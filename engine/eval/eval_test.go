package eval

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
)

func TestRecordIDIsDeterministicAndDistinct(t *testing.T) {
	p := MustCompile("record_id()", Any)
	src := engine.Source{Topic: "ingest.raw.agent", Partition: 2, Offset: 41}
	a, err := p.Eval(Env{Vars: map[string]any{}, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := p.Eval(Env{Vars: map[string]any{}, Source: src})
	if a != b {
		t.Fatalf("same source record gave two ids: %v %v", a, b)
	}
	src.Offset++
	c, _ := p.Eval(Env{Vars: map[string]any{}, Source: src})
	if a == c {
		t.Fatalf("next offset got the same id %v", a)
	}
	if s := a.(string); len(s) != 36 || s[14] != '8' || !strings.ContainsAny(s[19:20], "89ab") {
		t.Fatalf("record id %q is not a version-8 RFC 9562 UUID", s)
	}
	// A new incarnation of the topic restarts offsets at 0: its records must not get the
	// ids of the old incarnation's records.
	reborn := src
	reborn.TopicID = [16]byte{1}
	d, _ := p.Eval(Env{Vars: map[string]any{}, Source: reborn})
	if d == c {
		t.Fatalf("a re-created topic gave its record the id of the old topic's record at the same offset: %v", d)
	}
	// Other partitions and topics never share ids.
	seen := map[any]engine.Source{}
	for _, topic := range []string{"ingest.raw.agent", "ingest.raw.agent2"} {
		for part := int32(0); part < 8200; part += 4099 {
			for off := int64(0); off < 3; off++ {
				s := engine.Source{Topic: topic, Partition: part, Offset: off}
				id, _ := p.Eval(Env{Vars: map[string]any{}, Source: s})
				if prev, dup := seen[id]; dup {
					t.Fatalf("%v and %v share id %v", prev, s, id)
				}
				seen[id] = s
			}
		}
	}
}

func TestMissingFieldsAreNilAndDefaultsApply(t *testing.T) {
	p := MustCompile(`tenant_id ?? "default"`, Any)
	v, err := p.Eval(Env{Vars: map[string]any{"host": "a"}})
	if err != nil || v != "default" {
		t.Fatalf("got %v, %v; want default", v, err)
	}
}

func TestEvalLeavesVarsUnchanged(t *testing.T) {
	vars := map[string]any{"value": 1.0}
	if _, err := MustCompile("now()", Any).Eval(Env{Vars: vars, Now: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	if len(vars) != 1 {
		t.Fatalf("evaluation leaked variables into the record: %v", vars)
	}
}

func TestNowUsesTheInjectedClock(t *testing.T) {
	at := time.Date(2025, 10, 16, 9, 0, 0, 0, time.UTC)
	v, err := MustCompile("now()", Any).Eval(Env{Now: at})
	if err != nil || v != "2025-10-16T09:00:00Z" {
		t.Fatalf("now() = %v, %v", v, err)
	}
}

func TestCompileErrorPointsIntoTheExpression(t *testing.T) {
	e := config.Expr{Src: `value >= `, Pos: config.Pos{File: "p.yaml", Line: 7, Col: 20}, Path: "streams[0].processors[0].filter.when"}
	_, err := Compile(e, Bool)
	ce, ok := err.(*config.Error)
	if !ok {
		t.Fatalf("error %T %v is not a *config.Error", err, err)
	}
	if ce.Pos.Line != 7 || ce.Pos.Col <= 20 {
		t.Fatalf("error at %d:%d, want line 7 past column 20", ce.Pos.Line, ce.Pos.Col)
	}
	if !strings.HasPrefix(ce.Error(), "p.yaml:7:") || !strings.Contains(ce.Error(), "filter.when") {
		t.Fatalf("message %q lacks position or path", ce.Error())
	}
}

// An object built with expr's fromPairs is an object like any other: a schema, the JSON
// encoder and the sinks take it (they know only string keys).
func TestMappingMakesBuiltObjectsPlainObjects(t *testing.T) {
	m, err := CompileFields(config.Fields{{Name: "attributes", Expr: &config.Expr{Src: `fromPairs(map(toPairs(attributes), {[#[0], string(#[1])]}))`}}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Eval(Env{Vars: map[string]any{"attributes": map[string]any{"cpu": 0.0, "state": "user"}}})
	if err != nil {
		t.Fatal(err)
	}
	attrs, ok := out["attributes"].(map[string]any)
	if !ok || attrs["cpu"] != "0" || attrs["state"] != "user" {
		t.Fatalf("attributes = %#v, want map[string]any{cpu: \"0\", state: user}", out["attributes"])
	}
}

func TestMappingBuildsNestedObjectsAndSkipsNil(t *testing.T) {
	f := config.Fields{
		{Name: "metric", Expr: &config.Expr{Src: "metric"}},
		{Name: "unit", Expr: &config.Expr{Src: "unit"}},
		{Name: "source", Nested: config.Fields{
			{Name: "type", Expr: &config.Expr{Src: `"host"`}},
			{Name: "source_id", Expr: &config.Expr{Src: `host ?? "unknown"`}},
		}},
	}
	m, err := CompileFields(f)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Eval(Env{Vars: map[string]any{"metric": "cpu_load", "host": "host-a"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := out["unit"]; ok {
		t.Fatalf("nil field kept: %v", out)
	}
	src := out["source"].(map[string]any)
	if out["metric"] != "cpu_load" || src["source_id"] != "host-a" || src["type"] != "host" {
		t.Fatalf("got %v", out)
	}
}

func TestParseTime(t *testing.T) {
	for _, in := range []any{"2025-10-16T09:00:00Z", 1760605200.0, 1760605200000.0, "1760605200"} {
		got, err := ParseTime(in, "")
		if err != nil || !got.Equal(time.Date(2025, 10, 16, 9, 0, 0, 0, time.UTC)) {
			t.Errorf("ParseTime(%v) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseTime("yesterday", ""); err == nil {
		t.Error("ParseTime accepted yesterday")
	}
}

// parse_time writes every time the same way (UTC, RFC 3339 with the fraction it has), whatever
// form it was given in, including when it returns its input as it came.
func TestParseTimeWritesOneForm(t *testing.T) {
	p := MustCompile("parse_time(ts)", Any)
	for in, want := range map[string]string{
		"2025-10-16T09:00:00Z":            "2025-10-16T09:00:00Z",
		"2025-10-16T09:00:00.000Z":        "2025-10-16T09:00:00Z",
		"2025-10-16T09:00:00.25Z":         "2025-10-16T09:00:00.25Z",
		"2025-10-16T09:00:00.250Z":        "2025-10-16T09:00:00.25Z",
		"2025-10-16T09:00:00.0Z":          "2025-10-16T09:00:00Z",
		"2025-10-16T09:00:00.123456789Z":  "2025-10-16T09:00:00.123456789Z",
		"2025-10-16T09:00:00.1234567891Z": "2025-10-16T09:00:00.123456789Z",
		"2025-10-16T11:00:00+02:00":       "2025-10-16T09:00:00Z",
		"2025-10-16T09:00:00+00:00":       "2025-10-16T09:00:00Z",
		"1760605200":                      "2025-10-16T09:00:00Z",
	} {
		got, err := p.Eval(Env{Vars: map[string]any{"ts": in}})
		if err != nil || got != want {
			t.Errorf("parse_time(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
}

// A plain field path is read directly; its answer must be exactly what the VM gives for
// the same compiled program.
func TestFieldPathFastPathAgreesWithVM(t *testing.T) {
	records := []map[string]any{
		{"source": map[string]any{"source_id": "host-a"}, "metric": "cpu"},
		{"source": map[string]any{}},
		{"source": nil},
		{"source": "flat"},
		{},
	}
	for _, src := range []string{"metric", "source.source_id", "source?.source_id", "source"} {
		p := MustCompile(src, Any)
		if p.path == nil {
			t.Fatalf("%s did not take the field-path fast path", src)
		}
		for _, rec := range records {
			fv, ferr := p.Eval(Env{Vars: rec})
			sv, serr := p.run(rec) // the VM, bypassing the fast path
			if (ferr != nil) != (serr != nil) || fmt.Sprint(fv) != fmt.Sprint(sv) {
				t.Errorf("%s on %v: fast path gave %v, %v; VM gave %v, %v", src, rec, fv, ferr, sv, serr)
			}
		}
	}
}
