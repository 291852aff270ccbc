package eval

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
)

// The shapes fast forms take, each of which must be answered without the VM.
var fastShapes = []string{
	`"host"`, `1`, `2.5`, `true`, `nil`, `{}`,
	`metric`, `source.source_id`, `source?.source_id`, `tags?.env`, `tags.env`, `tags["env"]`,
	`tenant_id ?? "default"`, `tags ?? {}`, `tags?.env ?? "unknown"`, `tenant_id ?? host ?? "none"`,
	`metric == "cpu_load"`, `metric != "cpu_load"`, `metric == nil`, `value == 90`, `value != 90.0`,
	`value == true`, `host == tenant_id`, `tags == nil`, `value == metric`,
	`value >= 90`, `value > 90`, `value < 75`, `value <= 75.5`, `value > host`,
	`metric == "cpu_load" && value >= 90`, `metric == "cpu_load" and value >= 90`,
	`metric == "x" || value < 10`, `metric or value`, `value && true`,
	`!(value >= 90)`, `not (metric == "a")`, `!metric`,
	`value >= 90 ? "high" : "low"`, `metric ? 1 : 2`,
	`float(value)`, `float(metric)`, `now()`, `record_id()`,
	`parse_time(metric)`, `metric != nil ? parse_time(metric) : now()`,
}

// Values a field takes in the records the shapes are evaluated on: every type a decoded
// event holds, and the edge cases of comparison (NaN, int against float).
var fieldValues = []any{
	nil, 0, 90, 75, 89.5, 90.0, 75.5, math.NaN(), math.Inf(1), "cpu_load", "x", "", true, false,
	map[string]any{"env": "prod"}, map[string]any{}, map[string]any{"source_id": "web-01"},
	[]any{1.0, "a"}, int64(90),
	"2025-10-16T09:00:00Z", "2025-10-16T09:00:00.250Z", "2025-10-16T09:00:00.123456789Z", "2025-10-16T09:00:00.1234567891Z",
	"2025-10-16T11:00:00+02:00", "2025-10-16t09:00:00z", "1760605200", time.Date(2025, 10, 16, 9, 0, 0, 5, time.FixedZone("", 3600)),
}

