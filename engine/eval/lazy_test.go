package eval

import (
	"reflect"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/types"
)

// Programs from CompileChecked compile for running on first use (lint never pays for it);
// they must evaluate exactly like eagerly compiled ones, including the functions that read
// the hidden context (record_id, now) and text that only looks like a call of one.
func TestCheckedProgramsEvaluateLikeCompiledOnes(t *testing.T) {
	env := Env{
		Vars:   map[string]any{"value": 92.0, "metric": "cpu_load", "host": "h", "note": "now() is not called"},
		Source: engine.Source{Topic: "t", Partition: 2, Offset: 7},
		Now:    time.Date(2025, 10, 16, 9, 0, 0, 0, time.UTC),
	}
	for _, src := range []string{
		"record_id()", "now()", `metric + " " + now()`, "value * 2", "host", `"record_id(" + host`,
		`note`, `{id: record_id(), v: value}`, `value > 90 ? "hot" : "ok"`,
	} {
		e := config.Expr{Src: src}
		eager, err := Compile(e, Any)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		checked, _, err := CompileChecked(e, Any, types.OpenObject(), nil)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		want, werr := eager.Eval(env)
		got, gerr := checked.Eval(env)
		if !reflect.DeepEqual(got, want) || (werr == nil) != (gerr == nil) {
			t.Errorf("%s: checked program gave %v (%v), compiled %v (%v)", src, got, gerr, want, werr)
		}
		if _, ok := env.Vars[ctxVar]; ok {
			t.Fatalf("%s: the hidden context was left in the record", src)
		}
	}
}