// Fast forms give exactly what the VM gives (value, or an error where the VM has one), on
// every shape above and on records with every field of every type, missing ones included:
// a fast form that answers where it should have left the record to the VM fails here.
func TestFastFormsAnswerAsTheVMDoes(t *testing.T) {
	fields := []string{"metric", "value", "tags", "host", "tenant_id", "source"}
	records := []map[string]any{{}}
	for _, f := range fields {
		for _, v := range fieldValues {
			records = append(records, map[string]any{f: v})
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		rec := map[string]any{}
		for _, f := range fields {
			if i := rng.IntN(len(fieldValues) + 1); i < len(fieldValues) {
				rec[f] = fieldValues[i]
			}
		}
		records = append(records, rec)
	}
	env := Env{Source: engine.Source{Topic: "in", Partition: 1, Offset: 7}, Now: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	for _, src := range fastShapes {
		for _, kind := range []Kind{Any, Bool} {
			p, err := Compile(config.Expr{Src: src}, kind)
			if err != nil {
				continue // not a predicate: `"host"` as a rule's when is a config error
			}
			if p.fast == nil {
				t.Fatalf("%s has no fast form", src)
			}
			vmOnly := MustCompile(src, kind)
			vmOnly.fast = nil
			answered := 0
			for _, rec := range records {
				env.Vars = rec
				got, gotErr := p.Eval(env)
				want, wantErr := vmOnly.Eval(env)
				if (gotErr != nil) != (wantErr != nil) || !sameValue(got, want) {
					t.Fatalf("%s (kind %d) on %v: fast gave %#v, %v; the VM %#v, %v", src, kind, rec, got, gotErr, want, wantErr)
				}
				if fastAnswers(p, env) {
					answered++
				}
			}
			if kind == Any && answered == 0 {
				t.Errorf("%s: the fast form answered no record itself", src)
			}
		}
	}
}

// fastAnswers reports whether p's fast form answers env without the VM.
func fastAnswers(p *Program, env Env) bool {
	out, _ := withContext(env, p.needsCtx, func(vars map[string]any) (bool, error) {
		v, ok := p.fast(vars)
		return ok && p.acceptsResult(v), nil
	})
	return out
}

// sameValue is reflect.DeepEqual, with NaN equal to itself.
func sameValue(a, b any) bool {
	if x, ok := a.(float64); ok && math.IsNaN(x) {
		y, ok := b.(float64)
		return ok && math.IsNaN(y)
	}
	return reflect.DeepEqual(a, b)
}

// Expressions of other shapes have no fast form and run on the VM.
func TestOtherShapesHaveNoFastForm(t *testing.T) {
	for _, src := range []string{
		`value + 1`, `-1`, `parse_time(ts_event, "2006-01-02")`, `parse_time(value + 1)`, `{"a": 1}`, `[1, 2]`, `metric matches "^cpu"`,
		`upper(metric)`, `$env`, `tags.env()`, `float(value, 1)`, `now(1)`, `let x = 1; x`, `value in [1, 2]`, `len(metric)`, `record_id(1)`,
	} {
		if fast, _ := shapeOf(src); fast != nil {
			t.Errorf("%s has a fast form", src)
		}
	}
}

// `{}` is a new object each time: a processor that adds fields to the one a record got must
// not change the next record's.
func TestEmptyObjectIsNewEachTime(t *testing.T) {
	p := MustCompile(`tags ?? {}`, Any)
	a, _ := p.Eval(Env{Vars: map[string]any{}})
	a.(map[string]any)["env"] = "prod"
	b, _ := p.Eval(Env{Vars: map[string]any{}})
	if len(b.(map[string]any)) != 0 {
		t.Errorf("the second record's {} is %v", b)
	}
}

func BenchmarkFastForms(b *testing.B) {
	vars := map[string]any{"metric": "cpu_load", "value": 93.5, "host": "web-01", "tags": map[string]any{"env": "prod"}}
	for _, src := range []string{`tenant_id ?? "default"`, `metric == "cpu_load" && value >= 90`, `float(value)`} {
		for _, fast := range []bool{true, false} {
			p := MustCompile(src, Any)
			name := src + "/vm"
			if fast {
				name = src + "/fast"
			} else {
				p.fast = nil
			}
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					if _, err := p.Eval(Env{Vars: vars}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// FuzzFastForms looks for an expression whose fast form answers differently from the VM.
//
//	go test ./engine/eval -run - -fuzz FuzzFastForms
func FuzzFastForms(f *testing.F) {
	for _, src := range fastShapes {
		f.Add(src, "cpu_load", 90.0, int64(90))
	}
	f.Fuzz(func(t *testing.T, src, s string, x float64, n int64) {
		p, err := Compile(config.Expr{Src: src}, Any)
		if err != nil || p.fast == nil {
			return
		}
		vmOnly, _ := Compile(config.Expr{Src: src}, Any)
		vmOnly.fast = nil
		for _, rec := range []map[string]any{
			{}, {"metric": s, "value": x}, {"value": int(n), "tags": map[string]any{"env": s}},
			{"metric": x, "value": s, "host": nil}, {"tags": s, "source": map[string]any{"source_id": int(n)}},
		} {
			env := Env{Vars: rec, Now: time.Unix(n, 0)}
			got, gotErr := p.Eval(env)
			want, wantErr := vmOnly.Eval(env)
			if (gotErr != nil) != (wantErr != nil) || !sameValue(got, want) {
				t.Fatalf("%s on %v: fast gave %#v, %v; the VM %#v, %v", src, rec, got, gotErr, want, wantErr)
			}
		}
	})
}
